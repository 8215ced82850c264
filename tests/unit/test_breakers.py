"""risk.breakers*: each rule fires exactly where a hand-worked series says; the per-update state machines
and the vectorised replay give identical alerts (hypothesis); calibration picks the threshold worked
out by hand on a synthetic history; policies are refused at the right line; bad inputs are named."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from derivatives_fixtures import MINIMAL_BREAKERS
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from risk.breaker_policy import (
    BreakerPolicy,
    Breakers,
    check_breaker_policy_text,
    load_breaker_policy,
)
from risk.breakers import (
    YEAR_SECONDS,
    Alert,
    MarketMonitor,
    Trigger,
    fires,
    margin_scale,
    replay,
)
from risk.breakers_calibrate import MONTH_SECONDS, MarketHistory, calibrate, sweep
from risk.breakers_feed import (
    CompositeFeed,
    SourceSeries,
    load_market_stream,
    merge_sources,
    ticks,
)
from risk.errors import DataError, PolicyError, RiskInputError
from risk.policy import DataPolicy

REPO = Path(__file__).resolve().parents[2]
H = 3600
DAY = 86400
T0 = 1_704_067_200  # 2024-01-01T00:00:00Z


def breakers(rules: list[dict[str, Any]], sources: tuple[str, ...] = ("a",), calibration: dict[str, Any] | None = None, oi: bool = False, markets: list[dict[str, Any]] | None = None) -> Breakers:
    market: dict[str, Any] = {"symbol": "X", "sources": [{"name": s, "file": f"{s}.csv"} for s in sources]}
    if oi:
        market["open_interest"] = {"file": "oi.csv"}
    doc: dict[str, Any] = {"version": 1, "breakers": {"name": "t", "markets": markets or [market], "rules": rules}}
    if calibration is not None:
        doc["breakers"]["calibration"] = calibration
    return BreakerPolicy.model_validate_json(json.dumps(doc)).breakers


def rule(kind: str, threshold: str, **extra: Any) -> dict[str, Any]:
    return {"name": extra.pop("name", kind.replace("_", "-")), "kind": kind, "threshold": threshold, **extra}


def stream(*series: tuple[str, list[int], list[float]], fresh: int = 2 * H, oi: tuple[list[int], list[float]] | None = None):
    sources = [SourceSeries(n, np.array(t, np.int64), np.array(p, float)) for n, t, p in series]
    oi_series = None if oi is None else SourceSeries("open_interest", np.array(oi[0], np.int64), np.array(oi[1], float))
    return merge_sources("X", sources, fresh, oi_series)


def alerts_of(b: Breakers, s) -> list[Alert]:
    alerts, skipped = replay(b, {"X": s})
    assert skipped == []
    return alerts


def times(alerts: list[Alert]) -> list[int]:
    return [a.time for a in alerts]


# -- each rule on a hand-worked series -----------------------------------------------------------------


def test_price_band_per_update_fires_on_the_move_in_its_direction() -> None:
    s = stream(("a", [0, H, 2 * H, 3 * H, 4 * H], [100, 100, 94, 94, 100]))
    down = alerts_of(breakers([rule("price_band", "5%", direction="down")]), s)
    assert times(down) == [2 * H] and down[0].value == pytest.approx(0.06) and down[0].threshold == 0.05
    assert times(alerts_of(breakers([rule("price_band", "5%", direction="up")]), s)) == [4 * H]  # 94 → 100 is +6.4%
    assert times(alerts_of(breakers([rule("price_band", "5%", cooldown="1s")]), s)) == [2 * H, 4 * H]
    assert alerts_of(breakers([rule("price_band", "6.5%")]), s) == []


def test_price_band_over_a_window_compares_with_the_last_price_at_or_before_t_minus_window() -> None:
    t = [0, 1800, 3600, 5400, 7200, 9000]
    s = stream(("a", t, [100, 101, 99, 97, 95, 96]))
    # 7200: vs 100 at 0 (-5%); 9000: vs 101 at 1800 (-4.95%), not vs 100; before 7200 no price is 2h old
    once = alerts_of(breakers([rule("price_band", "4.5%", window="2h", direction="down")]), s)
    assert times(once) == [7200] and once[0].value == pytest.approx(0.05)
    both = alerts_of(breakers([rule("price_band", "4.5%", window="2h", direction="down", cooldown="1s")]), s)
    assert times(both) == [7200, 9000] and both[1].value == pytest.approx(1 - 96 / 101)


def test_staleness_reports_the_gap_at_the_update_that_ends_it() -> None:
    s = stream(("a", [0, H, 2 * H, 7 * H, 8 * H], [1.0] * 5))
    (alert,) = alerts_of(breakers([rule("staleness", "3h")]), s)
    assert (alert.time, alert.value, alert.threshold) == (7 * H, 5.0 * H, 3.0 * H)
    assert alerts_of(breakers([rule("staleness", "5h")]), s) == []  # strictly above the threshold


def test_divergence_is_measured_against_the_median_of_fresh_sources() -> None:
    a = ("a", [0, H, 2 * H, 3 * H], [100.0] * 4)
    b = ("b", [60, H + 60, 2 * H + 60, 3 * H + 60], [100.0, 100.0, 110.0, 100.0])
    two = breakers([rule("divergence", "2%")], sources=("a", "b"))
    (alert,) = alerts_of(two, stream(a, b))
    assert alert.time == 2 * H + 60 and alert.value == pytest.approx(5 / 105)  # median 105
    assert alerts_of(breakers([rule("divergence", "5%")], sources=("a", "b")), stream(a, b)) == []
    # a stops at 1h: at 2h+60 its price is 3660 s old, past a 1h freshness, so no second source to compare
    stale_a = ("a", [0, H], [100.0, 100.0])
    assert alerts_of(two, stream(stale_a, b, fresh=H)) == []
    assert len(alerts_of(two, stream(stale_a, b, fresh=2 * H))) == 1


def test_peg_kill_switch_trips_below_the_discount() -> None:
    s = stream(("a", [0, H, 2 * H, 3 * H, 4 * H], [1.0, 0.99, 0.94, 0.96, 0.93]))
    alerts = alerts_of(breakers([rule("peg", "5%", cooldown="1s", severity="critical")]), s)
    assert times(alerts) == [2 * H, 4 * H] and [a.severity for a in alerts] == ["critical"] * 2
    assert [a.value for a in alerts] == pytest.approx([0.06, 0.07])
    assert times(alerts_of(breakers([rule("peg", "5%", peg=0.9)]), s)) == []  # 0.93 is above a 0.9 peg


def test_vol_scaling_follows_the_time_weighted_ewma() -> None:
    t = [i * H for i in range(8)]
    p = [100.0] * 6 + [110.0, 110.0]
    r = math.log(1.1)
    a = 0.5 ** (H / (24 * H))
    expected = math.sqrt((1 - a) * r * r / H * YEAR_SECONDS)  # five zero returns, then the jump
    (alert,) = alerts_of(breakers([rule("vol_scaling", "50%", half_life="24h", warmup=3)]), stream(("a", t, p)))
    assert alert.time == 6 * H and alert.value == pytest.approx(expected, rel=1e-12)
    # with a warm-up of 7 returns the first value is at the 7th (7h), one zero return after the jump
    (late,) = alerts_of(breakers([rule("vol_scaling", "50%", half_life="24h", warmup=7)]), stream(("a", t, p)))
    assert late.time == 7 * H and late.value == pytest.approx(expected * math.sqrt(a), rel=1e-12)
    assert alerts_of(breakers([rule("vol_scaling", "50%", half_life="24h", warmup=8)]), stream(("a", t, p))) == []
    assert margin_scale(0.9, 0.6, 3.0) == pytest.approx(1.5) and margin_scale(0.3, 0.6, 3.0) == 1.0 and margin_scale(9.0, 0.6, 3.0) == 3.0
    with pytest.raises(RiskInputError):
        margin_scale(0.5, 0.0, 3.0)


def test_oi_cap_fires_on_open_interest_above_the_cap() -> None:
    oi = ([i * H for i in range(6)], [10e6, 40e6, 55e6, 60e6, 45e6, 52e6])
    s = stream(("a", [0, H], [1.0, 1.0]), oi=oi)
    assert times(alerts_of(breakers([rule("oi_cap", "$50M", cooldown="1s")], oi=True), s)) == [2 * H, 3 * H, 5 * H]
    assert times(alerts_of(breakers([rule("oi_cap", "$50M")], oi=True), s)) == [2 * H]


def test_cooldown_silences_then_reminds() -> None:
    exceed_at = np.array([0, 100, 3599, 3600, 7300])
    values = np.ones(5)
    assert exceed_at[fires(exceed_at, values, 0.5, 3600)].tolist() == [0, 3600, 7300]
    trigger = Trigger(0.5, 3600)
    assert [trigger.step(int(t), 1.0) for t in exceed_at] == [True, False, False, True, True]
    assert not Trigger(0.5, 1).step(0, float("nan"))
    with pytest.raises(RiskInputError, match="cooldown 0"):
        fires(exceed_at, values, 0.5, 0)


# -- per update == vectorised ------------------------------------------------------------------------


@st.composite
def market_cases(draw: st.DrawFn) -> tuple[Breakers, Any]:
    n_sources = draw(st.integers(1, 3))
    series = []
    for j in range(n_sources):
        # few distinct seconds, so sources often update in the same second; all share 25h..75h
        t = sorted(draw(st.sets(st.integers(0, 400).map(lambda k: k * 900), max_size=40)) | {100 * 900, 300 * 900})
        walk = np.cumsum(draw(st.lists(st.floats(-0.08, 0.08), min_size=len(t), max_size=len(t))))
        series.append((f"s{j}", t, (100 * np.exp(walk)).tolist()))
    names = tuple(s[0] for s in series)
    ratio = st.integers(1, 400).map(lambda bps: f"{bps}bps")
    cooldown = st.sampled_from(["1s", "15m", "1h", "24h"])
    source = st.sampled_from([None, *names])
    rules: list[dict[str, Any]] = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["price_band", "staleness", "peg", "vol_scaling", "oi_cap"] + (["divergence"] * (n_sources > 1))))
        r: dict[str, Any] = {"name": f"r{i}", "kind": kind, "cooldown": draw(cooldown)}
        if kind == "price_band":
            r.update(threshold=draw(ratio), window=draw(st.sampled_from([None, "15m", "1h", "6h"])), direction=draw(st.sampled_from(["up", "down", "both"])))
        elif kind == "staleness":
            r.update(threshold=draw(st.sampled_from(["15m", "1h", "2h"])))
        elif kind == "peg":
            r.update(threshold=draw(ratio), peg=draw(st.floats(90, 110)))
        elif kind == "vol_scaling":
            r.update(threshold=draw(st.integers(10, 800).map(lambda p: f"{p}%")), half_life=draw(st.sampled_from(["1h", "24h"])), warmup=draw(st.integers(1, 5)))
        elif kind == "divergence":
            r.update(threshold=draw(ratio))
        else:
            r.update(threshold=draw(st.integers(1, 100).map(lambda m: f"${m}M")))
        if kind in ("price_band", "staleness", "peg", "vol_scaling"):
            r["source"] = draw(source)
        rules.append(r)
    oi_t = sorted(draw(st.sets(st.integers(0, 400).map(lambda k: k * 900), min_size=2, max_size=20)))
    oi_v = draw(st.lists(st.floats(1e6, 1e8), min_size=len(oi_t), max_size=len(oi_t)))
    fresh = draw(st.sampled_from([900, H, 2 * H]))
    return breakers(rules, sources=names, oi=True), stream(*series, fresh=fresh, oi=(oi_t, oi_v))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=market_cases())
def test_per_update_monitor_equals_vectorised_replay(case: tuple[Breakers, Any]) -> None:
    b, s = case
    expected, _ = replay(b, {"X": s})
    target(float(len(expected)))  # steer towards streams that raise many alerts
    monitor = MarketMonitor("X", s.sources, s.fresh_within, b.rules)
    # a monitor receives price and OI updates interleaved in time, prices first within a second
    events = [(t, 0, k, ("p", j, p)) for k, (t, j, p) in enumerate(ticks(s))]
    events += [(t, 1, k, ("oi", -1, v)) for k, (t, v) in enumerate(zip(s.open_interest.times.tolist(), s.open_interest.values.tolist()))]
    got: list[Alert] = []
    for t, _, _, (what, j, v) in sorted(events):
        got += monitor.update(t, j, v) if what == "p" else monitor.update_open_interest(t, v)
    assert got == expected  # same times, values (bit for bit), thresholds, order


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=market_cases())
def test_composite_feed_equals_merged_stream(case: tuple[Breakers, Any]) -> None:
    _, s = case
    feed = CompositeFeed(s.sources, s.fresh_within)
    composite = [feed.update(t, j, p).composite for t, j, p in ticks(s)]
    assert composite == s.composite.tolist()


@settings(max_examples=80, deadline=None)
@given(
    gaps=st.lists(st.integers(0, 5000), min_size=1, max_size=200),
    data=st.data(),
    cooldown=st.integers(1, 20000),
)
def test_sweep_equals_fires_per_candidate(gaps: list[int], data: st.DataObject, cooldown: int) -> None:
    t = np.cumsum(np.array(gaps, np.int64)) + T0
    values = np.array(data.draw(st.lists(st.one_of(st.none(), st.floats(0, 1)), min_size=len(t), max_size=len(t))), dtype=float)
    thresholds = np.array(sorted(data.draw(st.lists(st.floats(0, 1), min_size=1, max_size=30))))
    h = MarketHistory("X", t, values, (int(t[0]), int(t[-1])), ((int(t[0]), int(t[-1])),), ())
    k, at = sweep(h, thresholds, cooldown)
    for i, thr in enumerate(thresholds):
        assert at[k == i].tolist() == t[fires(t, values, float(thr), cooldown)].tolist()


# -- calibration on a synthetic history --------------------------------------------------------------


def synthetic_history() -> SourceSeries:
    """90 days hourly at 100 (±0.05% wiggle); one-hour dips of -2.5% (day 5) and -3.5% (days 15, 25, 35);
    a crash to 92 (-8%) at day 60 + 5h that stays."""
    n = 90 * 24 + 1
    price = 100.0 + 0.05 * (np.arange(n) % 2)
    for day, dip in ((5, 97.5), (15, 96.5), (25, 96.5), (35, 96.5)):
        price[day * 24 + 12] = dip
    price[60 * 24 + 5 :] = 92.0
    return SourceSeries("a", T0 + H * np.arange(n), price)


CAL = {
    "max_detection_delay": "24h",
    "calm_margin": "7d",
    "crash_windows": [{"name": "crash", "start": "2024-03-01T00:00:00Z", "end": "2024-03-02T23:59:59Z"}],  # day 60..61
}


def test_calibration_picks_the_most_sensitive_threshold_within_the_false_alarm_limit() -> None:
    s = merge_sources("X", [synthetic_history()], 2 * H)
    band = rule("price_band", "2%", window="1h", direction="down", calibrate={"min": "1%", "max": "10%", "step": "1%"})
    # calm: the rule's values start at T0+1h; the crash window ± 7 days (days 53..69) is not calm
    calm_seconds = (53 * DAY - H) + (90 * DAY - 69 * DAY)
    months = calm_seconds / MONTH_SECONDS
    for limit, chosen, false_alarms in ((1.0, "4%", 0), (1.5, "3%", 3), (2.0, "1%", 4)):  # 1% and 2% both see the 4 dips
        report = calibrate(breakers([band], calibration={**CAL, "max_false_alarms_per_month": limit}), {"X": s})
        (r,) = report.rules
        assert r.calibrated is not None and r.calibrated.threshold == chosen
        assert r.calibrated.false_alarms == false_alarms and r.calibrated.calm_months == pytest.approx(months)
        assert r.calibrated.false_alarms_per_month == pytest.approx(false_alarms / months)
        (d,) = r.calibrated.detections
        assert (d.window, d.detected, d.delay_seconds) == ("crash", True, 5 * H)
        assert r.candidates == 10 and report.calibrated.ok
    # the policy's own 2% has 4 false alarms (the four dips): over a 1/month limit
    report = calibrate(breakers([band], calibration={**CAL, "max_false_alarms_per_month": 1.0}), {"X": s})
    assert report.rules[0].policy.false_alarms == 4 and not report.rules[0].policy.meets_false_alarm_limit and not report.ok


def test_calibration_reports_misses_and_explicit_calm_periods() -> None:
    s = merge_sources("X", [synthetic_history()], 2 * H)
    # 9% never fires: the crash is missed; only days 0..20 are calm, so only the dips of days 5 and 15 count
    band = rule("price_band", "9%", window="1h", direction="down")
    cal = {**CAL, "max_false_alarms_per_month": 1.0, "calm_periods": [{"start": "2024-01-01T00:00:00Z", "end": "2024-01-21T00:00:00Z"}]}
    report = calibrate(breakers([band, rule("price_band", "3%", name="dips", window="1h", direction="down", detects=False)], calibration=cal), {"X": s})
    high, dips = report.rules
    assert high.policy.missed == ("crash:X",) and report.policy.missed == ("crash:X",) and not report.ok
    assert dips.policy.false_alarms == 1 and dips.policy.calm_months == pytest.approx((20 * DAY - H) / MONTH_SECONDS)
    assert high.calibrated is None and dips.policy.missed == ()  # a data-quality rule is not required to catch crashes


def test_a_window_the_data_does_not_reach_is_not_covered() -> None:
    s = merge_sources("X", [synthetic_history()], 2 * H)
    cal = {**CAL, "max_false_alarms_per_month": 1.0, "crash_windows": [{"name": "later", "start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"}]}
    report = calibrate(breakers([rule("price_band", "4%", window="1h", direction="down")], calibration=cal), {"X": s})
    assert report.rules[0].policy.not_covered == ("later:X",) and report.policy.not_covered == ("later:X",) and report.ok


def test_calibration_needs_its_section_and_every_market() -> None:
    s = merge_sources("X", [synthetic_history()], 2 * H)
    with pytest.raises(PolicyError, match="no calibration section"):
        calibrate(breakers([rule("peg", "5%")]), {"X": s})
    with pytest.raises(PolicyError, match="no data for market"):
        calibrate(breakers([rule("peg", "5%")], calibration={**CAL, "max_false_alarms_per_month": 1}), {})


# -- policies -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["eth-perp-breakers.yaml", "usdc-usdt-peg-breaker.yaml"])
def test_example_policies_load(name: str) -> None:
    b = load_breaker_policy(REPO / "policies" / name).policy.breakers
    assert b.calibration is not None and b.calibration.crash_windows and len(b.rules) >= 3




def problems(text: str) -> list[str]:
    policy, found = check_breaker_policy_text(text.encode(), "b.yaml")
    assert policy is None
    return [str(p) for p in found]


def test_policy_mistakes_are_reported_at_their_line() -> None:
    (bare,) = problems(MINIMAL_BREAKERS.replace('threshold: "5%"', "threshold: 0.05"))
    assert bare.startswith("b.yaml:11:7: breakers.rules[0].threshold: ratio: bare number 0.05 where a ratio is required")
    missing, typo = problems(MINIMAL_BREAKERS.replace('threshold: "5%"', 'treshold: "5%"'))
    assert missing == "b.yaml:9:7: breakers.rules[0].threshold: required field is missing"
    assert typo == "b.yaml:11:7: breakers.rules[0].treshold: unknown field; did you mean 'threshold'?"
    (kind,) = problems(MINIMAL_BREAKERS.replace("kind: price_band", "kind: price_bands"))
    assert "b.yaml:9:7: breakers.rules[0]" in kind and "a rule needs kind" in kind
    (source,) = problems(MINIMAL_BREAKERS + "      source: b\n")
    assert source == "b.yaml:8:3: breakers.rules: rules[0] (r): market ETH has no source 'b'; its sources are a"
    (div,) = problems(MINIMAL_BREAKERS.replace("kind: price_band", "kind: divergence"))
    assert "divergence needs at least 2 sources" in div
    (oi,) = problems(MINIMAL_BREAKERS.replace("kind: price_band", "kind: oi_cap").replace('"5%"', '"$50M"'))
    assert "no open_interest source" in oi
    assert problems("- a list\n") == ["b.yaml:1:1: a breaker policy is a YAML mapping (version:, breakers:)"]
    with pytest.raises(PolicyError, match="not found"):
        load_breaker_policy(REPO / "policies" / "no-such.yaml")


def test_threshold_grid_is_checked() -> None:
    (p,) = problems(MINIMAL_BREAKERS + '      calibrate: {min: "5%", max: "1%", step: "1%"}\n')
    assert "min 5% is above max 1%" in p
    b = breakers([rule("price_band", "5%", calibrate={"min": "1%", "max": "2%", "step": "0.25%"})])
    assert [str(c) for c in b.rules[0].calibrate.candidates()] == ["1%", "1.25%", "1.5%", "1.75%", "2%"]


# -- bad inputs ------------------------------------------------------------------------------------------


def test_series_need_two_updates_and_sources_need_an_overlap() -> None:
    with pytest.raises(DataError, match="1 update"):
        SourceSeries("a", np.array([0]), np.array([1.0]))
    with pytest.raises(DataError, match="0 update"):
        SourceSeries("a", np.array([], np.int64), np.array([]))
    early = SourceSeries("early", np.array([0, H]), np.array([1.0, 1.0]))
    late = SourceSeries("late", np.array([5 * H, 6 * H]), np.array([1.0, 1.0]))
    with pytest.raises(DataError, match=r"share no stretch of time \(early 1970-01-01T00:00:00Z\.\.1970-01-01T01:00:00Z; late 1970-01-01T05:00:00Z\.\.1970-01-01T06:00:00Z\)"):
        merge_sources("X", [early, late], H)


def test_loading_names_the_file_of_an_empty_or_single_row_source(tmp_path: Path) -> None:
    b = load_breaker_policy(REPO / "policies" / "usdc-usdt-peg-breaker.yaml").policy.breakers
    usdc = b.market("USDC")
    empty, single = tmp_path / "empty.csv", tmp_path / "single.csv"
    empty.write_text("timestamp_utc,close\n")
    single.write_text("timestamp_utc,close\n2021-01-01 00:00:00,1.0\n")
    with pytest.raises(DataError, match="empty.csv: no data rows"):
        load_market_stream(usdc, DataPolicy(), files={"binance": empty})
    with pytest.raises(DataError, match="single.csv: 1 valid row"):
        load_market_stream(usdc, DataPolicy(), files={"binance": single})
