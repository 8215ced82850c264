"""`steward watch` on the shared crash data: replaying the policies' histories, and each crash window cut out
of the shared files, gives exactly the alert lines of `steward breakers replay`; the update-by-update
monitor gives the fast replay's events on the real streams too."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from governance import cli, cli_watch
from risk.breaker_policy import load_breaker_policy
from risk.breakers_feed import load_market_stream
from risk.watch_engine import WatchEngine
from risk.watch_events import Update
from risk.watch_health import generated_factory
from risk.watch_replay import replay_events

pytestmark = pytest.mark.realdata

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ETH = POLICIES / "eth-perp-breakers.yaml"
PEG = POLICIES / "usdc-usdt-peg-breaker.yaml"
runner = CliRunner()


def invoke(*args: Any) -> Any:
    if "watch" not in [c.name for c in cli.app.registered_commands]:
        cli_watch.register(cli.app, guarded=cli.guarded, out=cli.out, err=cli.err)
    return runner.invoke(cli.app, [str(a) for a in args])


def watch_alerts(stdout: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in doc.items() if k != "kind"} for doc in map(json.loads, stdout.splitlines()) if doc["kind"] == "alert"]


@pytest.mark.parametrize("policy", [ETH, PEG])
def test_watching_the_histories_gives_the_replays_alerts(shared_data: Path, policy: Path) -> None:
    replayed = invoke("breakers", "replay", policy, "--data", shared_data)
    watched = invoke("watch", policy, "--source", "csv", "--data", shared_data, "--generate-book", 20_000)
    assert replayed.exit_code == 0 and watched.exit_code == 0, replayed.output + watched.output
    expected = [json.loads(x) for x in replayed.stdout.splitlines()]
    assert watch_alerts(watched.stdout) == expected and len(expected) > 20


def _slice(shared_data: Path, tmp: Path, start: dt.datetime, end: dt.datetime) -> dict[str, Path]:
    """The ETH policy's two source files cut to [start, end], in their own shapes (rows as written)."""
    out = {}
    for name, rel, keep in (("binance", "market/binance_ethusdt_1h_cdd.csv", lambda row: True),
                            ("coingecko", "market/coingecko_hourly_aave_v2_assets_2021_2023.csv", lambda row: row.split(",")[1] == "WETH")):
        header, *rows = (shared_data / rel).read_text().splitlines()
        chosen = [r for r in rows if start <= dt.datetime.fromisoformat(r[:19]) <= end and keep(r)]
        if len(chosen) >= 10:
            path = tmp / f"{name}-{start:%Y%m%d}.csv"
            path.write_text("\n".join([header, *chosen]) + "\n")
            out[name] = path
    return out


def test_each_crash_window_cut_from_the_shared_files_gives_the_replays_alerts(shared_data: Path, tmp_path: Path) -> None:
    policy = load_breaker_policy(ETH).policy.breakers
    assert policy.calibration is not None
    compared = 0
    for window in policy.calibration.crash_windows:
        start = window.start.replace(tzinfo=None) - dt.timedelta(days=5)
        end = window.end.replace(tzinfo=None) + dt.timedelta(days=5)
        files = _slice(shared_data, tmp_path, start, end)
        assert files, window.name
        prices = [a for name, path in files.items() for a in ("--prices", f"{name}={path}")]
        replayed = invoke("breakers", "replay", ETH, *prices)
        watched = invoke("watch", ETH, "--source", "csv:" + ",".join(f"{n}={p}" for n, p in files.items()), "--generate-book", 5_000)
        assert replayed.exit_code == 0 and watched.exit_code == 0, window.name + replayed.output + watched.output
        expected = [json.loads(x) for x in replayed.stdout.splitlines()]
        assert watch_alerts(watched.stdout) == expected, window.name
        assert any(a["severity"] == "critical" for a in expected), window.name  # each crash trips a critical rule
        compared += len(expected)
    assert compared > 30


@pytest.mark.parametrize("policy", [ETH, PEG])
def test_the_per_update_monitor_gives_the_fast_replays_events_on_real_streams(shared_data: Path, policy: Path) -> None:
    b = load_breaker_policy(policy).policy.breakers
    streams = {m.symbol: load_market_stream(m, b.data, data_dir=shared_data)[0] for m in b.markets}
    symbols = list(streams)

    def factory() -> Any:
        return generated_factory(7, 4_000, symbols, dict.fromkeys(symbols, 0.8), 1.05)

    rows = []
    for i, m in enumerate(b.markets):
        s = streams[m.symbol]
        rows += [(t, i, k, m.symbol, s.sources[j], p) for k, (t, j, p) in enumerate(zip(s.times.tolist(), s.source.tolist(), s.price.tolist()))]
    engine = WatchEngine(b, health_factory=factory())
    got = []
    for t, _, k, market, source, p in sorted(rows):
        got += engine.process(Update(t, market, source, p, k))
    fast = replay_events(b, streams, health_factory=factory())
    assert [e.to_json() for e in got] == [e.to_json() for e in fast.events]
    assert {e.kind for e in got} >= {"alert", "health", "stale", "resumed"}
