"""Circuit-breaker benchmark: vectorised replay, the per-update monitor, and the calibration sweep.

A synthetic market of two feeds (seeded random walks, updates every 30-90 s, 1,000,000 events in all)
is replayed with six rules (per-update band, 1h band, staleness, divergence, peg, volatility). Run with
``python -m benchmarks.bench_breakers``; prints and returns what it measured.
"""

from __future__ import annotations

import json

import numpy as np

from benchmarks.timing import best_of
from risk.breaker_policy import BreakerPolicy
from risk.breakers import MarketMonitor, replay
from risk.breakers_calibrate import MarketHistory, history, sweep
from risk.breakers_feed import SourceSeries, merge_sources, ticks

SEED = 20240919
EVENTS_PER_SOURCE = 500_000
MONITOR_EVENTS = 50_000
CANDIDATES = 100
REPEATS = 3

RULES = [
    {"name": "tick", "kind": "price_band", "threshold": "1%"},
    {"name": "drop-1h", "kind": "price_band", "threshold": "3%", "window": "1h", "direction": "down"},
    {"name": "stale", "kind": "staleness", "threshold": "80s"},
    {"name": "gap", "kind": "divergence", "threshold": "0.5%"},
    {"name": "peg", "kind": "peg", "threshold": "5%", "peg": 100.0},
    {"name": "vol", "kind": "vol_scaling", "threshold": "150%", "half_life": "6h"},
]


def _market(rng: np.random.Generator):
    sources = []
    for name in ("a", "b"):
        t = 1_600_000_000 + np.cumsum(rng.integers(30, 91, EVENTS_PER_SOURCE))
        p = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, EVENTS_PER_SOURCE)))
        sources.append(SourceSeries(name, t, p))
    return merge_sources("X", sources, 600)



def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    stream = _market(rng)
    doc = {"version": 1, "breakers": {"name": "bench", "markets": [{"symbol": "X", "sources": [{"name": "a", "file": "a"}, {"name": "b", "file": "b"}]}], "rules": RULES}}
    b = BreakerPolicy.model_validate_json(json.dumps(doc)).breakers
    events = len(stream.times)
    alerts, _ = replay(b, {"X": stream})
    t_replay = best_of(lambda: replay(b, {"X": stream}), REPEATS)

    head = ticks(stream)[:MONITOR_EVENTS]

    def monitor() -> None:
        m = MarketMonitor("X", stream.sources, stream.fresh_within, b.rules)
        for t, j, p in head:
            m.update(t, j, p)

    t_monitor = best_of(monitor, REPEATS)

    calibration = BreakerPolicy.model_validate_json(
        json.dumps({**doc, "breakers": {**doc["breakers"], "calibration": {"max_false_alarms_per_month": 1, "max_detection_delay": "1h"}}})
    ).breakers.calibration
    h: MarketHistory = history(b.rules[1], stream, calibration)
    thresholds = np.linspace(0.005, 0.1, CANDIDATES)
    t_sweep = best_of(lambda: sweep(h, thresholds, b.rules[1].cooldown.seconds), REPEATS)

    result = {
        "breakers_replay_updates_per_s": events / t_replay,
        "breakers_monitor_updates_per_s": MONITOR_EVENTS / t_monitor,
        "breakers_sweep_candidate_updates_per_s": CANDIDATES * events / t_sweep,
    }
    print(f"market: 2 feeds, {events:,} updates; {len(RULES)} rules, {len(alerts)} alerts; best of {REPEATS}")
    print(f"breakers_replay_updates_per_s           {result['breakers_replay_updates_per_s']:,.0f}  ({t_replay:.3f} s for all rules)")
    print(f"breakers_monitor_updates_per_s          {result['breakers_monitor_updates_per_s']:,.0f}  (per-update path, {MONITOR_EVENTS:,} updates)")
    print(f"breakers_sweep_candidate_updates_per_s  {result['breakers_sweep_candidate_updates_per_s']:,.0f}  ({CANDIDATES} thresholds of the 1h band in {t_sweep:.3f} s)")
    return result


if __name__ == "__main__":
    run()
