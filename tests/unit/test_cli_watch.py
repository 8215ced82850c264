"""`steward watch` on files, in-process and as a process: its alert lines are `steward breakers replay`'s,
at full speed and update by update; a book gives health events; a rule with an action writes a verified
emergency bundle; bad arguments exit 2 with the cause; Ctrl-C stops a live replay with a summary."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from governance import cli, cli_watch
from governance.watch_emergency import verify_emergency_bundle

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

POLICY = """\
version: 1
breakers:
  name: t
  markets:
    - symbol: ETH
      sources:
        - {name: first, file: first.csv, column: price}
        - {name: second, file: second.csv, column: price}
      fresh_within: 2h
  rules:
    - {name: drop, kind: price_band, threshold: "5%", window: 1h, direction: down, severity: critical, action: freeze}
    - {name: tick, kind: price_band, threshold: "3%", cooldown: 1h}
    - {name: stale, kind: staleness, threshold: 3h, source: first}
    - {name: gap, kind: divergence, threshold: "4%"}
    - {name: vol, kind: vol_scaling, threshold: "120%", half_life: 12h, warmup: 4}
  data:
    max_gap: 30d
  watch:
    liquidation_thresholds: {ETH: "82.5%"}
    health: {debt_at_risk: "3%", cooldown: 12h}
    emergency: {venue_markets: {ETH: WETH}, ltv_floor: "25%"}
"""


def app() -> typer.Typer:
    """`steward` with `watch` registered (the lead wires it into cli.py; until then, here)."""
    if "watch" not in [c.name for c in cli.app.registered_commands]:
        cli_watch.register(cli.app, guarded=cli.guarded, out=cli.out, err=cli.err)
    return cli.app


def invoke(*args: Any) -> Any:
    return runner.invoke(app(), [str(a) for a in args])


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A policy and two hourly feeds over 20 days: a random walk with a crash, a gap and a feed that drifts away."""
    rng = np.random.default_rng(11)
    n = 480
    times = [(dt.datetime(2023, 1, 1) + dt.timedelta(hours=i)).strftime("%Y-%m-%d %H:%M:%S") for i in range(n)]
    walk = 1500 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    walk[200:206] *= np.linspace(1.0, 0.7, 6)  # a crash: -30% in five hours
    walk[206:] *= 0.7
    second = walk * (1 + rng.normal(0, 0.002, n))
    second[300:310] *= 1.08  # the second feed drifts away for ten hours
    first_rows = [f"{t},{float(p)!r}" for i, (t, p) in enumerate(zip(times, walk)) if not 400 <= i < 405]  # 6h without the first feed
    (tmp_path / "first.csv").write_text("timestamp_utc,price\n" + "\n".join(first_rows) + "\n")
    (tmp_path / "second.csv").write_text("timestamp_utc,price\n" + "\n".join(f"{t},{float(p)!r}" for t, p in zip(times, second)) + "\n")
    policy = tmp_path / "breakers.yaml"
    policy.write_text(POLICY)
    return policy, tmp_path / "first.csv", tmp_path / "second.csv"


def lines(stdout: str) -> list[dict[str, Any]]:
    out = []
    for line in stdout.splitlines():
        doc = json.loads(line)
        assert line == json.dumps(doc, sort_keys=True, ensure_ascii=False)
        out.append(doc)
    return out


def test_watch_alerts_are_the_breakers_replay_alerts(files: tuple[Path, Path, Path]) -> None:
    policy, first, second = files
    replayed = invoke("breakers", "replay", policy, "--prices", f"first={first}", "--prices", f"second={second}")
    watched = invoke("watch", policy, "--source", f"csv:first={first},second={second}", "--generate-book", 2000)
    assert replayed.exit_code == 0 and watched.exit_code == 0, replayed.output + watched.output
    expected = [json.loads(x) for x in replayed.stdout.splitlines()]
    events = lines(watched.stdout)
    alerts = [{k: v for k, v in e.items() if k != "kind"} for e in events if e["kind"] == "alert"]
    assert alerts == expected and {a["rule"] for a in alerts} == {"drop", "tick", "stale", "gap", "vol"}
    kinds = [e["kind"] for e in events]
    assert {"health", "stale", "resumed"} <= set(kinds) and kinds[0] == "start" and kinds[-1] == "summary"
    summary = events[-1]
    assert summary["stopped"] == "end of data" and summary["updates"] == 955 and summary["alerts"] == {r: sum(a["rule"] == r for a in alerts) for r in summary["alerts"]}
    assert summary["markets"]["ETH"]["recommendation"]["margin_scale"] >= 1.0
    assert "rules with an action only report" in watched.stderr


def test_update_by_update_gives_the_same_lines_as_full_speed(files: tuple[Path, Path, Path]) -> None:
    policy, first, second = files
    source = f"csv:{first},{second}"
    fast = invoke("watch", policy, "--source", source, "--generate-book", 500, "--seed", 3)
    paced = invoke("watch", policy, "--source", source, "--generate-book", 500, "--seed", 3, "--speed", "1e12")
    assert fast.exit_code == 0 and paced.exit_code == 0, fast.output + paced.output
    a, b = lines(fast.stdout), lines(paced.stdout)
    assert (a[0]["mode"], b[0]["mode"]) == ("replay", "paced")
    assert a[1:-1] == b[1:-1] and len(a) > 20
    drop = {"elapsed_s"}
    assert {k: v for k, v in a[-1].items() if k not in drop} == {k: v for k, v in b[-1].items() if k not in drop}


def test_a_book_file_is_watched(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    policy, first, second = files
    book = tmp_path / "book.csv"
    # two borrowers liquidatable after a 20% fall from 1500, one safe; LT 82.5%
    book.write_text("owner,market,collateral,debt_usd\n1,ETH,10,11000\n2,ETH,5,5200\n3,ETH,100,20000\n")
    result = invoke("watch", policy, "--source", f"csv:{first},{second}", "--book", book)
    assert result.exit_code == 0, result.output
    health = [e for e in lines(result.stdout) if e["kind"] == "health"]
    assert health and health[0]["values"]["below"] >= 1 and health[0]["value"] > 0.03
    liq = {1: 11000 / (10 * 0.825), 2: 5200 / (5 * 0.825)}  # liquidation prices
    first_event = health[0]
    assert first_event["values"]["below"] == sum(first_event["price"] < p for p in liq.values())


def test_an_action_writes_a_verified_emergency_bundle(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    policy, first, second = files
    out = tmp_path / "proposals"
    result = invoke("watch", policy, "--source", f"csv:{first},{second}", "--venue", REPO / "risk/demo/policy.yaml",
                    "--snapshot", REPO / "risk/demo/snapshot.json", "--emergency-out", out)
    assert result.exit_code == 0, result.output
    events = lines(result.stdout)
    drops = [e for e in events if e["kind"] == "alert" and e["rule"] == "drop"]
    emergencies = [e for e in events if e["kind"] == "emergency"]
    assert drops and len(emergencies) == len(drops)
    written = [e for e in emergencies if e["status"] == "written"]
    assert written and all(e["status"] in ("written", "duplicate") for e in emergencies)
    for e in written:
        bundle = Path(e["bundle"])
        assert bundle.parent == out / "steward-demo-aave-v3" and verify_emergency_bundle(bundle) == (8, 0)
        assert json.loads((bundle / "safe-tx.json").read_text())["safeTxHash"] == e["safe_tx_hash"]
    assert events[-1]["emergencies"] == dict(Counter(e["status"] for e in emergencies))


@pytest.mark.parametrize(("args", "cause"), [
    (["--source", "kafka:topic"], "neither csv:FILE"),
    (["--source", "csv:{first}", "--book", "{first}", "--generate-book", "10"], "--book and --generate-book both given"),
    (["--source", "csv:{first}", "--emergency-out", "{tmp}"], "--emergency-out needs the venue"),
    (["--source", "csv:{first}", "--speed", "fast"], "--speed 'fast'"),
    (["--source", "rpc:http://127.0.0.1:9"], "needs watch.feeds"),
])
def test_bad_arguments_exit_2_with_the_cause(files: tuple[Path, Path, Path], tmp_path: Path, args: list[str], cause: str) -> None:
    policy, first, _ = files
    result = invoke("watch", policy, *[a.format(first=first, tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and cause in result.stderr and "Traceback" not in result.output


def test_ctrl_c_stops_a_live_replay_with_a_summary(files: tuple[Path, Path, Path]) -> None:
    policy, first, second = files
    script = "from governance import cli, cli_watch\n" \
             "if 'watch' not in [c.name for c in cli.app.registered_commands]:\n" \
             "    cli_watch.register(cli.app, guarded=cli.guarded, out=cli.out, err=cli.err)\n" \
             "cli.app()\n"
    # at 3600x an hourly feed gives one update a second: the replay would take 8 minutes
    proc = subprocess.Popen([sys.executable, "-c", script, "watch", str(policy), "--source", f"csv:{first},{second}", "--speed", "3600", "--no-view"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        start = json.loads(proc.stdout.readline())  # the loop has started
        assert start == {"kind": "start", "markets": {"ETH": ["first", "second"]}, "mode": "paced", "source": f"csv:{first},{second}", "speed": "3600"}
        time.sleep(3.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    summary = json.loads(stdout.splitlines()[-1])
    assert summary["kind"] == "summary" and summary["stopped"] == "interrupted"
    assert 2 <= summary["updates"] < 100 and summary["used"] == summary["updates"]
    assert "Traceback" not in stderr


def test_the_webhook_receives_every_event_line(files: tuple[Path, Path, Path]) -> None:
    import http.server
    import threading

    got: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    policy, first, second = files
    try:
        result = invoke("watch", policy, "--source", f"csv:{first},{second}", "--webhook", f"http://127.0.0.1:{server.server_port}/hook")
    finally:
        server.shutdown()
    assert result.exit_code == 0, result.output
    events = lines(result.stdout)
    assert got == events[1:-1] and len(got) > 10  # everything between the start and the summary lines
    assert events[-1]["webhook"] == {"dropped": 0, "failed": 0, "retried": 0, "sent": len(got)}
