"""Canonical JSON for artefacts: sorted keys, two-space indent, shortest round-trip floats, no NaN.

Same value → same bytes on every machine, which `steward verify` relies on.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
