"""Oracle updates from a chain: Chainlink-style aggregators followed by their events or by polling.

A `ChainSource` follows one aggregator per (market, source) of the policy's ``watch.feeds``:

* ``events`` mode (default): ``eth_getLogs`` for ``AnswerUpdated(int256 current, uint256 roundId,
  uint256 updatedAt)`` over the blocks not yet scanned, in (block, log index) order;
* ``poll`` mode: ``latestRoundData()`` of each feed at the head.

Round ids make it exact. Each feed's last round is remembered; when a round arrives more than one
above it (logs a node did not return, rounds between two polls), the rounds in between are fetched
with ``getRoundData`` and delivered first, in order — no round is missed. In events mode each poll
also asks every feed's ``latestRoundData``, so rounds whose logs never come (a lost tail, blocks the
chain went back over: a reorg, or an anvil snapshot reverted by a simulation) are fetched as well. A failed poll advances
nothing (the next one asks for the same blocks again), and whatever a node delivers twice is left to
the watch's gate, which drops a round already used — none is counted twice. On start each feed's
latest round is delivered, so the market has a price (the gate flags it if it is already stale).
A poll's updates come out in time order across feeds. A round recovered only after later rounds of
another source of its market were used cannot be applied in the past: the gate flags it out of order.

Only reads, each at the head block just read. `ChainError` (the node unreachable after the reader's
retries, an answer that makes no sense) propagates to the watch loop, which reports it, backs off and
polls again: the reconnect.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak, to_checksum_address

from governance.chain import DEFAULT_TIMEOUT_S, ChainError, ChainReader, ViewFn, connect
from risk.watch_events import Update

ANSWER_UPDATED = "0x" + keccak(text="AnswerUpdated(int256,uint256,uint256)").hex()
ROUND_DATA = ("uint80", "int256", "uint256", "uint256", "uint80")
GET_ROUND_DATA = ViewFn("getRoundData(uint80)", ROUND_DATA)
LATEST_ROUND_DATA = ViewFn("latestRoundData()", ROUND_DATA)
DECIMALS = ViewFn("decimals()", ("uint8",))
MAX_LOG_RANGE = 2_000  # blocks per eth_getLogs: public nodes refuse wide ranges
MAX_BACKFILL = 10_000  # rounds fetched one by one after a gap; more means the feed is not what it seems
MODES = ("events", "poll")


@dataclass(frozen=True, slots=True)
class Feed:
    market: str
    source: str
    address: str


def feeds_from_policy(feeds: dict[str, dict[str, str]]) -> list[Feed]:
    """The watch section's feeds, in (market, source) order as written."""
    return [Feed(m, s, to_checksum_address(a)) for m, by_source in feeds.items() for s, a in by_source.items()]


def _reader(rpc_url: str, chain_id: int | None, timeout_s: float) -> ChainReader:
    if chain_id is not None:
        return connect(rpc_url, expected_chain_id=chain_id, timeout_s=timeout_s)
    probe = ChainReader(rpc_url, timeout_s=timeout_s, retries=3, backoff_s=0.25, sleep=time.sleep)
    return connect(rpc_url, expected_chain_id=probe.node_chain_id(), timeout_s=timeout_s)


class ChainSource:
    """Updates from the feeds' rounds; `poll()` returns the new ones and the head block's time."""

    def __init__(self, rpc_url: str, feeds: Sequence[Feed], *, chain_id: int | None = None, mode: str = "events",
                 timeout_s: float = DEFAULT_TIMEOUT_S, reader_factory: Callable[[], Any] | None = None) -> None:
        if mode not in MODES:
            raise ChainError(f"feed mode {mode!r}", f"use one of {', '.join(MODES)}")
        if not feeds:
            raise ChainError("no feed to follow", "list the aggregators under watch.feeds in the breaker policy")
        self.feeds = list(feeds)
        self.mode = mode
        self._by_address = {f.address.lower(): f for f in self.feeds}
        self._factory = reader_factory or (lambda: _reader(rpc_url, chain_id, timeout_s))
        self._reader: Any = None
        self._scale: dict[str, int] = {}
        self.last_round: dict[str, int] = {}  # feed address → last round delivered
        self.next_block: int | None = None
        self.backfilled = 0
        self.rewinds = 0

    @property
    def endpoint(self) -> str:
        return getattr(self._reader, "endpoint", "rpc")

    def _open(self) -> None:
        reader = self._factory()
        head = reader.block_number()
        for f in self.feeds:
            (decimals,) = reader.read(f.address, DECIMALS, block=head)
            self._scale[f.address] = 10 ** int(decimals)
        self._reader = reader

    def poll(self) -> tuple[list[Update], int]:
        """New updates since the last poll (missing rounds fetched), and the head's timestamp (unix s)."""
        if self._reader is None:
            self._open()
        reader = self._reader
        head = reader.block_number()
        now = int(reader.block(head)["timestamp"], 16)
        updates: list[Update] = []
        if self.next_block is None:  # first poll: every feed's latest round
            for f in self.feeds:
                updates += self._through(f, self._latest_round(f, head), head)
        elif self.mode == "poll":
            for f in self.feeds:
                latest = self._latest_round(f, head)
                if latest > self.last_round.get(f.address, 0):
                    fetched = self._through(f, latest, head)
                    self.backfilled += len(fetched) - 1  # all but the latest were missed between polls
                    updates += fetched
        else:
            if head < self.next_block - 1:
                self.rewinds += 1  # the chain went back (a reorg, an anvil revert): the round check below covers the blocks
                self.next_block = head + 1
            updates += self._from_logs(self.next_block, head)
            for f in self.feeds:  # rounds whose logs never came (a lost tail, blocks that moved) are fetched by id
                latest = self._latest_round(f, head)
                if latest > self.last_round.get(f.address, 0):
                    missed = self._through(f, latest, head)
                    self.backfilled += len(missed)
                    updates += missed
        self.next_block = head + 1
        # In time order across feeds (stable: a feed's rounds keep their order): the markets cannot rewind.
        updates.sort(key=lambda u: u.time)
        return updates, now

    def _latest_round(self, f: Feed, block: int) -> int:
        return int(self._reader.read(f.address, LATEST_ROUND_DATA, block=block)[0])

    def _update(self, f: Feed, round_id: int, answer: int, updated_at: int) -> Update:
        return Update(int(updated_at), f.market, f.source, answer / self._scale[f.address], int(round_id))

    def _round(self, f: Feed, round_id: int, block: int) -> Update:
        rid, answer, _started, updated_at, _answered = self._reader.read(f.address, GET_ROUND_DATA, round_id, block=block)
        if int(rid) != round_id:
            raise ChainError(f"feed {f.address} answered round {rid} for round {round_id}", "the address is not a Chainlink-style aggregator")
        return self._update(f, round_id, int(answer), int(updated_at))

    def _through(self, f: Feed, round_id: int, block: int) -> list[Update]:
        """Rounds after the feed's last one up to `round_id`, fetched by id (a first poll fetches only the latest)."""
        last = self.last_round.get(f.address)
        first = round_id if last is None else last + 1
        if round_id - first > MAX_BACKFILL:
            raise ChainError(f"feed {f.address} jumped from round {last} to {round_id}", "check the feed address; a gap this large is not a missed update")
        out = [self._round(f, r, block) for r in range(first, round_id + 1)]
        if out:
            self.last_round[f.address] = round_id
        return out

    def _from_logs(self, start: int, head: int) -> list[Update]:
        out: list[Update] = []
        for lo in range(start, head + 1, MAX_LOG_RANGE):
            hi = min(head, lo + MAX_LOG_RANGE - 1)
            query = {"address": [f.address for f in self.feeds], "topics": [ANSWER_UPDATED], "fromBlock": hex(lo), "toBlock": hex(hi)}
            logs = self._reader.request("eth_getLogs", [query])
            logs = sorted(logs, key=lambda log: (int(log["blockNumber"], 16), int(log["logIndex"], 16)))
            for log in logs:
                f = self._by_address.get(str(log["address"]).lower())
                topics = log.get("topics", [])
                if f is None or len(topics) < 3 or topics[0].lower() != ANSWER_UPDATED:
                    continue
                round_id = int(topics[2], 16)
                answer = int.from_bytes(bytes.fromhex(topics[1][2:]), "big", signed=True)
                updated_at = int(log["data"], 16)
                last = self.last_round.get(f.address)
                if last is not None and round_id > last + 1:
                    missed = self._through(f, round_id - 1, head)  # rounds the logs skipped, by id, first
                    self.backfilled += len(missed)
                    out += missed
                out.append(self._update(f, round_id, answer, updated_at))
                if last is None or round_id > last:
                    self.last_round[f.address] = round_id
        return out
