"""Hedging benchmark: the band simulation's throughput and a full hedge recommendation with its backtest.

Three years of hourly synthetic prices (seeded), 21 (ratio, band) candidates, the options vault of
`policies/options-venue.yaml`. Run with ``python -m benchmarks.bench_hedging``; prints and returns what it
measured. No bar: the recommendation runs inside every options epoch (and again in `steward verify`).
"""

from __future__ import annotations

import numpy as np

from benchmarks.timing import best_of
from risk.backtest import Tail, TailKind
from risk.hedging import HedgeCosts, candidate_grid
from risk.hedging_backtest import PerpVault, recommend_hedge, simulate_band, vault_path
from risk.options_backtest import OptionTemplate
from risk.units import Ratio, Usd

SEED = 20240909
STEPS = 3 * 8760
REPEATS = 3
VAULT = OptionTemplate("vault", (1.0, 1.0, 1.1, 0.9), (30 / 365, 30 / 365, 14 / 365, 14 / 365), (True, False, True, False),
                       (-1000.0, -1000.0, -500.0, 300.0))



def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    closes = 2000.0 * np.exp(np.cumsum(rng.standard_t(4, STEPS + 1) * 0.006))
    ratios, bands = candidate_grid(tuple(Ratio.parse(x) for x in ("0%", "25%", "50%", "75%", "90%", "100%")),
                                   tuple(Ratio.parse(x) for x in ("2%", "5%", "10%", "20%")))
    costs = HedgeCosts.of(Ratio.parse("0.04%"), Usd.parse("$25M"), Ratio.parse("1%"))
    at = np.arange(720, STEPS - 24, 24)
    vol = np.full(closes.size, 0.8)
    perp_path = vault_path(PerpVault(20e6), closes, vol, at, 24, 8760)
    t_band = best_of(lambda: simulate_band(perp_path, ratios, bands, costs), REPEATS)
    t_path = best_of(lambda: vault_path(VAULT, closes, vol, at, 24, 8760), REPEATS)
    kw = {"step_seconds": 3600, "horizon_steps": 24, "coverage": Ratio.parse("99%"), "ratios": ratios, "bands": bands,
          "max_loss": Ratio.parse("9.5%"), "cost_budget": Ratio.parse("1.5%"), "costs": costs, "tail": Tail(TailKind.FILTERED_HISTORICAL)}
    t_options = best_of(lambda: recommend_hedge(closes, vault=VAULT, **kw), 1)
    t_perp = best_of(lambda: recommend_hedge(closes, vault=PerpVault(20e6), **kw), 1)
    steps = perp_path.delta_units.size
    result = {
        "hedging_band_candidate_steps_per_s": steps * ratios.size / t_band,
        "hedging_options_vault_path_s": t_path,
        "hedging_recommend_options_3y_s": t_options,
        "hedging_recommend_perp_3y_s": t_perp,
    }
    print(f"{steps} hourly steps, {ratios.size} candidates, options vault of {len(VAULT.moneyness)} legs, best of {REPEATS}")
    print(f"hedging_band_candidate_steps_per_s  {result['hedging_band_candidate_steps_per_s']:,.0f}")
    print(f"hedging_options_vault_path_s        {t_path:.3f}  (Black-76 Greeks of {steps * len(VAULT.moneyness):,} options, twice)")
    print(f"hedging_recommend_options_3y_s      {t_options:.3f}")
    print(f"hedging_recommend_perp_3y_s         {t_perp:.3f}")
    return result


if __name__ == "__main__":
    run()
