"""The rules of a breaker policy: what each kind compares with its ``threshold``, and in which unit.

=============  =============================================================  ===================
kind           value at each update                                           threshold unit
=============  =============================================================  ===================
price_band     price move since the previous update, or over ``window``        ratio ("6%")
staleness      time since the previous update                                 duration ("3h")
divergence     largest gap between a fresh source and the sources' median      ratio ("2%")
peg            discount to the peg, ``1 - price / peg`` (SparkLend kill switch) ratio ("5%")
vol_scaling    annualised EWMA volatility of log returns                      ratio ("150%")
oi_cap         open interest                                                  USD ("$50M")
=============  =============================================================  ===================

Each rule may also carry its threshold on chain (``setters:``, ``current:``, ``change_limit:``;
`risk.breaker_setters`) and a ``calibrate:`` grid (`risk.breaker_calibration`). Part of the breaker
policy (`risk.breaker_policy`), which checks that rules name markets and sources that exist.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from risk.breaker_calibration import DurationGrid, PositiveUsd, RatioGrid, UsdGrid
from risk.breaker_markets import NAME_PATTERN
from risk.breaker_setters import (
    CURRENT_DESCRIPTION,
    BreakerSetter,
    BreakerValue,
    check_change_limit,
    check_setters_carry,
    check_setters_values_set,
)
from risk.fields import RatioField, ratio_in
from risk.policy import ChangeLimit, Model, PositiveDuration, PositiveRatio
from risk.units import Duration, Ratio


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Action(StrEnum):
    """What a monitor does when the rule trips (the replay only reports)."""

    FREEZE = "freeze"
    CUT_LTV = "cut_ltv"
    PAUSE = "pause"
    SCALE_MARGIN = "scale_margin"


class Direction(StrEnum):
    DOWN = "down"
    UP = "up"
    BOTH = "both"


class _Rule(Model):
    name: str = Field(pattern=NAME_PATTERN)
    markets: tuple[str, ...] | None = Field(default=None, description="Markets the rule watches; default all.")
    severity: Severity = Severity.WARNING
    action: Action | None = None
    cooldown: PositiveDuration = Field(default=Duration.parse("24h"), description="After an alert the rule stays silent this long (then reminds if still tripped).")
    detects: bool = Field(default=True, description="Counts toward catching the labelled crash windows (false for data-quality rules: staleness, divergence).")
    max_false_alarms_per_month: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="This rule's false-alarm budget; default calibration.max_false_alarms_per_month."
    )
    setters: tuple[BreakerSetter, ...] = Field(default=(), description="Functions writing the threshold on chain; each carries the threshold.")
    change_limit: ChangeLimit | None = Field(default=None, description="How far one update may move the threshold on chain; none: no limit.")

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.COOLDOWN: "duration"}  # what setters may carry, and what kind it is

    @field_validator("setters")
    @classmethod
    def _setters_carry_what_the_rule_has(cls, setters: tuple[BreakerSetter, ...]) -> tuple[BreakerSetter, ...]:
        kind = cls.model_fields["kind"].annotation.__args__[0]  # type: ignore[attr-defined, union-attr]
        check_setters_carry(setters, kind, cls.VALUES)
        return setters

    @field_validator("change_limit")
    @classmethod
    def _limit_suits_the_threshold(cls, limit: ChangeLimit | None) -> ChangeLimit | None:
        check_change_limit(limit, cls.VALUES[BreakerValue.THRESHOLD])
        return limit

    @model_validator(mode="after")
    def _setters_values_are_set(self) -> Self:
        check_setters_values_set(self)
        return self

    @property
    def watches(self) -> str | None:
        """The source the rule watches, None for the market's composite (median) price."""
        return getattr(self, "source", None)


class PriceBandRule(_Rule):
    kind: Literal["price_band"]
    threshold: PositiveRatio = Field(description="Largest move allowed, relative to the reference price.")
    window: PositiveDuration | None = Field(default=None, description="Move over this time (vs the last price at or before t - window); default since the previous update.")
    direction: Direction = Direction.BOTH
    source: str | None = None
    calibrate: RatioGrid | None = None
    current: PositiveRatio | None = Field(default=None, description=CURRENT_DESCRIPTION)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", BreakerValue.WINDOW: "duration", **_Rule.VALUES}


class StalenessRule(_Rule):
    kind: Literal["staleness"]
    threshold: PositiveDuration = Field(description="Longest time between two updates.")
    source: str | None = None
    calibrate: DurationGrid | None = None
    current: PositiveDuration | None = Field(default=None, description=CURRENT_DESCRIPTION)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "duration", **_Rule.VALUES}


class DivergenceRule(_Rule):
    kind: Literal["divergence"]
    threshold: PositiveRatio = Field(description="Largest gap between a fresh source and the fresh sources' median.")
    calibrate: RatioGrid | None = None
    current: PositiveRatio | None = Field(default=None, description=CURRENT_DESCRIPTION)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", **_Rule.VALUES}


PegDiscount = Annotated[RatioField, ratio_in("0%", "100%", lo_open=True, hi_open=True)]


class PegRule(_Rule):
    kind: Literal["peg"]
    threshold: PegDiscount = Field(description="Largest discount to the peg, e.g. '5%' (SparkLend: 0.95 of peg).")
    peg: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="The peg, in the source's quote unit.")
    source: str | None = None
    calibrate: RatioGrid | None = None
    current: PegDiscount | None = Field(default=None, description=CURRENT_DESCRIPTION)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", **_Rule.VALUES}


class VolScalingRule(_Rule):
    kind: Literal["vol_scaling"]
    threshold: PositiveRatio = Field(description="Annualised volatility above which margins scale up by volatility / threshold.")
    half_life: PositiveDuration = Duration.parse("24h")
    warmup: int = Field(default=24, ge=1, le=100_000, description="Returns seen before the rule gives a value.")
    max_scale: Annotated[RatioField, ratio_in("100%", None)] = Field(default=Ratio.parse("300%"), description="Cap on the margin multiplier.")
    source: str | None = None
    calibrate: RatioGrid | None = None
    current: PositiveRatio | None = Field(default=None, description=CURRENT_DESCRIPTION)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", BreakerValue.HALF_LIFE: "duration", BreakerValue.MAX_SCALE: "ratio", **_Rule.VALUES}


class OiCapRule(_Rule):
    kind: Literal["oi_cap"]
    threshold: PositiveUsd = Field(description="Open-interest cap.")
    calibrate: UsdGrid | None = None
    current: PositiveUsd | None = Field(default=None, description=CURRENT_DESCRIPTION)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "usd", **_Rule.VALUES}


RULE_KINDS = ("price_band", "staleness", "divergence", "peg", "vol_scaling", "oi_cap")


def _rule_kind(raw: Any) -> str | None:
    # Chosen by `kind`, so an error names the fields of that kind only; tags are bracketed so error
    # paths read `rules[0].threshold` (risk.policy_load skips bracketed labels).
    kind = raw.get("kind") if isinstance(raw, dict) else getattr(raw, "kind", None)
    return f"[{kind}]" if kind in RULE_KINDS else None


Rule = Annotated[
    Annotated[PriceBandRule, Tag("[price_band]")]
    | Annotated[StalenessRule, Tag("[staleness]")]
    | Annotated[DivergenceRule, Tag("[divergence]")]
    | Annotated[PegRule, Tag("[peg]")]
    | Annotated[VolScalingRule, Tag("[vol_scaling]")]
    | Annotated[OiCapRule, Tag("[oi_cap]")],
    Discriminator(_rule_kind, custom_error_type="rule_kind", custom_error_message=f"a rule needs kind: one of {', '.join(RULE_KINDS)}"),
]


def threshold_float(value: Ratio | Duration | Any) -> float:
    """A threshold in the float unit rules compute in: a fraction of one, seconds, or USD."""
    if isinstance(value, Duration):
        return float(value.seconds)
    return float(value.value)


def threshold_unit(kind: str) -> str:
    return {"staleness": "seconds", "oi_cap": "usd"}.get(kind, "ratio")
