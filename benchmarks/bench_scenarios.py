"""Scenario generation: Monte Carlo throughput, filtered historical simulation, and a GARCH fit on real ETH.

Run with ``python -m benchmarks.bench_scenarios``; prints and returns what it measured. The GARCH fit
needs the shared data (``$STEWARD_DATA`` or ``../shared/data``); without it that figure is left out.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from benchmarks.timing import best_of
from risk.scenarios import iter_chunks, simulate
from risk.scenarios_hist import FilteredHistorical
from risk.scenarios_mc import Depeg, MonteCarlo
from risk.vol import GarchParams, GarchT

PATHS, STEPS, ASSETS = 10_000, 168, 25  # a week of hours for a 25-asset market
CHUNK = 2048
SEED = 20240101
HOUR = 3600



def _market_model() -> MonteCarlo:
    """25 assets: t(4) shocks at 0.5-1.5% an hour, pairwise correlation 0.6, rare crash jumps, two depegs."""
    rng = np.random.default_rng(SEED)
    symbols = ("WETH", "stETH", "USDC", *(f"A{i}" for i in range(ASSETS - 3)))
    c = np.full((ASSETS, ASSETS), 0.6)
    np.fill_diagonal(c, 1.0)
    return MonteCarlo(
        symbols, HOUR, rng.uniform(0.005, 0.015, ASSETS), c, nu=4.0,
        jump_intensity=0.001, jump_mean=-0.04, jump_std=0.03,
        depegs=(Depeg("stETH", "WETH", 48.0, 0.0005, 1e-4, 0.03), Depeg("USDC", None, 24.0, 0.0002, 1e-4, 0.05)),
    )


def _eth_returns() -> np.ndarray | None:
    from risk.data import load_series
    from risk.data_problems import DataOptions

    root = Path(os.environ.get("STEWARD_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
    path = root / "market" / "binance_ethusdt_1h_cdd.csv"
    if not path.is_file():
        return None
    series, _ = load_series(path, symbol="ETH", options=DataOptions(repairs=frozenset({"remove_spikes"})))
    return np.diff(np.log(series.prices))


def _chunked(model: MonteCarlo) -> None:
    for chunk in iter_chunks(model, seed=SEED, paths=PATHS, steps=STEPS, chunk_paths=CHUNK):
        chunk.relative[:, -1, :].min()  # touch each chunk as a consumer would, then let it go


def run() -> dict[str, float]:
    model = _market_model()
    simulate(model, seed=SEED, paths=1024, steps=STEPS)  # warm-up: imports, page faults
    t_mc = best_of(lambda: simulate(model, seed=SEED, paths=PATHS, steps=STEPS), 2)
    t_chunked = best_of(lambda: _chunked(model), 1)
    cells = PATHS * STEPS * ASSETS
    z = np.random.default_rng(SEED).standard_t(4, (20_000, ASSETS)) / math.sqrt(2.0)
    fhs = FilteredHistorical(model.symbols, HOUR, z, model.sigma_per_step, garch=(GarchParams(1e-6, 0.06, 0.93, 4.0),) * ASSETS)
    t_fhs = best_of(lambda: simulate(fhs, seed=SEED, paths=PATHS, steps=STEPS), 1)
    result = {
        "mc_10k_paths_168_steps_25_assets_s": t_mc,
        "mc_paths_steps_assets_per_s": cells / t_mc,
        "mc_10k_chunked_2048_s": t_chunked,
        "fhs_garch_10k_paths_168_steps_25_assets_s": t_fhs,
    }
    size_mb = cells * 8 / 2**20
    print(f"monte carlo: {PATHS} paths x {STEPS} steps x {ASSETS} assets ({size_mb:.0f} MiB float64), t(4), jumps, 2 depegs")
    print(f"mc_10k_paths_168_steps_25_assets_s         {t_mc:8.3f}   (best of 2)")
    print(f"mc_paths_steps_assets_per_s                {cells / t_mc:14,.0f}")
    print(f"mc_10k_chunked_2048_s                      {t_chunked:8.3f}   (chunks of {CHUNK} paths, {CHUNK * STEPS * ASSETS * 8 / 2**20:.0f} MiB each)")
    print(f"fhs_garch_10k_paths_168_steps_25_assets_s  {t_fhs:8.3f}   (GARCH-evolving variance, loop over steps)")
    r = _eth_returns()
    if r is None:
        print("garch_fit_eth_hourly_s                     skipped: shared data not found")
        return result
    t_fit = best_of(lambda: GarchT().fit(r), 3)
    result["garch_fit_eth_hourly_s"] = t_fit
    print(f"garch_fit_eth_hourly_s                     {t_fit:8.3f}   (Binance ETHUSDT, {len(r)} hourly returns, best of 3)")
    return result


if __name__ == "__main__":
    run()
