"""A circuit-breaker policy: which markets to watch, which rules trip, and what calibration must achieve.

A separate kind of policy file (``version: 1`` and a ``breakers:`` mapping), with the conventions of
`risk.policy`: strict models (no coercion), unknown keys refused, frozen, units written out (``"5%"``,
``"2h"``, ``"$50M"``). Every rule compares one value with its ``threshold`` in the rule's unit:

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

A rule may name ``setters:`` that write its threshold on chain (`BreakerSetter`: the venue setters' shape,
`risk.policy_derivatives.Setter`), its ``current:`` on-chain threshold and a ``change_limit:`` per
update; `risk.breaker_changes` turns the calibrated threshold into the change those setters carry.

YAML loading reuses `risk.policy_load`'s helpers (positions, field paths, YAML oddities), so problems
are reported as ``file:line:column: field: message`` exactly like venue policies.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from risk.errors import PolicyError
from risk.fields import (
    DurationField,
    RatioField,
    TimestampField,
    UsdField,
    ratio_in,
    usd_in,
)
from risk.policy import (
    SYMBOL_PATTERN,
    ChangeLimit,
    CrashWindow,
    DataPolicy,
    Model,
    PositiveDuration,
    PositiveRatio,
)
from risk.policy_derivatives import OnChainUnit, Setter, SetterArg
from risk.policy_load import Problem, _message, check_model_text
from risk.units import Duration, Ratio, Usd
from risk.watch_policy import WatchPolicy

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
MAX_CANDIDATES = 5_000  # a sweep is vectorised over candidates × updates; more is a typo in `step`


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


class BreakerSource(Model):
    """One feed of the market's price: a file under the data directory (wide, OHLCV or long)."""

    name: str = Field(pattern=NAME_PATTERN, description="How rules and `--prices NAME=CSV` refer to this source.")
    file: str = Field(min_length=1, description="Path relative to --data (default ../shared/data).")
    symbol: str | None = Field(default=None, description="Rows to take from a long file.")
    column: str = Field(default="close", description="Price column of a wide or OHLCV file.")
    time_offset: DurationField = Field(
        default=Duration(0), description="Added to the file's times: bars stamped at their open are known at their close (1h for hourly bars)."
    )


class OpenInterestSource(Model):
    """Open interest in USD, for the OI-cap rule."""

    file: str = Field(min_length=1)
    column: str = "open_interest_usd"
    symbol: str | None = None


class BreakerMarket(Model):
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    sources: tuple[BreakerSource, ...] = Field(min_length=1)
    open_interest: OpenInterestSource | None = None
    fresh_within: PositiveDuration = Field(default=Duration.parse("2h"), description="A source older than this leaves the median.")
    start: TimestampField | None = Field(default=None, description="First update used (default: the data's first).")
    end: TimestampField | None = Field(default=None, description="Last update used (default: the data's last).")

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, sources: tuple[BreakerSource, ...]) -> tuple[BreakerSource, ...]:
        names = [s.name for s in sources]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"source name(s) {', '.join(repeated)} appear more than once")
        return sources

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: Any, info: ValidationInfo) -> Any:
        start = info.data.get("start")
        if end is not None and start is not None and start >= end:
            raise ValueError(f"end {end:%Y-%m-%dT%H:%M:%SZ} is not after start {start:%Y-%m-%dT%H:%M:%SZ}")
        return end


class _Grid(Model):
    """Candidate thresholds min, min + step, ... up to max (inclusive), swept by calibration."""

    def _check(self, lo: Any, hi: Any, step: Any, count: int) -> None:
        if lo > hi:
            raise ValueError(f"min {lo} is above max {hi}")
        if count > MAX_CANDIDATES:
            raise ValueError(f"{count} candidates from {lo} to {hi} by {step}; at most {MAX_CANDIDATES}")


class RatioGrid(_Grid):
    min: PositiveRatio
    max: PositiveRatio
    step: PositiveRatio

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check(self.min, self.max, self.step, int((self.max.value - self.min.value) / self.step.value) + 1)
        return self

    def candidates(self) -> tuple[Ratio, ...]:
        n = int((self.max.value - self.min.value) / self.step.value) + 1
        return tuple(Ratio(self.min.value + k * self.step.value) for k in range(n))


class DurationGrid(_Grid):
    min: PositiveDuration
    max: PositiveDuration
    step: PositiveDuration

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check(self.min, self.max, self.step, (self.max.seconds - self.min.seconds) // self.step.seconds + 1)
        return self

    def candidates(self) -> tuple[Duration, ...]:
        return tuple(Duration(s) for s in range(self.min.seconds, self.max.seconds + 1, self.step.seconds))


PositiveUsd = Annotated[UsdField, usd_in("$0", lo_open=True)]


class UsdGrid(_Grid):
    min: PositiveUsd
    max: PositiveUsd
    step: PositiveUsd

    @model_validator(mode="after")
    def _valid(self) -> Self:
        self._check(self.min, self.max, self.step, int((self.max.value - self.min.value) / self.step.value) + 1)
        return self

    def candidates(self) -> tuple[Usd, ...]:
        n = int((self.max.value - self.min.value) / self.step.value) + 1
        return tuple(Usd(self.min.value + k * self.step.value) for k in range(n))


class BreakerValue(StrEnum):
    """What a breaker setter argument may carry: the rule's threshold (calibrated), or one of its fixed settings."""

    THRESHOLD = "threshold"
    WINDOW = "window"
    COOLDOWN = "cooldown"
    HALF_LIFE = "half_life"
    MAX_SCALE = "max_scale"


# On-chain units per kind of value: a ratio in bps/wad/ray/e6/raw, a duration in seconds, USD like a cap.
UNITS_FOR = {
    "ratio": (OnChainUnit.BPS, OnChainUnit.WAD, OnChainUnit.RAY, OnChainUnit.E6, OnChainUnit.RAW),
    "duration": (OnChainUnit.SECONDS,),
    "usd": (OnChainUnit.WAD, OnChainUnit.RAY, OnChainUnit.E6, OnChainUnit.WHOLE_TOKEN, OnChainUnit.RAW),
}


class BreakerSetterArg(SetterArg):
    """A setter argument carrying one of the rule's values (``parameter: threshold``), a constant or a bytes32 text."""

    parameter: BreakerValue | None = Field(default=None, description="The rule's value this argument carries: threshold, window, cooldown, half_life or max_scale.")  # type: ignore[assignment]

    def _check_unit_fits_parameter(self) -> None:
        """Checked by the rule, which knows whether its threshold is a ratio, a duration or USD."""


class BreakerSetter(Setter):
    """A function writing a rule's threshold on chain; contract addresses are the policy's."""

    args: tuple[BreakerSetterArg, ...] = Field(description="One per argument of the function, in order.")  # type: ignore[assignment]


_CURRENT = "The threshold on chain now, in the threshold's unit; none: unknown (the setter sends the proposed one)."


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
        for i, setter in enumerate(setters):
            if BreakerValue.THRESHOLD not in setter.parameters:
                raise ValueError(f"setters[{i}] {setter.function} carries no threshold (parameter: threshold): it would never know when to be sent")
            for arg in setter.args:
                if arg.parameter is None:
                    continue
                what = cls.VALUES.get(arg.parameter)
                if what is None:
                    raise ValueError(f"setters[{i}] argument {arg.name!r}: a {kind} rule has no {arg.parameter}; it has {', '.join(cls.VALUES)}")
                if arg.unit not in UNITS_FOR[what]:
                    units = ", ".join(UNITS_FOR[what])
                    raise ValueError(f"setters[{i}] argument {arg.name!r}: the {arg.parameter} of a {kind} rule is a {what}; write it in {units}, not {arg.unit}")
        return setters

    @field_validator("change_limit")
    @classmethod
    def _limit_suits_the_threshold(cls, limit: ChangeLimit | None) -> ChangeLimit | None:
        what = cls.VALUES[BreakerValue.THRESHOLD]
        if limit is not None and limit.max_relative is None and what != "ratio":
            raise ValueError(f"the threshold is a {what}: limit it relatively (max_relative: '50%'), not in percentage points")
        return limit

    @model_validator(mode="after")
    def _setters_values_are_set(self) -> Self:
        for i, setter in enumerate(self.setters):
            for p in setter.parameters:
                if getattr(self, p.value) is None:
                    raise ValueError(f"setters[{i}] {setter.function} carries the rule's {p}, which the rule does not set")
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
    current: PositiveRatio | None = Field(default=None, description=_CURRENT)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", BreakerValue.WINDOW: "duration", **_Rule.VALUES}


class StalenessRule(_Rule):
    kind: Literal["staleness"]
    threshold: PositiveDuration = Field(description="Longest time between two updates.")
    source: str | None = None
    calibrate: DurationGrid | None = None
    current: PositiveDuration | None = Field(default=None, description=_CURRENT)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "duration", **_Rule.VALUES}


class DivergenceRule(_Rule):
    kind: Literal["divergence"]
    threshold: PositiveRatio = Field(description="Largest gap between a fresh source and the fresh sources' median.")
    calibrate: RatioGrid | None = None
    current: PositiveRatio | None = Field(default=None, description=_CURRENT)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", **_Rule.VALUES}


PegDiscount = Annotated[RatioField, ratio_in("0%", "100%", lo_open=True, hi_open=True)]


class PegRule(_Rule):
    kind: Literal["peg"]
    threshold: PegDiscount = Field(description="Largest discount to the peg, e.g. '5%' (SparkLend: 0.95 of peg).")
    peg: float = Field(default=1.0, gt=0, allow_inf_nan=False, description="The peg, in the source's quote unit.")
    source: str | None = None
    calibrate: RatioGrid | None = None
    current: PegDiscount | None = Field(default=None, description=_CURRENT)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", **_Rule.VALUES}


class VolScalingRule(_Rule):
    kind: Literal["vol_scaling"]
    threshold: PositiveRatio = Field(description="Annualised volatility above which margins scale up by volatility / threshold.")
    half_life: PositiveDuration = Duration.parse("24h")
    warmup: int = Field(default=24, ge=1, le=100_000, description="Returns seen before the rule gives a value.")
    max_scale: Annotated[RatioField, ratio_in("100%", None)] = Field(default=Ratio.parse("300%"), description="Cap on the margin multiplier.")
    source: str | None = None
    calibrate: RatioGrid | None = None
    current: PositiveRatio | None = Field(default=None, description=_CURRENT)

    VALUES: ClassVar[dict[BreakerValue, str]] = {BreakerValue.THRESHOLD: "ratio", BreakerValue.HALF_LIFE: "duration", BreakerValue.MAX_SCALE: "ratio", **_Rule.VALUES}


class OiCapRule(_Rule):
    kind: Literal["oi_cap"]
    threshold: PositiveUsd = Field(description="Open-interest cap.")
    calibrate: UsdGrid | None = None
    current: PositiveUsd | None = Field(default=None, description=_CURRENT)

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


class BreakerCrashWindow(CrashWindow):
    markets: tuple[str, ...] | None = Field(default=None, description="Markets this is a labelled crash of; default every market the rule watches.")


class CalmPeriod(Model):
    start: TimestampField
    end: TimestampField

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: Any, info: ValidationInfo) -> Any:
        start = info.data.get("start")
        if start is not None and start >= end:
            raise ValueError("a calm period must end after it starts")
        return end


class Calibration(Model):
    max_false_alarms_per_month: float = Field(ge=0, allow_inf_nan=False, description="Alerts in calm time per 30.44 days.")
    max_detection_delay: PositiveDuration = Field(description="Longest time from a crash window's start to the rule's first alert.")
    calm_margin: DurationField = Field(default=Duration.parse("7d"), description="Time around each crash window that is neither crash nor calm.")
    calm_periods: tuple[CalmPeriod, ...] = Field(default=(), description="Explicit calm time; default all data outside the crash windows ± margin.")
    crash_windows: tuple[BreakerCrashWindow, ...] = ()


class Breakers(Model):
    name: str = Field(pattern=NAME_PATTERN)
    markets: tuple[BreakerMarket, ...] = Field(min_length=1)
    rules: tuple[Rule, ...] = Field(min_length=1)
    calibration: Calibration | None = None
    data: DataPolicy = DataPolicy()
    watch: WatchPolicy = Field(default=WatchPolicy(), description="The real-time monitor's settings (`steward watch`).")

    @field_validator("markets")
    @classmethod
    def _unique_markets(cls, markets: tuple[BreakerMarket, ...]) -> tuple[BreakerMarket, ...]:
        symbols = [m.symbol for m in markets]
        repeated = sorted({s for s in symbols if symbols.count(s) > 1})
        if repeated:
            raise ValueError(f"market(s) {', '.join(repeated)} appear more than once")
        return markets

    @field_validator("rules")
    @classmethod
    def _rules_refer_to_what_exists(cls, rules: tuple[Any, ...], info: ValidationInfo) -> tuple[Any, ...]:
        markets = {m.symbol: m for m in info.data.get("markets", ())}
        names = [r.name for r in rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule name(s) {', '.join(repeated)} appear more than once")
        if not markets:
            return rules  # the markets themselves were refused; that is the problem to report
        for i, rule in enumerate(rules):
            where = f"rules[{i}] ({rule.name})"
            unknown = [m for m in rule.markets or () if m not in markets]
            if unknown:
                raise ValueError(f"{where}: unknown market(s) {', '.join(unknown)}; markets are {', '.join(markets)}")
            for symbol in rule.markets or tuple(markets):
                market = markets[symbol]
                sources = [s.name for s in market.sources]
                if rule.watches is not None and rule.watches not in sources:
                    raise ValueError(f"{where}: market {symbol} has no source {rule.watches!r}; its sources are {', '.join(sources)}")
                if rule.kind == "divergence" and len(sources) < 2:
                    raise ValueError(f"{where}: divergence needs at least 2 sources; market {symbol} has {len(sources)}")
                if rule.kind == "oi_cap" and market.open_interest is None:
                    raise ValueError(f"{where}: market {symbol} has no open_interest source for the OI cap")
        return rules

    @field_validator("calibration")
    @classmethod
    def _windows_name_markets(cls, calibration: Calibration | None, info: ValidationInfo) -> Calibration | None:
        markets = {m.symbol for m in info.data.get("markets", ())}
        if calibration is None or not markets:
            return calibration
        names = [w.name for w in calibration.crash_windows]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"crash window name(s) {', '.join(repeated)} appear more than once")
        for w in calibration.crash_windows:
            unknown = [m for m in w.markets or () if m not in markets]
            if unknown:
                raise ValueError(f"crash window {w.name!r}: unknown market(s) {', '.join(unknown)}")
        return calibration

    def market(self, symbol: str) -> BreakerMarket:
        for m in self.markets:
            if m.symbol == symbol:
                return m
        raise PolicyError(f"breakers {self.name}: no market {symbol!r}", f"markets are {', '.join(m.symbol for m in self.markets)}")

    def rules_for(self, symbol: str) -> tuple[Any, ...]:
        return tuple(r for r in self.rules if r.markets is None or symbol in r.markets)


class BreakerPolicy(Model):
    """A circuit-breaker policy file."""

    version: Literal[1] = Field(description="Format version; only 1 exists.")
    breakers: Breakers

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_the_integer_one(cls, raw: Any) -> Any:
        if type(raw) is not int:
            raise ValueError(f"version must be the integer 1, got {type(raw).__name__} {raw!r}")
        return raw


# -------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True)
class LoadedBreakerPolicy:
    policy: BreakerPolicy
    path: Path
    text: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text).hexdigest()


def _field_names() -> tuple[str, ...]:
    models = [m for m in globals().values() if isinstance(m, type) and issubclass(m, BaseModel)]
    return tuple(sorted({name for m in models for name in m.model_fields}))


def _breaker_message(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":  # suggest this file's fields, not a venue policy's
        key = str(err["loc"][-1]) if err["loc"] else ""
        close = difflib.get_close_matches(key, _field_names(), n=1, cutoff=0.8)
        return f"unknown field; did you mean {close[0]!r}?" if close else "unknown field (typo?); remove it or check the spelling"
    return _message(err)


def check_breaker_policy_text(text: bytes, name: str) -> tuple[BreakerPolicy | None, list[Problem]]:
    """Parse and validate a breaker policy; returns it or every problem found (never raises for bad input)."""
    return check_model_text(
        text, name, BreakerPolicy, what="a breaker policy is a YAML mapping (version:, breakers:)", message=_breaker_message
    )


def load_breaker_policy(path: Path, display_name: str | None = None) -> LoadedBreakerPolicy:
    """Load a breaker policy or raise PolicyError listing every problem with its line."""
    name = display_name or str(path)
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        raise PolicyError(f"breaker policy {name} not found", "check the path (examples live in policies/)") from None
    except IsADirectoryError:
        raise PolicyError(f"{name} is a directory, not a breaker policy", "name a .yaml file") from None
    except OSError as exc:
        raise PolicyError(f"breaker policy {name} cannot be read ({exc.strerror or exc})", "check the file's permissions") from None
    policy, problems = check_breaker_policy_text(text, name)
    if policy is None:
        raise PolicyError(f"{name}: {len(problems)} problem(s) in the breaker policy", "fix each line listed", tuple(str(p) for p in problems))
    return LoadedBreakerPolicy(policy=policy, path=Path(path), text=text)


def threshold_float(value: Ratio | Duration | Any) -> float:
    """A threshold in the float unit rules compute in: a fraction of one, seconds, or USD."""
    if isinstance(value, Duration):
        return float(value.seconds)
    return float(value.value)


def threshold_unit(kind: str) -> str:
    return {"staleness": "seconds", "oi_cap": "usd"}.get(kind, "ratio")
