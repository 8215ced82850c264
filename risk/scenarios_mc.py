"""Monte Carlo scenarios: correlated fat-tailed returns, compound-Poisson jumps, and depegs.

Model, per step t and asset i (log returns, zero mean):

* shocks ``z_t = A g_t * sqrt((nu - 2) / W_t)`` with ``g_t`` standard normal, ``A A' = correlation`` and
  ``W_t ~ chi2(nu)`` one draw shared by all assets: a multivariate Student-t scaled to unit variance.
  The common mixing variable keeps the correlation matrix as given and adds tail dependence — in a
  bad hour all assets' shocks are large together, as in the crash windows. ``nu = inf`` is Gaussian.
* diffusion ``sigma_i z_{t,i}``, with sigma constant or evolving by GARCH(1,1) along the path;
* jumps: ``K ~ Poisson(jump_intensity)`` per step, each jump ``N(jump_mean, jump_std**2)`` in log; per
  asset independently, or with ``common_jumps`` one arrival for all assets (market-wide events, sizes
  still per asset). Jumps do not feed the GARCH variance.

A `Depeg` asset (a stablecoin, or a liquid-staking token) is not priced by the diffusion: its log
deviation from the peg ``x`` reverts to 0 with a half-life, moves with noise driven by the asset's own
column of the correlated shocks (so a depeg co-moves with the market as the correlation says), and
drops by a jump-to-discount event (Poisson arrivals, exponential sizes)::

    x_t = phi x_{t-1} + noise * z_{t,i} - E_t,   phi = 0.5 ** (1 / half_life_steps)

Its price is ``peg_to``'s path (or 1 for the numeraire) times ``exp(x_t - x_0)``.

Everything is vectorised over paths × steps × assets; the only loop over steps is the GARCH recursion
(the depeg recursion runs in `scipy.signal.lfilter`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.signal import lfilter

from risk.errors import RiskInputError
from risk.scenarios import Provenance, check_garch, garch_returns, settings, to_relative
from risk.vol import GarchParams


def _nonneg(value: float, what: str, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value) or value < 0:
        raise RiskInputError(f"{what} {value!r} is not a finite number >= 0", hint)
    return float(value)


@dataclass(frozen=True, slots=True)
class Depeg:
    """A pegged asset's deviation from its peg (log), mean-reverting, with jump-to-discount events.

    Attributes
    ----------
    symbol : str
        The pegged asset.
    peg_to : str or None
        None: pegged to the numeraire (a USD stablecoin). A symbol: follows that asset (stETH → WETH).
    half_life_steps : float
        Steps for half of a deviation to revert (> 0; ``math.inf``: never reverts, e.g. a collapse).
    noise_per_step : float
        Standard deviation of the deviation's move per step, log (0.0005 ≈ 5 bps).
    event_intensity_per_step : float
        Expected jump-to-discount events per step (0.0001 per hour ≈ one a year).
    event_mean_size : float
        Mean log drop of one event; sizes are exponential (0.05 ≈ a 4.9% discount on average).
    start_deviation : float
        Today's ``log(price / peg)``; the path reverts from here (0 = on peg).
    """

    symbol: str
    peg_to: str | None
    half_life_steps: float
    noise_per_step: float
    event_intensity_per_step: float = 0.0
    event_mean_size: float = 0.0
    start_deviation: float = 0.0

    def __post_init__(self) -> None:
        where = f"depeg of {self.symbol!r}"
        if not isinstance(self.half_life_steps, (int, float)) or isinstance(self.half_life_steps, bool) or not self.half_life_steps > 0:
            raise RiskInputError(f"{where}: half-life {self.half_life_steps!r} steps is not > 0", "e.g. 24 (a day of hours), or math.inf for no reversion")
        _nonneg(self.noise_per_step, f"{where}: noise per step", "e.g. 0.0005")
        _nonneg(self.event_intensity_per_step, f"{where}: event intensity", "expected events per step, e.g. 0.0001")
        _nonneg(self.event_mean_size, f"{where}: event mean size", "mean log drop, e.g. 0.05")
        if not math.isfinite(self.start_deviation):
            raise RiskInputError(f"{where}: start deviation {self.start_deviation!r} is not finite", "log(price / peg) today, e.g. -0.002")

    @property
    def phi(self) -> float:
        return 0.5 ** (1.0 / self.half_life_steps)


def _per_asset(value: float | Sequence[float], n: int, what: str, hint: str) -> np.ndarray:
    arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)
    if arr.shape != (n,):
        raise RiskInputError(f"{what}: {np.shape(value)} values for {n} assets", hint)
    if not np.all(np.isfinite(arr)):
        raise RiskInputError(f"{what}: {arr.tolist()} has non-finite values", hint)
    out = arr.copy()
    out.setflags(write=False)
    return out


def _loading(c: np.ndarray) -> np.ndarray:
    """A with A A' = c: Cholesky, or from the eigen-decomposition when c is only semi-definite."""
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(c)
        if w.min() < -1e-10:
            raise RiskInputError(
                f"correlation matrix is not positive semi-definite (smallest eigenvalue {w.min():.3g})",
                "estimate it from one set of returns, or repair it to the nearest correlation matrix",
            ) from None
        return v * np.sqrt(np.clip(w, 0.0, None))


@dataclass(frozen=True, eq=False)
class MonteCarlo:
    """Monte Carlo scenario model (a `Sampler`); see the module docstring for the equations.

    Attributes
    ----------
    symbols : tuple[str, ...]
        Asset of each column.
    step_seconds : int
        Step length, seconds.
    sigma_per_step : numpy.ndarray
        (N,) volatility of one step's log return (decimal), the start value when `garch` is given.
    correlation : numpy.ndarray
        (N, N) correlation of the shocks: symmetric, unit diagonal, positive semi-definite.
    nu : float
        Student-t degrees of freedom (> 2), ``math.inf`` for Gaussian shocks.
    jump_intensity, jump_mean, jump_std : float or (N,)
        Expected jumps per step; mean and standard deviation of one jump's log size.
    common_jumps : bool
        One jump arrival process for all assets (needs one intensity for all).
    depegs : tuple of Depeg
        Pegged assets; their columns of sigma and jumps are not used.
    garch : tuple of GarchParams, optional
        Per asset: the volatility evolves by GARCH(1,1) along each path.
    """

    symbols: tuple[str, ...]
    step_seconds: int
    sigma_per_step: np.ndarray
    correlation: np.ndarray
    nu: float = math.inf
    jump_intensity: float | Sequence[float] = 0.0
    jump_mean: float | Sequence[float] = 0.0
    jump_std: float | Sequence[float] = 0.0
    common_jumps: bool = False
    depegs: tuple[Depeg, ...] = ()
    garch: tuple[GarchParams, ...] | None = None
    method: ClassVar[str] = "monte-carlo"

    def __post_init__(self) -> None:
        symbols = tuple(self.symbols)
        n = len(symbols)
        if n == 0 or len(set(symbols)) != n:
            raise RiskInputError(f"monte carlo: symbols {symbols!r} must be distinct and at least one", "name each asset once")
        if isinstance(self.step_seconds, bool) or not isinstance(self.step_seconds, (int, np.integer)) or self.step_seconds <= 0:
            raise RiskInputError(f"monte carlo: step {self.step_seconds!r} is not a positive number of seconds", "e.g. 3600")
        sigma = _per_asset(self.sigma_per_step, n, "monte carlo: sigma_per_step", "one volatility per step per asset, e.g. VolEstimate.sigma_per_step")
        if np.any(sigma < 0) or np.any(sigma >= 1):
            raise RiskInputError(f"monte carlo: sigma_per_step {sigma.tolist()} must be in [0, 1) per step", "a log-return volatility per step, 0.01 = 1%")
        c = np.array(self.correlation, dtype=np.float64)
        if c.shape != (n, n) or not np.all(np.isfinite(c)):
            raise RiskInputError(f"monte carlo: correlation of shape {c.shape} for {n} assets, or non-finite", "pass an (N, N) correlation matrix")
        if not np.allclose(c, c.T, rtol=0, atol=1e-12) or not np.all(np.diag(c) == 1.0) or np.any(np.abs(c) > 1):
            raise RiskInputError("monte carlo: correlation must be symmetric with a unit diagonal and entries in [-1, 1]", "use np.corrcoef of the returns")
        nu = self.nu
        if isinstance(nu, bool) or not isinstance(nu, (int, float)) or math.isnan(nu) or not nu > 2:
            raise RiskInputError(f"monte carlo: nu {nu!r} must be > 2 (finite variance) or inf", "e.g. 4 for crypto hourly returns, math.inf for Gaussian")
        hint = "one value for all assets or one per asset"
        lam = _per_asset(self.jump_intensity, n, "monte carlo: jump_intensity", hint)
        mu = _per_asset(self.jump_mean, n, "monte carlo: jump_mean", hint)
        sd = _per_asset(self.jump_std, n, "monte carlo: jump_std", hint)
        if np.any(lam < 0) or np.any(sd < 0):
            raise RiskInputError("monte carlo: jump intensity and jump std must be >= 0", "expected jumps per step, e.g. 0.001")
        if self.common_jumps and np.any(lam != lam[0]):
            raise RiskInputError(f"monte carlo: common jumps need one intensity for all assets, got {lam.tolist()}", "give jump_intensity as one number")
        depegs = tuple(self.depegs)
        pegged = [d.symbol for d in depegs]
        for d in depegs:
            if d.symbol not in symbols or pegged.count(d.symbol) > 1:
                raise RiskInputError(f"monte carlo: depeg of {d.symbol!r} names an asset not in {symbols} or given twice", "one Depeg per pegged asset")
            if d.peg_to is not None and (d.peg_to not in symbols or d.peg_to in pegged):
                raise RiskInputError(f"monte carlo: {d.symbol} is pegged to {d.peg_to!r}, which is not a simulated, unpegged asset", "peg an LST to its base asset (e.g. stETH to WETH)")
        for name, value in (("sigma_per_step", sigma), ("correlation", c), ("jump_intensity", lam), ("jump_mean", mu), ("jump_std", sd)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "step_seconds", int(self.step_seconds))
        object.__setattr__(self, "nu", float(nu))
        object.__setattr__(self, "depegs", depegs)
        object.__setattr__(self, "garch", check_garch(self.garch, n, "monte carlo"))
        object.__setattr__(self, "_a", _loading(c))

    def describe(self) -> Provenance:
        def per(values: np.ndarray) -> str:
            return ",".join(f"{s}={x!r}" for s, x in zip(self.symbols, np.asarray(values).tolist()))

        return Provenance(
            self.method,
            f"{len(self.symbols)} assets: {', '.join(self.symbols)}",
            settings=settings(
                sigma_per_step=per(self.sigma_per_step),
                nu=self.nu,
                jump_intensity=per(self.jump_intensity),
                jump_mean=per(self.jump_mean),
                jump_std=per(self.jump_std),
                common_jumps=self.common_jumps,
                volatility="garch(1,1)" if self.garch else "constant",
                depegs=";".join(f"{d.symbol}->{d.peg_to or 'numeraire'} hl={d.half_life_steps!r} noise={d.noise_per_step!r} "
                                f"events={d.event_intensity_per_step!r} size={d.event_mean_size!r} x0={d.start_deviation!r}" for d in self.depegs) or "none",
            ),
        )

    def _shocks(self, rng: np.random.Generator, paths: int, steps: int) -> np.ndarray:
        n = len(self.symbols)
        # drawn step-major, returned as a (paths, steps, n) view: the GARCH recursion then walks contiguous memory
        z = (rng.standard_normal((steps * paths, n)) @ self._a.T).reshape(steps, paths, n)  # type: ignore[attr-defined]
        if math.isfinite(self.nu):
            w = rng.chisquare(self.nu, size=(steps, paths, 1))
            z *= np.sqrt((self.nu - 2.0) / w)
        return z.transpose(1, 0, 2)

    def _add_jumps(self, rng: np.random.Generator, r: np.ndarray) -> None:
        """Add compound-Poisson jumps to the log returns `r` (paths, steps, N) in place.

        Independent Poisson counts in every (path, step) cell are drawn as their exact equivalent: a
        Poisson total over the block, placed in cells uniformly at random. The cost follows the number
        of jumps, not paths × steps × assets, which matters because jumps are rare.
        """
        lam = self.jump_intensity
        if not np.any(lam > 0):
            return
        paths, steps, n = r.shape
        cells = paths * steps
        if self.common_jumps:
            total = int(rng.poisson(lam[0] * cells))
            where = rng.integers(0, cells, size=total)
            sizes = self.jump_mean + self.jump_std * rng.standard_normal((total, n))
            np.add.at(r, (where // steps, where % steps), sizes)  # indices, not a reshape: r may be a strided view
        else:
            totals = rng.poisson(lam * cells)
            asset = np.repeat(np.arange(n), totals)
            where = rng.integers(0, cells, size=len(asset))
            sizes = self.jump_mean[asset] + self.jump_std[asset] * rng.standard_normal(len(asset))
            np.add.at(r, (where // steps, where % steps, asset), sizes)

    def _depeg_path(self, d: Depeg, rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
        """Relative price of a pegged asset against its peg, (paths, steps + 1)."""
        paths, steps = z.shape
        u = d.noise_per_step * z
        if d.event_intensity_per_step > 0:
            total = int(rng.poisson(d.event_intensity_per_step * paths * steps))  # as in _add_jumps
            where = rng.integers(0, paths * steps, size=total)
            np.subtract.at(u, (where // steps, where % steps), rng.exponential(d.event_mean_size, size=total))
        phi = d.phi
        x0 = np.full((paths, 1), phi * d.start_deviation)
        x, _ = lfilter([1.0], [1.0, -phi], u, axis=1, zi=x0)
        out = np.empty((paths, steps + 1))
        out[:, 0] = 1.0
        with np.errstate(over="ignore"):
            out[:, 1:] = np.exp(x - d.start_deviation)
        return out

    def draw(self, rng: np.random.Generator, paths: int, steps: int) -> np.ndarray:
        """Relative paths (paths, steps + 1, N), float64, from the generator given."""
        z = self._shocks(rng, paths, steps)
        r = z * self.sigma_per_step if self.garch is None else garch_returns(z, self.sigma_per_step, self.garch)
        self._add_jumps(rng, r)
        pegged = {d.symbol for d in self.depegs}
        for j, s in enumerate(self.symbols):
            if s in pegged:
                r[:, :, j] = 0.0  # priced by its depeg process below; zero keeps the overflow check meaningful
        rel = to_relative(r)
        for d in self.depegs:
            i = self.symbols.index(d.symbol)
            dev = self._depeg_path(d, rng, z[:, :, i])
            rel[:, :, i] = dev if d.peg_to is None else dev * rel[:, :, self.symbols.index(d.peg_to)]
            if not np.all(np.isfinite(rel[:, :, i]) & (rel[:, :, i] > 0)):
                raise RiskInputError(f"monte carlo: the depeg path of {d.symbol} overflowed or hit zero", "lower its event sizes or noise")
        return rel
