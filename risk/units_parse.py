"""Reading quantities as people write them in a policy: ``"82.5%"``, ``"8250bps"``, ``"$50M"``, ``"72h"``.

Each reader takes the raw YAML value (text, a one-key mapping such as ``{bps: 8250}``, or an integer),
returns the exact number it spells and refuses anything else with a `UnitError` that shows the value
and how to write it. Floats and booleans are refused: their YAML reading is not what was meant.
The unit types in `risk.units` turn these numbers into values.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from risk.errors import UnitError
from risk.units_exact import MAX_DIGITS, MAX_EXPONENT, plain, scaled

RatioSpelling = Literal["percent", "bps", "ratio"]
RATIO_SPELLINGS: tuple[RatioSpelling, ...] = ("bps", "percent", "ratio")

_NUMBER = r"[+-]?(?:\d[\d_]*)?(?:\.\d+)?(?:[eE][+-]?\d+)?"
_PERCENT_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")
_BPS_RE = re.compile(rf"^\s*({_NUMBER})\s*bps\s*$", re.IGNORECASE)
_USD_RE = re.compile(rf"^\s*(\$)?\s*({_NUMBER})\s*([kKmMbB])?\s*(USD)?\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_SUFFIX_PLACES = {"k": 3, "m": 6, "b": 9}
SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Longer than any policy means (about 31,700 years), short enough for datetime arithmetic downstream.
MAX_DURATION_SECONDS = 10**12


def exact_number(text: Any, what: str, example: str = "'82.5%' or {bps: 8250}") -> Decimal:
    """Parse a number exactly; floats are refused (their binary value is not what was written)."""
    if isinstance(text, bool):
        raise UnitError(
            f"{what}: {text!r} is a boolean, not a number",
            f"YAML reads true/false as booleans; write the number, e.g. {example}",
        )
    if isinstance(text, float):
        raise UnitError(
            f"{what}: {text!r} is a bare float, which is not exact",
            f"write the number as a string or an integer, e.g. {example}",
        )
    if isinstance(text, int):
        value = Decimal(text)
    elif isinstance(text, Decimal):
        value = text
    elif isinstance(text, str):
        try:
            value = Decimal(text.replace("_", ""))
        except InvalidOperation:
            raise UnitError(f"{what}: {text!r} is not a number", f"use digits, e.g. {example}") from None
    else:
        raise UnitError(
            f"{what}: expected a number, got {type(text).__name__} {text!r}",
            f"write the number as a string or an integer, e.g. {example}",
        )
    if not value.is_finite():
        raise UnitError(f"{what}: {text!r} is not finite", "use a finite number")
    _check_magnitude(value, what, text)
    return value


def _check_magnitude(value: Decimal, what: str, shown: Any) -> None:
    """Refuse numbers no policy means (1e999999%): they only turn into inf or a hang downstream."""
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise UnitError(f"{what}: {shown!r} has more than {MAX_DIGITS} digits", "write fewer digits")
    if value and not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        raise UnitError(f"{what}: {shown!r} is out of range", f"numbers must lie between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT}")


def ratio_parts(raw: Any, what: str) -> tuple[Decimal, RatioSpelling]:
    """The number a written ratio states and its spelling: ``"82.5%"`` → (82.5, "percent").

    A bare number is refused: 0.825 and 82.5 are both plausible readings of "the threshold".
    """
    if isinstance(raw, str):
        if m := _PERCENT_RE.match(raw):
            return exact_number(m.group(1), what), "percent"
        if m := _BPS_RE.match(raw):
            return exact_number(m.group(1), what), "bps"
        raise UnitError(
            f"{what}: {raw!r} has no unit",
            "write a percentage or basis points, e.g. '82.5%' or '8250bps'",
        )
    if isinstance(raw, dict):
        if len(raw) == 1:
            ((key, val),) = raw.items()
            spelling = next((s for s in RATIO_SPELLINGS if s == str(key)), None)
            if spelling is not None:
                return exact_number(val, what), spelling
        raise UnitError(
            f"{what}: {raw!r} is not a ratio",
            "use exactly one of {bps: 8250}, {percent: '82.5'} or {ratio: '0.825'}",
        )
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if (isinstance(raw, float) and not math.isfinite(raw)) or abs(raw) > 10**MAX_EXPONENT:
            hint = "write a percentage, e.g. '82.5%'"
        else:
            as_percent = plain(scaled(Decimal(repr(raw)), 2))
            hint = f"say the unit: '{as_percent}%' if {raw!r} is a fraction of one, '{raw!r}%' if a percentage"
        raise UnitError(f"{what}: bare number {raw!r} where a ratio is required", hint)
    raise UnitError(f"{what}: {raw!r} is not a ratio", "write e.g. '82.5%' or {bps: 8250}")


def usd_number(raw: Any, what: str) -> Decimal:
    """``"$50M"``, ``"50_000_000 USD"``, ``{usd: 50000000}`` → the exact USD amount; a bare number is refused."""
    if isinstance(raw, dict) and set(raw) == {"usd"}:
        return exact_number(raw["usd"], what, "{usd: 2500000} or '$2.5M'")
    if isinstance(raw, str) and (m := _USD_RE.match(raw)) and (m.group(1) or m.group(4)):
        places = _SUFFIX_PLACES[m.group(3).lower()] if m.group(3) else 0
        return scaled(exact_number(m.group(2), what, "'$2.5M'"), places)
    raise UnitError(f"{what}: {raw!r} is not a USD amount", "write e.g. '$50M', '2500000 USD' or {usd: 2500000}")


def duration_seconds(raw: Any, what: str) -> int:
    """``"72h"``, ``"3d"``, ``{hours: 72}`` → whole seconds, at most `MAX_DURATION_SECONDS`."""
    count, unit = None, None
    if isinstance(raw, str) and (m := _DURATION_RE.match(raw)) and len(m.group(1)) <= 15:
        count, unit = int(m.group(1)), m.group(2)
    elif isinstance(raw, dict) and len(raw) == 1:
        ((key, val),) = raw.items()
        unit = {"seconds": "s", "minutes": "m", "hours": "h", "days": "d", "weeks": "w"}.get(str(key))
        if unit and isinstance(val, int) and not isinstance(val, bool) and val >= 0:
            count = val
    if count is None or unit is None:
        raise UnitError(f"{what}: {raw!r} is not a duration", "write e.g. '72h', '3d' or {hours: 72}")
    if count * SECONDS_PER_UNIT[unit] > MAX_DURATION_SECONDS:
        raise UnitError(f"{what}: {raw!r} is too long", f"durations are at most {MAX_DURATION_SECONDS} seconds")
    return count * SECONDS_PER_UNIT[unit]
