"""A venue's risk-appetite policy: what risk the DAO accepts and how far parameters may move.

The models are strict (no coercion: ``"5"`` is not 5, ``0.8`` is not a ratio), forbid unknown keys
(a typo is an error, not a silently ignored setting) and are frozen. Loading YAML with line numbers
lives in `risk.policy_load`; `policies/schema.json` is generated from these models.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from risk.fields import (
    AddressField,
    DurationField,
    RatioField,
    TimestampField,
    UsdField,
    duration_in,
    ratio_in,
    usd_in,
)
from risk.policy_compound import CompoundSection
from risk.policy_governor import GovernorPolicy
from risk.policy_lending import LendingCore
from risk.policy_routing import Routing
from risk.units import Duration, Ratio

if TYPE_CHECKING:  # resolved at run time by risk.policy_derivatives (Policy.model_rebuild)
    from risk.policy_derivatives import OptionSection, PerpSection

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"

# Ranges a person can get wrong by a sign or a factor of 100; caught here, they get a line number.
Share = Annotated[RatioField, ratio_in("0%", "100%")]  # a fraction of something: LTV, a probability
NonNegativeRatio = Annotated[RatioField, ratio_in("0%", None)]
PositiveRatio = Annotated[RatioField, ratio_in("0%", None, lo_open=True)]
PositiveDuration = Annotated[DurationField, duration_in("0s", lo_open=True)]


class Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class VenueKind(StrEnum):
    LENDING = "lending"
    PERPS = "perps"
    OPTIONS = "options"


class Protocol(StrEnum):
    AAVE_V3 = "aave-v3"
    COMPOUND_V3 = "compound-v3"
    MORPHO = "morpho"
    GENERIC = "generic"


class LendingParameter(StrEnum):
    """Parameters the lending rule recommends, in the order reports list them."""

    LTV = "ltv"
    LIQUIDATION_THRESHOLD = "liquidation_threshold"
    LIQUIDATION_BONUS = "liquidation_bonus"
    SUPPLY_CAP = "supply_cap"
    BORROW_CAP = "borrow_cap"


class Addresses(Model):
    """Contracts the proposal talks to. Only those the venue's adapter needs are required by it."""

    pool_configurator: AddressField | None = None
    pool: AddressField | None = None
    data_provider: AddressField | None = None
    oracle: AddressField | None = None
    safe: AddressField | None = None
    safe_owner: AddressField | None = Field(default=None, description="Owner shown as the batch's creator in Safe{Wallet}.")


class Venue(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", description="Folder name of the venue's bundles.")
    kind: VenueKind
    protocol: Protocol
    chain_id: int = Field(gt=0)
    addresses: Addresses = Addresses()


class FilePriceSource(Model):
    """A price series in a file under the data directory (wide OHLCV or long timestamp/symbol/price)."""

    file: str = Field(min_length=1, description="Path relative to --data (default ../shared/data).")
    symbol: str | None = Field(default=None, description="Rows to take from a long file.")
    column: str = "close"


class SyntheticPriceSource(Model):
    """The embedded demo market: a seeded synthetic history (see risk/demo/synthetic.py)."""

    synthetic: Literal["demo"]


def _price_source_kind(raw: Any) -> str | None:
    # Chosen by key, so a mistake in one kind is not also reported as a mismatch with the other.
    if isinstance(raw, dict):
        return "[synthetic]" if "synthetic" in raw else "[file]"
    if isinstance(raw, SyntheticPriceSource):
        return "[synthetic]"
    if isinstance(raw, FilePriceSource):
        return "[file]"
    return None


# Tags are bracketed: error paths skip bracketed labels (see risk.policy_load), so a problem reads
# `markets[0].price_source.file`, not `...price_source.FilePriceSource.file`.
PriceSource = Annotated[
    Annotated[FilePriceSource, Tag("[file]")] | Annotated[SyntheticPriceSource, Tag("[synthetic]")],
    Discriminator(
        _price_source_kind,
        custom_error_type="price_source",
        custom_error_message="a price source is {file: ..., symbol: ...} or {synthetic: demo}",
    ),
]


class Liquidity(Model):
    """Depth of the market liquidators sell into: `depth` USD moves the price by `impact`."""

    depth: Annotated[UsdField, usd_in("$0", lo_open=True)]
    impact: Annotated[RatioField, ratio_in("0%", "100%", lo_open=True)]
    liquidation_size: Annotated[UsdField, usd_in("$0")] = Field(
        description="Collateral a liquidator must sell in one go under stress."
    )


class Bound(Model):
    min: Share
    max: Share

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class LendingBounds(Model):
    ltv: Bound = Bound(min=Ratio.parse("0%"), max=Ratio.parse("90%"))
    liquidation_threshold: Bound = Bound(min=Ratio.parse("0%"), max=Ratio.parse("93%"))
    liquidation_bonus: Bound = Bound(min=Ratio.parse("1%"), max=Ratio.parse("15%"))


class Market(Model):
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    asset: AddressField
    decimals: int = Field(ge=0, le=36)
    price_source: PriceSource
    liquidity: Liquidity | None = Field(default=None, description="Needed to recommend caps and the bonus.")
    borrow_share_of_supply: Share = Field(
        default=Ratio.parse("80%"), description="Borrow cap as a share of the supply cap (uOptimal, LlamaRisk rule)."
    )
    bounds: LendingBounds | None = Field(default=None, description="Overrides the venue-wide bounds for this market.")


class Objective(StrEnum):
    MAX_BORROWING_POWER = "max_borrowing_power"
    MAX_LEVERAGE = "max_leverage"


class RiskAppetite(Model):
    """What the DAO accepts. Limits on bad debt are shares of borrows over the scenario horizon."""

    coverage: RatioField = Field(description="Share of adverse moves the parameters must absorb, e.g. '99%'.")
    var95_max: Share = Field(description="95th percentile of bad debt, as a share of borrows.")
    evar99_max: Share = Field(description="99th percentile of bad debt, as a share of borrows.")
    insolvency_probability_max: Share
    min_incentive_over_slippage: Annotated[RatioField, ratio_in("0%", "100%", hi_open=True)] = Field(
        description="Bonus a liquidator keeps after slippage."
    )
    objective: Objective = Objective.MAX_BORROWING_POWER

    @field_validator("coverage")
    @classmethod
    def _coverage_in_range(cls, coverage: Ratio) -> Ratio:
        if not Ratio.parse("50%") <= coverage < Ratio.parse("100%"):
            raise ValueError(f"coverage {coverage} must be at least 50% and below 100%")
        return coverage


class ChangeLimit(Model):
    """How far one update may move a parameter: `max_absolute` (percentage points) or `max_relative`."""

    # 0 is allowed: it pins the parameter (the limits never move it).
    max_absolute: Share | None = None
    max_relative: NonNegativeRatio | None = None
    min_delay: DurationField = Duration.parse("3d")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.max_absolute is None) == (self.max_relative is None):
            raise ValueError("give exactly one of max_absolute or max_relative")
        return self


def _abs(text: str) -> ChangeLimit:
    return ChangeLimit(max_absolute=Ratio.parse(text))


def _rel(text: str) -> ChangeLimit:
    return ChangeLimit(max_relative=Ratio.parse(text))


class ChangeLimits(Model):
    """Defaults are Aave's manual risk stewards' limits per update (DOMAIN.md)."""

    ltv: ChangeLimit = _abs("0.5%")
    liquidation_threshold: ChangeLimit = _abs("0.5%")
    liquidation_bonus: ChangeLimit = _abs("0.5%")
    supply_cap: ChangeLimit = _rel("100%")
    borrow_cap: ChangeLimit = _rel("100%")

    def for_parameter(self, parameter: LendingParameter) -> ChangeLimit:
        return getattr(self, parameter.value)


class VolatilityModel(StrEnum):
    EWMA = "ewma"


class Volatility(Model):
    model: VolatilityModel = VolatilityModel.EWMA
    half_life: PositiveDuration = Field(default=Duration.parse("72h"), description="EWMA weight halves over this time.")


class CrashWindow(Model):
    name: str = Field(min_length=1)
    start: TimestampField
    end: TimestampField

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: dt.datetime, info: ValidationInfo) -> dt.datetime:
        # A field validator (not a model one) so the problem points at the `end:` line.
        start = info.data.get("start")
        if start is not None and start >= end:
            raise ValueError(f"window {info.data.get('name')!r} starts at or after its end")
        return end


class Scenarios(Model):
    step: PositiveDuration = Duration.parse("1h")
    lookback: DurationField = Field(default=Duration.parse("90d"), description="History used for volatility.")
    as_of: TimestampField | None = Field(default=None, description="End of the history; default the last common time.")
    horizon: DurationField = Field(default=Duration.parse("24h"), description="Time a liquidation may take under stress.")
    ltv_buffer_horizon: DurationField = Field(
        default=Duration.parse("24h"), description="Move a position at max LTV must survive before it is liquidatable."
    )
    paths: int = Field(default=10_000, gt=0, le=10_000_000)
    seed: int = Field(default=0, ge=0, lt=2**63)
    volatility: Volatility = Volatility()
    crash_windows: tuple[CrashWindow, ...] = ()

    @field_validator("lookback")
    @classmethod
    def _step_fits(cls, lookback: Duration, info: ValidationInfo) -> Duration:
        step = info.data.get("step")  # absent when the step itself was refused
        if step is not None and lookback.seconds < 10 * step.seconds:
            raise ValueError(f"lookback {lookback} is under 10 steps of {step}")
        return lookback


class RepairKind(StrEnum):
    SORT = "sort"
    DROP_DUPLICATES = "drop_duplicates"
    DROP_INVALID = "drop_invalid"
    REMOVE_SPIKES = "remove_spikes"
    FILL_GAPS = "fill_gaps"


class DataPolicy(Model):
    max_gap: PositiveDuration = Duration.parse("6h")
    spike_threshold: PositiveRatio = Field(default=Ratio.parse("25%"), description="Log move that makes a reverting bar a spike.")
    repairs: tuple[RepairKind, ...] = Field(default=(), description="Repairs allowed; each one applied is recorded in the manifest.")


class SnapshotSource(Model):
    file: str = Field(min_length=1, description="Snapshot of current parameters, relative to --data (JSON or Aave reserves CSV).")


class Policy(Model):
    """One venue's policy file."""

    version: Literal[1] = Field(description="Format version; only 1 exists.")
    venue: Venue
    markets: tuple[Market, ...] = Field(default=(), min_length=1, description="Lending markets (lending venues).")
    risk_appetite: RiskAppetite | None = Field(default=None, description="Required for lending venues.")
    bounds: LendingBounds = LendingBounds()
    change_limits: ChangeLimits = ChangeLimits()
    scenarios: Scenarios = Scenarios()
    data: DataPolicy = DataPolicy()
    snapshot: SnapshotSource | None = None
    routing: Routing | None = Field(default=None, description="Steward / Safe / governance routing (risk.routing).")
    governor: GovernorPolicy | None = Field(default=None, description="The DAO governor for `steward propose --governor`.")
    lending_core: LendingCore | None = Field(default=None, description="Lending risk core: books, scenarios, optimiser (risk.optimize); without it the foundation rule applies.")
    compound: CompoundSection | None = Field(default=None, description="Compound v3 (Comet) contracts of a compound-v3 venue (risk/policy_compound.py).")
    perps: PerpSection | None = Field(default=None, description="Perpetual markets (perps venues), see risk/policy_derivatives.py.")
    options: OptionSection | None = Field(default=None, description="Option markets (options venues), see risk/policy_derivatives.py.")

    @model_validator(mode="after")
    def _sections_for_the_venue(self) -> Self:
        kind = self.venue.kind
        needed = {VenueKind.LENDING: ("markets", "risk_appetite"), VenueKind.PERPS: ("perps",), VenueKind.OPTIONS: ("options",)}[kind]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"{'an' if kind is VenueKind.OPTIONS else 'a'} {kind} venue needs {' and '.join(missing)}")
        foreign = [name for name in ("markets", "perps", "options") if name not in needed and getattr(self, name)]
        if foreign:
            raise ValueError(f"{'an' if kind is VenueKind.OPTIONS else 'a'} {kind} venue has no {' or '.join(foreign)} section; remove it or change venue.kind")
        return self

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_the_integer_one(cls, raw: Any) -> Any:
        # Literal[1] alone accepts true and 1.0 (both == 1 in Python); a version is an integer.
        if type(raw) is not int:
            raise ValueError(f"version must be the integer 1, got {type(raw).__name__} {raw!r}")
        return raw

    @field_validator("markets")
    @classmethod
    def _unique_markets(cls, markets: tuple[Market, ...]) -> tuple[Market, ...]:
        # A field validator, so the problem is reported at `markets:` even when other sections fail.
        seen: dict[str, int] = {}
        for i, market in enumerate(markets):
            if market.symbol in seen:
                raise ValueError(f"market {market.symbol!r} appears twice (markets[{seen[market.symbol]}] and markets[{i}])")
            seen[market.symbol] = i
        return markets

    def market(self, symbol: str) -> Market:
        for market in self.markets:
            if market.symbol == symbol:
                return market
        from risk.errors import PolicyError

        raise PolicyError(
            f"unknown market {symbol!r} in venue {self.venue.name}",
            f"markets are: {', '.join(m.symbol for m in self.markets)}",
        )

    def bounds_for(self, market: Market) -> LendingBounds:
        return market.bounds or self.bounds

    @property
    def as_of(self) -> dt.datetime | None:
        return self.scenarios.as_of


import risk.policy_derivatives  # noqa: F401 - defines PerpSection and OptionSection (built on the models above) and completes Policy
