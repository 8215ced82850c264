"""The lending risk core: one market's optimisation, its bootstrap, and a 25-market epoch.

* ``optimize_one_market_s`` — `risk.optimize.optimise` for one market whose threshold is set by a risk
  limit (so the grid scan and the 1 bps refinement both run): 4,000 paths × 72 hourly steps (t(4)
  shocks at 0.8%/h with a −12% ± 5% jump 1% of hours) × 2,000 positions, $400M of debt, depth
  $50M per 2%; ``optimize_one_market_simulations`` is how many parameter sets it simulated.
* ``bootstrap_200_resamples_s`` — `risk.uncertainty.bootstrap` on that optimisation's curve.
* ``lending_epoch_25_markets_s`` — `risk.recommend.recommend` end to end on 25 synthetic markets (90
  days of seeded GBM prices, 1,000 Monte Carlo + 1,000 filtered historical paths of 72 steps, 1,000
  positions a market, 200 bootstrap resamples, peers): scenarios, optimisation, intervals,
  sensitivities, peers and change limits; ``lending_epoch_25_markets_simulations`` counts the
  simulations it ran; ``lending_epoch_25_markets_local2_s`` is the same epoch with its markets on two
  local worker processes (`risk.parallel` TaskMap; the same bytes either way).

The machine is shared: wall times are printed with CPU (process) time. Run with
``python -m benchmarks.bench_optimize``.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal

import numpy as np

from risk.lending_params import DepthCurve
from risk.optimize import BookModel, MarketProblem, RiskLimits, optimise
from risk.policy_load import check_policy_text
from risk.recommend import recommend
from risk.snapshot import MarketState, VenueSnapshot
from risk.uncertainty import bootstrap
from risk.units import Bps, TokenAmount

SEED = 20231031
MARKETS = 25
HOURS = 90 * 24


def _paths(rng: np.random.Generator, n: int = 4000, steps: int = 72) -> np.ndarray:
    r = 0.008 * rng.standard_t(4, (n, steps)) / math.sqrt(2)
    r += (rng.random((n, steps)) < 0.01) * rng.normal(-0.12, 0.05, (n, steps))
    return np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(r, axis=1)], axis=1))


def _one_market() -> tuple[MarketProblem, object, float, float]:
    problem = MarketProblem(
        name="ETH", price_usd=2000.0, protocol_fee=0.1, gas_usd=10.0, depth=DepthCurve(50e6, 0.02),
        book=BookModel(2000, 400e6, 1.3, 0.25, 1.5, 5, 0.2, (SEED, 2, 0)), paths=_paths(np.random.default_rng(SEED)),
        limits=RiskLimits(0.005, 0.02, 0.01), bonus_bps=500, ltv_buffer_bps=250, lt_bounds=(0, 9300), ltv_bounds=(0, 9000),
    )
    w0, c0 = time.perf_counter(), time.process_time()
    best = optimise(problem, step_bps=100)
    return problem, best, time.perf_counter() - w0, time.process_time() - c0


def _policy_text() -> bytes:
    markets, books = [], []
    for i in range(MARKETS):
        markets.append(
            f"  - {{symbol: M{i:02d}, asset: \"0x{i + 1:040x}\", decimals: 18, price_source: {{synthetic: demo}},\n"
            f"     liquidity: {{depth: \"${20 + 20 * (i % 10)}M\", impact: \"2%\", liquidation_size: \"${5 + 2 * (i % 10)}M\"}}}}"
        )
        books.append(f"    - {{symbol: M{i:02d}, total_debt: \"${50 + 40 * (i % 7)}M\"}}")
    return f"""version: 1
venue: {{name: bench-25, kind: lending, protocol: aave-v3, chain_id: 1337}}
markets:
{chr(10).join(markets)}
risk_appetite: {{coverage: "99%", var95_max: "0.5%", evar99_max: "2%", insolvency_probability_max: "1%", min_incentive_over_slippage: "1.5%"}}
bounds:
  ltv: {{min: "0%", max: "85%"}}
  liquidation_threshold: {{min: "0%", max: "88%"}}
  liquidation_bonus: {{min: "4%", max: "15%"}}
scenarios: {{step: 1h, lookback: 90d, horizon: 72h, ltv_buffer_horizon: 72h, seed: {SEED}, volatility: {{model: ewma, half_life: 72h}}}}
lending_core:
  book: {{positions: 1000, whales: 5, whale_share: "20%"}}
  markets:
{chr(10).join(books)}
  monte_carlo: {{paths: 1000, nu: 4, jumps: {{per_year: 12.0, mean: "-8%", std: "4%", common: true}}}}
  filtered_historical: {{paths: 1000}}
  optimiser: {{bootstrap_resamples: 200}}
""".encode()


def _epoch(workers: int = 0) -> tuple[float, float, int]:
    """Serial (`workers` 0) or on `workers` local processes (`governance.executors.LocalExecutor`)."""
    policy, problems = check_policy_text(_policy_text(), "bench-25.yaml")
    assert policy is not None, problems
    rng = np.random.default_rng(SEED)
    symbols = tuple(m.symbol for m in policy.markets)
    vols = rng.uniform(0.4, 1.2, MARKETS) / math.sqrt(365 * 24)
    prices = 100.0 * np.exp(np.cumsum(np.vstack([np.zeros(MARKETS), rng.standard_normal((HOURS, MARKETS)) * vols]), axis=0))
    states = {
        s: MarketState(s, policy.markets[i].asset, 18, Bps(7500), Bps(8000), Bps(600), TokenAmount.whole(10**7, 18, s),
                       TokenAmount.whole(10**7, 18, s), Decimal(repr(float(prices[-1, i]))), Bps(1000))
        for i, s in enumerate(symbols)
    }
    snapshot = VenueSnapshot("bench-25", 1337, None, states, "benchmark")
    if workers:
        from governance.executors import LocalExecutor

        with LocalExecutor(workers) as executor:
            executor.map(abs, [0] * workers)  # start the workers (imports) outside the timed region
            w0, c0 = time.perf_counter(), time.process_time()
            rec = recommend(policy, symbols, prices, 3600, snapshot, epoch="bench", as_of="bench", task_map=executor.map)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    else:
        w0, c0 = time.perf_counter(), time.process_time()
        rec = recommend(policy, symbols, prices, 3600, snapshot, epoch="bench", as_of="bench")
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    sims = sum(m.analysis.simulations for m in rec.markets if m.analysis is not None)
    bound = sum(1 for m in rec.markets if m.analysis is not None and not m.analysis.binding.startswith(("bound", "aave")))
    name = "lending_epoch_25_markets_s" if not workers else f"lending_epoch_25_markets_local{workers}_s"
    where = f"CPU {cpu:.2f} s" if not workers else f"{workers} worker processes; CPU of this process {cpu:.2f} s"
    print(f"{name:40s}{wall:8.2f}   ({where}; {sims} simulations; {bound} of 25 thresholds set by a risk limit)")
    return wall, cpu, sims


def run() -> dict[str, float]:
    problem, best, wall_one, cpu_one = _one_market()
    sims = best.evaluator.simulations
    print(f"optimize_one_market_s                   {wall_one:8.2f}   (CPU {cpu_one:.2f} s; {sims} simulations; "
          f"LT {best.target.lt_bps / 100:.2f}% bound by {best.binding})")
    rng = np.random.default_rng(SEED)
    w0 = time.perf_counter()
    boot = bootstrap(best.evaluator.curve(), problem.limits, best.target, ltv_buffer_bps=250, resamples=200, level=0.9, rng=rng)
    wall_boot = time.perf_counter() - w0
    print(f"bootstrap_200_resamples_s               {wall_boot:8.2f}   (LT 90% interval {boot.threshold.low / 100:.2f}%..{boot.threshold.high / 100:.2f}%)")
    wall_epoch, cpu_epoch, epoch_sims = _epoch()
    wall_local, _, _ = _epoch(workers=2)
    return {
        "optimize_one_market_s": wall_one,
        "optimize_one_market_cpu_s": cpu_one,
        "optimize_one_market_simulations": float(sims),
        "bootstrap_200_resamples_s": wall_boot,
        "lending_epoch_25_markets_s": wall_epoch,
        "lending_epoch_25_markets_cpu_s": cpu_epoch,
        "lending_epoch_25_markets_simulations": float(epoch_sims),
        "lending_epoch_25_markets_local2_s": wall_local,
    }


if __name__ == "__main__":
    run()
