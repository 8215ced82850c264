"""The `watch:` section of a breaker policy: what the real-time monitor adds to the breaker rules.

The rules themselves (and their ``action:``) stay in `risk.breaker_rules`; this section says how the
monitor measures the book's health, which volatility it follows when a market has no ``vol_scaling``
rule, which on-chain feeds carry each source, and what an emergency proposal does. It is optional:
without it the monitor runs the rules with the defaults below and no book thresholds of its own.

It imports nothing from `risk.breaker_policy` (which holds the field), so the two load in one pass.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from risk.fields import AddressField, RatioField, ratio_in
from risk.policy import SYMBOL_PATTERN, Model, PositiveDuration, PositiveRatio, Share
from risk.units import Duration, Ratio

EmergencyAction = Literal["freeze", "cut_ltv", "pause"]
# A liquidation threshold for the book: positive (a row with LT 0 is not collateral) and at most 100%.
LiquidationThreshold = Annotated[RatioField, ratio_in("0%", "100%", lo_open=True)]


class HealthWatch(Model):
    """When the book's health becomes an event: the share of a market's debt held by positions below HF 1."""

    near: float = Field(default=1.05, gt=1.0, le=10.0, allow_inf_nan=False, description="Health factor under which a position counts as near liquidation.")
    debt_at_risk: PositiveRatio = Field(default=Ratio.parse("1%"), description="Share of a market's debt below HF 1 that raises a `health` event.")
    cooldown: PositiveDuration = Field(default=Duration.parse("24h"), description="After a health event the market stays silent this long (then reminds).")
    severity: Literal["info", "warning", "critical"] = "critical"
    action: EmergencyAction | None = Field(default=None, description="Emergency proposal to prepare when the health event fires.")


class EmergencyWatch(Model):
    """What an emergency proposal sets, and which venue reserve a breaker market is."""

    ltv_floor: Share = Field(default=Ratio.parse("0%"), description="LTV that `cut_ltv` sets (threshold and bonus unchanged).")
    venue_markets: dict[str, Annotated[str, Field(pattern=SYMBOL_PATTERN)]] = Field(
        default_factory=dict, description="Breaker market → the venue policy's market symbol (default: the same symbol)."
    )
    cooldown: PositiveDuration = Field(default=Duration.parse("24h"), description="One proposal per reserve and action within this time.")


class WatchPolicy(Model):
    """The monitor's settings (`breakers.watch`)."""

    liquidation_thresholds: dict[str, LiquidationThreshold] = Field(
        default_factory=dict, description="Liquidation threshold per market, for the book's health factors."
    )
    default_liquidation_threshold: LiquidationThreshold | None = Field(
        default=None, description="For book markets not listed in liquidation_thresholds; without it such a market is an error."
    )
    vol_half_life: PositiveDuration = Field(default=Duration.parse("24h"), description="EWMA half-life for markets without a vol_scaling rule.")
    vol_warmup: int = Field(default=24, ge=1, le=100_000, description="Returns seen before the volatility is reported.")
    health: HealthWatch = HealthWatch()
    emergency: EmergencyWatch = EmergencyWatch()
    feeds: dict[str, dict[str, AddressField]] = Field(
        default_factory=dict, description="Market → source name → Chainlink-style aggregator address, for `--source rpc:URL`."
    )

    @field_validator("feeds")
    @classmethod
    def _some_feed_per_market(cls, feeds: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        empty = sorted(m for m, by_source in feeds.items() if not by_source)
        if empty:
            raise ValueError(f"market(s) {', '.join(empty)} list no feed")
        return feeds

    def liquidation_threshold(self, market: str) -> Ratio | None:
        """The book's LT for `market`, or None when neither a specific nor a default one is given."""
        return self.liquidation_thresholds.get(market, self.default_liquidation_threshold)
