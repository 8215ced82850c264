"""Backtest of options scenario margin against realised moves of the underlying.

A template book, written relative to the forward, is re-struck at every decision; the grid is
calibrated with only the data known then, and the margin it sets is compared with the loss the book
realised over the next horizon.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

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
from risk.options import DAYS_PER_YEAR, OptionBook, black76_price
from risk.options_calibration import recommend_scan_range
from risk.options_margin import ScanRange, ScenarioGrid, scenario_margin, span_grid
from risk.units import Ratio
from risk.vol import EWMA


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
