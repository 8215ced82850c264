"""The monitor's events for whole recorded streams at once: the fast replay (`steward watch --speed max`).

Feeding every event of the streams, in time order (ties: market order, then stream order), through
`risk.watch_engine.WatchEngine.process` gives a list of events; `replay_events` gives the same list
without the per-update loop:

* alerts from `risk.breakers.rule_values` + `fires` per rule — the functions `steward breakers replay`
  uses, which the breakers' tests prove equal to the per-update machines;
* book health from `MarketHealth.at_many` (the same indices and products as `MarketHealth.at`), and
  the health trigger through `fires` (equal to `Trigger`);
* silent sources from each source's update times: the gap after an update is reported at the first
  event of any market later than its deadline, if that comes no later than the source's next update;
* the volatility (for the final state) by the vol rule's per-update kernel in a tight loop, as the
  breakers' replay does.

Recorded files are loaded through `risk.breakers_feed` (sorted, repaired as the policy allows), so no
update of a replay is ever flagged; the gate is exercised by live sources. tests/unit/test_watch_*.py
hold `replay_events` equal to the engine on random streams, tests/realdata on the shared crash data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from risk.breaker_policy import Breakers
from risk.breaker_rules import threshold_float
from risk.breakers import Alert, _VolStat, fires, rule_values
from risk.breakers_feed import MarketStream
from risk.watch_engine import market_rules
from risk.watch_events import (
    AlertEvent,
    HealthEvent,
    ResumedEvent,
    StaleEvent,
    WatchEvent,
)
from risk.watch_health import HealthPoint
from risk.watch_state import HealthFactory, vol_settings


@dataclass(frozen=True, slots=True)
class MarketFinal:
    """A market's state after its last event."""

    time: int
    price: float
    vol: float
    health: HealthPoint | None
    fresh: tuple[bool, ...]
    vol_rule: Any = None


@dataclass(frozen=True)
class ReplayResult:
    events: tuple[WatchEvent, ...]
    notes: tuple[str, ...]
    updates: int
    finals: dict[str, MarketFinal]


def _global_order(streams: list[tuple[int, MarketStream]]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Event times in processing order, and per market the position of each of its events in that order."""
    times = np.concatenate([s.times for _, s in streams])
    market = np.concatenate([np.full(len(s.times), i, np.int64) for i, s in streams])
    local = np.concatenate([np.arange(len(s.times), dtype=np.int64) for _, s in streams])
    order = np.lexsort((local, market, times))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    positions, start = {}, 0
    for i, s in streams:
        positions[i] = rank[start : start + len(s.times)]
        start += len(s.times)
    return times[order], positions


def replay_events(breakers: Breakers, streams: Mapping[str, MarketStream], *, health_factory: HealthFactory | None = None) -> ReplayResult:
    """Every event `WatchEngine` would emit on `streams` fed in time order, computed per stream at once.

    Parameters
    ----------
    breakers : Breakers
        The policy (markets absent from `streams` are skipped).
    streams : mapping of market symbol to MarketStream
        Merged sources per market (`risk.breakers_feed.load_market_stream`).
    health_factory : callable, optional
        Builds a market's book health at its first composite price.
    """
    chosen = [(i, streams[m.symbol]) for i, m in enumerate(breakers.markets) if m.symbol in streams]
    if not chosen:
        return ReplayResult((), (), 0, {})
    g_time, positions = _global_order(chosen)
    n = len(g_time)
    keyed: list[tuple[int, int, tuple, WatchEvent]] = []
    notes: list[str] = []
    finals: dict[str, MarketFinal] = {}
    actions = {r.name: (r.action.value if r.action is not None else None) for r in breakers.rules}
    health_cfg = breakers.watch.health
    for i, stream in chosen:
        symbol, pos, fw = stream.market, positions[i], stream.fresh_within
        rules, skipped = market_rules(breakers, symbol, stream.sources)
        notes += skipped
        for r_index, rule in enumerate(rules):
            threshold = threshold_float(rule.threshold)
            times, values = rule_values(rule, stream)
            for e in np.flatnonzero(fires(times, values, threshold, rule.cooldown.seconds)).tolist():
                alert = Alert(int(times[e]), symbol, rule.name, float(values[e]), threshold, rule.severity.value)
                keyed.append((int(pos[e]), 2, (r_index,), AlertEvent(alert, actions[rule.name])))
        point = None
        health = health_factory(symbol, i, float(stream.composite[0])) if health_factory is not None else None
        if health is not None:
            series = health.at_many(stream.composite)
            threshold = health_cfg.debt_at_risk.as_float()
            for e in np.flatnonzero(fires(stream.times, series.debt_share_at_risk, threshold, health_cfg.cooldown.seconds)).tolist():
                event = HealthEvent(int(stream.times[e]), symbol, float(series.debt_share_at_risk[e]), threshold, series.point(e),
                                    float(stream.composite[e]), health_cfg.severity, health_cfg.action)
                keyed.append((int(pos[e]), 3, (), event))
            point = series.point(len(stream.times) - 1)
        for j, source in enumerate(stream.sources):
            at = np.flatnonzero(stream.source == j)
            if len(at) == 0:
                continue
            k, t = pos[at], stream.times[at]
            deadline = t + fw
            seen = np.searchsorted(g_time, deadline, side="right")  # first event later than the deadline
            last_allowed = np.r_[k[1:], n - 1]  # the source's own next update still sees the gap
            for idx in np.flatnonzero(seen <= last_allowed).tolist():
                at_k = int(seen[idx])
                keyed.append((at_k, 0, (int(deadline[idx]), i, j), StaleEvent(int(g_time[at_k]), symbol, source, int(t[idx]), int(g_time[at_k] - t[idx]), fw)))
                if idx + 1 < len(at):
                    keyed.append((int(k[idx + 1]), 1, (), ResumedEvent(int(t[idx + 1]), symbol, source, int(t[idx + 1] - t[idx]))))
        half_life, warmup, vol_rule = vol_settings(rules, breakers.watch)
        step = _VolStat(None, half_life, warmup).value  # the kernel the per-update path runs
        vol = float("nan")
        for a, b in zip(stream.times.tolist(), stream.composite.tolist()):
            vol = step(a, b)
        finals[symbol] = MarketFinal(int(stream.times[-1]), float(stream.composite[-1]), vol, point, tuple(bool(f) for f in stream.fresh[-1]), vol_rule)
    keyed.sort(key=lambda x: (x[0], x[1], x[2]))
    return ReplayResult(tuple(e for *_, e in keyed), tuple(notes), n, finals)
