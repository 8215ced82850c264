"""Volatility models behind one interface.

A model takes log returns on a fixed step and returns a `VolEstimate`: the current volatility per
step for each market, which `sigma_over` scales to any horizon by the square root of time (returns
are treated as uncorrelated over time; jumps and volatility clustering enter through the model that
produced the estimate, not through the scaling). EWMA is the foundation's model; GARCH(1,1) with
Student-t shocks (via `arch`) joins it behind the same interface.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.signal import lfilter

from risk.errors import RiskInputError


@dataclass(frozen=True, slots=True)
class VolEstimate:
    """Current volatility of log returns, per market.

    Attributes
    ----------
    sigma_per_step : tuple[float, ...]
        Standard deviation of one step's log return (dimensionless; 0.01 = 1% per step).
    step_seconds : int
        Length of one step in seconds.
    model : str
        Which model produced it, with its settings, for the report's methodology section.
    observations : int
        Number of returns used.
    """

    sigma_per_step: tuple[float, ...]
    step_seconds: int
    model: str
    observations: int

    def sigma_over(self, seconds: int) -> np.ndarray:
        """Volatility of the log return over `seconds` (square-root-of-time scaling)."""
        if seconds <= 0:
            raise RiskInputError(f"horizon of {seconds}s is not positive", "use a horizon of at least one step")
        return np.asarray(self.sigma_per_step) * math.sqrt(seconds / self.step_seconds)

    def annualised(self) -> np.ndarray:
        return self.sigma_over(365 * 86400)


class VolatilityModel(Protocol):
    name: str

    def estimate(self, log_returns: np.ndarray, step_seconds: int) -> VolEstimate: ...


def _check_returns(log_returns: np.ndarray) -> np.ndarray:
    r = np.asarray(log_returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    if r.ndim != 2 or r.shape[0] < 2:
        raise RiskInputError(f"need at least 2 returns per market, got shape {r.shape}", "use a longer lookback")
    if not np.all(np.isfinite(r)):
        bad = int(np.argwhere(~np.isfinite(r))[0, 0])
        raise RiskInputError(f"return {bad} is not finite", "validate the price data (no NaN or non-positive prices)")
    return r


@dataclass(frozen=True, slots=True)
class EWMA:
    """Exponentially weighted moving average of squared returns (RiskMetrics, zero mean).

    The weight of a return `k` steps back is ``lam**k`` with ``lam = 0.5 ** (1 / half_life_steps)``;
    the recursion starts from the sample variance of the first `warmup` returns so that an
    early outlier does not dominate a short history.
    """

    half_life_steps: float
    warmup: int = 24
    name: str = "ewma"

    @property
    def lam(self) -> float:
        return 0.5 ** (1.0 / self.half_life_steps)

    def variance_path(self, log_returns: np.ndarray) -> np.ndarray:
        """Variance per step after each return, shape (T, N): ``v_t = lam v_{t-1} + (1 - lam) r_t**2``."""
        r = _check_returns(log_returns)
        if self.half_life_steps <= 0:
            raise RiskInputError(f"EWMA half-life {self.half_life_steps} steps is not positive", "use e.g. 72h")
        seed = np.mean(r[: max(1, min(self.warmup, r.shape[0]))] ** 2, axis=0)
        lam = self.lam
        # lfilter runs the recursion in C over the whole history; zi carries the seed variance in.
        path, _ = lfilter([1.0 - lam], [1.0, -lam], r**2, axis=0, zi=(lam * seed)[None, :])
        return path

    def estimate(self, log_returns: np.ndarray, step_seconds: int) -> VolEstimate:
        path = self.variance_path(log_returns)
        sigma = np.sqrt(path[-1])
        hours = self.half_life_steps * step_seconds / 3600
        return VolEstimate(
            sigma_per_step=tuple(float(s) for s in sigma),
            step_seconds=step_seconds,
            model=f"EWMA, half-life {hours:g}h (lambda {self.lam:.6f} per step)",
            observations=int(path.shape[0]),
        )
