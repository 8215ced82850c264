"""Options on a forward: the book, and Black-76 prices and Greeks of every option in it.

Units: prices in USD per unit of underlying (times the signed quantity for a position); volatility is
an annualised fraction (0.8 = 80%); time in years; rates as continuously compounded fractions per year.
Every function is vectorised over the book (numpy arrays, no Python loop over options).

Black-76 with discount factor ``D = exp(-r T)``, ``d1 = (ln(F/K) + v^2 T / 2) / (v sqrt T)``, ``d2 = d1 - v sqrt T``:
call ``D (F N(d1) - K N(d2))``, put ``D (K N(-d2) - F N(-d1))``.

Built on it: scenario-grid portfolio margin (`risk.options_margin`), its calibration
(`risk.options_calibration`) and its backtest (`risk.options_backtest`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtr

from risk.errors import RiskInputError

DAYS_PER_YEAR = 365.0  # crypto trades every calendar day
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


@dataclass(frozen=True, slots=True, eq=False)
class OptionBook:
    """A book of European options on forwards, one element per position (arrays broadcast to 1-D).

    Attributes
    ----------
    forward : USD price of the forward (or spot for an undiscounted underlying), > 0
    strike : USD, > 0
    expiry : years to expiry, > 0 (an expiry in the past is refused)
    vol : annualised implied volatility, > 0
    is_call : bool, True for calls
    quantity : signed units of underlying per option (negative = written)
    rate : continuously compounded discount rate per year
    """

    forward: np.ndarray
    strike: np.ndarray
    expiry: np.ndarray
    vol: np.ndarray
    is_call: np.ndarray
    quantity: np.ndarray
    rate: np.ndarray

    def __post_init__(self) -> None:
        names = [f.name for f in fields(self)]
        raw = [np.asarray(getattr(self, n)) for n in names]
        if any(a.ndim > 1 for a in raw):
            raise RiskInputError("option book arrays must be scalars or 1-D", "pass one value per option")
        try:
            arrays = np.broadcast_arrays(*[np.atleast_1d(a) for a in raw])
        except ValueError:
            shapes = ", ".join(f"{n} {a.shape}" for n, a in zip(names, raw, strict=True))
            raise RiskInputError(f"option book arrays differ in length: {shapes}", "pass equal-length arrays") from None
        if arrays[0].size == 0:
            raise RiskInputError("option book is empty", "pass at least one option")
        for n, a in zip(names, arrays, strict=True):
            a = np.array(a, dtype=bool if n == "is_call" else np.float64)
            if n != "is_call":
                _check_finite(a, n)
            a.setflags(write=False)
            object.__setattr__(self, n, a)
        for n, what in (("forward", "price"), ("strike", "price"), ("vol", "volatility")):
            a = getattr(self, n)
            if np.any(a <= 0):
                i = int(np.flatnonzero(a <= 0)[0])
                raise RiskInputError(f"option {i}: {n} {a[i]!r} is not positive", f"a {what} must be > 0")
        if np.any(self.expiry <= 0):
            i = int(np.flatnonzero(self.expiry <= 0)[0])
            raise RiskInputError(
                f"option {i}: expiry {self.expiry[i]!r} years is not in the future", "drop expired options from the book"
            )

    def __len__(self) -> int:
        return int(self.forward.size)


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(a)):
        i = int(np.flatnonzero(~np.isfinite(a))[0])
        raise RiskInputError(f"option {i}: {name} is not finite ({a[i]!r})", "check the book's source data")


def black76_kernel(F: np.ndarray, K: np.ndarray, T: np.ndarray, v: np.ndarray, call: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Unchecked Black-76 price, broadcasting over any shapes (the scenario engine's kernel)."""
    sd = v * np.sqrt(T)
    d1 = np.log(F / K) / sd + 0.5 * sd
    d2 = d1 - sd
    sign = np.where(call, 1.0, -1.0)
    return np.exp(-r * T) * sign * (F * ndtr(sign * d1) - K * ndtr(sign * d2))


def black76_price(book: OptionBook) -> np.ndarray:
    """Black-76 price of one unit of each option, USD (quantity not applied)."""
    return black76_kernel(book.forward, book.strike, book.expiry, book.vol, book.is_call, book.rate)


@dataclass(frozen=True, slots=True, eq=False)
class Greeks:
    """Per-unit Black-76 sensitivities of each option (quantity not applied).

    price : USD; delta : dV/dF (USD per USD); gamma : d2V/dF2 (per USD); vega : dV/dvol, USD per 1.00 of
    annualised vol (divide by 100 for one vol point); theta : dV/dt as calendar time passes, USD per year
    (``-dV/dT``; divide by 365 for a day).
    """

    price: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray

    def totals(self, quantity: np.ndarray) -> dict[str, float]:
        """Book totals weighted by signed quantity, keyed by Greek name (sorted)."""
        q = np.asarray(quantity, dtype=np.float64)
        return {n: float(q @ getattr(self, n)) for n in sorted(("price", "delta", "gamma", "vega", "theta"))}


def greeks(book: OptionBook) -> Greeks:
    """Black-76 price, delta, gamma, vega and theta of every option in the book, vectorised.

    Returns
    -------
    Greeks
        Arrays of shape (len(book),), per unit of underlying; see `Greeks` for units.
    """
    F, K, T, v, r = book.forward, book.strike, book.expiry, book.vol, book.rate
    sqrt_t = np.sqrt(T)
    sd = v * sqrt_t
    d1 = np.log(F / K) / sd + 0.5 * sd
    d2 = d1 - sd
    disc = np.exp(-r * T)
    sign = np.where(book.is_call, 1.0, -1.0)
    price = disc * sign * (F * ndtr(sign * d1) - K * ndtr(sign * d2))
    pdf1 = _pdf(d1)
    delta = disc * sign * ndtr(sign * d1)
    gamma = disc * pdf1 / (F * sd)
    vega = disc * F * pdf1 * sqrt_t
    # dV/dT = -r V + D F phi(d1) v / (2 sqrt T), the same for calls and puts; theta is its negative.
    theta = r * price - disc * F * pdf1 * v / (2.0 * sqrt_t)
    out = Greeks(price, delta, gamma, vega, theta)
    for n in ("price", "delta", "gamma", "vega", "theta"):
        getattr(out, n).setflags(write=False)
    return out
