"""`steward watch` on the devnet, end to end: prices pushed into a Chainlink-style feed that the devnet's
AaveOracle reads → the monitor follows its AnswerUpdated rounds → a breaker fires → an emergency bundle
(freeze, then pause through the guardian's EMERGENCY_ADMIN role) is written, verified and simulated OK
on the chain, which keeps its state; polling instead of events misses no round pushed between polls."""

from __future__ import annotations

import io
import json
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from governance.artifacts import load_artifact
from governance.devnet_aave import AAVE
from governance.devnet_chain import Chain
from governance.watch_contract import (
    deploy_push_feed,
    grant_guardian,
    point_oracle,
    push_price,
)
from governance.watch_emergency import verify_emergency_bundle
from governance.watch_run import WatchOptions, prepare, run

pytestmark = pytest.mark.e2e

POLICY = """\
version: 1
breakers:
  name: devnet-eth
  markets:
    - symbol: ETH
      sources:
        - {{name: chainlink, file: on-chain}}
      fresh_within: 2h
  rules:
    - {{name: eth-drop, kind: price_band, threshold: "10%", direction: down, severity: critical, action: freeze}}
    - {{name: eth-crash, kind: price_band, threshold: "25%", direction: down, severity: critical, action: pause}}
  watch:
    liquidation_thresholds: {{ETH: "83%"}}
    feeds: {{ETH: {{chainlink: "{feed}"}}}}
    emergency: {{venue_markets: {{ETH: WETH}}}}
"""


class Lines(io.StringIO):
    def docs(self) -> list[dict[str, Any]]:
        return [json.loads(x) for x in self.getvalue().splitlines()]


def wait_for(lines: Lines, predicate: Any, timeout_s: float = 90.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [d for d in lines.docs() if predicate(d)]
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing matched within {timeout_s}s; output so far: {lines.getvalue()[-3000:]}")


@pytest.fixture
def feed(session: Any, restore_chain: None) -> str:
    devnet = session.devnet
    oracle = session.chain.contract(devnet.addresses["oracle"], load_artifact(AAVE, "AaveOracle"))
    price = Decimal(oracle.functions.getAssetPrice(devnet.markets["WETH"]["asset"]).call()) / Decimal(10**8)
    address = deploy_push_feed(devnet, "WETH", price)
    point_oracle(devnet, "WETH", address)
    grant_guardian(devnet, devnet.addresses["safe"])
    return address


def start(session: Any, tmp_path: Path, feed: str, **extra: Any) -> tuple[Lines, threading.Event, threading.Thread, dict[str, Any], Any]:
    policy = tmp_path / "watch.yaml"
    policy.write_text(POLICY.format(feed=feed))
    options = WatchOptions(policy=policy, source=f"rpc:{session.devnet.rpc_url}", devnet_state=session.state_dir, poll=0.2, **extra)
    s = prepare(options)
    lines, stop, result = Lines(), threading.Event(), {}
    thread = threading.Thread(target=lambda: result.update(run(s, stop=stop, stdout=lines)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while s.engine.counts["used"] < 1:  # the first poll has read the feed's opening round
        assert time.monotonic() < deadline and thread.is_alive(), lines.getvalue()
        time.sleep(0.05)
    return lines, stop, thread, result, s


def test_pushed_prices_raise_alerts_and_simulated_emergency_bundles(session: Any, feed: str, tmp_path: Path) -> None:
    devnet = session.devnet
    out = tmp_path / "proposals"
    lines, stop, thread, result, _ = start(session, tmp_path, feed, emergency_out=out, generate_book=2_000)
    try:
        push_price(devnet, feed, Decimal(1790))
        push_price(devnet, feed, Decimal(1500))  # -16%: eth-drop → freeze
        (frozen,) = wait_for(lines, lambda d: d["kind"] == "emergency" and d["action"] == "freeze")
        push_price(devnet, feed, Decimal(1050))  # -30%: eth-crash → pause (eth-drop is in its cooldown)
        (paused,) = wait_for(lines, lambda d: d["kind"] == "emergency" and d["action"] == "pause")
    finally:
        stop.set()
        thread.join(60)
    docs = lines.docs()
    alerts = [(d["rule"], round(d["value"], 6)) for d in docs if d["kind"] == "alert"]
    assert alerts == [("eth-drop", round(1 - 1500 / 1790, 6)), ("eth-crash", 0.3)]
    for event, flag in ((frozen, "frozen"), (paused, "paused")):
        assert event["status"] == "simulated" and event["simulation"] == "ok", event
        bundle = Path(event["bundle"])
        assert verify_emergency_bundle(bundle) == (8, 2)  # simulation.json and the signer packet rendered from it
        sim = json.loads((bundle / "simulation.json").read_text())
        assert sim["ok"] and sim["changed"] == [f"WETH {flag}: False → True"] and sim["unexpected_changes"] == []
        packet = (bundle / "signer-packet.md").read_text()
        assert f"| WETH | {flag} | `False` | `True` | `True` | ✓ |" in packet, packet
        assert f"emergency: {'eth-drop' if flag == 'frozen' else 'eth-crash'} → " in packet
        assert event["seconds"] < 30  # prepared, verified and simulated within seconds
    # the simulations ran on snapshots: the reserve is neither frozen nor paused on chain
    dp = Chain(devnet.rpc_url).contract(devnet.addresses["data_provider"], load_artifact(AAVE, "AaveProtocolDataProvider"))
    config = dp.functions.getReserveConfigurationData(devnet.markets["WETH"]["asset"]).call()
    assert config[-1] is False and dp.functions.getPaused(devnet.markets["WETH"]["asset"]).call() is False
    summary = result
    assert summary["kind"] == "summary" and summary["used"] == 4 and summary["flagged"] == {}  # the opening round and three pushes
    assert summary["markets"]["ETH"]["price"] == 1050.0 and summary["markets"]["ETH"]["health"]["below"] > 0
    assert summary["emergencies"] == {"simulated": 2}


def test_polling_misses_no_round_pushed_between_polls(session: Any, feed: str, tmp_path: Path) -> None:
    _, stop, thread, result, s = start(session, tmp_path, feed, feed_mode="poll")
    try:
        prices = [Decimal(1800 - 5 * k) for k in range(12)]  # several rounds between two 0.2 s polls
        for p in prices:
            push_price(session.devnet, feed, p)
        deadline = time.monotonic() + 30
        while s.engine.counts["updates"] < len(prices) + 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # and a few more polls: nothing comes twice
    finally:
        stop.set()
        thread.join(60)
    assert result["used"] == len(prices) + 1 and result["flagged"] == {}  # the opening round and every push, once
    assert result["markets"]["ETH"]["price"] == float(prices[-1])
