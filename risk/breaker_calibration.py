"""What calibrating a breaker policy must achieve, and the candidate thresholds each rule sweeps.

``calibration:`` sets the false-alarm budget, the detection delay and the labelled crash windows and
calm periods; a rule's ``calibrate:`` grid (ratio, duration or USD, like its threshold) lists the
candidates `risk.breakers_calibrate` tries. Part of the breaker policy (`risk.breaker_policy`).
"""

from __future__ import annotations

from typing import Annotated, Any, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from risk.fields import DurationField, TimestampField, UsdField, usd_in
from risk.policy import CrashWindow, Model, PositiveDuration, PositiveRatio
from risk.units import Duration, Ratio, Usd

MAX_CANDIDATES = 5_000  # a sweep is vectorised over candidates × updates; more is a typo in `step`

PositiveUsd = Annotated[UsdField, usd_in("$0", lo_open=True)]


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
