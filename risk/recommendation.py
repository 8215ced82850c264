"""What the risk core recommends: per market, each parameter's current → proposed value and why.

Values are unit types (`Bps` for ratios Aave stores in basis points, `TokenAmount` for caps); the
metrics behind them are plain floats with their unit in the name. `to_json` is the single source of
`recommendation.json`, from which the report and the calls are both derived.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from risk.policy import LendingParameter
from risk.units import Bps, Duration, TokenAmount

if TYPE_CHECKING:
    from risk.lending import LossDistribution
    from risk.optimize import Incentive, Point
    from risk.peers import Gauntlet, RiskDao
    from risk.uncertainty import Interval, Sensitivity

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
    constraint that made `proposed` differ from the rule's raw value, in the order applied (with the
    lending core, the first is the constraint that set the target). `needs_governance`: this update's
    value needs a DAO vote. `target_needs_governance`: the target is reachable only by a DAO vote
    (`governance_reason` says why: a value a steward cannot set, a pinned limit, or a glide path
    longer than the policy allows).
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
    target_needs_governance: bool = False
    governance_reason: str = ""

    @property
    def changed(self) -> bool:
        return self.proposed != self.current

    def to_json(self) -> dict[str, Any]:
        return {
            "binding": list(self.binding),
            "current": value_json(self.current),
            "governance_reason": self.governance_reason,
            "limit": self.limit_text,
            "min_delay": str(self.min_delay),
            "needs_governance": self.needs_governance,
            "parameter": self.parameter.value,
            "proposed": value_json(self.proposed),
            "target": value_json(self.target),
            "target_needs_governance": self.target_needs_governance,
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
class RiskFigures:
    """One loss distribution's published figures (USD; shares are of `total_debt_usd`)."""

    total_debt_usd: float
    var95_usd: float
    evar99_usd: float
    expected_shortfall_usd: float
    insolvency_probability: float
    liquidations_at_risk_usd: float
    mean_bad_debt_usd: float

    @classmethod
    def of(cls, loss: LossDistribution) -> RiskFigures:
        return cls(loss.total_debt_usd, loss.var95, loss.evar99, loss.expected_shortfall, loss.insolvency_probability,
                   loss.liquidations_at_risk, loss.mean_bad_debt)

    @property
    def var95_share(self) -> float:
        return self.var95_usd / self.total_debt_usd

    @property
    def evar99_share(self) -> float:
        return self.evar99_usd / self.total_debt_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "evar99_share": self.evar99_share,
            "evar99_usd": self.evar99_usd,
            "expected_shortfall_usd": self.expected_shortfall_usd,
            "insolvency_probability": self.insolvency_probability,
            "liquidations_at_risk_usd": self.liquidations_at_risk_usd,
            "mean_bad_debt_usd": self.mean_bad_debt_usd,
            "total_debt_usd": self.total_debt_usd,
            "var95_share": self.var95_share,
            "var95_usd": self.var95_usd,
        }


@dataclass(frozen=True, slots=True)
class Peers:
    """Peers' methods on the same inputs (`risk.peers`): Risk DAO, Gauntlet's Morpho LLTV, Morpho's LIF."""

    riskdao: RiskDao
    gauntlet: Gauntlet
    morpho_lif_at_threshold: float  # Morpho's LIF at our recommended threshold (factor, e.g. 1.0438)

    def to_json(self) -> dict[str, Any]:
        return {
            "gauntlet_morpho_lltv": self.gauntlet.to_json(),
            "morpho_lif_at_recommended_threshold": self.morpho_lif_at_threshold,
            "riskdao": self.riskdao.to_json(),
        }


@dataclass(frozen=True, eq=False)
class LendingAnalysis:
    """What the lending risk core found for one market (`risk.optimize`, `risk.uncertainty`, `risk.peers`).

    Figures at today's parameters (`current`), this update's (`proposed`) and the optimum (`target`)
    come from the same paths and book draws. `candidates` lists every threshold simulated on the
    optimisation curve. The per-path bad debt at current and proposed parameters is kept for the
    report's chart and not written to JSON.
    """

    objective: str
    objective_value: float
    binding: str
    feasible: bool
    limits: tuple[tuple[str, float], ...]  # (figure, limit): var95_share, evar99_share, insolvency_probability
    incentive: Incentive
    absorbable_usd: float
    current: RiskFigures | None
    proposed: RiskFigures
    target: RiskFigures
    candidates: tuple[Point, ...]
    intervals: tuple[Interval, ...]
    var95_interval: tuple[float, float] | None
    agreement: float | None
    sensitivities: tuple[Sensitivity, ...]
    peers: Peers
    simulations: int
    bad_debt_current_usd: np.ndarray | None = field(default=None, repr=False)
    bad_debt_proposed_usd: np.ndarray | None = field(default=None, repr=False)

    def interval(self, parameter: str) -> Interval:
        for i in self.intervals:
            if i.parameter == parameter:
                return i
        raise KeyError(parameter)

    def to_json(self) -> dict[str, Any]:
        inc = self.incentive
        return {
            "absorbable_usd_at_bonus": self.absorbable_usd,
            "binding": self.binding,
            "candidates": [p.to_json() for p in self.candidates],
            "confidence": {i.parameter: i.to_json() for i in self.intervals},
            "feasible": self.feasible,
            "figures": {"current": None if self.current is None else self.current.to_json(),
                        "proposed": self.proposed.to_json(), "target": self.target.to_json()},
            "incentive": {"gas_share": inc.gas_share, "margin": inc.margin, "met": inc.met, "needed": inc.needed,
                          "reason": inc.reason, "slippage": inc.slippage},
            "limits": dict(self.limits),
            "objective": {"name": self.objective, "value": self.objective_value},
            "peers": self.peers.to_json(),
            "resample_agreement": self.agreement,
            "sensitivity": {s.parameter: s.to_json() for s in self.sensitivities},
            "simulations": self.simulations,
            "var95_share_interval": None if self.var95_interval is None else list(self.var95_interval),
        }


@dataclass(frozen=True, slots=True)
class MarketRecommendation:
    symbol: str
    asset: str
    metrics: MarketMetrics
    changes: tuple[ParameterChange, ...]
    analysis: LendingAnalysis | None = None

    def change(self, parameter: LendingParameter) -> ParameterChange:
        for c in self.changes:
            if c.parameter is parameter:
                return c
        raise KeyError(parameter)

    def to_json(self) -> dict[str, Any]:
        doc = {
            "asset": self.asset,
            "metrics": self.metrics.to_json(),
            "parameters": {c.parameter.value: c.to_json() for c in self.changes},
        }
        if self.analysis is not None:
            doc["risk"] = self.analysis.to_json()
        return doc


@dataclass(frozen=True, slots=True)
class ScenarioPart:
    """One component of the scenario set: its method, how many paths, and its provenance."""

    method: str
    name: str
    paths: int
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "name": self.name, "paths": self.paths, "provenance": self.provenance}


@dataclass(frozen=True, slots=True)
class Recommendation:
    venue: str
    protocol: str
    chain_id: int
    epoch: str
    as_of: str
    method: tuple[str, ...]
    markets: tuple[MarketRecommendation, ...]
    scenarios: tuple[ScenarioPart, ...] = ()
    horizon_steps: int | None = None

    @property
    def changes(self) -> tuple[ParameterChange, ...]:
        return tuple(c for m in self.markets for c in m.changes if c.changed)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "as_of": self.as_of,
            "chain_id": self.chain_id,
            "epoch": self.epoch,
            "markets": {m.symbol: m.to_json() for m in self.markets},
            "method": list(self.method),
            "protocol": self.protocol,
            "venue": self.venue,
        }
        if self.scenarios:
            doc["scenarios"] = {"horizon_steps": self.horizon_steps, "parts": [p.to_json() for p in self.scenarios],
                                "paths": sum(p.paths for p in self.scenarios)}
        return doc
