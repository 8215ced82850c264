"""What every unit type shares: arithmetic and ordering only within one unit, a `UnitError` across units.

Comparing a `Ratio` with `Bps`, adding a bare float to `Usd` or summing two tokens' amounts is a mistake
the type system of the risk core (floats) cannot see; here it raises an error that names both sides.
"""

from __future__ import annotations

from typing import Any

from risk.errors import UnitError


def unit_mismatch(op: str, left: object, right: object) -> UnitError:
    """The error for ``left op right`` across units or with a bare number: names both sides and a fix."""
    unitless = [type(x).__name__ for x in (left, right) if not isinstance(x, Unit)]
    if unitless:
        hint = f"a bare {unitless[0]} has no unit: build the value with its type, e.g. Ratio.parse('82.5%')"
    else:
        hint = "convert one side explicitly, e.g. Bps.to_ratio() or Ratio.to_bps()"
    return UnitError(
        f"cannot {op} {type(left).__name__} ({left}) and {type(right).__name__} ({right}): different units", hint
    )


class Unit:
    """Shared behaviour: same-unit arithmetic and ordering; anything else is a unit error."""

    __slots__ = ()

    def _key(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _check(self, other: object, op: str) -> None:
        if type(other) is not type(self):
            raise unit_mismatch(op, self, other)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            if isinstance(other, Unit):
                raise unit_mismatch("compare", self, other)
            return NotImplemented
        return bool(self._key() == other._key())  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __lt__(self, other: object) -> bool:
        self._check(other, "compare")
        return bool(self._key() < other._key())  # type: ignore[attr-defined]

    def __le__(self, other: object) -> bool:
        self._check(other, "compare")
        return bool(self._key() <= other._key())  # type: ignore[attr-defined]

    def __gt__(self, other: object) -> bool:
        self._check(other, "compare")
        return bool(self._key() > other._key())  # type: ignore[attr-defined]

    def __ge__(self, other: object) -> bool:
        self._check(other, "compare")
        return bool(self._key() >= other._key())  # type: ignore[attr-defined]

    # Units with arithmetic override __add__/__sub__. For the others (Wad, Usd, ...) and for the
    # reflected forms (``0 + Ratio``, ``sum(ratios)``) a different unit or a bare number is a unit
    # error; the same type means the unit has no such operation (TypeError, via NotImplemented).
    def __add__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise unit_mismatch("add", self, other)

    def __sub__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise unit_mismatch("subtract", self, other)

    def __radd__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise unit_mismatch("add", other, self)

    def __rsub__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise unit_mismatch("subtract", other, self)
