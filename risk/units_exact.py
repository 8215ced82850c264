"""Exact decimal arithmetic under the unit types: nothing here rounds unless a direction is named.

Decimal's default context silently rounds to 28 digits; these helpers compute in a context wide enough
for any policy value times 10**27 that raises `UnitError` instead, move decimal points by exponent
(never by multiplication), and turn decimals into integers only exactly or in a named direction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)
from typing import Any, Literal

from risk.errors import UnitError

Rounding = Literal["down", "up", "nearest"]
_DECIMAL_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}

# What a person may write: enough for any uint256 at 36 decimals, small enough that no conversion of
# a policy value can build a million-digit integer (int(Decimal("1e900000")) takes most of a minute).
MAX_DIGITS = 100
MAX_EXPONENT = 100
# Decimal's default context rounds every product and quotient to 28 digits, which would make an
# "exact" conversion silently inexact (a 1e12-token amount plus one wei, a Ray above 10**28). All
# arithmetic here runs in this context instead: wide enough for any value above times 10**27, and an
# inexact or overflowing result raises instead of rounding.
EXACT_CONTEXT = Context(
    prec=4 * MAX_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
# Same width, rounding allowed: for the one place that quantises on purpose (Ratio.from_float).
ROUNDING_CONTEXT = Context(prec=4 * MAX_DIGITS, Emin=-999_999, Emax=999_999, traps=[InvalidOperation, DivisionByZero, Overflow])


def exactly(what: str, compute: Callable[[], Decimal]) -> Decimal:
    """Run Decimal arithmetic in the exact context; a result that would need rounding is a UnitError."""
    try:
        return compute()
    except DecimalException as exc:
        raise UnitError(
            f"{what} cannot be computed exactly ({type(exc).__name__})",
            "the value has too many digits or is out of range; round it explicitly first",
        ) from None


def scaled(value: Decimal, places: int) -> Decimal:
    """``value * 10**places`` by moving the exponent: exact for any value, no context involved."""
    if not value.is_finite():
        raise UnitError(f"{value} is not finite", "use a finite number")
    sign, digits, exponent = value.as_tuple()
    return Decimal((sign, digits, int(exponent) + places))


def plain(value: Decimal) -> str:
    """Positional text without trailing zeros (format 'f' is exact; normalize() would round to 28 digits)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def decimal_rounding(rounding: str) -> str:
    """The decimal module's rounding constant for a named direction."""
    try:
        return _DECIMAL_ROUNDING[rounding]
    except (KeyError, TypeError):
        raise UnitError(f"unknown rounding {rounding!r}", "use 'down', 'up' or 'nearest'") from None


def check_float(x: Any, unit: str) -> None:
    """Refuse what is not a finite float (or int) from the risk core before it becomes a unit."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise UnitError(f"cannot make {unit} from {type(x).__name__} {x!r}", "pass the risk core's float, e.g. 0.825")
    if not math.isfinite(x):
        raise UnitError(f"cannot make {unit} from non-finite {x!r}", "check the computation upstream")


def exact_int(value: Decimal, what: str, rounding: Rounding | None) -> int:
    """The integer ``value`` is, or, with a rounding direction named, the one it rounds to."""
    if value and value.adjusted() > 2 * MAX_EXPONENT:
        # Far beyond uint256 (1.2e77): refuse before int() spends minutes building the number.
        raise UnitError(f"{what} is out of range ({value:.3e})", "on-chain integers are below 2**256")
    if rounding is None:
        if value != value.to_integral_value():
            raise UnitError(f"{what} is not an integer ({plain(value)})", "round explicitly: rounding='down'|'up'")
        return int(value)
    return int(value.to_integral_value(rounding=decimal_rounding(rounding)))
