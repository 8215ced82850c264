"""Options benchmark: Black-76 Greeks throughput and SPAN scenario margin of a 100,000-option book.

Bar (issue #9): the scenario margin of a 100,000-option book in under 1 s. Run with
``python -m benchmarks.bench_options``; prints and returns what it measured.
"""

from __future__ import annotations

import numpy as np

from benchmarks.timing import best_of
from risk.options import OptionBook, greeks
from risk.options_margin import ScanRange, scenario_margin, span_grid

BOOK_SIZE = 100_000
REPEATS = 5
SEED = 20240909
BAR_SCENARIO_MARGIN_S = 1.0


def random_book(n: int, rng: np.random.Generator) -> OptionBook:
    """A mixed book on one underlying: strikes 50-200% of the forward, 1 day to 2 years, long and short."""
    forward = 3000.0
    return OptionBook(
        forward=np.full(n, forward),
        strike=forward * rng.uniform(0.5, 2.0, n),
        expiry=rng.uniform(1.0 / 365.0, 2.0, n),
        vol=rng.uniform(0.3, 1.5, n),
        is_call=rng.random(n) < 0.5,
        quantity=rng.integers(-50, 51, n).astype(np.float64),
        rate=0.0,
    )



def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    book = random_book(BOOK_SIZE, rng)
    grid = span_grid(ScanRange.symmetric(0.12), 0.3, horizon_years=1.0 / 365.0)
    greeks(book)  # warm-up: first calls pay for imports and page faults
    t_greeks = best_of(lambda: greeks(book), REPEATS)
    t_margin = best_of(lambda: scenario_margin(book, grid), REPEATS)
    result = {
        "options_greeks_per_s": BOOK_SIZE / t_greeks,
        "options_scenario_margin_100k_s": t_margin,
    }
    margin = scenario_margin(book, grid).margin
    print(f"book: {BOOK_SIZE} options, grid {grid.name} ({len(grid.spot_shocks) * len(grid.vol_shocks) + len(grid.extreme_moves)} scenarios), best of {REPEATS}")
    print(f"options_greeks_per_s            {result['options_greeks_per_s']:,.0f}")
    print(f"options_scenario_margin_100k_s  {result['options_scenario_margin_100k_s']:.4f}  (bar < {BAR_SCENARIO_MARGIN_S} s: "
          f"{'met' if t_margin < BAR_SCENARIO_MARGIN_S else 'MISSED'}); margin {margin:,.0f} USD")
    return result


if __name__ == "__main__":
    run()
