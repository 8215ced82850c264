"""Pydantic field types for values people write with units in YAML.

Each wraps a `risk.units` type: the YAML text is parsed by the unit's own parser (so a bare float
is refused with the unit's hint), serialised back to the canonical text, and described in the JSON
schema so editors can validate policies as they are typed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from eth_utils import is_address, is_checksum_address, to_checksum_address
from pydantic import AfterValidator, PlainSerializer, PlainValidator, WithJsonSchema

from risk.errors import UnitError
from risk.units import Duration, Ratio, Usd

_U = TypeVar("_U", Ratio, Usd, Duration)

_RATIO_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*[+-]?[\d_.]+([eE][+-]?\d+)?\s*(%|[bB][pP][sS])\s*$", "examples": ["82.5%", "8250bps"]},
        {"type": "object", "properties": {"bps": {"type": ["integer", "string"]}}, "required": ["bps"], "additionalProperties": False},
        {"type": "object", "properties": {"percent": {"type": ["integer", "string"]}}, "required": ["percent"], "additionalProperties": False},
        {"type": "object", "properties": {"ratio": {"type": ["integer", "string"]}}, "required": ["ratio"], "additionalProperties": False},
    ],
    "description": "A ratio with its unit: '82.5%', '8250bps', {bps: 8250}. A bare number is an error.",
}


def _ratio(raw: Any) -> Ratio:
    return Ratio.parse(raw, "ratio")


def _usd(raw: Any) -> Usd:
    return Usd.parse(raw, "USD amount")


def _duration(raw: Any) -> Duration:
    return Duration.parse(raw, "duration")


def _address(raw: Any) -> str:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raise UnitError(
            f"address must be a quoted string, got the number {raw:#x}",
            'quote it in YAML: "0xC02a..." (unquoted 0x... loads as a number and loses its leading zeros)',
        )
    if not isinstance(raw, str):
        raise UnitError(
            f"address must be a quoted string, got {type(raw).__name__} {raw!r}",
            'write it quoted: "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"',
        )
    if not is_address(raw):
        raise UnitError(f"{raw!r} is not a 20-byte hex address", "addresses are 0x followed by 40 hex digits")
    if raw != raw.lower() and not is_checksum_address(raw):
        raise UnitError(
            f"{raw!r} has mixed case but a wrong EIP-55 checksum (typo?)",
            f"the checksummed form is {to_checksum_address(raw.lower())}",
        )
    return to_checksum_address(raw)


def _timestamp(raw: Any) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, dt.date):
        value = dt.datetime(raw.year, raw.month, raw.day)
    elif isinstance(raw, str):
        try:
            value = dt.datetime.fromisoformat(raw)  # 3.11 reads a trailing Z
        except ValueError:
            raise UnitError(f"{raw!r} is not an ISO-8601 time", "write e.g. 2022-11-15T00:00:00Z") from None
    else:
        raise UnitError(f"{raw!r} is not a time", "write e.g. 2022-11-15T00:00:00Z")
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(tzinfo=dt.UTC)


RatioField = Annotated[
    Ratio,
    PlainValidator(_ratio),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(_RATIO_SCHEMA),
]
UsdField = Annotated[
    Usd,
    PlainValidator(_usd),
    # format 'f' is exact; normalize() would round to 28 digits.
    PlainSerializer(lambda v: f"{v.value:f} USD", return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "examples": ["$50M", "2500000 USD"]},
                {"type": "object", "properties": {"usd": {"type": ["integer", "string"]}}, "required": ["usd"], "additionalProperties": False},
            ],
            "description": "A USD amount with its unit: '$50M', '2500000 USD', {usd: 2500000}.",
        }
    ),
]
DurationField = Annotated[
    Duration,
    PlainValidator(_duration),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+\s*(s|m|h|d|w)\s*$", "examples": ["72h", "3d"]},
                {
                    "type": "object",
                    "propertyNames": {"enum": ["seconds", "minutes", "hours", "days", "weeks"]},
                    "additionalProperties": {"type": "integer", "minimum": 0},
                    "maxProperties": 1,
                    "minProperties": 1,
                },
            ],
            "description": "A duration: '72h', '3d' or {hours: 72}.",
        }
    ),
]
AddressField = Annotated[
    str,
    PlainValidator(_address),
    WithJsonSchema({"type": "string", "pattern": "^0x[0-9a-fA-F]{40}$", "description": "EIP-55 checksummed or lower-case address, quoted."}),
]
TimestampField = Annotated[
    dt.datetime,
    PlainValidator(_timestamp),
    PlainSerializer(lambda v: v.strftime("%Y-%m-%dT%H:%M:%SZ"), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2022-11-15T00:00:00Z"]}),
]


def _in_range(lo: _U | None, hi: _U | None, lo_open: bool, hi_open: bool) -> Callable[[_U], _U]:
    def check(value: _U) -> _U:
        below = lo is not None and (value <= lo if lo_open else value < lo)
        above = hi is not None and (value >= hi if hi_open else value > hi)
        if below or above:
            left = "" if lo is None else f"{'above' if lo_open else 'at least'} {lo}"
            right = "" if hi is None else f"{'below' if hi_open else 'at most'} {hi}"
            raise ValueError(f"{value} is out of range: must be {' and '.join(x for x in (left, right) if x)}")
        return value

    return check


def ratio_in(lo: str | None, hi: str | None, *, lo_open: bool = False, hi_open: bool = False) -> AfterValidator:
    """Constrain a `RatioField`: ``Annotated[RatioField, ratio_in("0%", "100%")]`` (bounds inclusive unless open)."""
    return AfterValidator(
        _in_range(None if lo is None else Ratio.parse(lo), None if hi is None else Ratio.parse(hi), lo_open, hi_open)
    )


def usd_in(lo: str | None, hi: str | None = None, *, lo_open: bool = False) -> AfterValidator:
    """Constrain a `UsdField`, e.g. ``usd_in("$0", lo_open=True)`` for a positive amount."""
    return AfterValidator(_in_range(None if lo is None else Usd.parse(lo), None if hi is None else Usd.parse(hi), lo_open, False))


def duration_in(lo: str | None, hi: str | None = None, *, lo_open: bool = False) -> AfterValidator:
    """Constrain a `DurationField`, e.g. ``duration_in("0s", lo_open=True)`` for a positive duration."""
    return AfterValidator(
        _in_range(None if lo is None else Duration.parse(lo), None if hi is None else Duration.parse(hi), lo_open, False)
    )
