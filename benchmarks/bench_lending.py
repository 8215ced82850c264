"""Liquidation simulator benchmark: one market at the bar's size, a 25-market epoch, a death spiral.

The bar (issue 3): 10,000 paths × 168 hourly steps × 10,000 positions for one market in under 1 s, a
25-market epoch in under 30 s, on the project's 2-core machine. Paths are GBM with jumps built here
with a seeded Generator (80%/yr volatility, a -8% ± 4% jump with probability 0.2% an hour); the book is
$1B of debt over 10,000 positions, health factors lognormal (median 1.5, sigma 0.35) above 1, ten
whales holding 25%, with WETH's Aave v3 parameters on 2023-10-31 (LTV 80.5%, LT 83%, bonus 5%,
protocol fee 10%), $10 of gas and a depth of $100M per 2%. Book and paths are built outside the timed
region: the simulator's inputs come from other stages.

The machine is shared: wall times are the median of a few repeats and CPU times (process time) are
printed next to them. Run with ``python -m benchmarks.bench_lending``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from risk.book import Book, HfLognormal
from risk.lending import (
    DepthCurve,
    LendingMarket,
    run_ledger,
    simulate_market,
    simulate_venue,
)

SEED = 20231031
PATHS = 10_000
STEPS = 168
POSITIONS = 10_000
MARKETS = 25
SPIRAL_PATHS = 2_000
REPEATS = 3
HOUR_YEARS = 1 / (365 * 24)


def _paths(rng: np.random.Generator, n_paths: int, vol: float) -> np.ndarray:
    sigma = vol * np.sqrt(HOUR_YEARS)
    log_steps = rng.normal(-0.5 * sigma**2, sigma, (n_paths, STEPS))
    log_steps += (rng.random((n_paths, STEPS)) < 0.002) * rng.normal(-0.08, 0.04, (n_paths, STEPS))
    return np.exp(np.concatenate([np.zeros((n_paths, 1)), np.cumsum(log_steps, axis=1)], axis=1))


def _book(rng: np.random.Generator, market: LendingMarket, debt_usd: float) -> Book:
    return Book.generate(rng, POSITIONS, debt_usd, market=market.name, price_usd=market.price_usd,
                         liquidation_threshold=market.liquidation_threshold, ltv=market.ltv,
                         hf=HfLognormal(1.5, 0.35), size_sigma=1.5, whales=10, whale_share=0.25)


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median wall and CPU seconds over `repeats` runs, and the last result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus), out


def _venue(rng: np.random.Generator) -> tuple[Book, list[LendingMarket], dict[str, np.ndarray]]:
    books, markets, paths = [], [], {}
    for i in range(MARKETS):
        lt = float(rng.uniform(0.6, 0.86))
        bonus = float(rng.uniform(0.045, min(0.1, 1 / lt - 1)))
        market = LendingMarket(f"M{i:02d}", float(rng.uniform(1, 3e4)), lt - 0.03, lt, bonus, 0.1, gas_usd=10.0,
                               depth=DepthCurve(float(rng.uniform(2e7, 5e8)), 0.02))
        markets.append(market)
        books.append(_book(rng, market, float(rng.uniform(5e7, 1e9))))
        paths[market.name] = _paths(rng, PATHS, float(rng.uniform(0.5, 1.2)))
    return Book.concat(books), markets, paths


def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    weth = LendingMarket("WETH", 1816.85, 0.805, 0.83, 0.05, 0.1, gas_usd=10.0, depth=DepthCurve(1e8, 0.02))
    book = _book(rng, weth, 1e9)
    paths = _paths(rng, PATHS, 0.8)
    cells = PATHS * STEPS * POSITIONS

    simulate_market(book, weth, paths[:256])  # warm-up: imports, page faults
    wall, cpu, dist = _timed(lambda: simulate_market(book, weth, paths), REPEATS)
    wall_calm, cpu_calm, _ = _timed(lambda: simulate_market(book, weth, paths, cascade=False), REPEATS)
    ledger = run_ledger(book, weth, paths)
    calls = float(ledger.liquidations.mean())

    venue_book, venue_markets, venue_paths = _venue(rng)
    wall_25, cpu_25, venue = _timed(lambda: simulate_venue(venue_book, venue_markets, venue_paths), 1)

    thin = LendingMarket("WETH", 1816.85, 0.805, 0.83, 0.05, 0.1, gas_usd=10.0, depth=DepthCurve(2e7, 0.02))
    wall_spiral, cpu_spiral, spiral = _timed(lambda: run_ledger(book, thin, paths[:SPIRAL_PATHS]), 1)

    result = {
        "lending_one_market_10k_paths_s": wall,
        "lending_one_market_10k_paths_cpu_s": cpu,
        "lending_one_market_10k_paths_no_cascade_s": wall_calm,
        "lending_position_steps_per_s": cells / wall,
        "lending_one_market_liquidation_calls_per_path": calls,
        "lending_25_markets_10k_paths_10k_positions_s": wall_25,
        "lending_25_markets_10k_paths_10k_positions_cpu_s": cpu_25,
        "lending_death_spiral_2k_paths_s": wall_spiral,
    }
    print(f"one market: {PATHS} paths x {STEPS} steps x {POSITIONS} positions ({cells:.3g} position-steps), $1B debt, depth $100M/2%")
    print(f"lending_one_market_10k_paths_s                    {wall:8.3f}   (median of {REPEATS}, cascade; CPU {cpu:.3f} s)")
    print(f"lending_one_market_10k_paths_no_cascade_s         {wall_calm:8.3f}   (CPU {cpu_calm:.3f} s)")
    print(f"lending_position_steps_per_s                      {cells / wall:14.4g}")
    print(f"lending_one_market_liquidation_calls_per_path     {calls:8.1f}   (VaR95 ${dist.var95:,.0f}, LaR ${dist.liquidations_at_risk:,.0f})")
    print(f"lending_25_markets_10k_paths_10k_positions_s      {wall_25:8.3f}   (one run; CPU {cpu_25:.3f} s; venue VaR95 ${venue.venue.var95:,.0f})")
    print(f"lending_death_spiral_2k_paths_s                   {wall_spiral:8.3f}   (depth $20M/2% against $1B: "
          f"{spiral.liquidations.mean():.0f} calls a path, the whole book; CPU {cpu_spiral:.3f} s)")
    return result


if __name__ == "__main__":
    run()
