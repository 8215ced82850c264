"""The example breaker policies on the shared crash data: the figures measured at calibration, the
policies' thresholds still being the calibrated ones, and `steward breakers replay` reproducing every
calibration figure exactly when recomputed by hand from its alert lines."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from governance.cli import app
from risk.breaker_policy import load_breaker_policy
from risk.breakers import MarketMonitor, replay
from risk.breakers_calibrate import MONTH_SECONDS, CalibrationReport, calibrate
from risk.breakers_feed import load_market_stream, ticks

pytestmark = pytest.mark.realdata

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ETH = POLICIES / "eth-perp-breakers.yaml"
PEG = POLICIES / "usdc-usdt-peg-breaker.yaml"
runner = CliRunner()

# Measured on ../shared/data (see the policies' comments for the windows): per rule the threshold,
# alerts over the whole history, false alarms in calm time, and the delay to the first alert per crash
# window in seconds (None: no alert in the window).
ETH_FIGURES = {
    "eth-tick-move": ("6.5%", 57, 48, {"black-thursday": 39600, "may-2021": 46800, "ust-collapse": 219685, "celsius-3ac": 14542, "ftx": 61254}),
    "eth-drop-1h": ("5.5%", 78, 63, {"black-thursday": 39600, "may-2021": 41970, "ust-collapse": 219685, "celsius-3ac": 14542, "ftx": 18063}),
    "eth-drop-48h": ("16%", 77, 59, {"black-thursday": 39600, "may-2021": 32400, "ust-collapse": 72122, "celsius-3ac": 10957, "ftx": 72082}),
    "eth-vol": ("210%", 82, 62, {"black-thursday": 39600, "may-2021": 49163, "ust-collapse": 219685, "celsius-3ac": 14542, "ftx": 72082}),
    "eth-divergence": ("3%", 13, 9, {"may-2021": 46800}),
    "eth-stale": ("2h", 6, 6, dict.fromkeys(("black-thursday", "may-2021", "ust-collapse", "celsius-3ac", "ftx"))),
}
PEG_FIGURES = {
    "depeg-kill-switch": ("1%", 12, 0, {"ust-depeg": 83034}),
    "depeg-fast": ("0.5%", 11, 0, {"ust-depeg": 122620}),
    "feed-stale": ("2h", 5, 5, {"ust-depeg": None}),
}


@pytest.fixture(scope="module")
def loaded(shared_data: Path) -> dict[Path, tuple[Any, dict[str, Any], CalibrationReport]]:
    tables: dict[Path, Any] = {}  # the CoinGecko file is parsed once for both policies
    out = {}
    for path in (ETH, PEG):
        b = load_breaker_policy(path).policy.breakers
        streams = {m.symbol: load_market_stream(m, b.data, data_dir=shared_data, tables=tables)[0] for m in b.markets}
        out[path] = (b, streams, calibrate(b, streams))
    return out


@pytest.mark.parametrize(("path", "expected"), [(ETH, ETH_FIGURES), (PEG, PEG_FIGURES)])
def test_calibration_figures_measured_on_the_crashes(loaded: dict, path: Path, expected: dict) -> None:
    _, _, report = loaded[path]
    assert [r.rule for r in report.rules] == list(expected)
    for r in report.rules:
        threshold, alerts, false_alarms, delays = expected[r.rule]
        fig = r.policy
        assert (fig.threshold, fig.alerts, fig.false_alarms) == (threshold, alerts, false_alarms), r.rule
        assert {d.window: d.delay_seconds for d in fig.detections} == delays, r.rule
        assert fig.meets_false_alarm_limit and fig.false_alarms_per_month <= r.max_false_alarms_per_month
        assert r.matches_policy, f"{r.rule}: calibration now picks {r.calibrated.threshold}; update the policy"
    assert report.ok and report.calibrated.ok and report.policy.missed == ()


def test_the_eth_breaker_catches_each_crash_with_a_different_rule(loaded: dict) -> None:
    _, _, report = loaded[ETH]
    caught = {d.window: (d.rule, d.delay_seconds) for d in report.policy.detections}
    assert caught == {
        "black-thursday": ("eth-tick-move", 39600),  # 11 h: the 10:00 bar of 2020-03-12 (-23%)
        "may-2021": ("eth-drop-48h", 32400),
        "ust-collapse": ("eth-drop-48h", 72122),  # a slow fall: no 1h rule sees it within 24 h
        "celsius-3ac": ("eth-drop-48h", 10957),
        "ftx": ("eth-drop-1h", 18063),
    }
    by_rule = {r.rule: r.policy for r in report.rules}
    assert by_rule["eth-drop-1h"].missed == ("ust-collapse:ETH",) and by_rule["eth-drop-48h"].missed == ()
    # divergence only has two fresh sources in 2021 (Binance ends 2021-12-06)
    assert by_rule["eth-divergence"].not_covered == ("black-thursday:ETH", "ust-collapse:ETH", "celsius-3ac:ETH", "ftx:ETH")


def _unix(iso: str) -> int:
    return int(dt.datetime.fromisoformat(iso).timestamp())  # Python 3.11 reads the Z


def _figures_by_hand(rule: dict[str, Any], alerts: list[dict[str, Any]], policy: Any) -> tuple[int, int, float, dict[str, int | None]]:
    """From replay's alert lines alone (plus the rule's data spans): alerts, false alarms, per month, delay per window."""
    cal = policy.calibration
    margin, max_delay = cal.calm_margin.seconds, cal.max_detection_delay.seconds
    cuts = [(_unix(w.start.isoformat()) - margin, _unix(w.end.isoformat()) + margin) for w in cal.crash_windows]
    spans = {m: (_unix(a), _unix(b)) for m, (a, b) in rule["policy"]["spans"].items()}
    false_alarms, calm_seconds, delays = 0, 0, {}
    for market, (lo, hi) in spans.items():
        times = [_unix(a["time"]) for a in alerts if a["market"] == market]
        false_alarms += sum(1 for t in times if lo <= t <= hi and not any(a <= t <= b for a, b in cuts))
        calm = [(lo, hi)]
        for a, b in cuts:  # a plain interval subtraction
            calm = [piece for x, y in calm for piece in ((x, min(y, a)), (max(x, b), y)) if piece[1] > piece[0]]
        calm_seconds += sum(y - x for x, y in calm)
        for w in cal.crash_windows:
            start, end = _unix(w.start.isoformat()), _unix(w.end.isoformat())
            if (w.markets is None or market in w.markets) and lo <= start and hi >= min(end, start + max_delay):
                inside = [t for t in times if start <= t <= end]
                delays[w.name] = inside[0] - start if inside else None
    return len(alerts), false_alarms, false_alarms / (calm_seconds / MONTH_SECONDS), delays


@pytest.mark.parametrize("path", [ETH, PEG])
def test_replay_reproduces_the_calibration_figures_exactly(shared_data: Path, path: Path) -> None:
    calibrated = runner.invoke(app, ["breakers", "calibrate", str(path), "--data", str(shared_data)])
    replayed = runner.invoke(app, ["breakers", "replay", str(path), "--data", str(shared_data)])
    assert calibrated.exit_code == 0 and replayed.exit_code == 0, calibrated.output + replayed.output
    report = json.loads(calibrated.stdout)
    lines = [json.loads(line) for line in replayed.stdout.splitlines()]
    policy = load_breaker_policy(path).policy.breakers
    for rule in report["rules"]:
        alerts = [a for a in lines if a["rule"] == rule["rule"]]
        count, false_alarms, per_month, delays = _figures_by_hand(rule, alerts, policy)
        fig = rule["policy"]
        assert (count, false_alarms, per_month) == (fig["alerts"], fig["false_alarms"], fig["false_alarms_per_month"]), rule["rule"]
        assert delays == {e["window"]: None if e["delay_hours"] is None else round(e["delay_hours"] * 3600) for e in fig["events"]}, rule["rule"]
        assert all(a["threshold"] == fig["threshold_value"] for a in alerts)


def test_replay_of_the_files_given_with_prices_is_the_same(shared_data: Path) -> None:
    market = shared_data / "market"
    own = runner.invoke(app, ["breakers", "replay", str(ETH), "--data", str(shared_data)])
    given = runner.invoke(
        app,
        ["breakers", "replay", str(ETH), "--prices", f"coingecko={market / 'coingecko_hourly_aave_v2_assets_2021_2023.csv'}", "--prices", f"binance={market / 'binance_ethusdt_1h_cdd.csv'}"],
    )
    assert given.exit_code == 0 and given.stdout == own.stdout and len(given.stdout.splitlines()) == sum(f[1] for f in ETH_FIGURES.values())


@pytest.mark.parametrize("path", [ETH, PEG])
def test_a_monitor_fed_update_by_update_raises_the_replayed_alerts(loaded: dict, path: Path) -> None:
    b, streams, _ = loaded[path]
    expected, _ = replay(b, streams)
    events = []
    for m_index, market in enumerate(b.markets):
        events += [(t, m_index, k, market.symbol, j, p) for k, (t, j, p) in enumerate(ticks(streams[market.symbol]))]
    monitors = {m.symbol: MarketMonitor(m.symbol, streams[m.symbol].sources, streams[m.symbol].fresh_within, b.rules_for(m.symbol)) for m in b.markets}
    got = []
    for t, _, _, symbol, j, p in sorted(events):
        got += monitors[symbol].update(t, j, p)
    assert got == expected and len(got) == sum(r.policy.alerts for r in loaded[path][2].rules)
