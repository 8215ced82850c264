"""A circuit-breaker rule's threshold as an on-chain change: current → proposed, like a venue parameter.

Only rules that name ``setters:`` have one. The target is the calibrated threshold where the rule has a
``calibrate`` grid and was measured on the epoch's prices, else the policy's own ``threshold``. The
rule's ``current:`` on-chain value and ``change_limit:`` apply as for venue parameters: the proposed
value moves toward the target by at most the limit (percentage points or a relative step, never past
it), a rule whose proposed value equals its current one sends nothing, and one with no ``current:`` is
proposed at its target. Values keep their unit types (`Ratio`, `Duration`, `Usd`) up to the setter,
which turns them into integers (`governance.venues.breaker_calls`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from risk.breaker_policy import Breakers
from risk.breakers_calibrate import CalibrationReport, RuleCalibration
from risk.policy import ChangeLimit
from risk.units import Duration, Ratio, Usd

ThresholdValue = Ratio | Duration | Usd

_KIND_LABELS = {
    "staleness": "max time between updates",
    "divergence": "max gap between sources",
    "peg": "peg kill switch, max discount",
    "vol_scaling": "volatility above which margins scale",
    "oi_cap": "open-interest cap",
}


def threshold_text(value: ThresholdValue | None) -> str:
    """People's units: 6.50%, 3h, $50,000,000."""
    if value is None:
        return "unknown"
    if isinstance(value, Ratio):
        return f"{value.value * 100:.2f}%"
    return str(value)


def rule_label(rule: Any) -> str:
    """What the threshold bounds, in words: 'price band per update', 'price drop over 48h', ..."""
    if rule.kind != "price_band":
        return _KIND_LABELS[rule.kind]
    move = {"down": "price drop", "up": "price rise"}.get(rule.direction.value, "price band")
    return f"{move} " + ("per update" if rule.window is None else f"over {rule.window}")


def limit_text(limit: ChangeLimit | None) -> str:
    if limit is None:
        return "no limit in the policy"
    if limit.max_absolute is not None:
        return f"±{limit.max_absolute.value * 100:.2f} pp per update, every {limit.min_delay}"
    return f"±{limit.max_relative.value * 100:.0f}% per update, every {limit.min_delay}"  # type: ignore[union-attr]


def _toward(current: Decimal, target: Decimal, limit: ChangeLimit) -> Decimal:
    """At most the limit's step from current toward target (absolute in fractions of one, or relative)."""
    if limit.max_absolute is not None:
        step = limit.max_absolute.value
        return current + max(-step, min(step, target - current))
    rel = limit.max_relative.value  # type: ignore[union-attr]
    return max(current * (1 - rel), min(current * (1 + rel), target))


def step(current: ThresholdValue, target: ThresholdValue, limit: ChangeLimit | None) -> ThresholdValue:
    """The proposed value: the target, or as far toward it as the limit allows (durations and USD rounded toward current)."""
    if limit is None or current == target:
        return target
    if isinstance(current, Ratio) and isinstance(target, Ratio):
        return Ratio(_toward(current.value, target.value, limit))
    # the policy refuses a percentage-point limit for durations and USD (risk.breaker_setters)
    rounding = ROUND_FLOOR if target > current else ROUND_CEILING  # type: ignore[operator]
    if isinstance(current, Duration) and isinstance(target, Duration):
        return Duration(int(_toward(Decimal(current.seconds), Decimal(target.seconds), limit).to_integral_value(rounding)))
    assert isinstance(current, Usd) and isinstance(target, Usd)
    return Usd(_toward(current.value, target.value, limit).to_integral_value(rounding))


@dataclass(frozen=True, slots=True)
class BreakerChange:
    """One rule's threshold on chain: current (None when the policy does not know it) → proposed, and where the target came from."""

    rule: str
    label: str
    markets: tuple[str, ...]
    current: ThresholdValue | None
    proposed: ThresholdValue
    target: ThresholdValue
    source: str  # "calibrated" or "policy"
    limit: str
    note: str = ""

    @property
    def changed(self) -> bool:
        return self.current is None or self.proposed != self.current

    @property
    def human(self) -> str:
        """'ETH price band per update 8.00% → 6.50%' — the on-chain action's line."""
        return f"{', '.join(self.markets)} {self.label} {threshold_text(self.current)} → {threshold_text(self.proposed)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "changed": self.changed, "current": None if self.current is None else threshold_text(self.current), "label": self.label,
            "limit": self.limit, "markets": list(self.markets), "note": self.note, "proposed": threshold_text(self.proposed),
            "rule": self.rule, "source": self.source, "target": threshold_text(self.target),
        }


def _target(rule: Any, measured: RuleCalibration | None) -> tuple[ThresholdValue, str, str]:
    if measured is None:
        return rule.threshold, "policy", "not measured on these prices (see the skipped rules): the policy's threshold"
    if measured.chosen is None:
        return rule.threshold, "policy", ""
    notes = []
    if measured.calibrated is not None and not measured.calibrated.meets_false_alarm_limit:
        notes.append("no candidate meets the false-alarm limit: the one with the fewest")
    if measured.calibrated is not None and measured.calibrated.missed:  # signers should see what the threshold does not catch
        notes.append(f"misses {', '.join(measured.calibrated.missed)} at this threshold")
    return measured.chosen, "calibrated", "; ".join(notes)


def breaker_changes(breakers: Breakers, report: CalibrationReport) -> tuple[BreakerChange, ...]:
    """The threshold change of every rule with setters, in the policy's order."""
    measured: Mapping[str, RuleCalibration] = {r.rule: r for r in report.rules}
    out = []
    for rule in breakers.rules:
        if not rule.setters:
            continue
        target, source, note = _target(rule, measured.get(rule.name))
        current = rule.current
        proposed = target if current is None else step(current, target, rule.change_limit)
        if current is None:
            note = "; ".join(filter(None, [note, "no current value in the policy: proposed = target"]))
        elif proposed != target:
            note = "; ".join(filter(None, [note, f"change limit binds: target {threshold_text(target)}"]))
        markets = rule.markets or tuple(m.symbol for m in breakers.markets)
        out.append(BreakerChange(rule.name, rule_label(rule), markets, current, proposed, target, source, limit_text(rule.change_limit), note))
    return tuple(out)
