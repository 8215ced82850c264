"""Typed policy values entering the perps formulas: a `Ratio` or `Usd` is checked and becomes a float.

The formulas compute with floats (fractions of notional, USD); a bare float where a policy value is
expected is refused with a `UnitError` naming what was expected, so units never cross silently.
"""

from __future__ import annotations

from risk.errors import UnitError
from risk.units import Ratio, Usd


def ratio_float(value: Ratio, what: str) -> float:
    """``value`` as a float fraction; anything but a `Ratio` is a unit error naming ``what``."""
    if not isinstance(value, Ratio):
        raise UnitError(f"{what}: {value!r} is not a Ratio", f"pass Ratio.parse(...), e.g. Ratio.parse('2%') for {what}")
    return value.as_float()


def usd_float(value: Usd, what: str) -> float:
    """``value`` in USD as a float; anything but `Usd` is a unit error naming ``what``."""
    if not isinstance(value, Usd):
        raise UnitError(f"{what}: {value!r} is not a Usd amount", "pass Usd.parse('$40M')")
    return value.as_float()
