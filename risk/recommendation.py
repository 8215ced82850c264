"""What the risk core recommends: per market, each parameter's current → proposed value and why.

Values are unit types (`Bps` for ratios Aave stores in basis points, `TokenAmount` for caps); the
metrics behind them are plain floats with their unit in the name. `to_json` is the single source of
`recommendation.json`, from which the report and the calls are both derived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from risk.policy import LendingParameter
from risk.units import Bps, Duration, TokenAmount

ParameterValue = Bps | TokenAmount


def value_json(value: ParameterValue) -> dict[str, Any]:
    if isinstance(value, Bps):
        return {"bps": value.value, "percent": f"{value.value / 100:.2f}%"}
    return {"symbol": value.symbol, "tokens": value.to_whole_tokens()}


def value_text(value: ParameterValue) -> str:
    if isinstance(value, Bps):
        return f"{value.value / 100:.2f}%"
    return f"{value.to_whole_tokens():,} {value.symbol}"


@dataclass(frozen=True, slots=True)
class ParameterChange:
    """One parameter of one market.

    `target` is where the rule would put it with no per-update limit; `proposed` is this update's
    value, after bounds, the change limit and the venue's own consistency rules. `binding` names every
    constraint that made `proposed` differ from the rule's raw value, in the order applied.
    """

    market: str
    asset: str
    parameter: LendingParameter
    current: ParameterValue
    proposed: ParameterValue
    target: ParameterValue
    limit_text: str
    binding: tuple[str, ...]
    updates_to_target: int
    min_delay: Duration
    needs_governance: bool

    @property
    def changed(self) -> bool:
        return self.proposed != self.current

    def to_json(self) -> dict[str, Any]:
        return {
            "binding": list(self.binding),
            "current": value_json(self.current),
            "limit": self.limit_text,
            "min_delay": str(self.min_delay),
            "needs_governance": self.needs_governance,
            "parameter": self.parameter.value,
            "proposed": value_json(self.proposed),
            "target": value_json(self.target),
            "updates_to_target": self.updates_to_target,
        }


@dataclass(frozen=True, slots=True)
class MarketMetrics:
    """Inputs and intermediate figures of the rule for one market (floats, units in the names)."""

    price_usd: float
    sigma_hourly: float
    sigma_annualised: float
    adverse_move_horizon: float
    adverse_move_ltv_buffer: float
    slippage_at_liquidation_size: float
    observations: int

    def to_json(self) -> dict[str, Any]:
        return {
            "adverse_move_horizon": self.adverse_move_horizon,
            "adverse_move_ltv_buffer": self.adverse_move_ltv_buffer,
            "observations": self.observations,
            "price_usd": self.price_usd,
            "sigma_annualised": self.sigma_annualised,
            "sigma_hourly": self.sigma_hourly,
            "slippage_at_liquidation_size": self.slippage_at_liquidation_size,
        }


@dataclass(frozen=True, slots=True)
class MarketRecommendation:
    symbol: str
    asset: str
    metrics: MarketMetrics
    changes: tuple[ParameterChange, ...]

    def change(self, parameter: LendingParameter) -> ParameterChange:
        for c in self.changes:
            if c.parameter is parameter:
                return c
        raise KeyError(parameter)

    def to_json(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "metrics": self.metrics.to_json(),
            "parameters": {c.parameter.value: c.to_json() for c in self.changes},
        }


@dataclass(frozen=True, slots=True)
class Recommendation:
    venue: str
    protocol: str
    chain_id: int
    epoch: str
    as_of: str
    method: tuple[str, ...]
    markets: tuple[MarketRecommendation, ...]

    @property
    def changes(self) -> tuple[ParameterChange, ...]:
        return tuple(c for m in self.markets for c in m.changes if c.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "chain_id": self.chain_id,
            "epoch": self.epoch,
            "markets": {m.symbol: m.to_json() for m in self.markets},
            "method": list(self.method),
            "protocol": self.protocol,
            "venue": self.venue,
        }
