"""The epoch's scenario set for the lending core: Monte Carlo, filtered historical and crash replays.

All parts are joint paths of every policy market over the policy's horizon, relative to today's
price, pooled with equal weight (each path one scenario). Built from the pinned inputs only:

* **Monte Carlo** (`risk.scenarios_mc.MonteCarlo`): today's EWMA volatility per step, the Pearson
  correlation of the lookback returns (rounded to 1e-9 so that a BLAS summation order cannot change a
  path), Student-t shocks, the policy's jumps and depegs; seeded with ``scenarios.seed``.
* **Filtered historical** (`risk.scenarios_hist.FilteredHistorical`): lookback returns standardised by
  the EWMA volatility held before each, resampled jointly and scaled to today's; seeded with a stream
  derived from ``scenarios.seed`` (``SeedSequence([seed, 1])``) so it never shares draws with Monte Carlo.
* **Crash replays** (`risk.scenarios_hist.crash_windows`): every run of the horizon inside each
  ``scenarios.crash_windows`` window, each asset's log moves multiplied by today's volatility over the
  EWMA volatility of the `lead_in` before the window — the crash kept as large, relative to the calm
  it started from, as it was. A window shorter than the horizon is one path held at its last price.

No fitted GARCH enters (fits differ at 1e-9 across BLAS thread counts, and `steward verify` must
rebuild the same bytes); the volatility is EWMA, a closed recursion.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from risk.errors import DataError, PolicyError, RiskInputError
from risk.market import MarketData
from risk.parallel_lending import ChunkedScenarios, FixedScenarios, PathSource
from risk.policy import Policy
from risk.policy_lending import per_step
from risk.recommendation import ScenarioPart
from risk.scenarios import ScenarioSet
from risk.scenarios_hist import CrashWindow, FilteredHistorical, crash_windows
from risk.scenarios_mc import Depeg, MonteCarlo
from risk.vol import EWMA, VolEstimate

_FHS_KEY = 1
CORRELATION_DECIMALS = 9


@dataclass(frozen=True, eq=False)
class EpochScenarios:
    """The epoch's scenario parts as sources a task draws chunk by chunk (`risk.parallel_lending`), in pooled order.

    Nothing is drawn here: `risk.parallel_lending.column_paths(sources, symbol)` gives one market's
    paths (paths, steps + 1), bit for bit the column of the joint set `risk.scenarios.simulate` draws.
    """

    sources: tuple[PathSource, ...]
    steps: int
    parts: tuple[ScenarioPart, ...]

    @property
    def paths(self) -> int:
        return sum(s.paths for s in self.sources)


def _unix(t: dt.datetime) -> int:
    return int(t.timestamp())


def history_span(policy: Policy) -> tuple[int, int] | None:
    """Unix seconds (start, end) of the price history the crash replays need, or None when none is.

    From the earliest window's start minus the lead-in to the latest window's end, both included; the
    pipeline pins the policy markets' prices over this span (same sources, step and data options as
    the lookback) and passes them to `risk.recommend.recommend` as ``history``.
    """
    core = policy.lending_core
    windows = policy.scenarios.crash_windows
    if core is None or core.crash_replay is None or not windows:
        return None
    start = min(_unix(w.start) for w in windows) - core.crash_replay.lead_in.seconds
    return start, max(_unix(w.end) for w in windows)


def _correlation(returns: np.ndarray) -> np.ndarray:
    n = returns.shape[1]
    if n == 1:
        return np.ones((1, 1))
    sd = returns.std(axis=0)
    c = np.eye(n)
    live = np.flatnonzero(sd > 0)  # a constant series has no correlation: it stays independent
    if live.size > 1:
        sub = np.corrcoef(returns[:, live], rowvar=False)
        c[np.ix_(live, live)] = sub
    c = np.round((c + c.T) / 2.0, CORRELATION_DECIMALS)
    np.fill_diagonal(c, 1.0)
    return np.clip(c, -1.0, 1.0)


def _monte_carlo(policy: Policy, symbols: tuple[str, ...], step_seconds: int, returns: np.ndarray, vol: VolEstimate) -> MonteCarlo:
    core = policy.lending_core
    assert core is not None
    mc = core.monte_carlo
    jumps = mc.jumps
    depegs = []
    known = {m.symbol for m in policy.markets}
    for i, d in enumerate(mc.depegs):
        if d.symbol not in known or (d.peg_to is not None and d.peg_to not in known):
            raise PolicyError(f"lending_core.monte_carlo.depegs[{i}]: {d.symbol} -> {d.peg_to or 'USD'} names a market the policy does not have",
                              f"markets are {', '.join(sorted(known))}")
        if d.symbol not in symbols:
            continue  # a market left out of this run
        if d.peg_to is not None and d.peg_to not in symbols:
            raise RiskInputError(f"{d.symbol} is pegged to {d.peg_to}, which is not simulated in this run", f"include {d.peg_to}")
        depegs.append(Depeg(
            symbol=d.symbol, peg_to=d.peg_to, half_life_steps=d.half_life.seconds / step_seconds, noise_per_step=d.noise.as_float(),
            event_intensity_per_step=per_step(d.events_per_year, step_seconds), event_mean_size=d.mean_size.as_float(),
        ))
    return MonteCarlo(
        symbols=symbols, step_seconds=step_seconds, sigma_per_step=np.array(vol.sigma_per_step), correlation=_correlation(returns),
        nu=math.inf if mc.nu is None else float(mc.nu),
        jump_intensity=0.0 if jumps is None else per_step(jumps.per_year, step_seconds),
        jump_mean=0.0 if jumps is None else jumps.mean.as_float(),
        jump_std=0.0 if jumps is None else jumps.std.as_float(),
        common_jumps=bool(jumps is not None and jumps.common), depegs=tuple(depegs),
    )


def _ordered(history: MarketData, symbols: tuple[str, ...], step_seconds: int) -> MarketData:
    if history.step_seconds != step_seconds:
        raise DataError(f"crash history on a {history.step_seconds} s grid, prices on {step_seconds} s", "pin both on the policy's step")
    missing = [s for s in symbols if s not in history.symbols]
    if missing:
        raise DataError(f"crash history has no prices for {', '.join(missing)}", "pin every policy market over the crash windows")
    return MarketData(step_seconds, history.times, symbols, np.column_stack([history.series(s) for s in symbols]))


def _replays(policy: Policy, symbols: tuple[str, ...], step_seconds: int, steps: int, vol: VolEstimate,
             history: MarketData | None) -> list[ScenarioSet]:
    core = policy.lending_core
    assert core is not None and core.crash_replay is not None
    if history is None:
        raise RiskInputError("the lending core replays crash windows but no crash history was given",
                             "pin the prices over risk.recommend_scenarios.history_span(policy) and pass them as history")
    market = _ordered(history, symbols, step_seconds)
    lead = core.crash_replay.lead_in.seconds
    ewma = EWMA(half_life_steps=policy.scenarios.volatility.half_life.seconds / step_seconds)
    out = []
    for w in policy.scenarios.crash_windows:
        window = CrashWindow(w.name, _unix(w.start), _unix(w.end))
        before = market.slice(window.start - lead, window.start)
        calm = ewma.estimate(before.log_returns(), step_seconds)
        length = len(market.slice(window.start, window.end).times) - 1
        (replay,) = crash_windows(market, [window], rescale_to=vol, window_vol={w.name: calm}, steps=min(steps, length))
        if length < steps:  # held at its last price for the rest of the horizon
            rel = replay.relative
            pad = np.repeat(rel[:, -1:, :], steps - length, axis=1)
            replay = ScenarioSet(replay.name, replay.symbols, replay.step_seconds, np.concatenate([rel, pad], axis=1), replay.provenance)
        out.append(replay)
    return out


def build_scenarios(
    policy: Policy, symbols: tuple[str, ...], prices: np.ndarray, step_seconds: int, vol: VolEstimate, history: MarketData | None
) -> EpochScenarios:
    """The scenario set of the module docstring; `vol` is today's EWMA estimate on `prices` (T, N)."""
    core = policy.lending_core
    assert core is not None
    horizon = policy.scenarios.horizon.seconds
    if horizon < step_seconds or horizon % step_seconds:
        raise RiskInputError(f"scenarios.horizon {policy.scenarios.horizon} is not a whole number of {step_seconds} s steps",
                             "make the horizon a multiple of scenarios.step")
    steps = horizon // step_seconds
    returns = np.diff(np.log(prices), axis=0)
    seed = policy.scenarios.seed
    sets: list[PathSource] = []
    if core.monte_carlo.paths:
        sets.append(ChunkedScenarios(_monte_carlo(policy, symbols, step_seconds, returns, vol), seed, core.monte_carlo.paths, steps))
    if core.filtered_historical.paths:
        ewma = EWMA(half_life_steps=policy.scenarios.volatility.half_life.seconds / step_seconds)
        fhs = FilteredHistorical.from_returns(symbols, step_seconds, returns, ewma.conditional_sigma(returns), np.array(vol.sigma_per_step),
                                              source=f"{returns.shape[0]} lookback returns, EWMA-standardised")
        fhs_seed = int(np.random.SeedSequence([seed, _FHS_KEY]).generate_state(1, np.uint64)[0] >> np.uint64(1))
        sets.append(ChunkedScenarios(fhs, fhs_seed, core.filtered_historical.paths, steps))
    if core.crash_replay is not None and policy.scenarios.crash_windows:
        sets.extend(FixedScenarios(r) for r in _replays(policy, symbols, step_seconds, steps, vol, history))
    if not sets:
        raise RiskInputError("the lending core has no scenario to simulate", "set monte_carlo.paths or filtered_historical.paths, or crash windows")
    parts = tuple(ScenarioPart(s.provenance.method, s.name, s.paths, s.provenance.to_json()) for s in sets)
    return EpochScenarios(tuple(sets), steps, parts)
