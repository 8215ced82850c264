"""Volatility models behind one interface.

A model takes log returns on a fixed step and returns a `VolEstimate`: the current volatility per
step for each market, which `sigma_over` scales to any horizon by the square root of time (returns
are treated as uncorrelated over time; jumps and volatility clustering enter through the model that
produced the estimate, not through the scaling).

Three models share the `VolatilityModel` interface:

* `EWMA` — RiskMetrics exponentially weighted variance, zero mean;
* `GarchT` — GARCH(1,1) with standardised Student-t shocks, zero mean, fitted per market with `arch`;
* `Realised` — the sample standard deviation over a trailing window.

Each also gives `conditional_sigma`: for every return, the volatility the model held *before* that
return, so that ``log_returns / conditional_sigma`` are standardised residuals (the input of filtered
historical simulation).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
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

    def conditional_sigma(self, log_returns: np.ndarray) -> np.ndarray: ...


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

    def _seed(self, r: np.ndarray) -> np.ndarray:
        return np.mean(r[: max(1, min(self.warmup, r.shape[0]))] ** 2, axis=0)

    def variance_path(self, log_returns: np.ndarray) -> np.ndarray:
        """Variance per step after each return, shape (T, N): ``v_t = lam v_{t-1} + (1 - lam) r_t**2``."""
        r = _check_returns(log_returns)
        if self.half_life_steps <= 0:
            raise RiskInputError(f"EWMA half-life {self.half_life_steps} steps is not positive", "use e.g. 72h")
        lam = self.lam
        # lfilter runs the recursion in C over the whole history; zi carries the seed variance in.
        path, _ = lfilter([1.0 - lam], [1.0, -lam], r**2, axis=0, zi=(lam * self._seed(r))[None, :])
        return path

    def conditional_sigma(self, log_returns: np.ndarray) -> np.ndarray:
        """Volatility per step that applied to each return, known before it, shape (T, N).

        Row t is ``sqrt(v_{t-1})``; row 0 is the warm-up seed (the one place the history looks ahead).
        """
        r = _check_returns(log_returns)
        path = self.variance_path(r)
        return np.sqrt(np.vstack([self._seed(r)[None, :], path[:-1]]))

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


@dataclass(frozen=True, slots=True)
class Realised:
    """Sample standard deviation (mean removed, ``ddof=1``) of the last `window_steps` returns.

    Unlike `EWMA` and `GarchT` it removes the window's mean: over a short window a trend would
    otherwise count as volatility. Every return in the window weighs the same, so a shock leaves the
    estimate all at once, `window_steps` later.
    """

    window_steps: int
    name: str = "realised"

    def _window(self, r: np.ndarray) -> int:
        w = self.window_steps
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 2:
            raise RiskInputError(f"realised-volatility window {w!r} is not a whole number of steps >= 2", "use e.g. 720 steps (30 days of hours)")
        if r.shape[0] < w:
            raise RiskInputError(f"realised volatility over {w} steps needs {w} returns, got {r.shape[0]}", "use a longer lookback or a shorter window")
        return int(w)

    def conditional_sigma(self, log_returns: np.ndarray) -> np.ndarray:
        """Std of the `window_steps` returns before each return, shape (T, N).

        The first `window_steps` rows have no full window behind them and take the first window's
        std (a warm-up that looks ahead, as EWMA's seed does).
        """
        r = _check_returns(log_returns)
        w = self._window(r)
        # pandas' rolling std is an online update: no cancellation from differences of running sums.
        rolling = pd.DataFrame(r).rolling(w).std(ddof=1).to_numpy()
        out = np.empty_like(r)
        out[:w] = rolling[w - 1]
        out[w:] = rolling[w - 1 : -1]
        return out

    def estimate(self, log_returns: np.ndarray, step_seconds: int) -> VolEstimate:
        r = _check_returns(log_returns)
        w = self._window(r)
        sigma = np.std(r[-w:], axis=0, ddof=1)
        return VolEstimate(
            sigma_per_step=tuple(float(s) for s in sigma),
            step_seconds=step_seconds,
            model=f"realised, sample std of the last {w} returns ({w * step_seconds / 3600:g}h)",
            observations=w,
        )


# ------------------------------------------------------------------------------------------- GARCH


# arch keeps alpha + beta <= 1 only to its optimiser's constraint tolerance: fitted integrated GARCH
# comes out a few 1e-9 above one, by amounts that differ with the BLAS thread count.
PERSISTENCE_TOLERANCE = 1e-6


@dataclass(frozen=True, slots=True)
class GarchParams:
    """One market's GARCH(1,1)-t in decimal log-return units per step.

    ``sigma2_{t+1} = omega + alpha * r_t**2 + beta * sigma2_t``; shocks ``r_t / sigma_t`` are Student-t
    with `nu` degrees of freedom, scaled to unit variance.

    Attributes
    ----------
    omega : float
        Constant of the variance recursion, (log return)**2 per step.
    alpha, beta : float
        Weights of the last squared return and the last variance (dimensionless).
    nu : float
        Degrees of freedom of the shocks (> 2).
    """

    omega: float
    alpha: float
    beta: float
    nu: float

    @property
    def persistence(self) -> float:
        return self.alpha + self.beta

    @property
    def unconditional_sigma(self) -> float:
        """Long-run volatility per step, ``sqrt(omega / (1 - alpha - beta))``; inf for integrated GARCH."""
        p = self.persistence
        return math.sqrt(self.omega / (1.0 - p)) if p < 1.0 else math.inf

    def variance_forecast(self, next_variance: float, horizon_steps: int) -> np.ndarray:
        """Variance per step for steps 1..h ahead, given the one-step-ahead variance (decimal**2)."""
        k = np.arange(horizon_steps, dtype=np.float64)
        p = self.persistence
        if p < 1.0:
            long_run = self.omega / (1.0 - p)
            out = long_run + p**k * (next_variance - long_run)
            out[0] = next_variance  # exact, not long_run + (next - long_run) rounded
            return out
        return next_variance + k * self.omega  # integrated: the variance drifts up by omega a step


@dataclass(frozen=True, eq=False)
class GarchFit:
    """GARCH(1,1)-t fitted to each market's returns.

    Attributes
    ----------
    params : tuple[GarchParams, ...]
        One per market, decimal units per step.
    conditional_sigma : numpy.ndarray
        (T, N): volatility per step that applied to each return, known before it.
    next_sigma : numpy.ndarray
        (N,): one-step-ahead forecast after the last return, per step.
    loglikelihood : tuple[float, ...]
        Per market, on the scaled returns the optimiser saw.
    scale : tuple[float, ...]
        Per market, the factor the returns were multiplied by for the fit (100 = percent).
    """

    params: tuple[GarchParams, ...]
    conditional_sigma: np.ndarray = field(repr=False)
    next_sigma: np.ndarray
    loglikelihood: tuple[float, ...]
    scale: tuple[float, ...]

    @property
    def observations(self) -> int:
        return int(self.conditional_sigma.shape[0])

    def forecast_sigma(self, horizon_steps: int) -> np.ndarray:
        """Volatility per step for each of the next `horizon_steps` steps, shape (h, N)."""
        if isinstance(horizon_steps, bool) or not isinstance(horizon_steps, (int, np.integer)) or horizon_steps < 1:
            raise RiskInputError(f"GARCH forecast horizon {horizon_steps!r} is not a whole number of steps >= 1", "e.g. 24")
        columns = [p.variance_forecast(float(s) ** 2, int(horizon_steps)) for p, s in zip(self.params, self.next_sigma)]
        return np.sqrt(np.column_stack(columns))

    def estimate(self, step_seconds: int) -> VolEstimate:
        shown = "; ".join(f"alpha {p.alpha:.4f} beta {p.beta:.4f} nu {p.nu:.2f}" for p in self.params)
        return VolEstimate(
            sigma_per_step=tuple(float(s) for s in self.next_sigma),
            step_seconds=step_seconds,
            model=f"GARCH(1,1) with Student-t shocks, zero mean, one-step forecast [{shown}]",
            observations=self.observations,
        )


def _fit_scale(r: np.ndarray, start: float) -> float:
    """Power-of-ten multiple of `start` bringing the variance into [0.1, 1e4), where arch's optimiser is reliable."""
    scale, var = start, float(np.var(r))
    while not 0.1 <= var * scale**2 < 1e4:
        scale = scale * 10.0 if var * scale**2 < 0.1 else scale / 10.0
    return scale


@dataclass(frozen=True, slots=True)
class GarchT:
    """GARCH(1,1) with Student-t shocks and zero mean, fitted per market by maximum likelihood (`arch`).

    Returns are multiplied by `scale` (percent by default) before the fit, since the optimiser is
    tuned for variances near one; a market whose percent returns are far from that (a stablecoin)
    gets a further power of ten. Parameters and paths are reported back in decimal units.
    """

    scale: float = 100.0
    min_observations: int = 250
    name: str = "garch-t"

    def _fit_one(self, r: np.ndarray, label: str) -> tuple[GarchParams, np.ndarray, float, float, float]:
        # imported here: arch loads slowly and most runs use EWMA
        from arch import arch_model

        if float(np.std(r)) == 0.0:
            raise RiskInputError(f"GARCH: returns of {label} are all equal (a pegged or stale price)", "use EWMA or Realised for this market")
        scale = _fit_scale(r, self.scale)
        model = arch_model(scale * r, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False)
        # arch edits the global warning filters for its ConvergenceWarning; keep that inside.
        with warnings.catch_warnings():
            try:
                res = model.fit(disp="off", show_warning=False)
            except (ValueError, np.linalg.LinAlgError) as exc:
                raise RiskInputError(f"GARCH fit of {label} failed: {exc}", "use EWMA or Realised for this market, or a longer lookback") from None
        if res.convergence_flag != 0:
            raise RiskInputError(
                f"GARCH fit of {label} did not converge (optimiser status {res.convergence_flag})",
                "use EWMA or Realised for this market, or a longer or cleaner history",
            )
        p = res.params
        omega, alpha, beta, nu = (float(p[k]) for k in ("omega", "alpha[1]", "beta[1]", "nu"))
        sigma = np.asarray(res.conditional_volatility, dtype=np.float64) / scale
        if not (np.all(np.isfinite(sigma)) and all(map(math.isfinite, (omega, alpha, beta, nu))) and np.all(sigma > 0)):
            raise RiskInputError(f"GARCH fit of {label} gave non-finite parameters or volatility", "use EWMA or Realised for this market")
        params = GarchParams(omega=omega / scale**2, alpha=alpha, beta=beta, nu=nu)
        next_var = params.omega + alpha * r[-1] ** 2 + beta * sigma[-1] ** 2
        return params, sigma, math.sqrt(next_var), float(res.loglikelihood), scale

    def fit(self, log_returns: np.ndarray, symbols: tuple[str, ...] | None = None) -> GarchFit:
        """Fit each market; `symbols` only name markets in errors.

        Raises
        ------
        RiskInputError
            Too few returns, a constant series, a failed or non-converged optimisation.
        """
        r = _check_returns(log_returns)
        if r.shape[0] < self.min_observations:
            raise RiskInputError(f"GARCH needs at least {self.min_observations} returns, got {r.shape[0]}", "use a longer lookback, or EWMA")
        labels = symbols if symbols is not None and len(symbols) == r.shape[1] else tuple(f"market {j}" for j in range(r.shape[1]))
        fits = [self._fit_one(r[:, j], labels[j]) for j in range(r.shape[1])]
        return GarchFit(
            params=tuple(f[0] for f in fits),
            conditional_sigma=np.column_stack([f[1] for f in fits]),
            next_sigma=np.array([f[2] for f in fits]),
            loglikelihood=tuple(f[3] for f in fits),
            scale=tuple(f[4] for f in fits),
        )

    def conditional_sigma(self, log_returns: np.ndarray) -> np.ndarray:
        return self.fit(log_returns).conditional_sigma

    def estimate(self, log_returns: np.ndarray, step_seconds: int) -> VolEstimate:
        """The one-step-ahead volatility forecast after the last return."""
        return self.fit(log_returns).estimate(step_seconds)
