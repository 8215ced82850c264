"""Scenarios from history: crash windows replayed as they happened, and filtered historical simulation.

Crash windows
-------------
`CRASH_WINDOWS` names five market crises. Each window was chosen by looking at the hourly data in
``../shared/data/market`` (closes on a 1 h grid, last observation carried forward): it starts at
00:00 UTC on a calm day before the fall and ends at 00:00 UTC after the trough and the first rebound,
so that it holds the whole peak-to-trough fall of ETH (and of the depegging asset). The drawdowns
measured in each window (peak-to-trough of hourly closes; `tests/realdata/test_scenarios_real.py`
checks them against the files):

* ``2020-03-12`` (Binance ETH/BTC): 2020-03-11 → 2020-03-14. ETH 202.25 → 96.62 (−52.2%, trough
  2020-03-13 01:00), BTC −48.0%.
* ``2021-05-19`` (Binance): 2021-05-18 → 2021-05-21. ETH 3533.89 → 2230.90 (−36.9%, trough
  2021-05-20 00:00), BTC −22.3%.
* ``2022-05 UST`` (CoinGecko): 2022-05-07 → 2022-05-16, from UST's first slip below $1 to its settling
  under $0.20. UST 1.003 → 0.092 (−90.8%), WETH −32.7%, stETH/WETH down to 0.944.
* ``2022-06 stETH`` (CoinGecko): 2022-06-10 → 2022-06-20, the Celsius/3AC weeks. stETH/WETH 0.973 → 0.931
  (2022-06-18 21:00), WETH −50.1%.
* ``2022-11 FTX`` (CoinGecko): 2022-11-07 → 2022-11-11. WETH −32.0% (trough 2022-11-10 01:00), WBTC −25.9%,
  USDT down to 0.979.

The Binance files cover 2017-08..2021-12 and the CoinGecko file 2021-01..2023-02, so no one
`MarketData` holds all five; `crash_windows` replays those its market data covers when asked to.

Filtered historical simulation
------------------------------
Barone-Adesi et al.: returns are divided by the volatility a model held before each of them; the
standardised residuals are resampled (one time index for all assets, which keeps their joint
behaviour — correlation, tail dependence — as it was) and multiplied by today's volatility, held
constant or evolving by GARCH(1,1) as the simulated returns arrive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from risk.data_text import iso_utc
from risk.errors import DataError, RiskInputError
from risk.market import MarketData
from risk.scenarios import (
    Provenance,
    ScenarioSet,
    check_garch,
    garch_returns,
    settings,
    to_relative,
)
from risk.vol import GarchParams, VolEstimate


def _unix(text: str) -> int:
    moment = datetime.fromisoformat(text)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())  # naive means UTC


@dataclass(frozen=True, slots=True)
class CrashWindow:
    """A named stretch of history: unix seconds UTC, both ends included."""

    name: str
    start: int
    end: int
    note: str = ""

    def __post_init__(self) -> None:
        if not self.name or self.start >= self.end:
            raise RiskInputError(f"crash window {self.name!r}: needs a name and start < end ({self.start}, {self.end})", "e.g. CrashWindow.utc('FTX', '2022-11-07', '2022-11-11')")

    @classmethod
    def utc(cls, name: str, start: str, end: str, note: str = "") -> CrashWindow:
        """From ISO-8601 UTC texts (``2022-11-07`` or ``2022-11-07T00:00:00Z``)."""
        return cls(name, _unix(start), _unix(end), note)


CRASH_WINDOWS: tuple[CrashWindow, ...] = (
    CrashWindow.utc("2020-03-12", "2020-03-11", "2020-03-14", "COVID crash; Binance ETH/BTC"),
    CrashWindow.utc("2021-05-19", "2021-05-18", "2021-05-21", "leverage flush; Binance ETH/BTC"),
    CrashWindow.utc("2022-05 UST", "2022-05-07", "2022-05-16", "UST depeg and LUNA collapse; CoinGecko"),
    CrashWindow.utc("2022-06 stETH", "2022-06-10", "2022-06-20", "stETH discount, Celsius/3AC; CoinGecko"),
    CrashWindow.utc("2022-11 FTX", "2022-11-07", "2022-11-11", "FTX collapse; CoinGecko"),
)


def window_sigma(log_returns: np.ndarray) -> np.ndarray:
    """Volatility per step of a window, per asset: the root mean square of its log returns.

    Zero mean, as `EWMA` and `GarchT` assume: a crash's trend counts as part of its volatility.
    """
    return np.sqrt(np.mean(np.asarray(log_returns, dtype=np.float64) ** 2, axis=0))


def _replay(prices: np.ndarray, factor: np.ndarray | None, steps: int | None) -> np.ndarray:
    """(L, N) prices → relative paths: one whole path, or every run of `steps` steps (start each step)."""
    span = prices.shape[0] - 1 if steps is None else steps
    if factor is None:
        # p / p0 directly, so an unscaled replay is the history to the last bit
        windows = sliding_window_view(prices, span + 1, axis=0)  # (paths, N, span + 1)
        rel = windows / windows[:, :, :1]
    else:
        logp = np.log(prices)
        windows = sliding_window_view(logp, span + 1, axis=0)
        rel = np.exp((windows - windows[:, :, :1]) * factor[None, :, None])
    out = np.ascontiguousarray(np.moveaxis(rel, 2, 1))
    out[:, 0, :] = 1.0  # exp(0) and p/p are 1 already; written so the contract holds exactly
    return out


def crash_windows(
    market: MarketData,
    windows: Sequence[CrashWindow] = CRASH_WINDOWS,
    *,
    rescale_to: VolEstimate | None = None,
    window_vol: Mapping[str, VolEstimate] | None = None,
    steps: int | None = None,
) -> tuple[ScenarioSet, ...]:
    """Replay each window's moves of every asset as they happened, one `ScenarioSet` per window.

    Parameters
    ----------
    market : MarketData
        Prices on a fixed grid covering every window in full.
    windows : sequence of CrashWindow
        Which windows; default `CRASH_WINDOWS` (all five: pass only those `market` covers).
    rescale_to : VolEstimate, optional
        Today's volatility per asset (same step and asset order as `market`). Given, each asset's log
        returns in a window are multiplied by ``today / window`` volatility, so the crash is replayed
        as if it had started from today's volatility level.
    window_vol : mapping of window name to VolEstimate, optional
        The window's volatility to divide by; default `window_sigma` of the window's own returns.
        Pass e.g. an EWMA estimate on the history before the window to keep the crash's size relative
        to the calm before it. An asset whose window volatility is zero is left unscaled (its returns
        are all zero).
    steps : int, optional
        None: each window is one path over its whole length. A number: every run of `steps` steps
        inside the window, one starting at each step, as the paths (all the ways a horizon of that
        length can sit in the crash).

    Returns
    -------
    tuple of ScenarioSet
        In the order of `windows`; ``name`` is the window's name, no seed.

    Raises
    ------
    DataError
        A window not fully covered by `market` (names the window and the data's range).
    RiskInputError
        A rescale estimate for the wrong step or number of assets; `steps` longer than a window.
    """
    if rescale_to is not None:
        _check_estimate(rescale_to, market, "rescale_to")
    out = []
    for w in windows:
        if w.start < market.times[0] or w.end > market.times[-1]:
            raise DataError(
                f"crash window {w.name!r} ({iso_utc(w.start)}..{iso_utc(w.end)}) is not covered by the market data ({iso_utc(market.times[0])}..{iso_utc(market.times[-1])})",
                "load data that covers the window, or leave the window out",
            )
        part = market.slice(w.start, w.end)
        length = len(part.times) - 1
        if steps is not None and not (isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) and 1 <= steps <= length):
            raise RiskInputError(f"crash window {w.name!r} has {length} steps; cannot take runs of {steps!r}", f"use steps between 1 and {length}, or None")
        factor = None
        scaling = "none"
        if rescale_to is not None:
            if window_vol is not None and w.name in window_vol:
                _check_estimate(window_vol[w.name], market, f"window_vol[{w.name!r}]")
                then = np.asarray(window_vol[w.name].sigma_per_step)
            else:
                then = window_sigma(part.log_returns())
            now = np.asarray(rescale_to.sigma_per_step)
            factor = np.where(then > 0, now / np.where(then > 0, then, 1.0), 1.0)
            scaling = ",".join(f"{s}={f!r}" for s, f in zip(market.symbols, factor.tolist()))
        rel = _replay(part.prices, factor, steps)
        source = f"{w.name}: {iso_utc(part.times[0])}..{iso_utc(part.times[-1])}, {length} steps of {market.step_seconds} s"
        prov = Provenance("crash-window", source, settings=settings(rescale=scaling, steps=steps if steps is not None else "whole window"))
        out.append(ScenarioSet(w.name, market.symbols, market.step_seconds, rel, prov))
    return tuple(out)


def _check_estimate(est: VolEstimate, market: MarketData, what: str) -> None:
    if est.step_seconds != market.step_seconds or len(est.sigma_per_step) != len(market.symbols):
        raise RiskInputError(
            f"{what}: estimate for {len(est.sigma_per_step)} assets at {est.step_seconds} s steps, market data has {len(market.symbols)} at {market.step_seconds} s",
            "estimate the volatility on the same market data",
        )
    if not all(np.isfinite(s) and s >= 0 for s in est.sigma_per_step):
        raise RiskInputError(f"{what}: volatility {est.sigma_per_step} is not finite and non-negative", "check the volatility model's input")


# --------------------------------------------------------------------------------------------- FHS


@dataclass(frozen=True, eq=False)
class FilteredHistorical:
    """Filtered historical simulation (a `Sampler`).

    Attributes
    ----------
    symbols : tuple[str, ...]
        Asset of each column.
    step_seconds : int
        Step of the history and of the paths, seconds.
    residuals : numpy.ndarray
        (T, N) standardised residuals, return / volatility held before it (see `from_returns`).
    current_sigma : numpy.ndarray
        (N,) volatility per step today (decimal log return), e.g. ``VolEstimate.sigma_per_step``.
    garch : tuple of GarchParams, optional
        Given, the volatility evolves by GARCH(1,1) from `current_sigma` along each path; else it stays.
    source : str
        What history the residuals come from, for the provenance.
    """

    symbols: tuple[str, ...]
    step_seconds: int
    residuals: np.ndarray
    current_sigma: np.ndarray
    garch: tuple[GarchParams, ...] | None = None
    source: str = ""
    method: ClassVar[str] = "filtered-historical"

    def __post_init__(self) -> None:
        z = np.array(self.residuals, dtype=np.float64)
        sigma = np.array(self.current_sigma, dtype=np.float64).reshape(-1)
        n = len(self.symbols)
        if z.ndim != 2 or z.shape[1] != n or z.shape[0] < 2:
            raise RiskInputError(f"filtered historical: residuals of shape {z.shape} do not match {n} assets (need >= 2 rows)", "pass (T, N) returns / conditional sigma")
        if not np.all(np.isfinite(z)):
            raise RiskInputError(f"filtered historical: residual {int(np.argwhere(~np.isfinite(z))[0, 0])} is not finite", "check the volatility path (a zero volatility divides by zero)")
        if sigma.shape != (n,) or not np.all(np.isfinite(sigma) & (sigma >= 0)):
            raise RiskInputError(f"filtered historical: current sigma {sigma.tolist()} is not {n} finite values >= 0", "use VolEstimate.sigma_per_step")
        z.setflags(write=False)
        sigma.setflags(write=False)
        object.__setattr__(self, "residuals", z)
        object.__setattr__(self, "current_sigma", sigma)
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "garch", check_garch(self.garch, n, "filtered historical"))

    @classmethod
    def from_returns(
        cls,
        symbols: Sequence[str],
        step_seconds: int,
        returns: np.ndarray,
        vol_path: np.ndarray,
        current_sigma: np.ndarray | Sequence[float],
        *,
        garch: Sequence[GarchParams] | None = None,
        source: str = "",
    ) -> FilteredHistorical:
        """From log returns (T, N) and the volatility held before each (T, N), e.g. a model's `conditional_sigma`."""
        r = np.asarray(returns, dtype=np.float64)
        v = np.asarray(vol_path, dtype=np.float64)
        if r.shape != v.shape:
            raise RiskInputError(f"filtered historical: returns {r.shape} and vol path {v.shape} differ in shape", "use the model's conditional_sigma of the same returns")
        if not np.all(np.isfinite(v) & (v > 0)):
            raise RiskInputError("filtered historical: the vol path has zero, negative or non-finite values", "use a model whose volatility stays positive (EWMA, GarchT)")
        return cls(tuple(symbols), step_seconds, r / v, np.asarray(current_sigma, dtype=np.float64), None if garch is None else tuple(garch), source)

    def describe(self) -> Provenance:
        return Provenance(
            self.method,
            self.source or f"{self.residuals.shape[0]} standardised residuals",
            settings=settings(
                residuals=self.residuals.shape[0],
                current_sigma=",".join(f"{s}={x!r}" for s, x in zip(self.symbols, self.current_sigma.tolist())),
                volatility="garch(1,1)" if self.garch else "constant",
            ),
        )

    def draw(self, rng: np.random.Generator, paths: int, steps: int) -> np.ndarray:
        """Relative paths (paths, steps + 1, N): residuals resampled by one time index for all assets, rescaled."""
        index = rng.integers(0, self.residuals.shape[0], size=(paths, steps))
        # a whole cross-section at a time; gathered step-major (contiguous for the GARCH recursion), seen as (paths, steps, N)
        z = self.residuals[index.T].transpose(1, 0, 2)
        if self.garch is None:
            r = z * self.current_sigma
        else:
            r = garch_returns(z, self.current_sigma, self.garch)
        return to_relative(r)
