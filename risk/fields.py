"""Pydantic field types for values people write with units in YAML.

Each wraps a `risk.units` type: the YAML text is parsed by the unit's own parser (so a bare float
is refused with the unit's hint), serialised back to the canonical text, and described in the JSON
schema so editors can validate policies as they are typed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from eth_utils import is_address, is_checksum_address, to_checksum_address
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

from risk.errors import UnitError
from risk.units import Duration, Ratio, Usd

_RATIO_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": r"^\s*[+-]?[\d_.]+([eE][+-]?\d+)?\s*(%|bps)\s*$", "examples": ["82.5%", "8250bps"]},
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
    if not isinstance(raw, str):
        raise UnitError(
            f"address must be a quoted string, got {type(raw).__name__} {raw!r}",
            'quote it in YAML: "0xC02a..." (unquoted 0x... loads as a number)',
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
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
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
    PlainSerializer(lambda v: f"{v.value.normalize():f} USD", return_type=str),
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
                {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}, "maxProperties": 1, "minProperties": 1},
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
