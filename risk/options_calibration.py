"""Calibration of an options scenario grid: the price scan range and the volatility shocks "now".

Both are two-sided quantiles at the policy's coverage, so that a book losing on either side (a
straddle) is still covered: the scan range from the tail model of horizon price moves, the vol shocks
from the history of the volatility model's own forecasts.
"""

from __future__ import annotations

import math

import numpy as np

from risk.backtest import NORMAL, Tail, coverage_float
from risk.errors import RiskInputError
from risk.options import DAYS_PER_YEAR
from risk.options_margin import ScanRange
from risk.units import Ratio


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
