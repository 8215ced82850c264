"""What the risk core recommends for a derivative venue: per market, each parameter's current → proposed
value, the backtests behind it, and the figures it came from.

Values are unit types: `Bps` for ratios (margins, fees, scan ranges, vol shocks, hedge ratio and band),
`Usd` for open-interest caps. Figures are plain floats with their unit in the name (fractions of
notional unless named ``_usd``). `DerivativeRecommendation.to_json` is the single source of
`recommendation.json`, from which the report and the calls are both derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from risk.backtest import MarginBacktest
from risk.hedging_backtest import HedgeResult
from risk.policy_derivatives import DerivativeParameter
from risk.units import Bps, Usd

ParameterValue = Bps | Usd

LABELS = {
    DerivativeParameter.MMF: "Maintenance margin (MMF)",
    DerivativeParameter.IMF: "Initial margin (IMF)",
    DerivativeParameter.LIQUIDATION_FEE: "Liquidation fee",
    DerivativeParameter.OI_CAP_LOWER: "OI cap, lower (IMF starts rising)",
    DerivativeParameter.OI_CAP_UPPER: "OI cap, upper (IMF reaches 100%)",
    DerivativeParameter.SCAN_RANGE: "Scan range (price move)",
    DerivativeParameter.VOL_SHOCK_UP: "Vol shock up",
    DerivativeParameter.VOL_SHOCK_DOWN: "Vol shock down",
    DerivativeParameter.HEDGE_RATIO: "Hedge ratio",
    DerivativeParameter.REBALANCE_BAND: "Rebalance band",
}


def value_json(value: ParameterValue) -> dict[str, Any]:
    if isinstance(value, Bps):
        return {"bps": value.value, "percent": f"{value.value / 100:.2f}%"}
    return {"usd": f"{value.value:f}"}


def value_text(value: ParameterValue | None) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, Bps):
        return f"{value.value / 100:.2f}%"
    return str(value)


@dataclass(frozen=True, slots=True, eq=False)
class BacktestSeries:
    """A backtest's periods, for the report's charts (recommendation.json keeps the figures only).

    ``start`` indexes the market's closes: the close at which each period's value was set, from data
    known then; the period runs ``horizon_steps`` closes on. ``losses`` (positive = loss: for one side's
    margin, that side's adverse move) and ``margins`` are in ``unit``: "fraction" of notional or "USD".
    """

    unit: str
    horizon_steps: int
    start: np.ndarray
    losses: np.ndarray
    margins: np.ndarray

    @property
    def hits(self) -> np.ndarray:
        """Periods whose loss exceeded the margin set before it (as `risk.backtest.backtest_losses` counts them)."""
        return self.losses > self.margins


@dataclass(frozen=True, slots=True)
class BacktestFigures:
    """One coverage backtest as voters read it: exceedances, Kupiec and Christoffersen p-values, zone."""

    what: str
    coverage: float
    periods: int
    exceedances: int
    kupiec_p: float
    christoffersen_p: float
    zone: str
    series: BacktestSeries | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, what: str, bt: MarginBacktest, series: BacktestSeries | None = None) -> BacktestFigures:
        return cls(what, bt.coverage, bt.n, bt.exceedances, bt.kupiec.test.p_value, bt.independence.p_value, bt.traffic_light.zone.value, series)

    @property
    def accepted(self) -> bool:
        """Kupiec and Christoffersen both accept at 95% (as `risk.backtest.MarginBacktest.accept`)."""
        return self.kupiec_p > 0.05 and self.christoffersen_p > 0.05

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted, "christoffersen_p": self.christoffersen_p, "coverage": self.coverage,
            "exceedances": self.exceedances, "kupiec_p": self.kupiec_p, "periods": self.periods, "what": self.what, "zone": self.zone,
        }


@dataclass(frozen=True, slots=True)
class DerivativeChange:
    """One parameter of one market: current (None when the policy does not know it) → proposed, and why.

    ``target`` is the rule's value with no per-update limit; ``proposed`` is this update's value.
    """

    market: str
    parameter: DerivativeParameter
    current: ParameterValue | None
    proposed: ParameterValue
    target: ParameterValue
    limit_text: str
    binding: tuple[str, ...]
    updates_to_target: int
    backtests: tuple[BacktestFigures, ...]
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.current is None or self.proposed != self.current

    @property
    def label(self) -> str:
        return LABELS[self.parameter]

    def to_json(self) -> dict[str, Any]:
        return {
            "backtests": [b.to_json() for b in self.backtests],
            "binding": list(self.binding),
            "current": None if self.current is None else value_json(self.current),
            "limit": self.limit_text,
            "note": self.note,
            "parameter": self.parameter.value,
            "proposed": value_json(self.proposed),
            "target": value_json(self.target),
            "updates_to_target": self.updates_to_target,
        }


def hedge_json(result: HedgeResult) -> dict[str, Any]:
    """The hedge's figures: the model's choice now, and every candidate's backtest on the history."""
    c, bt = result.choice, result.backtest
    model = {(x.hedge_ratio, x.band): x for x in c.candidates}
    return {
        "backtest": {
            "chosen_cost_per_year": bt.chosen.cost_per_year,
            "chosen_loss_at_coverage": bt.chosen.loss_at_coverage,
            "chosen_rebalances_per_year": bt.chosen.rebalances_per_year,
            "chosen_worst_loss": bt.chosen.worst_loss,
            "horizon_steps": bt.horizon_steps,
            "loss_avoided_at_coverage": bt.loss_avoided,
            "unhedged_loss_at_coverage": bt.unhedged_loss_at_coverage,
            "unhedged_worst_loss": bt.unhedged_worst_loss,
            "windows": bt.windows,
            "years": bt.years,
        },
        "candidates": [
            {
                "band": x.band, "hedge_ratio": x.hedge_ratio, "measured_cost_per_year": x.cost_per_year,
                "measured_exceedances": x.exceedances, "measured_kupiec_p": x.kupiec_p, "measured_loss_at_coverage": x.loss_at_coverage,
                "measured_rebalances_per_year": x.rebalances_per_year, "measured_worst_loss": x.worst_loss,
                "model_cost_per_year": model[(x.hedge_ratio, x.band)].cost_per_year, "model_loss": model[(x.hedge_ratio, x.band)].loss,
                "within_budget": model[(x.hedge_ratio, x.band)].within_budget, "meets_loss_target": model[(x.hedge_ratio, x.band)].meets_loss_target,
            }
            for x in bt.candidates
        ],
        "cost_budget_per_year": c.cost_budget,
        "delta_usd": result.delta_usd,
        "max_loss": c.max_loss,
        "meets_loss_target": c.meets_loss_target,
        "model_cost_per_year": c.cost_per_year,
        "model_loss": c.loss,
        "model_unhedged_loss": c.unhedged_loss,
        "notional_usd": result.notional_usd,
        "reason": c.reason,
        "sigma_per_step": result.sigma_per_step,
        "tail": result.tail,
        "volatility_source": result.volatility_source,
        "within_budget": c.within_budget,
    }


@dataclass(frozen=True, slots=True)
class PerpFigures:
    """What a perp market's margins came from; fractions of notional unless the name says otherwise."""

    price_usd: float
    step_seconds: int
    horizon_steps: int
    sigma_per_step: float
    sigma_annualised: float
    volatility_model: str
    tail: str
    move_long: float
    move_short: float
    funding_long: float
    funding_short: float
    slippage: float | None
    mmf: float
    imf: float
    liquidation_fee: float
    oi_cap_lower_usd: float | None
    oi_cap_upper_usd: float | None

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class OptionFigures:
    """What an option market's scenario parameters came from (fractions, USD where named)."""

    price_usd: float
    step_seconds: int
    horizon_steps: int
    sigma_per_step: float
    sigma_annualised: float
    volatility_model: str
    implied_vol_source: str
    tail: str
    grid: str
    scan_up: float
    scan_down: float
    vol_shock_up: float
    vol_shock_down: float
    reference_book: str
    reference_margin_usd: float
    reference_margin_over_notional: float
    backtest_mean_scan_range: float
    backtest_mean_vol_shock_up: float
    backtest_mean_margin_over_notional: float

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class DerivativeMarketRecommendation:
    """One market: its kind ("perp" or "option"), the figures its values came from, its changes."""

    symbol: str
    kind: str
    figures: PerpFigures | OptionFigures
    changes: tuple[DerivativeChange, ...]
    hedge: HedgeResult | None = None
    notes: tuple[str, ...] = ()

    def change(self, parameter: DerivativeParameter) -> DerivativeChange:
        for c in self.changes:
            if c.parameter is parameter:
                return c
        raise KeyError(parameter)

    def has(self, parameter: DerivativeParameter) -> bool:
        return any(c.parameter is parameter for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "figures": self.figures.to_json(),
            "hedging": None if self.hedge is None else hedge_json(self.hedge),
            "kind": self.kind,
            "notes": list(self.notes),
            "parameters": {c.parameter.value: c.to_json() for c in self.changes},
        }


@dataclass(frozen=True, slots=True)
class DerivativeRecommendation:
    venue: str
    protocol: str
    chain_id: int
    kind: str
    epoch: str
    as_of: str
    method: tuple[str, ...]
    notes: tuple[str, ...]
    markets: tuple[DerivativeMarketRecommendation, ...]

    @property
    def changes(self) -> tuple[DerivativeChange, ...]:
        return tuple(c for m in self.markets for c in m.changes if c.changed)

    def market(self, symbol: str) -> DerivativeMarketRecommendation:
        for m in self.markets:
            if m.symbol == symbol:
                return m
        raise KeyError(symbol)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "chain_id": self.chain_id,
            "epoch": self.epoch,
            "kind": self.kind,
            "markets": {m.symbol: m.to_json() for m in self.markets},
            "method": list(self.method),
            "notes": list(self.notes),
            "protocol": self.protocol,
            "venue": self.venue,
        }
