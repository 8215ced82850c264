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
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
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

_BPS_PLACES, _WAD_PLACES, _RAY_PLACES = 4, 18, 27
BPS_PER_ONE = 10**_BPS_PLACES
WAD = 10**_WAD_PLACES
RAY = 10**_RAY_PLACES
UINT256_MAX = 2**256 - 1

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
_EXACT = Context(
    prec=4 * MAX_DIGITS,
    rounding=ROUND_HALF_EVEN,
    Emin=-999_999,
    Emax=999_999,
    traps=[InvalidOperation, DivisionByZero, Overflow, Inexact],
)
# Same width, rounding allowed: for the one place that quantises on purpose (Ratio.from_float).
_ROUNDING = Context(prec=4 * MAX_DIGITS, Emin=-999_999, Emax=999_999, traps=[InvalidOperation, DivisionByZero, Overflow])

_NUMBER = r"[+-]?(?:\d[\d_]*)?(?:\.\d+)?(?:[eE][+-]?\d+)?"
_PERCENT_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")
_BPS_RE = re.compile(rf"^\s*({_NUMBER})\s*bps\s*$", re.IGNORECASE)
_USD_RE = re.compile(rf"^\s*(\$)?\s*({_NUMBER})\s*([kKmMbB])?\s*(USD)?\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_SUFFIX_PLACES = {"k": 3, "m": 6, "b": 9}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Longer than any policy means (about 31,700 years), short enough for datetime arithmetic downstream.
MAX_DURATION_SECONDS = 10**12


def _decimal(text: Any, what: str, example: str = "'82.5%' or {bps: 8250}") -> Decimal:
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


def _exactly(what: str, compute: Callable[[], Decimal]) -> Decimal:
    """Run Decimal arithmetic in the exact context; a result that would need rounding is a UnitError."""
    try:
        return compute()
    except DecimalException as exc:
        raise UnitError(
            f"{what} cannot be computed exactly ({type(exc).__name__})",
            "the value has too many digits or is out of range; round it explicitly first",
        ) from None


def _scaled(value: Decimal, places: int) -> Decimal:
    """``value * 10**places`` by moving the exponent: exact for any value, no context involved."""
    if not value.is_finite():
        raise UnitError(f"{value} is not finite", "use a finite number")
    sign, digits, exponent = value.as_tuple()
    return Decimal((sign, digits, int(exponent) + places))


def _plain(value: Decimal) -> str:
    """Positional text without trailing zeros (format 'f' is exact; normalize() would round to 28 digits)."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _mode(rounding: str) -> str:
    try:
        return _DECIMAL_ROUNDING[rounding]
    except (KeyError, TypeError):
        raise UnitError(f"unknown rounding {rounding!r}", "use 'down', 'up' or 'nearest'") from None


def _mismatch(op: str, left: object, right: object) -> UnitError:
    unitless = [type(x).__name__ for x in (left, right) if not isinstance(x, _Unit)]
    if unitless:
        hint = f"a bare {unitless[0]} has no unit: build the value with its type, e.g. Ratio.parse('82.5%')"
    else:
        hint = "convert one side explicitly, e.g. Bps.to_ratio() or Ratio.to_bps()"
    return UnitError(
        f"cannot {op} {type(left).__name__} ({left}) and {type(right).__name__} ({right}): different units", hint
    )


class _Unit:
    """Shared behaviour: same-unit arithmetic and ordering; anything else is a unit error."""

    __slots__ = ()

    def _key(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _check(self, other: object, op: str) -> None:
        if type(other) is not type(self):
            raise _mismatch(op, self, other)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            if isinstance(other, _Unit):
                raise _mismatch("compare", self, other)
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
        raise _mismatch("add", self, other)

    def __sub__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise _mismatch("subtract", self, other)

    def __radd__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise _mismatch("add", other, self)

    def __rsub__(self, other: object) -> Any:
        if type(other) is type(self):
            return NotImplemented
        raise _mismatch("subtract", other, self)


@dataclass(frozen=True, eq=False, slots=True)
class Ratio(_Unit):
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
        if isinstance(raw, str):
            if m := _PERCENT_RE.match(raw):
                return cls(_scaled(_decimal(m.group(1), what), -2))
            if m := _BPS_RE.match(raw):
                return cls(_scaled(_decimal(m.group(1), what), -_BPS_PLACES))
            raise UnitError(
                f"{what}: {raw!r} has no unit",
                "write a percentage or basis points, e.g. '82.5%' or '8250bps'",
            )
        if isinstance(raw, dict):
            if len(raw) == 1:
                ((key, val),) = raw.items()
                places = {"bps": -_BPS_PLACES, "percent": -2, "ratio": 0}.get(str(key))
                if places is not None:
                    return cls(_scaled(_decimal(val, what), places))
            raise UnitError(
                f"{what}: {raw!r} is not a ratio",
                "use exactly one of {bps: 8250}, {percent: '82.5'} or {ratio: '0.825'}",
            )
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            if (isinstance(raw, float) and not math.isfinite(raw)) or abs(raw) > 10**MAX_EXPONENT:
                hint = "write a percentage, e.g. '82.5%'"
            else:
                as_percent = _plain(_scaled(Decimal(repr(raw)), 2))
                hint = f"say the unit: '{as_percent}%' if {raw!r} is a fraction of one, '{raw!r}%' if a percentage"
            raise UnitError(f"{what}: bare number {raw!r} where a ratio is required", hint)
        raise UnitError(f"{what}: {raw!r} is not a ratio", "write e.g. '82.5%' or {bps: 8250}")

    @classmethod
    def from_float(cls, x: float, quantum: Decimal = Decimal("1e-12")) -> Ratio:
        """Bring a float from the risk core across the boundary, rounded to ``quantum`` (nearest)."""
        _check_float(x, "Ratio")
        try:
            return cls(Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_EVEN, context=_ROUNDING))
        except DecimalException:
            raise UnitError(f"cannot make a Ratio from {x!r} at quantum {quantum}", "check the computation upstream") from None

    # -- conversion ---------------------------------------------------------------------------
    def to_bps(self, rounding: Rounding | None = None) -> Bps:
        """Exact unless a rounding direction is named; never silently drops precision."""
        scaled = _scaled(self.value, _BPS_PLACES)
        if rounding is None and scaled != scaled.to_integral_value():
            raise UnitError(
                f"{self} is not a whole number of basis points ({_plain(scaled)} bps)",
                "Aave stores basis points: round explicitly with to_bps(rounding='down'|'up')",
            )
        return Bps(_exact_int(scaled, f"{self} in bps", rounding))

    def to_wad(self, rounding: Rounding | None = None) -> Wad:
        return Wad(_exact_int(_scaled(self.value, _WAD_PLACES), f"{self} in wad", rounding))

    def to_ray(self, rounding: Rounding | None = None) -> Ray:
        return Ray(_exact_int(_scaled(self.value, _RAY_PLACES), f"{self} in ray", rounding))

    def __float__(self) -> float:
        return float(self.value)

    def as_float(self) -> float:
        return float(self.value)

    # -- arithmetic within the unit -----------------------------------------------------------
    def __add__(self, other: object) -> Ratio:
        self._check(other, "add")
        return Ratio(_exactly(f"{self} + {other}", lambda: _EXACT.add(self.value, other.value)))  # type: ignore[attr-defined]

    def __sub__(self, other: object) -> Ratio:
        self._check(other, "subtract")
        return Ratio(_exactly(f"{self} - {other}", lambda: _EXACT.subtract(self.value, other.value)))  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"{_plain(_scaled(self.value, 2))}%"

    def __repr__(self) -> str:
        return f"Ratio({str(self)!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Bps(_Unit):
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
        _check_float(x, "Bps")
        return Ratio(Decimal(repr(x))).to_bps(rounding)

    def to_ratio(self) -> Ratio:
        return Ratio(_scaled(Decimal(self.value), -_BPS_PLACES))

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


def _check_float(x: Any, unit: str) -> None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise UnitError(f"cannot make {unit} from {type(x).__name__} {x!r}", "pass the risk core's float, e.g. 0.825")
    if not math.isfinite(x):
        raise UnitError(f"cannot make {unit} from non-finite {x!r}", "check the computation upstream")


def _exact_int(value: Decimal, what: str, rounding: Rounding | None) -> int:
    if value and value.adjusted() > 2 * MAX_EXPONENT:
        # Far beyond uint256 (1.2e77): refuse before int() spends minutes building the number.
        raise UnitError(f"{what} is out of range ({value:.3e})", "on-chain integers are below 2**256")
    if rounding is None:
        if value != value.to_integral_value():
            raise UnitError(f"{what} is not an integer ({_plain(value)})", "round explicitly: rounding='down'|'up'")
        return int(value)
    return int(value.to_integral_value(rounding=_mode(rounding)))


def _check_uint(raw: int, name: str) -> None:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise UnitError(f"{name} needs an integer raw value, got {raw!r}", f"build it with Ratio.to_{name.lower()}()")
    if not 0 <= raw <= UINT256_MAX:
        raise UnitError(f"{name} {raw} is outside uint256", "on-chain values are 0 ≤ x < 2**256")


@dataclass(frozen=True, eq=False, slots=True)
class Wad(_Unit):
    """1e18 fixed point (Compound v3 collateral factors, token amounts with 18 decimals)."""

    raw: int

    def __post_init__(self) -> None:
        _check_uint(self.raw, "Wad")

    def _key(self) -> int:
        return self.raw

    def to_ratio(self) -> Ratio:
        return Ratio(_scaled(Decimal(self.raw), -_WAD_PLACES))

    def __str__(self) -> str:
        return f"{self.raw} wad"

    def __repr__(self) -> str:
        return f"Wad({self.raw})"


@dataclass(frozen=True, eq=False, slots=True)
class Ray(_Unit):
    """1e27 fixed point (Aave interest-rate strategy parameters)."""

    raw: int

    def __post_init__(self) -> None:
        _check_uint(self.raw, "Ray")

    def _key(self) -> int:
        return self.raw

    def to_ratio(self) -> Ratio:
        return Ratio(_scaled(Decimal(self.raw), -_RAY_PLACES))

    def __str__(self) -> str:
        return f"{self.raw} ray"

    def __repr__(self) -> str:
        return f"Ray({self.raw})"


@dataclass(frozen=True, eq=False, slots=True)
class TokenAmount(_Unit):
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
            raise _mismatch(op, self, other)

    @classmethod
    def from_units(cls, amount: Any, decimals: int, symbol: str = "") -> TokenAmount:
        """``from_units("1.5", 18)`` → 1.5e18 raw; refuses amounts finer than the token's decimals."""
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
            raise UnitError(f"token decimals {decimals!r} out of range", "ERC-20 decimals are an integer 0..36")
        value = _scaled(_decimal(amount, f"{symbol or 'token'} amount", "'1.5' or 15"), decimals)
        if value != value.to_integral_value():
            raise UnitError(
                f"{amount}{' ' + symbol if symbol else ''} has more than {decimals} decimals",
                f"the token's smallest unit is 1e-{decimals}; round the amount first",
            )
        return cls(_exact_int(value, f"{amount} {symbol} at {decimals} decimals", None), decimals, symbol)

    @classmethod
    def whole(cls, tokens: int, decimals: int, symbol: str = "") -> TokenAmount:
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise UnitError(f"whole tokens must be an int, got {type(tokens).__name__} {tokens!r}", "use from_units('1.5', decimals)")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 36:
            raise UnitError(f"token decimals {decimals!r} out of range", "ERC-20 decimals are an integer 0..36")
        return cls(tokens * 10**decimals, decimals, symbol)

    def to_whole_tokens(self, rounding: Rounding | None = None) -> int:
        """Whole tokens, as Aave caps are written; exact unless a rounding is named."""
        return _exact_int(self.to_decimal(), f"{self!r} in whole tokens", rounding)

    def to_decimal(self) -> Decimal:
        return _scaled(Decimal(self.raw), -self.decimals)

    def __add__(self, other: object) -> TokenAmount:
        self._check(other, "add")
        return TokenAmount(self.raw + other.raw, self.decimals, self.symbol)  # type: ignore[attr-defined]

    def __sub__(self, other: object) -> TokenAmount:
        self._check(other, "subtract")
        return TokenAmount(self.raw - other.raw, self.decimals, self.symbol)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"{_plain(self.to_decimal())} {self.symbol}".strip()

    def __repr__(self) -> str:
        return f"TokenAmount({self.raw}, {self.decimals}, {self.symbol!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Usd(_Unit):
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
        if isinstance(raw, dict) and set(raw) == {"usd"}:
            return cls(_decimal(raw["usd"], what, "{usd: 2500000} or '$2.5M'"))
        if isinstance(raw, str) and (m := _USD_RE.match(raw)) and (m.group(1) or m.group(4)):
            places = _SUFFIX_PLACES[m.group(3).lower()] if m.group(3) else 0
            return cls(_scaled(_decimal(m.group(2), what, "'$2.5M'"), places))
        raise UnitError(f"{what}: {raw!r} is not a USD amount", "write e.g. '$50M', '2500000 USD' or {usd: 2500000}")

    def as_float(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        whole, _, frac = _plain(self.value).partition(".")
        sign = "-" if whole.startswith("-") else ""
        return f"${sign}{int(whole.lstrip('-')):,}" + (f".{frac}" if frac else "")

    def __repr__(self) -> str:
        return f"Usd({str(self.value)!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Duration(_Unit):
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
        if count * _SECONDS[unit] > MAX_DURATION_SECONDS:
            raise UnitError(f"{what}: {raw!r} is too long", f"durations are at most {MAX_DURATION_SECONDS} seconds")
        return cls(count * _SECONDS[unit])

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def __str__(self) -> str:
        for unit in ("w", "d", "h", "m"):
            if self.seconds and self.seconds % _SECONDS[unit] == 0:
                return f"{self.seconds // _SECONDS[unit]}{unit}"
        return f"{self.seconds}s"

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"
