"""Units as types: the only module that knows 10**4, 10**18 and 10**27.

People write units explicitly (``"82.5%"``, ``"8250bps"``, ``{bps: 8250}``); the risk core computes
with floats; the chain takes integers. Each crossing goes through this module:

* ``Ratio`` — an exact fraction of one (``Decimal``), what a policy states ("82.5%").
* ``Bps`` — integer basis points, what Aave's PoolConfigurator takes.
* ``Wad`` / ``Ray`` — 1e18 / 1e27 fixed point integers (Compound factors, Aave rates).
* ``TokenAmount`` — an integer amount of a token's smallest unit, with its decimals.
* ``Usd`` — an exact USD amount; ``Duration`` — whole seconds.

Conversions are exact or raise ``UnitError``; quantising a float from the risk core names its rounding
direction (``"down"`` is the safe side for LTV and thresholds, ``"up"`` for bonuses). Values of
different units never mix silently: arithmetic or comparison across units raises an error that names
both.

Underneath: exact decimal arithmetic (`risk.units_exact`), reading written quantities
(`risk.units_parse`) and the same-unit-only base class (`risk.units_base`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, DecimalException
from typing import Any

from risk.errors import UnitError
from risk.units_base import Unit, unit_mismatch
from risk.units_exact import (
    EXACT_CONTEXT,
    ROUNDING_CONTEXT,
    Rounding,
    check_float,
    exact_int,
    exactly,
    plain,
    scaled,
)
from risk.units_parse import SECONDS_PER_UNIT, duration_seconds, exact_number, ratio_parts, usd_number

_BPS_PLACES, _WAD_PLACES, _RAY_PLACES = 4, 18, 27
BPS_PER_ONE = 10**_BPS_PLACES
WAD = 10**_WAD_PLACES
RAY = 10**_RAY_PLACES
UINT256_MAX = 2**256 - 1
# How far each spelling of a ratio shifts the decimal point: "8250bps", "82.5%", {ratio: "0.825"}.
_RATIO_PLACES = {"bps": -_BPS_PLACES, "percent": -2, "ratio": 0}


@dataclass(frozen=True, eq=False, slots=True)
class Ratio(Unit):
    """An exact fraction of one: ``Ratio(Decimal("0.825"))`` is 82.5%."""

    value: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.value, Decimal) or not self.value.is_finite():
            raise UnitError(f"Ratio needs a finite Decimal, got {self.value!r}", "use Ratio.parse('82.5%')")

    def _key(self) -> Decimal:
        return self.value

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def parse(cls, raw: Any, what: str = "value") -> Ratio:
        """Read a ratio as people write it: ``"82.5%"``, ``"8250bps"``, ``{bps: 8250}``, ``{percent: "82.5"}``.

        A bare number is refused: 0.825 and 82.5 are both plausible readings of "the threshold".
        """
        if isinstance(raw, Ratio):
            return raw
        if isinstance(raw, Bps):
            return raw.to_ratio()
        number, spelling = ratio_parts(raw, what)
        return cls(scaled(number, _RATIO_PLACES[spelling]))

    @classmethod
    def from_float(cls, x: float, quantum: Decimal = Decimal("1e-12")) -> Ratio:
        """Bring a float from the risk core across the boundary, rounded to ``quantum`` (nearest)."""
        check_float(x, "Ratio")
        try:
            return cls(Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_EVEN, context=ROUNDING_CONTEXT))
        except DecimalException:
            raise UnitError(f"cannot make a Ratio from {x!r} at quantum {quantum}", "check the computation upstream") from None

    # -- conversion ---------------------------------------------------------------------------
    def to_bps(self, rounding: Rounding | None = None) -> Bps:
        """Exact unless a rounding direction is named; never silently drops precision."""
        in_bps = scaled(self.value, _BPS_PLACES)
        if rounding is None and in_bps != in_bps.to_integral_value():
            raise UnitError(
                f"{self} is not a whole number of basis points ({plain(in_bps)} bps)",
                "Aave stores basis points: round explicitly with to_bps(rounding='down'|'up')",
            )
        return Bps(exact_int(in_bps, f"{self} in bps", rounding))

    def to_wad(self, rounding: Rounding | None = None) -> Wad:
        return Wad(exact_int(scaled(self.value, _WAD_PLACES), f"{self} in wad", rounding))

    def to_ray(self, rounding: Rounding | None = None) -> Ray:
        return Ray(exact_int(scaled(self.value, _RAY_PLACES), f"{self} in ray", rounding))

    def __float__(self) -> float:
        return float(self.value)

    def as_float(self) -> float:
        return float(self.value)

    # -- arithmetic within the unit -----------------------------------------------------------
    def __add__(self, other: object) -> Ratio:
        self._check(other, "add")
        return Ratio(exactly(f"{self} + {other}", lambda: EXACT_CONTEXT.add(self.value, other.value)))  # type: ignore[attr-defined]

    def __sub__(self, other: object) -> Ratio:
        self._check(other, "subtract")
        return Ratio(exactly(f"{self} - {other}", lambda: EXACT_CONTEXT.subtract(self.value, other.value)))  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"{plain(scaled(self.value, 2))}%"

    def __repr__(self) -> str:
        return f"Ratio({str(self)!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Bps(Unit):
    """Whole basis points (1 bps = 0.01%)."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise UnitError(f"Bps needs an int, got {self.value!r}", "use Ratio.to_bps() to convert")

    def _key(self) -> int:
        return self.value

    @classmethod
    def parse(cls, raw: Any, what: str = "value") -> Bps:
        return Ratio.parse(raw, what).to_bps()

    @classmethod
    def from_float(cls, x: float, rounding: Rounding) -> Bps:
        """Quantise a risk-core ratio (0.825) to basis points in a named direction.

        The float's shortest repr is what is quantised (0.825 gives 8250 bps down, although its binary
        value is a hair below 0.825): that is the number the risk core meant.
        """
        check_float(x, "Bps")
        return Ratio(Decimal(repr(x))).to_bps(rounding)

    def to_ratio(self) -> Ratio:
        return Ratio(scaled(Decimal(self.value), -_BPS_PLACES))

    def as_float(self) -> float:
        return self.value / BPS_PER_ONE

    def __add__(self, other: object) -> Bps:
        self._check(other, "add")
        return Bps(self.value + other.value)  # type: ignore[attr-defined]

    def __sub__(self, other: object) -> Bps:
        self._check(other, "subtract")
        return Bps(self.value - other.value)  # type: ignore[attr-defined]

    def __neg__(self) -> Bps:
        return Bps(-self.value)

    def __abs__(self) -> Bps:
        return Bps(abs(self.value))

    def __str__(self) -> str:
        return f"{self.value}bps"

    def __repr__(self) -> str:
        return f"Bps({self.value})"


def _check_uint(raw: int, name: str) -> None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise UnitError(f"{name} needs an integer raw value, got {raw!r}", f"build it with Ratio.to_{name.lower()}()")
    if not 0 <= raw <= UINT256_MAX:
        raise UnitError(f"{name} {raw} is outside uint256", "on-chain values are 0 ≤ x < 2**256")


@dataclass(frozen=True, eq=False, slots=True)
class Wad(Unit):
    """1e18 fixed point (Compound v3 collateral factors, token amounts with 18 decimals)."""

    raw: int

    def __post_init__(self) -> None:
        _check_uint(self.raw, "Wad")

    def _key(self) -> int:
        return self.raw

    def to_ratio(self) -> Ratio:
        return Ratio(scaled(Decimal(self.raw), -_WAD_PLACES))

    def __str__(self) -> str:
        return f"{self.raw} wad"

    def __repr__(self) -> str:
        return f"Wad({self.raw})"


@dataclass(frozen=True, eq=False, slots=True)
class Ray(Unit):
    """1e27 fixed point (Aave interest-rate strategy parameters)."""

    raw: int

    def __post_init__(self) -> None:
        _check_uint(self.raw, "Ray")

    def _key(self) -> int:
        return self.raw

    def to_ratio(self) -> Ratio:
        return Ratio(scaled(Decimal(self.raw), -_RAY_PLACES))

    def __str__(self) -> str:
        return f"{self.raw} ray"

    def __repr__(self) -> str:
        return f"Ray({self.raw})"


@dataclass(frozen=True, eq=False, slots=True)
class TokenAmount(Unit):
    """An amount of one token in its smallest unit; equal only to the same token's amounts."""

    raw: int
    decimals: int
    symbol: str = ""

    def __post_init__(self) -> None:
        _check_uint(self.raw, "TokenAmount")
        if isinstance(self.decimals, bool) or not isinstance(self.decimals, int) or not 0 <= self.decimals <= 36:
            raise UnitError(f"token decimals {self.decimals!r} out of range", "ERC-20 decimals are an integer 0..36")
        if not isinstance(self.symbol, str):
            raise UnitError(f"token symbol {self.symbol!r} is not a string", "e.g. 'WETH'")

    def _key(self) -> tuple[int, int, str]:
        return (self.raw, self.decimals, self.symbol)

    def _check(self, other: object, op: str) -> None:
        if type(other) is not TokenAmount or (other.decimals, other.symbol) != (self.decimals, self.symbol):
            raise unit_mismatch(op, self, other)

    @classmethod
    def from_units(cls, amount: Any, decimals: int, symbol: str = "") -> TokenAmount:
        """``from_units("1.5", 18)`` → 1.5e18 raw; refuses amounts finer than the token's decimals."""
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
            raise UnitError(f"token decimals {decimals!r} out of range", "ERC-20 decimals are an integer 0..36")
        value = scaled(exact_number(amount, f"{symbol or 'token'} amount", "'1.5' or 15"), decimals)
        if value != value.to_integral_value():
            raise UnitError(
                f"{amount}{' ' + symbol if symbol else ''} has more than {decimals} decimals",
                f"the token's smallest unit is 1e-{decimals}; round the amount first",
            )
        return cls(exact_int(value, f"{amount} {symbol} at {decimals} decimals", None), decimals, symbol)

    @classmethod
    def whole(cls, tokens: int, decimals: int, symbol: str = "") -> TokenAmount:
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise UnitError(f"whole tokens must be an int, got {type(tokens).__name__} {tokens!r}", "use from_units('1.5', decimals)")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
            raise UnitError(f"token decimals {decimals!r} out of range", "ERC-20 decimals are an integer 0..36")
        return cls(tokens * 10**decimals, decimals, symbol)

    def to_whole_tokens(self, rounding: Rounding | None = None) -> int:
        """Whole tokens, as Aave caps are written; exact unless a rounding is named."""
        return exact_int(self.to_decimal(), f"{self!r} in whole tokens", rounding)

    def to_decimal(self) -> Decimal:
        return scaled(Decimal(self.raw), -self.decimals)

    def __add__(self, other: object) -> TokenAmount:
        self._check(other, "add")
        return TokenAmount(self.raw + other.raw, self.decimals, self.symbol)  # type: ignore[attr-defined]

    def __sub__(self, other: object) -> TokenAmount:
        self._check(other, "subtract")
        return TokenAmount(self.raw - other.raw, self.decimals, self.symbol)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"{plain(self.to_decimal())} {self.symbol}".strip()

    def __repr__(self) -> str:
        return f"TokenAmount({self.raw}, {self.decimals}, {self.symbol!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Usd(Unit):
    """An exact USD amount."""

    value: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.value, Decimal) or not self.value.is_finite():
            raise UnitError(f"Usd needs a finite Decimal, got {self.value!r}", "use Usd.parse('$50M')")

    def _key(self) -> Decimal:
        return self.value

    @classmethod
    def parse(cls, raw: Any, what: str = "value") -> Usd:
        """``"$50M"``, ``"50_000_000 USD"``, ``{usd: 50000000}``; a bare number is refused."""
        if isinstance(raw, Usd):
            return raw
        return cls(usd_number(raw, what))

    def as_float(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        whole, _, frac = plain(self.value).partition(".")
        sign = "-" if whole.startswith("-") else ""
        return f"${sign}{int(whole.lstrip('-')):,}" + (f".{frac}" if frac else "")

    def __repr__(self) -> str:
        return f"Usd({str(self.value)!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Duration(Unit):
    """Whole seconds; written ``"72h"``, ``"3d"``, ``{hours: 72}``."""

    seconds: int

    def __post_init__(self) -> None:
        if isinstance(self.seconds, bool) or not isinstance(self.seconds, int) or self.seconds < 0:
            raise UnitError(f"Duration needs a whole number of seconds ≥ 0, got {self.seconds!r}", "use Duration.parse('72h')")

    def _key(self) -> int:
        return self.seconds

    @classmethod
    def parse(cls, raw: Any, what: str = "value") -> Duration:
        if isinstance(raw, Duration):
            return raw
        return cls(duration_seconds(raw, what))

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def __str__(self) -> str:
        for unit in ("w", "d", "h", "m"):
            if self.seconds and self.seconds % SECONDS_PER_UNIT[unit] == 0:
                return f"{self.seconds // SECONDS_PER_UNIT[unit]}{unit}"
        return f"{self.seconds}s"

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"
