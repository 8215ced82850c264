"""Maintenance and initial margin of a perpetual market, and the funding a position may pay meanwhile.

All fractions are of position notional (0.03 = 3%).

* Maintenance margin (MMF) covers the adverse move over the liquidation horizon at the policy's
  coverage: for a long ``1 - exp(q_lo s)``, for a short ``exp(q_hi s) - 1``, with ``s = sigma sqrt(h)``
  and ``q`` the standardised quantiles of the tail model (`risk.backtest.Tail`).
* Initial margin (IMF) is the MMF plus a buffer; dYdX v4 writes MMF = IMF x maintenance fraction, so
  its 60% maintenance fraction is a buffer of 1/0.6 - 1 = 66.7%.
* Funding: what a long or a short may pay over the horizon while it waits to be liquidated, read from
  real funding history.
"""

from __future__ import annotations

import math

import numpy as np

from risk.backtest import NORMAL, Side, Tail, coverage_float
from risk.errors import RiskInputError
from risk.perps_inputs import ratio_float
from risk.units import Ratio


def _fraction_array(x: float | np.ndarray, what: str, low: float = 0.0, high: float = math.inf) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise RiskInputError(f"{what} is empty", f"pass at least one {what}")
    bad = ~np.isfinite(a) | (a < low) | (a > high)
    if np.any(bad):
        raise RiskInputError(f"{what} {a[bad].ravel()[0]!r} is outside [{low}, {high}]", f"check the {what}")
    return a


def maintenance_margin(
    sigma_per_step: float | np.ndarray,
    horizon_steps: float,
    coverage: Ratio,
    *,
    side: Side | None = None,
    tail: Tail = NORMAL,
    quantiles: tuple[float | np.ndarray, float | np.ndarray] | None = None,
) -> np.ndarray:
    """Margin that covers the adverse price move over the liquidation horizon at ``coverage``.

    Parameters
    ----------
    sigma_per_step : float or array
        Volatility of one step's log return (0.01 = 1% per step), e.g. from `risk.vol.VolEstimate`.
    horizon_steps : float
        Liquidation horizon in steps (24 for a day of hourly steps).
    coverage : Ratio
        Share of horizon moves the margin must absorb (e.g. 99%), per side.
    side : Side, optional
        LONG or SHORT; ``None`` gives the larger of the two, the one number a market needs.
    tail : Tail
        Normal or Student-t standardised quantiles (filtered historical needs ``quantiles``).
    quantiles : (lower, upper), optional
        Standardised quantiles at ``1 - coverage`` and ``coverage`` to use instead of the tail's.

    Returns
    -------
    ndarray
        Fraction of notional, same shape as ``sigma_per_step``.
    """
    c = coverage_float(coverage)
    sig = _fraction_array(sigma_per_step, "volatility per step")
    if not (math.isfinite(horizon_steps) and horizon_steps > 0):
        raise RiskInputError(f"liquidation horizon of {horizon_steps!r} steps", "use a positive horizon, e.g. 24 steps")
    if quantiles is None:
        q_lo, q_hi = tail.parametric_quantile(1.0 - c), tail.parametric_quantile(c)
    else:
        q_lo, q_hi = quantiles
    s = sig * math.sqrt(horizon_steps)
    long = -np.expm1(np.minimum(q_lo, 0.0) * s)
    short = np.expm1(np.maximum(q_hi, 0.0) * s)
    if side is Side.LONG:
        return long
    if side is Side.SHORT:
        return short
    return np.maximum(long, short)


def initial_margin(mmf: float, buffer: Ratio) -> float:
    """Initial margin fraction: ``min(1, mmf * (1 + buffer))``.

    Parameters
    ----------
    mmf : float
        Maintenance margin fraction of notional, in (0, 1].
    buffer : Ratio
        Extra margin over maintenance, relative (dYdX's maintenance fraction f is ``buffer = 1/f - 1``).
    """
    b = ratio_float(buffer, "initial margin buffer")
    if b < 0:
        raise RiskInputError(f"initial margin buffer {buffer} is negative", "initial margin cannot be below maintenance")
    if not (math.isfinite(mmf) and 0 < mmf <= 1):
        raise RiskInputError(f"maintenance margin fraction {mmf!r} outside (0, 1]", "pass a fraction of notional")
    return min(1.0, mmf * (1.0 + b))


def funding_cost(funding_rates: np.ndarray, periods: int, coverage: Ratio) -> tuple[float, float]:
    """Funding a long and a short may pay over ``periods`` funding intervals, at ``coverage``.

    Parameters
    ----------
    funding_rates : array
        Historical funding rate per interval (fraction of notional; positive: longs pay shorts).
    periods : int
        Funding intervals in the liquidation horizon (rounded up).
    coverage : Ratio
        Quantile of the summed funding over ``periods`` consecutive intervals.

    Returns
    -------
    (long, short) : fractions of notional, each >= 0.
    """
    c = coverage_float(coverage)
    f = np.asarray(funding_rates, dtype=np.float64)
    if f.ndim != 1 or f.size < 2:
        raise RiskInputError(f"funding history of shape {f.shape}", "need at least two funding rates")
    if not np.all(np.isfinite(f)):
        raise RiskInputError(f"funding rate {int(np.flatnonzero(~np.isfinite(f))[0])} is not finite", "repair the file")
    if periods < 1 or periods > f.size:
        raise RiskInputError(f"{periods} funding periods against {f.size} rates", "use 1..len(rates) periods")
    sums = np.convolve(f, np.ones(periods), mode="valid")
    return max(float(np.quantile(sums, c)), 0.0), max(float(np.quantile(-sums, c)), 0.0)
