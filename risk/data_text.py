"""How data findings write what they saw: UTC times as ISO-8601 seconds, durations in hours, exact floats."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np


def iso_utc(t: int | np.integer) -> str:
    return datetime.fromtimestamp(int(t), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def float_text(x: float | np.floating) -> str:
    return repr(float(x))


def hours_text(seconds: int | np.integer) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds / 3600:.2f} h"

