"""What the monitor reports: one frozen value per event, each with its JSON line (sorted keys, kind first in meaning).

Kinds: ``alert`` (a breaker rule tripped: exactly `risk.breakers.Alert`'s line plus ``kind``, so the
monitor's alerts compare one to one with `steward breakers replay`), ``health`` (the share of a
market's debt below HF 1 crossed the watch threshold), ``stale`` (a source silent for longer than the
market's ``fresh_within``, seen while it is silent), ``resumed`` (that source updated again) and
``flagged`` (an update not used: duplicate round, out of order, arrived stale, invalid, unknown).
Times are unix seconds UTC, written ISO-8601 like the breakers' alerts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from risk.breakers import Alert
from risk.data_text import iso_utc
from risk.watch_health import HealthPoint


@dataclass(frozen=True, slots=True)
class Update:
    """One oracle update as a source delivers it: ``round`` is the feed's round id (row index for files)."""

    time: int
    market: str
    source: str
    price: float
    round: int | None = None


@dataclass(frozen=True, slots=True)
class AlertEvent:
    kind: ClassVar[str] = "alert"

    alert: Alert
    action: str | None = None

    @property
    def time(self) -> int:
        return self.alert.time

    @property
    def market(self) -> str:
        return self.alert.market

    def to_json(self) -> dict[str, Any]:
        return {**self.alert.to_json(), "kind": "alert"}


@dataclass(frozen=True, slots=True)
class HealthEvent:
    """The debt share below HF 1 (``value``, fraction of one) exceeded ``threshold``."""

    kind: ClassVar[str] = "health"

    time: int
    market: str
    value: float
    threshold: float
    health: HealthPoint
    price: float
    severity: str
    action: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": "health", "market": self.market, "price": self.price, "severity": self.severity, "threshold": self.threshold,
                "time": iso_utc(self.time), "value": self.value, "values": self.health.to_json()}


@dataclass(frozen=True, slots=True)
class StaleEvent:
    """Seen at ``time``: the source's last update is ``silent_seconds`` old, more than ``threshold`` (seconds)."""

    kind: ClassVar[str] = "stale"

    time: int
    market: str
    source: str
    last_update: int
    silent_seconds: int
    threshold: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": "stale", "last_update": iso_utc(self.last_update), "market": self.market, "source": self.source,
                "threshold": self.threshold, "time": iso_utc(self.time), "value": self.silent_seconds}


@dataclass(frozen=True, slots=True)
class ResumedEvent:
    kind: ClassVar[str] = "resumed"

    time: int
    market: str
    source: str
    silent_seconds: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": "resumed", "market": self.market, "source": self.source, "time": iso_utc(self.time), "value": self.silent_seconds}


FLAG_REASONS = ("duplicate", "out_of_order", "stale", "invalid", "unknown_source")


@dataclass(frozen=True, slots=True)
class FlaggedEvent:
    """An update that was not used, and why (one of `FLAG_REASONS`)."""

    kind: ClassVar[str] = "flagged"

    update: Update
    reason: str
    detail: str

    @property
    def time(self) -> int:
        return self.update.time

    @property
    def market(self) -> str:
        return self.update.market

    def to_json(self) -> dict[str, Any]:
        u = self.update
        price = u.price if math.isfinite(u.price) else repr(u.price)  # JSON has no NaN or inf
        try:
            time: str = iso_utc(u.time)
        except (OverflowError, OSError, ValueError):
            time = str(u.time)
        return {"detail": self.detail, "kind": "flagged", "market": u.market, "price": price, "reason": self.reason, "round": u.round,
                "source": u.source, "time": time}


WatchEvent = AlertEvent | HealthEvent | StaleEvent | ResumedEvent | FlaggedEvent
