"""`steward breakers replay|calibrate` in-process: JSON on stdout, one alert a line; bad inputs exit 2 with a
named cause and no traceback; any price file shape `risk.data` reads can be replayed."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance.cli import app

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
ALERT_KEYS = {"market", "rule", "severity", "threshold", "time", "value"}
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

POLICY = """\
version: 1
breakers:
  name: t
  markets:
    - symbol: ETH
      sources:
        - {name: first, file: first.csv, column: price}
        - {name: second, file: second.csv, symbol: WETH}
  rules:
    - {name: drop, kind: price_band, threshold: "5%", direction: down, severity: critical, source: first}
    - {name: stale, kind: staleness, threshold: 3h, source: first}
    - {name: gap, kind: divergence, threshold: "4%"}
  calibration:
    max_false_alarms_per_month: 1
    max_detection_delay: 6h
    calm_margin: 1d
    crash_windows:
      - {name: dip, start: "2023-01-02T00:00:00Z", end: "2023-01-02T12:00:00Z"}
  data:
    max_gap: 30d
"""


def hours(n: int) -> list[str]:
    """`n` hourly timestamps from 2023-01-01 00:00 (naive = UTC)."""
    start = dt.datetime(2023, 1, 1)
    return [(start + dt.timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(n)]


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    p = tmp_path / "breakers.yaml"
    p.write_text(POLICY)
    return p


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def alert_lines(stdout: str) -> list[dict[str, object]]:
    alerts = []
    for line in stdout.splitlines():
        obj = json.loads(line)
        assert set(obj) == ALERT_KEYS and ISO.match(str(obj["time"])) and line == json.dumps(obj, sort_keys=True)
        alerts.append(obj)
    return alerts


def test_replay_prints_one_json_line_per_alert(tmp_path: Path, policy: Path) -> None:
    times = hours(48)
    prices = [100.0] * 48
    prices[30] = 90.0  # -10% at 2023-01-02 06:00, back the hour after
    rows = [f"{t},{p}" for i, (t, p) in enumerate(zip(times, prices)) if i not in (40, 41, 42, 43)]  # 5h without data
    csv = write(tmp_path / "wide.csv", "timestamp_utc,price", rows)
    result = invoke("breakers", "replay", policy, "--prices", csv)
    assert result.exit_code == 0, result.output
    alerts = alert_lines(result.stdout)
    assert [(a["time"], a["rule"]) for a in alerts] == [("2023-01-02T06:00:00Z", "drop"), ("2023-01-02T20:00:00Z", "stale")]
    assert alerts[0] == {"market": "ETH", "rule": "drop", "severity": "critical", "threshold": 0.05, "time": "2023-01-02T06:00:00Z", "value": pytest.approx(0.1)}
    assert alerts[1]["value"] == 5 * 3600.0 and alerts[1]["threshold"] == 3 * 3600.0
    assert "gap: skipped (divergence needs 2 sources, 1 given)" in result.stderr


def test_replay_of_two_sources_compares_them(tmp_path: Path, policy: Path) -> None:
    times = hours(24)
    first = write(tmp_path / "ohlcv.csv", "timestamp_utc,open,high,low,close", [f"{t},100,100,100,100" for t in times])
    weth = [110.0 if i == 12 else 100.0 for i in range(24)]
    second = write(tmp_path / "long.csv", "timestamp_utc,symbol,price_usd", [f"{t},WETH,{p}" for t, p in zip(times, weth)])
    named = invoke("breakers", "replay", policy, "--prices", f"second={second}", "--prices", f"first={first}")
    assert named.exit_code == 0, named.output
    (gap,) = alert_lines(named.stdout)
    assert (gap["rule"], gap["time"], gap["value"]) == ("gap", "2023-01-01T12:00:00Z", pytest.approx(5 / 105))
    positional = invoke("breakers", "replay", policy, "--prices", first, "--prices", second)
    assert positional.exit_code == 0 and positional.stdout == named.stdout


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("timestamp_utc,open,high,low,close,volume", "{t},{p},{p},{p},{p},5"),  # OHLCV: the close
        ("timestamp_utc,anything", "{t},{p}"),  # wide, one column of any name
        ("timestamp_utc,symbol,price_usd", "{t},USDC,{p}"),  # long, one symbol (the policy says WETH)
    ],
)
def test_replay_works_on_any_price_file_shape(tmp_path: Path, policy: Path, header: str, row: str) -> None:
    prices = [100.0] * 10 + [94.0] * 10
    csv = write(tmp_path / "p.csv", header, [row.format(t=t, p=p) for t, p in zip(hours(20), prices)])
    source = "second" if "symbol" in header else "first"
    result = invoke("breakers", "replay", policy, "--prices", f"{source}={csv}")
    assert result.exit_code == 0, result.output
    alerts = alert_lines(result.stdout)
    if source == "first":
        assert [(a["rule"], a["time"]) for a in alerts] == [("drop", "2023-01-01T10:00:00Z")]
    else:
        assert alerts == []  # the drop rule watches `first`, not given


def test_replay_without_files_uses_the_policys_data(tmp_path: Path, policy: Path) -> None:
    write(tmp_path / "first.csv", "timestamp_utc,price", [f"{t},100" for t in hours(10)])
    write(tmp_path / "second.csv", "timestamp_utc,symbol,price_usd", [f"{t},WETH,{90 if i == 5 else 100}" for i, t in enumerate(hours(10))])
    result = invoke("breakers", "replay", policy, "--data", tmp_path)
    assert result.exit_code == 0, result.output
    assert [(a["rule"], a["time"]) for a in alert_lines(result.stdout)] == [("gap", "2023-01-01T05:00:00Z")]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"e.csv": "timestamp_utc,price\n"}, "e.csv: no data rows"),
        ({"e.csv": ""}, "e.csv: file is empty"),
        ({"s.csv": "timestamp_utc,price\n2023-01-01 00:00:00,1\n"}, "s.csv: 1 valid row(s)"),
        ({"a.csv": "timestamp_utc,price\n2023-01-01 00:00:00,1\n2023-01-01 01:00:00,1\n", "b.csv": "timestamp_utc,symbol,price_usd\n2023-02-01 00:00:00,WETH,1\n2023-02-01 01:00:00,WETH,1\n"},
         "market ETH: its sources share no stretch of time (first 2023-01-01T00:00:00Z..2023-01-01T01:00:00Z; second 2023-02-01T00:00:00Z..2023-02-01T01:00:00Z)"),
        ({"w.csv": "timestamp_utc,a,b\n2023-01-01 00:00:00,1,2\n2023-01-01 01:00:00,1,2\n"}, "w.csv: no column 'price' and several price columns (a, b)"),
    ],
)
def test_bad_price_files_exit_2_with_the_cause(tmp_path: Path, policy: Path, files: dict[str, str], expected: str) -> None:
    args = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        args += ["--prices", str(tmp_path / name)]
    result = invoke("breakers", "replay", policy, *args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "hint:" in result.output and "Traceback" not in result.output
    assert result.stdout == ""


def test_bad_arguments_exit_2(tmp_path: Path, policy: Path) -> None:
    csv = write(tmp_path / "p.csv", "timestamp_utc,price", [f"{t},1" for t in hours(5)])
    too_many = invoke("breakers", "replay", policy, "--prices", csv, "--prices", csv, "--prices", csv)
    assert too_many.exit_code == 2 and "2 source(s) (first, second) but 3 --prices file(s)" in too_many.output
    missing = invoke("breakers", "replay", policy, "--prices", tmp_path / "nope.csv")
    assert missing.exit_code == 2 and "nope.csv: file not found" in missing.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace('threshold: "4%"', "threshold: 4"))
    refused = invoke("breakers", "replay", bad, "--prices", csv)
    assert refused.exit_code == 2 and "bad.yaml:12:37: breakers.rules[2].threshold: ratio: bare number 4" in refused.output
    two = tmp_path / "two.yaml"
    two.write_text(POLICY.replace("  rules:", "    - symbol: BTC\n      sources: [{name: first, file: x.csv}, {name: second, file: y.csv}]\n  rules:"))
    which = invoke("breakers", "replay", two, "--prices", csv)
    assert which.exit_code == 2 and "add --market SYMBOL" in which.output
    assert invoke("breakers", "replay", tmp_path / "none.yaml").exit_code == 2


def test_calibrate_prints_json_and_exits_1_when_the_policy_misses(tmp_path: Path, policy: Path) -> None:
    times = hours(24 * 20)
    drop = [90.0 if i == 24 + 3 else 100.0 for i in range(len(times))]  # in the window, 3h after its start
    write(tmp_path / "first.csv", "timestamp_utc,price", [f"{t},{p}" for t, p in zip(times, drop)])
    write(tmp_path / "second.csv", "timestamp_utc,symbol,price_usd", [f"{t},WETH,100" for t in times])
    ok = invoke("breakers", "calibrate", policy, "--data", tmp_path)
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert ok.stdout == json.dumps(report, indent=2, sort_keys=True) + "\n"
    assert report["ok"] and [r["rule"] for r in report["rules"]] == ["drop", "stale", "gap"]
    (event,) = report["policy"]["events"]
    assert (event["window"], event["rule"], event["delay_hours"], event["detected"]) == ("dip", "drop", 3.0, True)
    late = tmp_path / "late.yaml"
    late.write_text(POLICY.replace("max_detection_delay: 6h", "max_detection_delay: 2h"))
    missed = invoke("breakers", "calibrate", late, "--data", tmp_path)
    assert missed.exit_code == 1 and json.loads(missed.stdout)["policy"]["missed"] == ["dip:ETH"]
    empty = tmp_path / "nocal.yaml"
    empty.write_text(POLICY.split("  calibration:")[0])
    assert invoke("breakers", "calibrate", empty, "--data", tmp_path).exit_code == 2


def test_open_interest_and_time_offset(tmp_path: Path) -> None:
    p = tmp_path / "perp.yaml"
    p.write_text(
        POLICY.replace("{name: first, file: first.csv, column: price}", "{name: first, file: first.csv, column: price, time_offset: 1h}")
        .replace("      sources:\n", "      open_interest: {file: oi.csv}\n      sources:\n")
        .replace("    - {name: gap, kind: divergence, threshold: \"4%\"}", "    - {name: cap, kind: oi_cap, threshold: \"$50M\", cooldown: 1h}")
    )
    times = hours(6)
    csv = write(tmp_path / "p.csv", "timestamp_utc,price", [f"{t},{94 if i == 3 else 100}" for i, t in enumerate(times)])
    oi = write(tmp_path / "oi.csv", "timestamp_utc,open_interest_usd", [f"{t},{v}" for t, v in zip(times, [40e6, 55e6, 45e6, 60e6, 70e6, 30e6])])
    result = invoke("breakers", "replay", p, "--prices", csv, "--open-interest", oi)
    assert result.exit_code == 0, result.output
    got = [(a["rule"], a["time"], a["value"]) for a in alert_lines(result.stdout)]
    # the 03:00 bar is known at 04:00 (time_offset 1h); OI above $50M at 01:00, 03:00, 04:00 (a 1h cooldown)
    assert got == [("cap", "2023-01-01T01:00:00Z", 55e6), ("cap", "2023-01-01T03:00:00Z", 60e6), ("drop", "2023-01-01T04:00:00Z", pytest.approx(0.06)), ("cap", "2023-01-01T04:00:00Z", 70e6)]
