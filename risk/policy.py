"""A venue's risk-appetite policy: what risk the DAO accepts and how far parameters may move.

The models are strict (no coercion: ``"5"`` is not 5, ``0.8`` is not a ratio), forbid unknown keys
(a typo is an error, not a silently ignored setting) and are frozen. Loading YAML with line numbers
lives in `risk.policy_load`; `policies/schema.json` is generated from these models.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from risk.fields import AddressField, DurationField, RatioField, TimestampField, UsdField
from risk.units import Duration, Ratio

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"


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


class Liquidity(Model):
    """Depth of the market liquidators sell into: `depth` USD moves the price by `impact`."""

    depth: UsdField
    impact: RatioField
    liquidation_size: UsdField = Field(description="Collateral a liquidator must sell in one go under stress.")


class Bound(Model):
    min: RatioField
    max: RatioField

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
    price_source: FilePriceSource | SyntheticPriceSource
    liquidity: Liquidity | None = Field(default=None, description="Needed to recommend caps and the bonus.")
    borrow_share_of_supply: RatioField = Field(
        default=Ratio.parse("80%"), description="Borrow cap as a share of the supply cap (uOptimal, LlamaRisk rule)."
    )
    bounds: LendingBounds | None = Field(default=None, description="Overrides the venue-wide bounds for this market.")


class Objective(StrEnum):
    MAX_BORROWING_POWER = "max_borrowing_power"
    MAX_LEVERAGE = "max_leverage"


class RiskAppetite(Model):
    """What the DAO accepts. Limits on bad debt are shares of borrows over the scenario horizon."""

    coverage: RatioField = Field(description="Share of adverse moves the parameters must absorb, e.g. '99%'.")
    var95_max: RatioField = Field(description="95th percentile of bad debt, as a share of borrows.")
    evar99_max: RatioField = Field(description="99th percentile of bad debt, as a share of borrows.")
    insolvency_probability_max: RatioField
    min_incentive_over_slippage: RatioField = Field(description="Bonus a liquidator keeps after slippage.")
    objective: Objective = Objective.MAX_BORROWING_POWER

    @model_validator(mode="after")
    def _coverage_in_range(self) -> Self:
        if not Ratio.parse("50%") <= self.coverage < Ratio.parse("100%"):
            raise ValueError(f"coverage {self.coverage} must be at least 50% and below 100%")
        return self


class ChangeLimit(Model):
    """How far one update may move a parameter: `max_absolute` (percentage points) or `max_relative`."""

    max_absolute: RatioField | None = None
    max_relative: RatioField | None = None
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
    half_life: DurationField = Field(default=Duration.parse("72h"), description="EWMA weight halves over this time.")


class CrashWindow(Model):
    name: str = Field(min_length=1)
    start: TimestampField
    end: TimestampField

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.start >= self.end:
            raise ValueError(f"window {self.name!r} starts at or after its end")
        return self


class Scenarios(Model):
    step: DurationField = Duration.parse("1h")
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

    @model_validator(mode="after")
    def _step_fits(self) -> Self:
        if self.step.seconds <= 0:
            raise ValueError("step must be positive")
        if self.lookback.seconds < 10 * self.step.seconds:
            raise ValueError(f"lookback {self.lookback} is under 10 steps of {self.step}")
        return self


class RepairKind(StrEnum):
    SORT = "sort"
    DROP_DUPLICATES = "drop_duplicates"
    DROP_INVALID = "drop_invalid"
    REMOVE_SPIKES = "remove_spikes"
    FILL_GAPS = "fill_gaps"


class DataPolicy(Model):
    max_gap: DurationField = Duration.parse("6h")
    spike_threshold: RatioField = Field(default=Ratio.parse("25%"), description="Log move that makes a reverting bar a spike.")
    repairs: tuple[RepairKind, ...] = Field(default=(), description="Repairs allowed; each one applied is recorded in the manifest.")


class SnapshotSource(Model):
    file: str = Field(min_length=1, description="Snapshot of current parameters, relative to --data (JSON or Aave reserves CSV).")


class Policy(Model):
    """One venue's policy file."""

    version: Literal[1]
    venue: Venue
    markets: tuple[Market, ...] = Field(min_length=1)
    risk_appetite: RiskAppetite
    bounds: LendingBounds = LendingBounds()
    change_limits: ChangeLimits = ChangeLimits()
    scenarios: Scenarios = Scenarios()
    data: DataPolicy = DataPolicy()
    snapshot: SnapshotSource | None = None

    @model_validator(mode="after")
    def _unique_markets(self) -> Self:
        seen: set[str] = set()
        for market in self.markets:
            if market.symbol in seen:
                raise ValueError(f"market {market.symbol!r} appears twice")
            seen.add(market.symbol)
        return self

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
