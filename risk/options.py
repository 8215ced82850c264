"""Options on a forward: Black-76 prices and Greeks, scenario-grid portfolio margin, and its backtest.

Units: prices and margins in USD per unit of underlying times the signed quantity; volatility is an
annualised fraction (0.8 = 80%); time in years; rates as continuously compounded fractions per year.
Every function is vectorised over the book (numpy arrays, no Python loop over options).

Black-76 with discount factor ``D = exp(-r T)``, ``d1 = (ln(F/K) + v^2 T / 2) / (v sqrt T)``, ``d2 = d1 - v sqrt T``:
call ``D (F N(d1) - K N(d2))``, put ``D (K N(-d2) - F N(-d1))``.

Portfolio margin is the worst loss of the book over a grid of scenarios: relative moves of the
forward times relative implied-volatility shocks, plus extreme moves whose loss counts only in part.
Two grid shapes are provided: CME SPAN's 16 scenarios and Deribit's buckets with an extended table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
from scipy.special import ndtr

from risk.backtest import (
    NORMAL,
    MarginBacktest,
    Tail,
    TailKind,
    backtest_losses,
    coverage_float,
    horizon_quantiles,
    standardised_moves,
)
from risk.errors import RiskInputError
from risk.units import Ratio
from risk.vol import EWMA

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


def _black76(F: np.ndarray, K: np.ndarray, T: np.ndarray, v: np.ndarray, call: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Unchecked Black-76 price, broadcasting over any shapes (the scenario engine's kernel)."""
    sd = v * np.sqrt(T)
    d1 = np.log(F / K) / sd + 0.5 * sd
    d2 = d1 - sd
    sign = np.where(call, 1.0, -1.0)
    return np.exp(-r * T) * sign * (F * ndtr(sign * d1) - K * ndtr(sign * d2))


def black76_price(book: OptionBook) -> np.ndarray:
    """Black-76 price of one unit of each option, USD (quantity not applied)."""
    return _black76(book.forward, book.strike, book.expiry, book.vol, book.is_call, book.rate)


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


# -- scenario grids -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScenarioGrid:
    """Scenarios: every (spot shock, vol shock) pair at full weight, plus extreme moves at a fraction.

    Shocks are relative: a spot shock of -0.1 takes the forward to 0.9 F; a vol shock of 0.3 takes the
    vol to 1.3 v. ``horizon_years`` is the look-ahead: options are revalued with that much less time
    to expiry (0 for an instantaneous shock); an option expiring within it is worth its intrinsic value.
    """

    name: str
    spot_shocks: tuple[float, ...]
    vol_shocks: tuple[float, ...]
    extreme_moves: tuple[float, ...] = ()
    extreme_fraction: float = 0.0
    extreme_vol_shock: float = 0.0
    horizon_years: float = 0.0

    def __post_init__(self) -> None:
        if not self.spot_shocks or not self.vol_shocks:
            raise RiskInputError(f"grid {self.name!r} has no spot or no vol shocks", "give at least one of each")
        for what, xs in (("spot shock", self.spot_shocks), ("vol shock", self.vol_shocks),
                         ("extreme move", self.extreme_moves), ("extreme vol shock", (self.extreme_vol_shock,))):
            for x in xs:
                if not (math.isfinite(x) and x > -1.0):
                    raise RiskInputError(f"grid {self.name!r}: {what} {x!r} is not above -100%", "shocks are relative, > -1")
        if not (math.isfinite(self.extreme_fraction) and 0.0 <= self.extreme_fraction <= 1.0):
            raise RiskInputError(f"extreme fraction {self.extreme_fraction!r} outside [0, 1]", "CME SPAN uses about 0.35")
        if not (math.isfinite(self.horizon_years) and self.horizon_years >= 0.0):
            raise RiskInputError(f"look-ahead {self.horizon_years!r} years is negative", "use 0 or e.g. 1/365")

    def scenarios(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat (spot shock, vol shock, weight) arrays: the grid row-major by spot, then the extremes."""
        s, v = np.meshgrid(np.asarray(self.spot_shocks), np.asarray(self.vol_shocks), indexing="ij")
        ext = np.asarray(self.extreme_moves, dtype=np.float64)
        spot = np.concatenate([s.ravel(), ext])
        vol = np.concatenate([v.ravel(), np.full(ext.shape, self.extreme_vol_shock)])
        weight = np.concatenate([np.ones(s.size), np.full(ext.shape, self.extreme_fraction)])
        return spot, vol, weight


@dataclass(frozen=True, slots=True)
class ScanRange:
    """Relative price moves a grid scans: up to ``+up`` and down to ``-down`` (0.12 = 12%).

    Under a log-normal or fat-tailed model the fall at a given quantile is smaller than the rise, and
    stays below 100%: ``0 < down < 1``, ``up > 0``. ``ScanRange.symmetric(0.12)`` is SPAN's usual form.
    """

    up: float
    down: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.up) and self.up > 0):
            raise RiskInputError(f"scan range up {self.up!r} is not positive", "a relative move, e.g. 0.12 for 12%")
        if not (math.isfinite(self.down) and 0 < self.down < 1):
            raise RiskInputError(f"scan range down {self.down!r} outside (0, 1)", "a fall of 100% or more has no price")

    @classmethod
    def symmetric(cls, scan: float) -> ScanRange:
        return cls(scan, scan)

    @property
    def widest(self) -> float:
        return max(self.up, self.down)


def span_grid(
    scan: ScanRange, vol_shock: float, *, vol_down: float | None = None, extreme_multiple: float = 3.0,
    extreme_fraction: float = 0.35, horizon_years: float = 0.0,
) -> ScenarioGrid:
    """CME SPAN-like 16 scenarios.

    Forward unchanged, up 1/3, 2/3, 3/3 of ``scan.up`` and down 1/3, 2/3, 3/3 of ``scan.down``, each at
    vol up by ``vol_shock`` and down by ``vol_down`` (default: the same) (14), plus an extreme rise and fall at unchanged vol counting
    ``extreme_fraction`` of their loss (2): ``(1 + up)^m - 1`` and ``(1 - down)^m - 1`` with
    ``m = extreme_multiple``, i.e. m times the scan's move in log terms, so a fall never reaches -100%
    (a linear 3 x 40% would). CME's standard array is commonly published as 3x the scan range at 35% of
    the loss; both are settings here.
    """
    if not isinstance(scan, ScanRange):
        raise RiskInputError(f"scan range {scan!r} is not a ScanRange", "use ScanRange.symmetric(0.12)")
    down = vol_shock if vol_down is None else vol_down
    if not (math.isfinite(vol_shock) and vol_shock >= 0) or not (math.isfinite(down) and 0 <= down < 1):
        raise RiskInputError(f"vol shocks up {vol_shock!r}, down {down!r}", "relative changes: up >= 0, 0 <= down < 1")
    if not (math.isfinite(extreme_multiple) and extreme_multiple >= 1):
        raise RiskInputError(f"extreme multiple {extreme_multiple!r} is below 1", "CME uses 2 to 3 times the scan range")
    moves = (0.0,) + tuple(x for k in (1, 2, 3) for x in (scan.up * k / 3.0, -scan.down * k / 3.0))
    return ScenarioGrid(
        name="span-16", spot_shocks=moves, vol_shocks=(vol_shock, -down),
        extreme_moves=((1.0 + scan.up) ** extreme_multiple - 1.0, (1.0 - scan.down) ** extreme_multiple - 1.0),
        extreme_fraction=extreme_fraction, extreme_vol_shock=0.0, horizon_years=horizon_years,
    )


DERIBIT_EXTENDED_MOVES = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)


def deribit_grid(
    scan: ScanRange, vol_up: float, vol_down: float, *, extended_fraction: float, buckets: int = 9,
    extended_moves: tuple[float, ...] = DERIBIT_EXTENDED_MOVES, horizon_years: float = 0.0,
) -> ScenarioGrid:
    """Deribit-like grid: ``buckets`` evenly spaced moves from ``-scan.down`` to ``+scan.up`` (zero
    included; Deribit: 9 over +/-16%) x vol up / unchanged / down, plus an extended table of large moves
    taken at vol up and counting ``extended_fraction`` of their loss (Deribit's dampener; it publishes
    moves such as -66%, -33%, +50% ... +500%, the default here).
    """
    if not isinstance(scan, ScanRange):
        raise RiskInputError(f"scan range {scan!r} is not a ScanRange", "use ScanRange.symmetric(0.16)")
    if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 3 or buckets % 2 == 0:
        raise RiskInputError(f"{buckets!r} buckets", "use an odd number >= 3 so that zero is a bucket (Deribit: 9)")
    if not (math.isfinite(vol_down) and 0 <= vol_down < 1) or not (math.isfinite(vol_up) and vol_up >= 0):
        raise RiskInputError(f"vol shocks up {vol_up!r}, down {vol_down!r}", "up >= 0 and 0 <= down < 1, relative")
    half = buckets // 2
    moves = tuple(float(x) for x in np.concatenate([
        np.linspace(-scan.down, 0.0, half + 1), np.linspace(0.0, scan.up, half + 1)[1:]]))
    return ScenarioGrid(
        name=f"deribit-{buckets}x3", spot_shocks=moves, vol_shocks=(vol_up, 0.0, -vol_down),
        extreme_moves=tuple(extended_moves), extreme_fraction=extended_fraction, extreme_vol_shock=vol_up,
        horizon_years=horizon_years,
    )


# -- scenario margin ------------------------------------------------------------------------------


def _scenario_values(book: OptionBook, grid: ScenarioGrid) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit option values under every scenario, shape (scenarios, options), and the weights."""
    spot, vol, weight = grid.scenarios()
    F = book.forward[None, :] * (1.0 + spot[:, None])
    v = book.vol[None, :] * (1.0 + vol[:, None])
    T = book.expiry - grid.horizon_years
    live = T > 0
    values = _black76(F, book.strike, np.where(live, T, 1.0), v, book.is_call, book.rate)
    if not np.all(live):
        # Expired within the look-ahead: the holder has the intrinsic value, undiscounted.
        intrinsic = np.maximum(np.where(book.is_call, 1.0, -1.0) * (F - book.strike), 0.0)
        values = np.where(live, values, intrinsic)
    return values, weight


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioMargin:
    """Worst weighted loss of a book over a grid, in USD, and where it occurred.

    ``loss_grid[i, j]`` is the loss at spot shock i and vol shock j; ``extreme_losses`` are the extreme
    moves' full (unweighted) losses. ``margin = max(0, loss_grid.max(), fraction x extreme_losses.max())``.
    """

    grid: ScenarioGrid
    value: float
    margin: float
    loss_grid: np.ndarray
    extreme_losses: np.ndarray
    worst_spot_shock: float
    worst_vol_shock: float
    worst_is_extreme: bool


def scenario_margin(book: OptionBook, grid: ScenarioGrid) -> ScenarioMargin:
    """Portfolio margin of the book: the worst loss over the grid's scenarios.

    Parameters
    ----------
    book : OptionBook
        Positions; value ``sum(quantity x price)`` in USD.
    grid : ScenarioGrid
        Spot and vol shocks (see `span_grid`, `deribit_grid`).

    Returns
    -------
    ScenarioMargin
        Margin in USD, >= 0, computed as one (scenarios x options) array and a matrix-vector product.
    """
    values, weight = _scenario_values(book, grid)
    base = black76_price(book)
    losses = (base[None, :] - values) @ book.quantity  # (scenarios,)
    weighted = losses * weight
    k = int(np.argmax(weighted))
    n_grid = len(grid.spot_shocks) * len(grid.vol_shocks)
    spot, vol, _ = grid.scenarios()
    loss_grid = losses[:n_grid].reshape(len(grid.spot_shocks), len(grid.vol_shocks))
    extreme = losses[n_grid:].copy()
    for a in (loss_grid, extreme):
        a.setflags(write=False)
    return ScenarioMargin(
        grid=grid, value=float(base @ book.quantity), margin=max(0.0, float(weighted[k])), loss_grid=loss_grid,
        extreme_losses=extreme, worst_spot_shock=float(spot[k]), worst_vol_shock=float(vol[k]),
        worst_is_extreme=k >= n_grid,
    )


# -- calibration ----------------------------------------------------------------------------------


def recommend_scan_range(
    sigma_annual: float, horizon_days: float, coverage: Ratio, *, tail: Tail = NORMAL,
    quantiles: tuple[float, float] | None = None,
) -> ScanRange:
    """Relative price scan range that covers the move over the horizon at ``coverage``, either way.

    Parameters
    ----------
    sigma_annual : float
        Annualised volatility of the underlying (0.8 = 80%).
    horizon_days : float
        Look-ahead in days (365 a year: crypto trades every day).
    coverage : Ratio
        Coverage target. The quantiles are two-sided, at ``(1 - c)/2`` and ``(1 + c)/2``, so that a book
        losing on either side (a straddle) is still covered with probability ``c``.
    tail : Tail
        Normal or Student-t standardised quantiles.
    quantiles : (lower, upper), optional
        Standardised quantiles at those probabilities (e.g. filtered historical), overriding ``tail``.

    Returns
    -------
    ScanRange
        ``up = exp(q_hi s) - 1`` and ``down = 1 - exp(q_lo s)`` with ``s = sigma sqrt(days / 365)``;
        ``.widest`` is the single symmetric range SPAN would publish.
    """
    c = coverage_float(coverage)
    if not (math.isfinite(sigma_annual) and sigma_annual > 0):
        raise RiskInputError(f"volatility {sigma_annual!r} is not positive", "pass an annualised volatility, e.g. 0.8")
    if not (math.isfinite(horizon_days) and horizon_days > 0):
        raise RiskInputError(f"horizon of {horizon_days!r} days is not positive", "use e.g. 1 day")
    lo_p, hi_p = (1.0 - c) / 2.0, (1.0 + c) / 2.0
    q_lo, q_hi = quantiles if quantiles is not None else (tail.parametric_quantile(lo_p), tail.parametric_quantile(hi_p))
    s = sigma_annual * math.sqrt(horizon_days / DAYS_PER_YEAR)
    if not q_lo < 0 < q_hi:
        raise RiskInputError(f"tail quantiles {q_lo!r}, {q_hi!r} do not straddle zero", "check the tail model's history")
    return ScanRange(math.expm1(q_hi * s), -math.expm1(q_lo * s))


def recommend_vol_shock(sigma_path: np.ndarray, horizon_steps: int, coverage: Ratio) -> tuple[float, float]:
    """Relative volatility shocks (up, down) from the history of the volatility model's forecasts.

    Parameters
    ----------
    sigma_path : array
        Volatility forecasts on a fixed step (any unit: only ratios are used), oldest first.
    horizon_steps : int
        Look-ahead in steps.
    coverage : Ratio
        Two-sided, as for the scan range: the quantiles of ``log(sigma[t+h] / sigma[t])`` at
        ``(1 + c)/2`` and ``(1 - c)/2``.

    Returns
    -------
    (up, down) : float
        ``exp(q_hi) - 1 >= 0`` and ``1 - exp(q_lo) >= 0``.
    """
    c = coverage_float(coverage)
    sig = np.asarray(sigma_path, dtype=np.float64)
    if sig.ndim != 1 or sig.size <= horizon_steps or horizon_steps < 1:
        raise RiskInputError(f"{sig.size} volatility values for a {horizon_steps}-step horizon", "use a longer history")
    if not np.all(np.isfinite(sig)) or np.any(sig <= 0):
        raise RiskInputError("volatility path has a non-positive or non-finite value", "check the volatility model")
    d = np.log(sig[horizon_steps:] / sig[:-horizon_steps])
    q_lo, q_hi = np.quantile(d, ((1.0 - c) / 2.0, (1.0 + c) / 2.0))
    return max(float(np.expm1(q_hi)), 0.0), max(float(-np.expm1(q_lo)), 0.0)


# -- backtest against realised moves --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionTemplate:
    """A book written relative to the forward, re-struck at every backtest decision.

    ``moneyness`` is K / F; ``expiry_years`` is the time to expiry when the position is opened.
    """

    name: str
    moneyness: tuple[float, ...]
    expiry_years: tuple[float, ...]
    is_call: tuple[bool, ...]
    quantity: tuple[float, ...]

    def book(self, forward: float, vol: float) -> OptionBook:
        return OptionBook(
            forward=np.full(len(self.moneyness), forward), strike=forward * np.asarray(self.moneyness),
            expiry=np.asarray(self.expiry_years), vol=np.full(len(self.moneyness), vol),
            is_call=np.asarray(self.is_call), quantity=np.asarray(self.quantity), rate=0.0,
        )


def straddle(expiry_years: float, quantity: float) -> OptionTemplate:
    """At-the-money call and put, ``quantity`` each (negative = written): the book that loses both ways."""
    return OptionTemplate(f"straddle {quantity:+g} x {expiry_years * DAYS_PER_YEAR:g}d", (1.0, 1.0),
                          (expiry_years, expiry_years), (True, False), (quantity, quantity))


GridFactory = Callable[[ScanRange, float, float, float], ScenarioGrid]
"""Builds the grid of one backtest decision from (scan range, vol up, vol down, look-ahead in years)."""


def span_factory(scan: ScanRange, vol_up: float, vol_down: float, horizon_years: float) -> ScenarioGrid:
    """SPAN grid with the recommended vol shocks up and down and CME's usual extremes."""
    return span_grid(scan, vol_up, vol_down=vol_down, horizon_years=horizon_years)


@dataclass(frozen=True, slots=True, eq=False)
class OptionMarginBacktest:
    """Scenario margin set at each non-overlapping horizon start vs the book's realised loss (USD).

    ``at`` are the decision indices into ``closes[1:]`` (decision t sees closes up to t + 1),
    ``margins`` and ``losses`` the USD margin set and the loss realised over the next horizon;
    ``mean_margin_over_notional`` averages margin / forward; ``implied_vol_source`` says what stood
    in for implied volatility.
    """

    template: OptionTemplate
    grid: str
    coverage: float
    horizon_steps: int
    tail: str
    implied_vol_source: str
    mean_scan_range: float  # mean of ScanRange.widest
    mean_vol_shock_up: float
    mean_margin_over_notional: float
    at: np.ndarray
    margins: np.ndarray
    losses: np.ndarray
    backtest: MarginBacktest


def backtest_option_margin(
    closes: np.ndarray, *, steps_per_year: float, horizon_steps: int, coverage: Ratio, template: OptionTemplate,
    half_life_steps: float = 72.0, tail: Tail = NORMAL, burn_in_steps: int = 720,
    grid_factory: GridFactory = span_factory,
) -> OptionMarginBacktest:
    """Backtest the scenario margin of a template book against realised moves of the underlying.

    At every decision (every ``horizon_steps``, after ``burn_in_steps``) the template is struck at the
    current price with the current EWMA volatility as its implied volatility; the scan range comes from
    `recommend_scan_range` with the tail's two-sided quantiles, and the vol shocks from the expanding
    history of EWMA volatility changes over the horizon (only data known at the decision). The
    realised loss revalues the book after the horizon at the realised price and the then-current EWMA
    volatility, with the time to expiry reduced.

    No implied-volatility history is used: realised (EWMA) volatility stands in for it, so the vol
    shock tests changes of realised volatility, which are smoother than those of implied volatility.
    """
    c = coverage_float(coverage)
    if isinstance(horizon_steps, bool) or not isinstance(horizon_steps, int) or horizon_steps < 1:
        raise RiskInputError(f"horizon of {horizon_steps!r} steps", "use a whole number of steps >= 1")
    if not (math.isfinite(steps_per_year) and steps_per_year > 0):
        raise RiskInputError(f"{steps_per_year!r} steps per year", "e.g. 8760 for hourly data")
    look_ahead = horizon_steps / steps_per_year
    if min(template.expiry_years) <= look_ahead:
        raise RiskInputError(f"template {template.name!r} expires within the {horizon_steps}-step horizon",
                             "use options that outlive the look-ahead")
    p = np.asarray(closes, dtype=np.float64)
    if p.ndim != 1 or p.size < 3 or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise RiskInputError(f"price series of shape {p.shape} is too short or has non-positive values",
                             "need at least three finite closes > 0")
    sig = np.sqrt(EWMA(half_life_steps).variance_path(np.diff(np.log(p)))[:, 0])
    lp = np.log(p[1:])
    history = Tail(TailKind.FILTERED_HISTORICAL, min_history=tail.min_history)
    start = max(burn_in_steps, tail.min_history + horizon_steps - 1)
    at = np.arange(start, lp.size - horizon_steps, horizon_steps)
    if at.size < 2:
        raise RiskInputError(f"{p.size} prices leave {at.size} backtest period(s)", "use a longer history")
    probs = ((1.0 - c) / 2.0, (1.0 + c) / 2.0)
    q_lo, q_hi = horizon_quantiles(tail, probs, standardised_moves(lp, sig, horizon_steps), at, horizon_steps)
    v_lo, v_hi = horizon_quantiles(history, probs, np.log(sig[horizon_steps:] / sig[:-horizon_steps]), at, horizon_steps)
    ann = math.sqrt(steps_per_year)
    days = horizon_steps / steps_per_year * DAYS_PER_YEAR
    margins, losses, scans, ups, over = (np.empty(at.size) for _ in range(5))
    # One small book per decision (about one a day); the options inside each are vectorised.
    for i, t in enumerate(at):
        f0, vol0 = float(np.exp(lp[t])), float(sig[t] * ann)
        book = template.book(f0, vol0)
        scan = recommend_scan_range(vol0, days, coverage, quantiles=(float(q_lo[i]), float(q_hi[i])))
        scans[i] = scan.widest
        ups[i], down = max(float(np.expm1(v_hi[i])), 0.0), max(float(-np.expm1(v_lo[i])), 0.0)
        margins[i] = scenario_margin(book, grid_factory(scan, ups[i], down, look_ahead)).margin
        after = OptionBook(forward=float(np.exp(lp[t + horizon_steps])), strike=book.strike,
                           expiry=book.expiry - look_ahead, vol=float(sig[t + horizon_steps] * ann),
                           is_call=book.is_call, quantity=book.quantity, rate=book.rate)
        losses[i] = float((black76_price(book) - black76_price(after)) @ book.quantity)
        over[i] = margins[i] / f0
    for a in (at, margins, losses):
        a.setflags(write=False)
    grid_name = grid_factory(ScanRange.symmetric(0.1), 0.1, 0.1, look_ahead).name
    return OptionMarginBacktest(
        template=template, grid=grid_name, coverage=c, horizon_steps=horizon_steps, tail=tail.describe(),
        implied_vol_source=f"realised volatility (EWMA, half-life {half_life_steps:g} steps); no implied-volatility data",
        mean_scan_range=float(scans.mean()), mean_vol_shock_up=float(ups.mean()),
        mean_margin_over_notional=float(over.mean()), at=at, margins=margins, losses=losses,
        backtest=backtest_losses(losses, margins, coverage),
    )
