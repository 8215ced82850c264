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
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Literal

from risk.errors import UnitError

BPS_PER_ONE = 10_000
WAD = 10**18
RAY = 10**27
UINT256_MAX = 2**256 - 1

Rounding = Literal["down", "up", "nearest"]
_DECIMAL_ROUNDING = {"down": ROUND_FLOOR, "up": ROUND_CEILING, "nearest": ROUND_HALF_EVEN}

_NUMBER = r"[+-]?(?:\d[\d_]*)?(?:\.\d+)?(?:[eE][+-]?\d+)?"
_PERCENT_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")
_BPS_RE = re.compile(rf"^\s*({_NUMBER})\s*bps\s*$", re.IGNORECASE)
_USD_RE = re.compile(rf"^\s*(\$)?\s*({_NUMBER})\s*([kKmMbB])?\s*(USD)?\s*$")
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_SUFFIX = {"k": 10**3, "m": 10**6, "b": 10**9}
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _decimal(text: Any, what: str) -> Decimal:
    """Parse a number exactly; floats are refused (their binary value is not what was written)."""
    if isinstance(text, bool) or isinstance(text, float):
        raise UnitError(
            f"{what}: {text!r} is a bare float, which is not exact",
            "write the number as a string or an integer, e.g. '82.5%' or {bps: 8250}",
        )
    if isinstance(text, int):
        return Decimal(text)
    if isinstance(text, Decimal):
        return text
    if isinstance(text, str):
        try:
            value = Decimal(text.replace("_", ""))
        except InvalidOperation:
            raise UnitError(f"{what}: {text!r} is not a number", "use digits, e.g. '82.5%'") from None
        if not value.is_finite():
            raise UnitError(f"{what}: {text!r} is not finite", "use a finite number")
        return value
    raise UnitError(f"{what}: expected a number, got {type(text).__name__} {text!r}", "")


def _mismatch(op: str, left: object, right: object) -> UnitError:
    return UnitError(
        f"cannot {op} {type(left).__name__} ({left}) and {type(right).__name__} ({right}): different units",
        f"convert one side explicitly, e.g. {type(right).__name__}.to_ratio() or Ratio.to_bps()",
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
                return cls(_decimal(m.group(1), what) / 100)
            if m := _BPS_RE.match(raw):
                return cls(_decimal(m.group(1), what) / BPS_PER_ONE)
            raise UnitError(
                f"{what}: {raw!r} has no unit",
                "write a percentage or basis points, e.g. '82.5%' or '8250bps'",
            )
        if isinstance(raw, dict):
            if len(raw) == 1:
                ((key, val),) = raw.items()
                scale = {"bps": BPS_PER_ONE, "percent": 100, "ratio": 1}.get(str(key))
                if scale is not None:
                    return cls(_decimal(val, what) / scale)
            raise UnitError(
                f"{what}: {raw!r} is not a ratio",
                "use exactly one of {bps: 8250}, {percent: '82.5'} or {ratio: '0.825'}",
            )
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raise UnitError(
                f"{what}: bare number {raw!r} where a ratio is required",
                f"say the unit: '{Decimal(repr(raw)) * 100:f}%' if {raw} is a fraction of one, '{raw}%' if a percentage",
            )
        raise UnitError(f"{what}: {raw!r} is not a ratio", "write e.g. '82.5%' or {bps: 8250}")

    @classmethod
    def from_float(cls, x: float, quantum: Decimal = Decimal("1e-12")) -> Ratio:
        """Bring a float from the risk core across the boundary, rounded to ``quantum`` (nearest)."""
        if not math.isfinite(x):
            raise UnitError(f"cannot make a Ratio from non-finite {x!r}", "check the computation upstream")
        return cls(Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_EVEN))

    # -- conversion ---------------------------------------------------------------------------
    def to_bps(self, rounding: Rounding | None = None) -> Bps:
        """Exact unless a rounding direction is named; never silently drops precision."""
        scaled = self.value * BPS_PER_ONE
        if rounding is None:
            if scaled != scaled.to_integral_value():
                raise UnitError(
                    f"{self} is not a whole number of basis points ({scaled} bps)",
                    "Aave stores basis points: round explicitly with to_bps(rounding='down'|'up')",
                )
            return Bps(int(scaled))
        return Bps(int(scaled.to_integral_value(rounding=_DECIMAL_ROUNDING[rounding])))

    def to_wad(self, rounding: Rounding | None = None) -> Wad:
        return Wad(_exact_int(self.value * WAD, f"{self} in wad", rounding))

    def to_ray(self, rounding: Rounding | None = None) -> Ray:
        return Ray(_exact_int(self.value * RAY, f"{self} in ray", rounding))

    def __float__(self) -> float:
        return float(self.value)

    def as_float(self) -> float:
        return float(self.value)

    # -- arithmetic within the unit -----------------------------------------------------------
    def __add__(self, other: object) -> Ratio:
        self._check(other, "add")
        return Ratio(self.value + other.value)  # type: ignore[attr-defined]

    def __sub__(self, other: object) -> Ratio:
        self._check(other, "subtract")
        return Ratio(self.value - other.value)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        pct = (self.value * 100).normalize()
        return f"{pct:f}%"

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
        """Quantise a risk-core ratio (0.825) to basis points in a named direction."""
        if not math.isfinite(x):
            raise UnitError(f"cannot make Bps from non-finite {x!r}", "check the computation upstream")
        return Ratio(Decimal(repr(x))).to_bps(rounding)

    def to_ratio(self) -> Ratio:
        return Ratio(Decimal(self.value) / BPS_PER_ONE)

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


def _exact_int(value: Decimal, what: str, rounding: Rounding | None) -> int:
    if rounding is None:
        if value != value.to_integral_value():
            raise UnitError(f"{what} is not an integer ({value})", "round explicitly: rounding='down'|'up'")
        return int(value)
    return int(value.to_integral_value(rounding=_DECIMAL_ROUNDING[rounding]))


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
        return Ratio(Decimal(self.raw) / WAD)

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
        return Ratio(Decimal(self.raw) / RAY)

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
        if not 0 <= self.decimals <= 36:
            raise UnitError(f"token decimals {self.decimals} out of range", "ERC-20 decimals are 0..36")

    def _key(self) -> tuple[int, int, str]:
        return (self.raw, self.decimals, self.symbol)

    def _check(self, other: object, op: str) -> None:
        if type(other) is not TokenAmount or (other.decimals, other.symbol) != (self.decimals, self.symbol):
            raise _mismatch(op, self, other)

    @classmethod
    def from_units(cls, amount: Any, decimals: int, symbol: str = "") -> TokenAmount:
        """``from_units("1.5", 18)`` → 1.5e18 raw; refuses amounts finer than the token's decimals."""
        value = _decimal(amount, f"{symbol or 'token'} amount") * (Decimal(10) ** decimals)
        return cls(_exact_int(value, f"{amount} {symbol} at {decimals} decimals", None), decimals, symbol)

    @classmethod
    def whole(cls, tokens: int, decimals: int, symbol: str = "") -> TokenAmount:
        return cls(tokens * 10**decimals, decimals, symbol)

    def to_whole_tokens(self, rounding: Rounding | None = None) -> int:
        """Whole tokens, as Aave caps are written; exact unless a rounding is named."""
        return _exact_int(Decimal(self.raw) / (Decimal(10) ** self.decimals), f"{self} in whole tokens", rounding)

    def to_decimal(self) -> Decimal:
        return Decimal(self.raw) / (Decimal(10) ** self.decimals)

    def __add__(self, other: object) -> TokenAmount:
        self._check(other, "add")
        return TokenAmount(self.raw + other.raw, self.decimals, self.symbol)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return f"{self.to_decimal().normalize():f} {self.symbol}".strip()

    def __repr__(self) -> str:
        return f"TokenAmount({self.raw}, {self.decimals}, {self.symbol!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Usd(_Unit):
    """An exact USD amount."""

    value: Decimal

    def _key(self) -> Decimal:
        return self.value

    @classmethod
    def parse(cls, raw: Any, what: str = "value") -> Usd:
        """``"$50M"``, ``"50_000_000 USD"``, ``{usd: 50000000}``; a bare number is refused."""
        if isinstance(raw, Usd):
            return raw
        if isinstance(raw, dict) and set(raw) == {"usd"}:
            return cls(_decimal(raw["usd"], what))
        if isinstance(raw, str) and (m := _USD_RE.match(raw)) and (m.group(1) or m.group(4)):
            scale = _SUFFIX[m.group(3).lower()] if m.group(3) else 1
            return cls(_decimal(m.group(2), what) * scale)
        raise UnitError(f"{what}: {raw!r} is not a USD amount", "write e.g. '$50M', '2500000 USD' or {usd: 2500000}")

    def as_float(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        return f"${self.value.normalize():,f}"

    def __repr__(self) -> str:
        return f"Usd({str(self.value)!r})"


@dataclass(frozen=True, eq=False, slots=True)
class Duration(_Unit):
    """Whole seconds; written ``"72h"``, ``"3d"``, ``{hours: 72}``."""

    seconds: int

    def _key(self) -> int:
        return self.seconds

    @classmethod
    def parse(cls, raw: Any, what: str = "value") -> Duration:
        if isinstance(raw, Duration):
            return raw
        if isinstance(raw, str) and (m := _DURATION_RE.match(raw)):
            return cls(int(m.group(1)) * _SECONDS[m.group(2)])
        if isinstance(raw, dict) and len(raw) == 1:
            ((key, val),) = raw.items()
            unit = {"seconds": "s", "minutes": "m", "hours": "h", "days": "d", "weeks": "w"}.get(str(key))
            if unit and isinstance(val, int) and not isinstance(val, bool) and val >= 0:
                return cls(val * _SECONDS[unit])
        raise UnitError(f"{what}: {raw!r} is not a duration", "write e.g. '72h', '3d' or {hours: 72}")

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
