"""Real-time monitor benchmark: per-update latency on a 100,000-position book over 25 markets, and replay throughput.

A synthetic venue of 25 markets, two feeds each (seeded random walks, an update every 5-60 s per
feed), watched with five rules per market (per-update band, 1h drop with a freeze action, staleness,
divergence, volatility) and a generated book of 100,000 sub-positions (4,000 per market). Measured:

* ``watch_update_p50_ms`` / ``watch_update_p99_ms`` — `WatchEngine.process` per update (gate, silent
  sources, feed, rules, volatility, book health, health trigger) plus writing its events as JSON
  lines, timed one update at a time over the stream;
* ``watch_online_updates_per_s`` — the same per-update path, updates per second;
* ``watch_replay_updates_per_s`` — `replay_events` (what `--speed max` runs) over the whole stream.

Run with ``python -m benchmarks.bench_watch``; prints and returns what it measured.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np

from risk.breaker_policy import BreakerPolicy
from risk.breakers_feed import SourceSeries, merge_sources
from risk.watch_engine import WatchEngine
from risk.watch_events import Update
from risk.watch_health import generated_factory
from risk.watch_replay import replay_events

SEED = 20240920
MARKETS = 25
POSITIONS = 100_000
UPDATES_PER_FEED = 8_000  # 25 markets x 2 feeds x 8,000 = 400,000 updates
ONLINE_UPDATES = 100_000  # timed one by one (the first 5,000 warm up and are not counted)
WARMUP = 5_000

RULES = [
    {"name": "tick", "kind": "price_band", "threshold": "4%"},
    {"name": "drop-1h", "kind": "price_band", "threshold": "6%", "window": "1h", "direction": "down", "action": "freeze"},
    {"name": "stale", "kind": "staleness", "threshold": "10m"},
    {"name": "gap", "kind": "divergence", "threshold": "1%"},
    {"name": "vol", "kind": "vol_scaling", "threshold": "150%", "half_life": "6h"},
]


def _policy() -> object:
    markets = [{"symbol": f"M{i:02d}", "sources": [{"name": "a", "file": "a"}, {"name": "b", "file": "b"}], "fresh_within": "15m"} for i in range(MARKETS)]
    doc = {"version": 1, "breakers": {"name": "bench", "markets": markets, "rules": RULES,
                                       "watch": {"default_liquidation_threshold": "80%", "health": {"debt_at_risk": "2%", "cooldown": "6h"}}}}
    return BreakerPolicy.model_validate_json(json.dumps(doc)).breakers


def _streams(rng: np.random.Generator) -> dict:
    streams = {}
    for i in range(MARKETS):
        base = float(rng.uniform(1, 1000))
        sources = []
        for name in ("a", "b"):
            t = 1_600_000_000 + np.cumsum(rng.integers(5, 61, UPDATES_PER_FEED))
            p = base * np.exp(np.cumsum(rng.normal(0.0, 0.004, UPDATES_PER_FEED)))
            sources.append(SourceSeries(name, t, p))
        streams[f"M{i:02d}"] = merge_sources(f"M{i:02d}", sources, 900)
    return streams


def _updates(breakers, streams) -> list[Update]:
    rows = []
    for i, m in enumerate(breakers.markets):
        s = streams[m.symbol]
        rows += [(t, i, k, m.symbol, s.sources[j], p) for k, (t, j, p) in enumerate(zip(s.times.tolist(), s.source.tolist(), s.price.tolist()))]
    rows.sort()
    return [Update(t, m, src, p, k) for t, _, k, m, src, p in rows]


def run() -> dict[str, float]:
    rng = np.random.default_rng(SEED)
    breakers = _policy()
    streams = _streams(rng)
    symbols = [m.symbol for m in breakers.markets]
    lts = dict.fromkeys(symbols, 0.8)

    def factory():
        return generated_factory(SEED, POSITIONS, symbols, lts, breakers.watch.health.near)

    updates = _updates(breakers, streams)
    total = len(updates)

    t0 = time.perf_counter()
    result = replay_events(breakers, streams, health_factory=factory())
    t_replay = time.perf_counter() - t0

    engine = WatchEngine(breakers, health_factory=factory())
    sink = io.StringIO()
    lat = np.empty(ONLINE_UPDATES, np.float64)
    clock = time.perf_counter_ns
    dumps = json.dumps
    for n, u in enumerate(updates[:ONLINE_UPDATES]):
        start = clock()
        for e in engine.process(u):
            sink.write(dumps(e.to_json(), sort_keys=True) + "\n")
        lat[n] = clock() - start
    timed = lat[WARMUP:] / 1e6
    t0 = time.perf_counter()
    factory()(symbols[0], 0, 100.0)  # what a market's first update also does: generate and index its book
    t_build = (time.perf_counter() - t0) * 1e3
    rows = sum(m.health.rows for m in engine.markets if m.health is not None)
    result_online = {
        "watch_update_p50_ms": float(np.percentile(timed, 50)),
        "watch_update_p99_ms": float(np.percentile(timed, 99)),
        "watch_online_updates_per_s": len(timed) / (timed.sum() / 1e3),
        "watch_replay_updates_per_s": total / t_replay,
    }
    kinds: dict[str, int] = {}
    for e in result.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    print(f"book: {rows:,} positions over {MARKETS} markets; {len(RULES)} rules a market; {total:,} updates from {2 * MARKETS} feeds")
    print(f"watch_update_p50_ms          {result_online['watch_update_p50_ms']:.4f}  (per update, {len(timed):,} timed after {WARMUP:,} warm-up)")
    print(f"watch_update_p99_ms          {result_online['watch_update_p99_ms']:.4f}  (max {timed.max():.3f} ms; a market's first update also builds"
          f" its book index, {t_build:.1f} ms for {POSITIONS // MARKETS:,} positions, in the warm-up)")
    print(f"watch_online_updates_per_s   {result_online['watch_online_updates_per_s']:,.0f}")
    print(f"watch_replay_updates_per_s   {result_online['watch_replay_updates_per_s']:,.0f}  ({total:,} updates in {t_replay:.2f} s; events {kinds})")
    return result_online


if __name__ == "__main__":
    run()
