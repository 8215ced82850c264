"""governance.watch_chain + the watch loop on a scripted node: rounds a node's logs skip are fetched by id,
rounds delivered twice are dropped by the gate, a node that goes away is reported, retried and reported
back, and through all of it every round is used exactly once; polling mode fetches the rounds between
two polls. (The real chain: tests/e2e/test_watch_devnet.py.)"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from eth_abi import decode as abi_decode

from governance.chain import ChainError
from governance.watch import Monitor
from governance.watch_chain import ANSWER_UPDATED, ChainSource, Feed
from governance.watch_sinks import JsonLines
from risk.breaker_policy import BreakerPolicy
from risk.watch_engine import WatchEngine

T0 = 1_704_067_200
FEED_A = "0x00000000000000000000000000000000000000aA"
FEED_B = "0x00000000000000000000000000000000000000bB"


class Node:
    """A chain of blocks holding push-feed rounds; scriptable failures, lost logs and re-deliveries."""

    endpoint = "http://node"

    def __init__(self) -> None:
        self.head = 1
        self.times = {0: T0, 1: T0 + 12}
        self.rounds: dict[str, list[tuple[int, int, int, int]]] = {FEED_A.lower(): [], FEED_B.lower(): []}  # (answer, updatedAt, block, log index)
        self.fail_next = 0
        self.lost: set[tuple[str, int]] = set()  # (feed, round) whose log the node does not return
        self.redeliver: list[dict[str, Any]] = []  # logs returned again on the next eth_getLogs
        self.requests = 0

    def mine(self, pushes: list[tuple[str, float]]) -> None:
        self.head += 1
        self.times[self.head] = self.times[self.head - 1] + 12
        for i, (feed, price) in enumerate(pushes):
            self.rounds[feed.lower()].append((round(price * 1e8), self.times[self.head], self.head, i))

    def revert_to(self, block: int) -> None:
        """An anvil evm_revert (or a reorg): the blocks after `block` are gone."""
        self.head = block
        self.rounds = {f: [r for r in rs if r[2] <= block] for f, rs in self.rounds.items()}

    def _up(self) -> None:
        self.requests += 1
        if self.fail_next:
            self.fail_next -= 1
            raise ChainError("RPC http://node unreachable after 3 tries: connection refused", "check that the node runs")

    def block_number(self) -> int:
        self._up()
        return self.head

    def block(self, n: int) -> dict[str, str]:
        self._up()
        return {"timestamp": hex(self.times[n])}

    def read(self, address: str, fn: Any, *args: Any, block: int) -> tuple[Any, ...]:
        self._up()
        rounds = [r for r in self.rounds[address.lower()] if r[2] <= block]
        if fn.signature == "decimals()":
            return (8,)
        rid = len(rounds) if fn.signature == "latestRoundData()" else int(args[0])
        answer, at, _, _ = rounds[rid - 1]
        return (rid, answer, at, at, rid)

    def _log(self, feed: str, rid: int) -> dict[str, Any]:
        answer, at, block, index = self.rounds[feed][rid - 1]
        return {"address": feed, "blockNumber": hex(block), "logIndex": hex(index), "data": hex(at),
                "topics": [ANSWER_UPDATED, "0x" + answer.to_bytes(32, "big", signed=True).hex(), hex(rid)]}

    def request(self, method: str, params: list[Any]) -> Any:
        self._up()
        assert method == "eth_getLogs"
        q = params[0]
        lo, hi = int(q["fromBlock"], 16), int(q["toBlock"], 16)
        out = [self._log(f, i + 1) for f, rs in self.rounds.items() for i, r in enumerate(rs) if lo <= r[2] <= hi and (f, i + 1) not in self.lost]
        out, self.redeliver = out + self.redeliver, []
        return out


def breakers() -> Any:
    doc = {"version": 1, "breakers": {"name": "t", "markets": [{"symbol": "X", "sources": [{"name": "a", "file": "-"}, {"name": "b", "file": "-"}], "fresh_within": "1h"}],
                                       "rules": [{"name": "tick", "kind": "price_band", "threshold": "5%", "cooldown": "1s"}]}}
    return BreakerPolicy.model_validate_json(json.dumps(doc)).breakers


def source(node: Node, mode: str = "events") -> ChainSource:
    return ChainSource("http://node", [Feed("X", "a", FEED_A), Feed("X", "b", FEED_B)], mode=mode, reader_factory=lambda: node)


def test_lost_logs_are_fetched_by_round_and_redeliveries_are_not_counted_twice() -> None:
    node = Node()
    node.mine([(FEED_A, 100.0), (FEED_B, 100.2)])
    src, engine = source(node), WatchEngine(breakers())
    used: list[tuple[str, int]] = []

    def feed(updates: list[Any]) -> None:
        for u in updates:
            if not any(e.kind == "flagged" for e in engine.process(u)):
                used.append((u.source, u.round))

    feed(src.poll()[0])  # first poll: each feed's latest round
    node.mine([(FEED_A, 101.0)])
    node.mine([(FEED_A, 102.0), (FEED_B, 101.9)])
    node.mine([(FEED_A, 103.0)])
    node.lost.add((FEED_A.lower(), 3))  # the node's logs skip round 3 of feed a
    feed(src.poll()[0])
    assert src.backfilled == 1
    node.redeliver = [node._log(FEED_A.lower(), 2), node._log(FEED_A.lower(), 4)]  # a lagging backend repeats two logs
    node.mine([(FEED_B, 104.0)])
    feed(src.poll()[0])
    assert sorted(used) == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 1), ("b", 2), ("b", 3)]
    assert engine.counts["flagged:duplicate"] == 2 and engine.counts["used"] == 7
    assert engine.markets[0].price == (103.0 + 104.0) / 2


def test_polling_fetches_every_round_between_two_polls() -> None:
    node = Node()
    node.mine([(FEED_A, 100.0), (FEED_B, 100.0)])
    src = source(node, "poll")
    first, _ = src.poll()
    for k in range(5):  # five rounds of a and one of b before the next poll
        node.mine([(FEED_A, 100.0 + k)] + ([(FEED_B, 99.0)] if k == 2 else []))
    second, now = src.poll()
    assert [(u.source, u.round) for u in first] == [("a", 1), ("b", 1)]
    a = [("a", r, 100.0 + r - 2) for r in range(2, 7)]
    assert [(u.source, u.round, u.price) for u in second] == a[:3] + [("b", 2, 99.0)] + a[3:]  # in time order across feeds
    assert now == node.times[node.head]


def test_the_loop_reports_a_lost_node_retries_and_loses_nothing() -> None:
    node = Node()
    node.mine([(FEED_A, 100.0), (FEED_B, 100.0)])
    engine = WatchEngine(breakers())
    used: list[tuple[str, int | None]] = []
    process = engine.process

    def recording(u: Any) -> Any:
        events = process(u)
        if not any(e.kind == "flagged" for e in events):
            used.append((u.source, u.round))
        return events

    engine.process = recording  # type: ignore[method-assign]
    out = io.StringIO()
    monitor = Monitor(engine, JsonLines(out, live=True).write)
    stop = threading.Event()
    script = iter([
        lambda: node.mine([(FEED_A, 101.0)]),
        lambda: setattr(node, "fail_next", 3),  # the node goes away for three requests
        lambda: node.mine([(FEED_A, 120.0), (FEED_B, 100.5)]),  # blocks keep coming while we are cut off
        lambda: node.mine([(FEED_B, 107.0)]),
        lambda: None,
        lambda: None,
        stop.set,
    ])
    real_poll = ChainSource.poll
    src = source(node)
    failing = {"left": 0}

    def scripted_poll(self: ChainSource) -> Any:
        if failing["left"] == 0 and node.fail_next == 0:
            next(script, stop.set)()  # the script moves on with the polls that reach the node
        failing["left"] = node.fail_next
        return real_poll(self)

    src.poll = scripted_poll.__get__(src)  # type: ignore[method-assign]
    monitor.run_chain(src, stop, poll_s=0.001, duration_s=10)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    kinds = [x["kind"] for x in lines]
    assert kinds.count("source_error") >= 1 and kinds.count("reconnected") == 1
    assert kinds.index("reconnected") > kinds.index("source_error")
    # from the start (each feed's latest round: a2, b1) every round once, the ones mined while cut off included
    assert sorted(used) == [("a", 2), ("a", 3), ("b", 1), ("b", 2), ("b", 3)] and not any(k.startswith("flagged") for k in engine.counts)
    # a3 moves the median of (a, b) from (101 + 100) / 2 to (120 + 100) / 2
    assert [(x["rule"], x["value"]) for x in lines if x["kind"] == "alert"] == [("tick", 110.0 / 100.5 - 1)]
    assert monitor.notices["reconnected"] == 1


def test_answers_are_signed_and_scaled() -> None:
    node = Node()
    node.mine([(FEED_A, 1234.56789012), (FEED_B, 0.5)])
    updates, _ = source(node).poll()
    assert [u.price for u in updates] == [1234.56789012, 0.5]
    log = node._log(FEED_A.lower(), 1)
    assert abi_decode(["int256"], bytes.fromhex(log["topics"][1][2:]))[0] == 123456789012


def test_a_chain_that_goes_back_loses_no_later_round() -> None:
    node = Node()
    node.mine([(FEED_A, 100.0), (FEED_B, 100.0)])
    src = source(node)
    src.poll()
    snapshot = node.head
    for _ in range(3):  # a simulation's blocks on the watched devnet (no price in them) ...
        node.mine([])
    src.poll()
    node.revert_to(snapshot)  # ... reverted after it
    node.mine([(FEED_A, 90.0)])  # a round in a block number the source has already scanned
    updates, _ = src.poll()
    assert [(u.source, u.round, u.price) for u in updates] == [("a", 2, 90.0)] and src.rewinds == 1
