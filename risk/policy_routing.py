"""Policy section `routing:`: how a venue's changes reach the chain, and the steward's limits.

Three routes exist (see `risk.routing`): Aave's RiskSteward (called by the risk council's Safe, within
per-parameter limits and delays), a Safe batch calling the pool's configurator directly (when the Safe
holds the risk-admin role), or a full DAO proposal.

The limits mirror the RiskSteward's on-chain `RiskParamConfig {uint40 minDelay; uint256
maxPercentChange}` (aave-dao/aave-v3-risk-stewards, `IRiskSteward`): `max_change` is in basis points
of the parameter's own unit for absolute parameters (LTV, LT, bonus, rates: percentage points) and a
percentage of the current value for relative ones (caps). Which parameters are relative is fixed by
the contract, not by the policy. Defaults are the manual stewards' table in DOMAIN.md.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from risk.fields import (
    AddressField,
    DurationField,
    RatioField,
    TimestampField,
    ratio_in,
)
from risk.units import Duration, Ratio


class _Model(BaseModel):
    # Same settings as risk.policy.Model; this module cannot import risk.policy (it is imported by it).
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class StewardParameter(StrEnum):
    """Parameters the RiskSteward can move, named as Steward names them (the first five are LendingParameter's)."""

    LTV = "ltv"
    LIQUIDATION_THRESHOLD = "liquidation_threshold"
    LIQUIDATION_BONUS = "liquidation_bonus"
    SUPPLY_CAP = "supply_cap"
    BORROW_CAP = "borrow_cap"
    BASE_VARIABLE_BORROW_RATE = "base_variable_borrow_rate"
    VARIABLE_RATE_SLOPE1 = "variable_rate_slope1"
    VARIABLE_RATE_SLOPE2 = "variable_rate_slope2"
    OPTIMAL_USAGE_RATIO = "optimal_usage_ratio"


# RiskSteward._validateCapsUpdate passes isChangeRelative: true for caps; every other parameter here is absolute.
RELATIVE = frozenset({StewardParameter.SUPPLY_CAP, StewardParameter.BORROW_CAP})


class StewardParamLimit(_Model):
    """One parameter's `RiskParamConfig`: at most `max_change` per update, at most one update per `min_delay`."""

    max_change: Annotated[RatioField, ratio_in("0%", None)] = Field(
        description="Absolute parameters: percentage points ('0.5%' = 50 bps). Caps: share of the current cap ('100%')."
    )
    min_delay: DurationField = Duration.parse("3d")

    @field_validator("max_change")
    @classmethod
    def _whole_bps(cls, value: Ratio) -> Ratio:
        # maxPercentChange is an integer number of basis points on chain.
        bps = value.value * 10_000
        if bps != bps.to_integral_value():
            raise ValueError(f"{value} is not a whole number of basis points (the steward stores integers)")
        return value

    @property
    def max_change_bps(self) -> int:
        return int(self.max_change.value * 10_000)


def _limit(text: str) -> StewardParamLimit:
    return StewardParamLimit(max_change=Ratio.parse(text))


class StewardLimits(_Model):
    """Per-parameter limits; defaults are Aave's manual risk stewards' (DOMAIN.md), each with a 3-day delay."""

    ltv: StewardParamLimit = _limit("0.5%")
    liquidation_threshold: StewardParamLimit = _limit("0.5%")
    liquidation_bonus: StewardParamLimit = _limit("0.5%")
    supply_cap: StewardParamLimit = _limit("100%")
    borrow_cap: StewardParamLimit = _limit("100%")
    base_variable_borrow_rate: StewardParamLimit = _limit("1%")
    variable_rate_slope1: StewardParamLimit = _limit("1%")
    variable_rate_slope2: StewardParamLimit = _limit("20%")
    optimal_usage_ratio: StewardParamLimit = _limit("3%")

    def for_parameter(self, parameter: StewardParameter | str) -> StewardParamLimit:
        limit: StewardParamLimit = getattr(self, StewardParameter(parameter).value)
        return limit


class Routing(_Model):
    """Where each change goes. With no `steward`, changes go to the Safe batch (or governance)."""

    steward: AddressField | None = Field(
        default=None, description="Aave RiskSteward contract; changes within its limits are sent through it."
    )
    safe_is_risk_admin: bool = Field(
        default=False,
        description="The venue's Safe holds the pool's risk-admin role: changes the steward cannot make go to a Safe "
        "batch calling the configurator directly instead of a DAO vote.",
    )
    limits: StewardLimits = Field(
        default=StewardLimits(), description="The steward's limits (read them from getRiskConfig() when in doubt)."
    )
    last_updates: dict[str, dict[StewardParameter, TimestampField]] = Field(
        default={},
        description="Market symbol → parameter → time of the steward's last update of it (getTimelock); absent = never.",
    )
    restricted_markets: tuple[str, ...] = Field(
        default=(), description="Markets the steward refuses (isAddressRestricted): always routed past it."
    )
