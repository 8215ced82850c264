"""risk.watch_engine / watch_replay / watch_state: the per-update monitor and the fast replay give the same
events (hypothesis, several markets, sources stopping and starting); its alerts are `steward breakers
replay`'s; its volatility is the vol rule's; the gate flags duplicates, out-of-order, stale, invalid
and unknown updates without using them; two feeds that disagree trip the divergence rule; a burst is
absorbed whole; a source that stops is reported while it is silent, and again when it resumes."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from risk.breaker_policy import BreakerPolicy, Breakers
from risk.breakers import replay, rule_values
from risk.breakers_feed import SourceSeries, merge_sources, ticks
from risk.watch_engine import WatchEngine
from risk.watch_events import AlertEvent, FlaggedEvent, ResumedEvent, StaleEvent, Update
from risk.watch_health import generated_factory
from risk.watch_replay import replay_events

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
H = 3600


def policy(markets: list[dict[str, Any]], rules: list[dict[str, Any]], watch: dict[str, Any] | None = None) -> Breakers:
    doc: dict[str, Any] = {"version": 1, "breakers": {"name": "t", "markets": markets, "rules": rules}}
    if watch is not None:
        doc["breakers"]["watch"] = watch
    return BreakerPolicy.model_validate_json(json.dumps(doc)).breakers


def market(symbol: str, sources: tuple[str, ...] = ("a", "b"), fresh: str = "15m") -> dict[str, Any]:
    return {"symbol": symbol, "sources": [{"name": s, "file": f"{s}.csv"} for s in sources], "fresh_within": fresh}


def online(b: Breakers, streams: dict[str, Any], factory: Any = None) -> tuple[list[Any], WatchEngine]:
    """Feed every stream's events in time order (ties: market order, stream order) through the engine."""
    rows = []
    for i, m in enumerate(b.markets):
        s = streams[m.symbol]
        rows += [(t, i, k, m.symbol, s.sources[j], p) for k, (t, j, p) in enumerate(ticks(s))]
    engine = WatchEngine(b, sources={k: v.sources for k, v in streams.items()}, health_factory=factory)
    events = []
    for t, _, k, m, src, p in sorted(rows):
        events += engine.process(Update(t, m, src, p, k))
    return events, engine


@st.composite
def venues(draw: st.DrawFn) -> tuple[Breakers, dict[str, Any]]:
    n_markets = draw(st.integers(1, 3))
    markets, streams = [], {}
    for i in range(n_markets):
        names = ("a", "b") if draw(st.booleans()) else ("a",)  # one feed only: the divergence rule is skipped
        series = []
        for name in names:
            # gaps up to 2h against a freshness of 15m-1h: sources stop and resume, often in the same second as others
            gaps = draw(st.lists(st.sampled_from([0, 60, 300, 900, 1800, 7200]).map(lambda g: g + 1), min_size=1, max_size=60))
            t = np.array(sorted(set((T0 + np.cumsum(gaps)).tolist()) | {T0, T0 + 6 * H}))  # all sources share T0..T0+6h
            walk = np.cumsum(draw(st.lists(st.floats(-0.06, 0.05), min_size=len(t), max_size=len(t))))
            series.append(SourceSeries(name, t, 100 * np.exp(walk)))
        fresh = draw(st.sampled_from([900, 1800, 3600]))
        symbol = f"M{i}"
        markets.append(market(symbol, ("a", "b"), f"{fresh}s"))
        streams[symbol] = merge_sources(symbol, series, fresh)
    rules = [
        {"name": "tick", "kind": "price_band", "threshold": "2%", "cooldown": draw(st.sampled_from(["1s", "1h"]))},
        {"name": "drop", "kind": "price_band", "threshold": "4%", "window": "1h", "direction": "down", "action": "freeze"},
        {"name": "stale", "kind": "staleness", "threshold": "20m", "cooldown": "1s"},
        {"name": "vol", "kind": "vol_scaling", "threshold": "300%", "half_life": "2h", "warmup": 2, "cooldown": "2h"},
        {"name": "gap", "kind": "divergence", "threshold": "1%", "cooldown": "1s"},
    ]
    watch = {"default_liquidation_threshold": "80%", "health": {"debt_at_risk": draw(st.sampled_from(["0.1%", "1%", "5%"])), "cooldown": "1h"}}
    return policy(markets, rules, watch), streams


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=venues(), seed=st.integers(0, 2**32 - 1))
def test_fast_replay_equals_the_per_update_engine(case: tuple[Breakers, dict[str, Any]], seed: int) -> None:
    b, streams = case
    symbols = list(streams)

    def factory() -> Any:
        return generated_factory(seed, 40 * len(symbols), symbols, dict.fromkeys(symbols, 0.8), 1.05)

    got, engine = online(b, streams, factory())
    fast = replay_events(b, streams, health_factory=factory())
    assert [e.to_json() for e in got] == [e.to_json() for e in fast.events]
    assert fast.notes == tuple(engine.notes)
    for m in engine.markets:  # the final state too
        final = fast.finals[m.symbol]
        assert (m.price, m.point, m.time) == (final.price, final.health, final.time)
        assert m.vol == final.vol or (math.isnan(m.vol) and math.isnan(final.vol))
    # and the alerts are the breakers' replay's, in its order
    expected, _ = replay(b, streams)
    assert [e.alert for e in got if isinstance(e, AlertEvent)] == expected


def test_the_monitors_volatility_is_the_vol_rules_value() -> None:
    rng = np.random.default_rng(5)
    t = T0 + np.cumsum(rng.integers(1, 900, 500))
    s = merge_sources("X", [SourceSeries("a", t, 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500))))], 3600)
    b = policy([market("X", ("a",), "1h")], [{"name": "vol", "kind": "vol_scaling", "threshold": "80%", "half_life": "6h", "warmup": 3}])
    engine = WatchEngine(b)
    vols = []
    for k, (time, _, price) in enumerate(ticks(s)):
        engine.process(Update(time, "X", "a", price, k))
        vols.append(engine.markets[0].vol)
    _, expected = rule_values(b.rules[0], s)
    assert np.array_equal(np.array(vols), expected, equal_nan=True)
    rec = engine.markets[0].recommendation()
    assert rec.vol == vols[-1] and rec.margin_scale == min(3.0, max(1.0, vols[-1] / 0.8))


# -- the gate -------------------------------------------------------------------------------------------


def gate_engine() -> WatchEngine:
    return WatchEngine(policy([market("X")], [{"name": "tick", "kind": "price_band", "threshold": "5%", "cooldown": "1s"}]))


def test_duplicates_and_out_of_order_rounds_are_flagged_not_used() -> None:
    e = gate_engine()
    assert e.process(Update(T0, "X", "a", 100.0, 1)) == []
    assert e.process(Update(T0 + 10, "X", "a", 101.0, 2)) == []
    dup = e.process(Update(T0 + 10, "X", "a", 150.0, 2))  # the same round again (a re-delivery)
    late = e.process(Update(T0 + 5, "X", "a", 150.0, 1))  # round 1 again, after round 2
    gap = e.process(Update(T0 + 20, "X", "a", 102.0, 4))  # round 3 skipped: used
    old = e.process(Update(T0 + 21, "X", "a", 150.0, 3))  # round 3 arrives after round 4
    assert [(type(x), x.reason) for x in dup + late + old] == [(FlaggedEvent, "duplicate"), (FlaggedEvent, "duplicate"), (FlaggedEvent, "out_of_order")]
    assert gap == []
    # flagged prices never reached the rules: 150 would have been a 47% jump
    assert e.counts["used"] == 3 and e.counts["flagged:duplicate"] == 2 and e.counts["flagged:out_of_order"] == 1
    assert e.markets[0].price == 102.0


def test_updates_older_than_the_market_or_stale_on_arrival_are_flagged() -> None:
    e = gate_engine()
    e.process(Update(T0 + 100, "X", "a", 100.0, 1))
    behind = e.process(Update(T0 + 50, "X", "b", 100.0, 1))  # source b is behind the market's last update
    e.tick(T0 + 3600)  # the chain's head moved on an hour
    stale = e.process(Update(T0 + 200, "X", "b", 100.0, 2))  # arrives 56 min after its time, fresh_within 15m
    invalid = e.process(Update(T0 + 3600, "X", "a", float("nan"), 2)) + e.process(Update(T0 + 3600, "X", "a", -1.0, 3))
    unknown = e.process(Update(T0 + 3600, "X", "c", 1.0, 1)) + e.process(Update(T0 + 3600, "Y", "a", 1.0, 1))
    assert [f.reason for f in behind + stale + invalid + unknown] == ["out_of_order", "stale", "invalid", "invalid", "unknown_source", "unknown_source"]
    assert all(json.dumps(f.to_json(), allow_nan=False) for f in invalid)  # NaN prices still make a JSON line
    assert e.counts["used"] == 1


def test_two_sources_that_disagree_trip_the_divergence_rule() -> None:
    b = policy([market("X", fresh="1h")], [{"name": "gap", "kind": "divergence", "threshold": "2%"}])
    e = WatchEngine(b)
    out = []
    for k in range(10):
        out += e.process(Update(T0 + 60 * k, "X", "a", 100.0, k))
        out += e.process(Update(T0 + 60 * k + 1, "X", "b", 100.5 if k < 5 else 108.0, k))  # b drifts 8% away
    alerts = [x for x in out if isinstance(x, AlertEvent)]
    assert [(a.alert.rule, a.time) for a in alerts] == [("gap", T0 + 300 + 1)]
    assert alerts[0].alert.value == pytest.approx(abs(108.0 / 104.0 - 1))  # against the median of the two


def test_a_burst_is_absorbed_whole() -> None:
    e = gate_engine()
    n = 20_000  # one block's worth of rounds from two feeds, all in the same second
    for k in range(n):
        e.process(Update(T0, "X", "ab"[k % 2], 100.0 + (k % 7) * 0.01, k // 2))
    assert e.counts["updates"] == n and e.counts["used"] == n and not any(k.startswith("flagged") for k in e.counts)


def test_a_source_that_stops_is_reported_while_silent_and_when_it_resumes() -> None:
    e = gate_engine()
    e.process(Update(T0, "X", "a", 100.0, 1))
    e.process(Update(T0, "X", "b", 100.0, 1))
    out = []
    for k in range(2, 8):  # a keeps updating every 5 minutes, b has stopped
        out += e.process(Update(T0 + 300 * (k - 1), "X", "a", 100.0, k))
    out += e.tick(T0 + 2000)  # a last updated at T0+1800: still fresh
    stale = [x for x in out if isinstance(x, StaleEvent)]
    assert [(s.source, s.time, s.last_update, s.silent_seconds, s.threshold) for s in stale] == [("b", T0 + 1200, T0, 1200, 900)]
    assert e.silent_sources() == [("X", "b", T0)]
    back = e.process(Update(T0 + 2100, "X", "b", 100.0, 2))
    assert [(type(x), x.silent_seconds) for x in back if isinstance(x, ResumedEvent)] == [(ResumedEvent, 2100)]
    assert e.silent_sources() == []


def test_the_recommended_ltv_is_the_venue_rule_at_the_live_volatility() -> None:
    from pathlib import Path

    from risk.breakers import YEAR_SECONDS
    from risk.policy_load import load_policy
    from risk.rule import targets_for_market
    from risk.watch_state import recommend_at

    venue = load_policy(Path(__file__).resolve().parents[2] / "risk" / "demo" / "policy.yaml").policy
    weth = venue.market("WETH")
    b = policy([market("ETH", ("a",), "1h")], [{"name": "vol", "kind": "vol_scaling", "threshold": "80%", "max_scale": "250%"}])
    calm, stressed = recommend_at(0.5, 2000.0, b.rules[0], venue, weth), recommend_at(1.5, 2000.0, b.rules[0], venue, weth)
    sigma = 0.5 * math.sqrt(venue.scenarios.step.seconds / YEAR_SECONDS)  # annualised → per policy step
    expected = targets_for_market(venue, weth, sigma, 2000.0)
    assert (calm.ltv, calm.liquidation_threshold) == (expected.ltv, expected.liquidation_threshold)
    assert stressed.ltv is not None and calm.ltv is not None and stressed.ltv < calm.ltv  # more volatility, less borrowing power
    assert (calm.margin_scale, stressed.margin_scale) == (1.0, 1.5 / 0.8)
    assert recommend_at(float("nan"), 2000.0, b.rules[0], venue, weth).to_json() == {"liquidation_threshold": None, "ltv": None, "margin_scale": None, "vol": None}
