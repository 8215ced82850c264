"""Policy sections of derivative venues: perpetual markets (``perps:``) and option markets (``options:``).

Same conventions as `risk.policy` (strict, unknown keys refused, frozen, units written out). Each market
names its price source, its coverage target and tail model, the figures its parameters come from, the
current on-chain values if known (``current:``, for the per-update change limits), and the setters that
write its parameters on chain (``setters:``): contract, function signature, and which value goes in
which argument in which on-chain unit, so that any venue's setters can be packaged into a Safe batch.

A setter argument is a parameter of the recommendation (``{name: imf, parameter: imf, unit: wad}``), a
constant (``{name: market, constant: "0x..."}`` for an address, bytes or integer argument) or a short
text written as right-padded UTF-8 ``bytes32`` (``{name: marketKey, text: ETH-USD}``). On-chain units:

=============  ======================================  =====================================
unit           a ratio (MMF 3.5%)                      a USD amount (OI cap $40M)
=============  ======================================  =====================================
bps            350                                     refused
wad / ray      0.035 x 1e18 / 1e27                     40e6 x 1e18 / 1e27
e6             0.035 x 1e6                             40e6 x 1e6 (USDC units)
whole-token    refused (0 or 1)                        40000000
raw            0.035 x 10^decimals                     40e6 x 10^decimals
seconds        refused (durations only: breakers)      refused
=============  ======================================  =====================================

A conversion must be exact unless the argument names a ``rounding`` (bps, wad, ray, whole-token).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Self

from pydantic import Field, field_validator, model_validator

from risk import policy as _policy
from risk.fields import AddressField, RatioField, UsdField, ratio_in, usd_in
from risk.policy import (
    SYMBOL_PATTERN,
    ChangeLimit,
    FilePriceSource,
    Model,
    NonNegativeRatio,
    PositiveDuration,
    PositiveRatio,
    Share,
)
from risk.units import Duration, Ratio

if TYPE_CHECKING:
    from risk.backtest import Tail


class DerivativeParameter(StrEnum):
    """Parameters recommended for derivative markets, in the order reports list them."""

    MMF = "mmf"
    IMF = "imf"
    LIQUIDATION_FEE = "liquidation_fee"
    OI_CAP_LOWER = "oi_cap_lower"
    OI_CAP_UPPER = "oi_cap_upper"
    SCAN_RANGE = "scan_range"
    VOL_SHOCK_UP = "vol_shock_up"
    VOL_SHOCK_DOWN = "vol_shock_down"
    HEDGE_RATIO = "hedge_ratio"
    REBALANCE_BAND = "rebalance_band"


D = DerivativeParameter
USD_PARAMETERS = frozenset({D.OI_CAP_LOWER, D.OI_CAP_UPPER})
HEDGE_PARAMETERS = (D.HEDGE_RATIO, D.REBALANCE_BAND)
PERP_PARAMETERS = (D.MMF, D.IMF, D.LIQUIDATION_FEE, D.OI_CAP_LOWER, D.OI_CAP_UPPER, *HEDGE_PARAMETERS)
OPTION_PARAMETERS = (D.SCAN_RANGE, D.VOL_SHOCK_UP, D.VOL_SHOCK_DOWN, *HEDGE_PARAMETERS)


class OnChainUnit(StrEnum):
    BPS = "bps"
    WAD = "wad"
    RAY = "ray"
    E6 = "e6"
    WHOLE_TOKEN = "whole-token"
    RAW = "raw"
    SECONDS = "seconds"  # durations only (a circuit breaker's staleness or window); no derivative parameter is one


class Rounding(StrEnum):
    DOWN = "down"
    UP = "up"
    NEAREST = "nearest"


ROUNDABLE_UNITS = frozenset({OnChainUnit.BPS, OnChainUnit.WAD, OnChainUnit.RAY, OnChainUnit.WHOLE_TOKEN})
_SIGNATURE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\(((?:[a-z][a-z0-9]*(?:\[\d*\])*)(?:,[a-z][a-z0-9]*(?:\[\d*\])*)*)?\)$")
_UINT = re.compile(r"^uint(\d*)$")


def signature_parts(signature: str) -> tuple[str, tuple[str, ...]]:
    """``"setMargin(bytes32,uint256)"`` → ``("setMargin", ("bytes32", "uint256"))``; tuples are not supported."""
    m = _SIGNATURE.match(signature)
    if m is None:
        raise ValueError(f"{signature!r} is not a function signature like setMarginParams(bytes32,uint256,uint256) (no spaces, no tuples)")
    return m.group(1), tuple(m.group(2).split(",")) if m.group(2) else ()


class SetterArg(Model):
    """One argument of a setter: a recommended parameter in an on-chain unit, a constant, or a bytes32 text."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", description="ABI input name shown to signers.")
    parameter: DerivativeParameter | None = None
    unit: OnChainUnit | None = Field(default=None, description="On-chain unit of the parameter.")
    decimals: int | None = Field(default=None, ge=0, le=36, description="For unit raw: value x 10^decimals.")
    rounding: Rounding | None = Field(default=None, description="Allowed for bps, wad, ray, whole-token; default: exact or error.")
    constant: str | int | bool | None = Field(default=None, description="A fixed argument: quoted address or 0x bytes, an integer, a boolean.")
    text: str | None = Field(default=None, min_length=1, description="A short text written as right-padded UTF-8 bytes32.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("parameter", "constant", "text") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"argument {self.name!r}: give exactly one of parameter, constant or text (got {', '.join(given) or 'none'})")
        if (self.parameter is None) != (self.unit is None):
            raise ValueError(f"argument {self.name!r}: a parameter needs its on-chain unit, and only a parameter has one")
        if (self.unit is OnChainUnit.RAW) != (self.decimals is not None):
            raise ValueError(f"argument {self.name!r}: unit raw needs decimals, and only raw takes them")
        if self.rounding is not None and self.unit not in ROUNDABLE_UNITS:
            raise ValueError(f"argument {self.name!r}: rounding applies to bps, wad, ray or whole-token; {self.unit} must be exact")
        if self.parameter is not None:
            self._check_unit_fits_parameter()
        if self.text is not None and len(self.text.encode("utf-8")) > 32:
            raise ValueError(f"argument {self.name!r}: text {self.text!r} is longer than 32 bytes")
        return self

    def _check_unit_fits_parameter(self) -> None:
        """Whether the unit suits what the parameter is (a ratio or a USD amount); breaker setters check it per rule kind."""
        usd = self.parameter in USD_PARAMETERS
        if usd and self.unit is OnChainUnit.BPS:
            raise ValueError(f"argument {self.name!r}: {self.parameter} is a USD amount, not basis points")
        if not usd and self.unit is OnChainUnit.WHOLE_TOKEN:
            raise ValueError(f"argument {self.name!r}: {self.parameter} is a ratio; in whole tokens it would be 0 or 1 (use bps, wad, ray or e6)")
        if self.unit is OnChainUnit.SECONDS:
            raise ValueError(f"argument {self.name!r}: {self.parameter} is not a duration; seconds are for breaker durations")


class Setter(Model):
    """A function that writes some of a market's parameters: where, which function, which value in which argument."""

    contract: AddressField
    function: str = Field(description="Signature, e.g. setMarginParams(bytes32,uint256,uint256).")
    args: tuple[SetterArg, ...] = Field(description="One per argument of the function, in order.")
    label: str = Field(default="", max_length=64, description="Contract name shown to signers.")

    @field_validator("function")
    @classmethod
    def _signature(cls, function: str) -> str:
        signature_parts(function)
        return function

    @model_validator(mode="after")
    def _args_fit(self) -> Self:
        _, types = signature_parts(self.function)
        if len(types) != len(self.args):
            raise ValueError(f"{self.function} takes {len(types)} argument(s); args lists {len(self.args)}")
        names = [a.name for a in self.args]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.function}: argument names repeat ({', '.join(names)})")
        for arg, abi_type in zip(self.args, types, strict=True):
            if arg.parameter is not None and not _UINT.match(abi_type):
                raise ValueError(f"{self.function}: argument {arg.name!r} carries {arg.parameter}, which needs a uint type, not {abi_type}")
            if arg.text is not None and abi_type != "bytes32":
                raise ValueError(f"{self.function}: text argument {arg.name!r} needs type bytes32, not {abi_type}")
        return self

    @property
    def parameters(self) -> tuple[DerivativeParameter, ...]:
        return tuple(a.parameter for a in self.args if a.parameter is not None)


class TailModel(StrEnum):
    """`risk.backtest.TailKind`'s values, repeated so that reading a policy does not import scipy.stats."""

    NORMAL = "normal"
    STUDENT_T = "student-t"
    FILTERED_HISTORICAL = "filtered-historical"


class TailSpec(Model):
    """The tail model of standardised horizon moves (see `risk.backtest.Tail`)."""

    kind: TailModel = TailModel.FILTERED_HISTORICAL
    df: int | None = Field(default=None, ge=3, le=1000, description="Student-t degrees of freedom.")
    min_history: int = Field(default=500, ge=10, le=1_000_000, description="Past moves filtered historical simulation needs.")

    @model_validator(mode="after")
    def _df_for_student_t(self) -> Self:
        if (self.kind is TailModel.STUDENT_T) != (self.df is not None):
            raise ValueError("df is given for, and only for, kind: student-t")
        return self

    def tail(self) -> Tail:
        from risk.backtest import Tail, TailKind  # scipy.stats: only when a recommendation is computed

        return Tail(TailKind(self.kind.value), None if self.df is None else float(self.df), self.min_history)


class OptionLeg(Model):
    kind: Literal["call", "put"]
    moneyness: PositiveRatio = Field(description="Strike over the forward when struck, e.g. '100%' at the money.")
    expiry: PositiveDuration = Field(description="Time to expiry when struck, e.g. '30d'.")
    quantity: int = Field(description="Signed units of underlying (negative = written).")

    @field_validator("quantity")
    @classmethod
    def _nonzero(cls, quantity: int) -> int:
        if quantity == 0:
            raise ValueError("a leg of quantity 0 holds nothing")
        return quantity


class OptionBookSpec(Model):
    """A book written relative to the forward: legs here, or a CSV file (kind,moneyness_pct,expiry_days,quantity) under --data."""

    legs: tuple[OptionLeg, ...] | None = Field(default=None, min_length=1)
    file: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.legs is None) == (self.file is None):
            raise ValueError("give exactly one of legs or file")
        return self


class HedgingSpec(Model):
    """What the vault accepts: loss at coverage over the horizon and hedging cost per year, shares of its notional."""

    max_loss: Share = Field(description="Loss at the coverage target over the horizon, share of notional.")
    cost_budget: Share = Field(description="Hedging cost per year, share of notional.")
    fee: Annotated[RatioField, ratio_in("0%", "100%", hi_open=True)] = Field(description="Fee per USD traded on the hedge market.")
    depth: Annotated[UsdField, usd_in("$0", lo_open=True)] | None = Field(default=None, description="USD that moves the hedge market by `impact`.")
    impact: Annotated[RatioField, ratio_in("0%", "100%", lo_open=True)] | None = None
    ratios: tuple[Share, ...] = Field(min_length=1, max_length=50, description="Hedge ratios to choose from.")
    bands: tuple[Annotated[RatioField, ratio_in("0%", "100%", lo_open=True)], ...] = Field(min_length=1, max_length=50, description="Rebalance bands, shares of notional.")
    coverage: RatioField | None = Field(default=None, description="Default: the market's coverage.")
    horizon: PositiveDuration | None = Field(default=None, description="Default: the market's liquidation or scan horizon.")

    @field_validator("coverage")
    @classmethod
    def _coverage(cls, coverage: Ratio | None) -> Ratio | None:
        return _coverage_in_range(coverage)

    @model_validator(mode="after")
    def _liquidity_pair(self) -> Self:
        if (self.depth is None) != (self.impact is None):
            raise ValueError("give both depth and impact of the hedge market, or neither")
        return self


class PerpHedging(HedgingSpec):
    skew: UsdField = Field(description="Traders' net long the vault carries, USD (negative: net short).")

    @field_validator("skew")
    @classmethod
    def _nonzero(cls, skew: object) -> object:
        if getattr(skew, "value", 0) == 0:
            raise ValueError("a skew of $0 leaves nothing to hedge")
        return skew


class OptionHedging(HedgingSpec):
    book: OptionBookSpec = Field(description="The vault's own positions (negative = the vault wrote them).")


class PerpLiquiditySpec(Model):
    depth: Annotated[UsdField, usd_in("$0", lo_open=True)]
    impact: Annotated[RatioField, ratio_in("0%", "100%", lo_open=True)]
    liquidation_size: Annotated[UsdField, usd_in("$0")] = Field(description="Position a liquidator must close in one go under stress.")
    incentive: Share = Field(default=Ratio.parse("0%"), description="What a liquidator keeps after slippage.")


class OiCapsSpec(Model):
    upper_over_lower: Annotated[RatioField, ratio_in("100%", None, lo_open=True)] = Field(
        default=Ratio.parse("250%"), description="Upper OI cap over the lower one (dYdX tiers: 200-250%)."
    )


class FundingSource(Model):
    file: str = Field(min_length=1, description="timestamp_utc + funding rate per interval, under --data.")
    column: str = "funding_rate"
    interval: PositiveDuration = Duration.parse("8h")


class CurrentValues(Model):
    """Values on chain now, in people's units; a parameter left out has no known current value."""

    mmf: Share | None = None
    imf: Share | None = None
    liquidation_fee: Share | None = None
    oi_cap_lower: UsdField | None = None
    oi_cap_upper: UsdField | None = None
    scan_range: PositiveRatio | None = None
    vol_shock_up: NonNegativeRatio | None = None
    vol_shock_down: Share | None = None
    hedge_ratio: Share | None = None
    rebalance_band: Share | None = None


class DerivativeChangeLimits(Model):
    """Per-update limits (absolute in percentage points for ratios, relative for caps); none: no limit."""

    mmf: ChangeLimit | None = None
    imf: ChangeLimit | None = None
    liquidation_fee: ChangeLimit | None = None
    oi_cap_lower: ChangeLimit | None = None
    oi_cap_upper: ChangeLimit | None = None
    scan_range: ChangeLimit | None = None
    vol_shock_up: ChangeLimit | None = None
    vol_shock_down: ChangeLimit | None = None
    hedge_ratio: ChangeLimit | None = None
    rebalance_band: ChangeLimit | None = None


def _coverage_in_range(coverage: Ratio | None) -> Ratio | None:
    if coverage is not None and not Ratio.parse("50%") <= coverage < Ratio.parse("100%"):
        raise ValueError(f"coverage {coverage} must be at least 50% and below 100%")
    return coverage


class _DerivativeMarket(Model):
    symbol: str = Field(pattern=SYMBOL_PATTERN)
    price_source: FilePriceSource
    coverage: RatioField = Field(default=Ratio.parse("99%"), description="Share of horizon moves the parameters must absorb.")
    tail: TailSpec = TailSpec()
    volatility_half_life: PositiveDuration = Field(default=Duration.parse("72h"), description="EWMA half-life.")
    burn_in: PositiveDuration = Field(default=Duration.parse("30d"), description="History before the first backtest period.")
    current: CurrentValues | None = None
    change_limits: DerivativeChangeLimits = DerivativeChangeLimits()
    setters: tuple[Setter, ...] = ()

    parameters: ClassVar[tuple[DerivativeParameter, ...]] = ()

    @field_validator("coverage")
    @classmethod
    def _coverage(cls, coverage: Ratio) -> Ratio:
        return _coverage_in_range(coverage)  # type: ignore[return-value]

    @model_validator(mode="after")
    def _setters_write_known_parameters(self) -> Self:
        hedged = getattr(self, "hedging", None) is not None
        written: dict[DerivativeParameter, int] = {}
        for i, setter in enumerate(self.setters):
            for p in setter.parameters:
                if p not in self.parameters:
                    raise ValueError(f"setters[{i}] writes {p}, which a {type(self).__name__} does not have ({', '.join(self.parameters)})")
                if p in HEDGE_PARAMETERS and not hedged:
                    raise ValueError(f"setters[{i}] writes {p}, but the market has no hedging section")
                if p in written and written[p] != i:
                    raise ValueError(f"{p} is written by setters[{written[p]}] and setters[{i}]")
                written[p] = i
        return self


class PerpMarket(_DerivativeMarket):
    liquidation_horizon: PositiveDuration = Field(default=Duration.parse("24h"), description="Time a liquidation may take.")
    initial_buffer: NonNegativeRatio = Field(description="IMF over MMF, relative (dYdX's 60% maintenance fraction: 1/0.6 - 1).")
    liquidity: PerpLiquiditySpec | None = Field(default=None, description="Needed for the liquidation fee and the OI caps.")
    oi_caps: OiCapsSpec = OiCapsSpec()
    funding: FundingSource | None = None
    hedging: PerpHedging | None = None

    parameters = PERP_PARAMETERS

    @model_validator(mode="after")
    def _liquidity_for_fee_and_caps(self) -> Self:
        needs = [p for s in self.setters for p in s.parameters if p in (D.LIQUIDATION_FEE, D.OI_CAP_LOWER, D.OI_CAP_UPPER)]
        if needs and self.liquidity is None:
            raise ValueError(f"setters write {', '.join(needs)}, which come from the order book: add liquidity")
        return self


class GridKind(StrEnum):
    SPAN = "span"
    DERIBIT = "deribit"


class OptionMarket(_DerivativeMarket):
    scan_horizon: PositiveDuration = Field(default=Duration.parse("24h"), description="Look-ahead of the scenario grid.")
    grid: GridKind = GridKind.SPAN
    extreme_fraction: Share = Field(default=Ratio.parse("35%"), description="Share of the extreme moves' loss counted (SPAN ~35%).")
    reference_book: OptionBookSpec = Field(description="Traders' book whose scenario margin is calibrated and backtested.")
    hedging: OptionHedging | None = None

    parameters = OPTION_PARAMETERS


def _unique(markets: tuple[_DerivativeMarket, ...]) -> tuple[_DerivativeMarket, ...]:
    seen: dict[str, int] = {}
    for i, m in enumerate(markets):
        if m.symbol in seen:
            raise ValueError(f"market {m.symbol!r} appears twice (markets[{seen[m.symbol]}] and markets[{i}])")
        seen[m.symbol] = i
    return markets


class PerpSection(Model):
    markets: tuple[PerpMarket, ...] = Field(min_length=1)
    safe_nonce: int = Field(default=0, ge=0, description="Nonce of the Safe's next transaction.")
    breakers: str | None = Field(
        default=None, min_length=1, description="A breaker policy (path relative to this policy file) whose thresholds are measured on the epoch's prices."
    )

    @field_validator("markets")
    @classmethod
    def _unique_markets(cls, markets: tuple[PerpMarket, ...]) -> tuple[PerpMarket, ...]:
        return _unique(markets)  # type: ignore[return-value]


class OptionSection(Model):
    markets: tuple[OptionMarket, ...] = Field(min_length=1)
    safe_nonce: int = Field(default=0, ge=0, description="Nonce of the Safe's next transaction.")
    breakers: str | None = Field(
        default=None, min_length=1, description="A breaker policy (path relative to this policy file) whose thresholds are measured on the epoch's prices."
    )

    @field_validator("markets")
    @classmethod
    def _unique_markets(cls, markets: tuple[OptionMarket, ...]) -> tuple[OptionMarket, ...]:
        return _unique(markets)  # type: ignore[return-value]


DerivativeMarket = PerpMarket | OptionMarket


def derivative_section(policy: _policy.Policy) -> PerpSection | OptionSection:
    """The policy's perps or options section (the venue validator guarantees the one its kind needs)."""
    section = policy.perps if policy.venue.kind is _policy.VenueKind.PERPS else policy.options
    if section is None:
        from risk.errors import PolicyError

        raise PolicyError(f"venue {policy.venue.name} ({policy.venue.kind}) has no derivative section", "add perps: or options:")
    return section


# risk.policy names these sections in `Policy`; they build on its models, so they are resolved here.
_policy.Policy.model_rebuild(_types_namespace={"PerpSection": PerpSection, "OptionSection": OptionSection})
