"""What a breaker policy watches: each market's price sources (and open interest), and over which time.

Part of the breaker policy (`risk.breaker_policy`), with the same conventions: strict, frozen models,
unknown keys refused, units written out.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from risk.fields import DurationField, TimestampField
from risk.policy import SYMBOL_PATTERN, Model, PositiveDuration
from risk.units import Duration

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"  # names of sources, rules and breaker policies


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
