"""The monitor's per-update core: gate each update, detect silent sources, run the market's watch.

`WatchEngine.process(update)` does, in this order (the order events come out in):

1. **Gate.** An update is *flagged, not used* when its market or source is not the policy's
   (``unknown_source``), its price is not a finite positive number (``invalid``), its round id was
   already used (``duplicate``) or is below the last one used (``out_of_order``: a round that comes
   after a later one; the sources fetch missing rounds in order, so this is a misbehaving feed), its
   time is before the source's or the market's last used update (``out_of_order``: the breakers'
   windows cannot be rewritten), or it is older than the market's ``fresh_within`` when it arrives
   (``stale``: the composite would not count it).
2. **Silent sources.** Every source whose last update is more than ``fresh_within`` older than the
   update's time is reported once (``stale``), oldest deadline first, then ties by market and source
   order; a source that updates after that is reported ``resumed``.
3. **The market**: alerts in rule order, then the health event (`risk.watch_state.MarketWatch`).

`tick(now)` runs step 2 alone, for a live source between updates (``now``: the chain's head time).
Everything here is deterministic given the updates: `risk.watch_replay` computes the same events
from whole streams at once, and tests hold the two equal.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from risk.breaker_policy import Breakers
from risk.policy import Market, Policy
from risk.watch_events import (
    AlertEvent,
    FlaggedEvent,
    ResumedEvent,
    StaleEvent,
    Update,
    WatchEvent,
)
from risk.watch_state import HealthFactory, MarketWatch

RECENT_ROUNDS = 4096  # rounds remembered per source to tell a duplicate from an out-of-order round


def skipped_reason(rule: Any, sources: Sequence[str]) -> str:
    """Why `rule` cannot run on a market fed by `sources` ('' if it can); mirrors `risk.breakers.missing_input`."""
    if rule.kind == "oi_cap":
        return "open interest is not watched (replay it with `steward breakers replay --open-interest`)"
    if rule.kind == "divergence" and len(sources) < 2:
        return f"divergence needs 2 sources, {len(sources)} given"
    if rule.watches is not None and rule.watches not in sources:
        return f"source {rule.watches!r} not given"
    return ""


def market_rules(breakers: Breakers, symbol: str, sources: Sequence[str]) -> tuple[tuple[Any, ...], list[str]]:
    """The rules that run on `symbol` fed by `sources`, in policy order, and a note per rule skipped."""
    rules, notes = [], []
    for rule in breakers.rules_for(symbol):
        why = skipped_reason(rule, sources)
        if why:
            notes.append(f"{symbol} {rule.name}: skipped ({why})")
        else:
            rules.append(rule)
    return tuple(rules), notes


@dataclass
class _SourceTrack:
    market: int
    source: int
    last_time: int | None = None
    last_round: int | None = None
    stale: bool = False
    recent: deque[int] = field(default_factory=lambda: deque(maxlen=RECENT_ROUNDS))
    recent_set: set[int] = field(default_factory=set)

    def remember(self, round_id: int) -> None:
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(round_id)
        self.recent_set.add(round_id)


class WatchEngine:
    """Gate, silent-source detection and every market's watch; see the module doc for the order.

    Parameters
    ----------
    breakers : Breakers
        The policy: markets (sources, freshness), rules, and the watch section.
    sources : mapping of market symbol to source names, optional
        The sources actually fed per market (default: all the policy's); rules needing others are skipped.
    health_factory : callable, optional
        Builds a market's book health at its first price (see `risk.watch_state.HealthFactory`).
    """

    def __init__(self, breakers: Breakers, *, sources: Mapping[str, Sequence[str]] | None = None,
                 health_factory: HealthFactory | None = None) -> None:
        self.breakers = breakers
        self.markets: list[MarketWatch] = []
        self.notes: list[str] = []
        for i, m in enumerate(breakers.markets):
            names = tuple(sources[m.symbol]) if sources is not None and m.symbol in sources else tuple(s.name for s in m.sources)
            if sources is not None and m.symbol not in sources:
                continue
            rules, notes = market_rules(breakers, m.symbol, names)
            self.notes += notes
            self.markets.append(MarketWatch(i, m.symbol, names, m.fresh_within.seconds, rules, breakers.watch, health_factory))
        self.by_symbol = {m.symbol: m for m in self.markets}
        self.actions = {r.name: (r.action.value if r.action is not None else None) for r in breakers.rules}
        self._tracks: dict[tuple[str, str], _SourceTrack] = {}
        self._deadlines: list[tuple[int, int, int, int, str, str]] = []  # (deadline, market idx, source idx, last time, market, source)
        self._market_time: dict[str, int] = {}
        self.clock: int | None = None
        self.counts: Counter[str] = Counter()  # updates, used, flagged:<reason>, events:<kind>, alerts:<rule>

    # ------------------------------------------------------------------------------------ the gate

    def _flag(self, u: Update) -> tuple[str, str] | None:
        mw = self.by_symbol.get(u.market)
        if mw is None or u.source not in mw.source_index:
            return "unknown_source", f"{u.market}/{u.source} is not a source of the policy's markets"
        if isinstance(u.price, bool) or not isinstance(u.price, (int, float)) or not math.isfinite(u.price) or u.price <= 0:
            return "invalid", "price is not a finite positive number"
        track = self._tracks.get((u.market, u.source))
        if track is not None:
            if u.round is not None and track.last_round is not None and u.round <= track.last_round:
                if u.round in track.recent_set:
                    return "duplicate", f"round {u.round} already used"
                return "out_of_order", f"round {u.round} arrived after round {track.last_round}"
            if track.last_time is not None and u.time < track.last_time:
                return "out_of_order", f"{track.last_time - u.time}s older than this source's last update"
        market_time = self._market_time.get(u.market)
        if market_time is not None and u.time < market_time:
            return "out_of_order", f"{market_time - u.time}s older than the market's last update"
        if self.clock is not None and self.clock - u.time > mw.fresh_within:
            return "stale", f"arrived {self.clock - u.time}s after its time (fresh_within {mw.fresh_within}s)"
        return None

    # ----------------------------------------------------------------------------- silent sources

    def tick(self, now: int) -> list[WatchEvent]:
        """Report the sources silent for more than their market's ``fresh_within`` at time `now`."""
        out: list[WatchEvent] = []
        heap = self._deadlines
        while heap and heap[0][0] < now:
            deadline, _, _, last, market, source = heapq.heappop(heap)
            track = self._tracks[(market, source)]
            if track.last_time != last or track.stale:
                continue  # superseded by a later update
            track.stale = True
            out.append(StaleEvent(now, market, source, last, now - last, deadline - last))
        if self.clock is None or now > self.clock:
            self.clock = now
        self._count(out)
        return out

    # ------------------------------------------------------------------------------------ updates

    def process(self, u: Update) -> list[WatchEvent]:
        """Gate `u`, then (if used) report silent sources, apply it, and return its events in order."""
        self.counts["updates"] += 1
        flagged = self._flag(u)
        if flagged is not None:
            event = FlaggedEvent(u, *flagged)
            self.counts[f"flagged:{flagged[0]}"] += 1
            self._count([event])
            return [event]
        self.counts["used"] += 1
        mw = self.by_symbol[u.market]
        j = mw.source_index[u.source]
        out: list[WatchEvent] = self.tick(u.time)
        key = (u.market, u.source)
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _SourceTrack(mw.index, j)
        elif track.stale:
            track.stale = False
            resumed = ResumedEvent(u.time, u.market, u.source, u.time - int(track.last_time or u.time))
            out.append(resumed)
            self._count([resumed])
        track.last_time = u.time
        if u.round is not None:
            track.last_round = u.round
            track.remember(u.round)
        heapq.heappush(self._deadlines, (u.time + mw.fresh_within, mw.index, j, u.time, u.market, u.source))
        self._market_time[u.market] = u.time
        alerts, health = mw.update(u.time, j, float(u.price))
        events: list[WatchEvent] = [AlertEvent(a, self.actions.get(a.rule)) for a in alerts]
        if health is not None:
            events.append(health)
        self._count(events)
        for a in alerts:
            self.counts[f"alerts:{a.rule}"] += 1
        return out + events

    def _count(self, events: Sequence[WatchEvent]) -> None:
        for e in events:
            self.counts[f"events:{e.kind}"] += 1

    # ------------------------------------------------------------------------------------ reading

    def venue_market(self, symbol: str, venue: Policy | None) -> Market | None:
        """The venue policy's market a breaker market maps to (watch.emergency.venue_markets, else the same symbol)."""
        if venue is None:
            return None
        name = self.breakers.watch.emergency.venue_markets.get(symbol, symbol)
        return next((m for m in venue.markets if m.symbol == name), None)

    def silent_sources(self) -> list[tuple[str, str, int]]:
        """(market, source, last update time) of the sources currently reported stale."""
        return sorted((m, s, int(t.last_time or 0)) for (m, s), t in self._tracks.items() if t.stale)
