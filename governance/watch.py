"""`steward watch`: the real-time monitor's loop.

    sources ──▶ gate (round ids, order, freshness) ──▶ market state (feed, rules, vol, book health)
        ──▶ events: JSON lines on stdout · webhook (background) · live view (stderr, on a terminal)
        ──▶ actions: an emergency proposal per rule with ``action:`` (background, within seconds)

Sources: recorded files at recorded speed × N (`paced`), or at full speed (`--speed max`), where the
events come from `risk.watch_replay` — the same events the per-update path gives, computed per
stream at once; or a chain (`governance.watch_chain`), polled every ``poll_s``: a failed poll is
reported (``source_error``), retried with backoff, and the first poll that succeeds again is
reported (``reconnected``); the source's round tracking makes the reconnect lose and repeat nothing.

Everything the loop hands off (webhook POSTs, emergency bundles) runs in background threads, so a
slow receiver or a chain read never delays the next update. The webhook gets every event line (alerts,
health, stale/resumed, flagged, emergency, source_error/reconnected); the ``start`` and ``summary``
lines are stdout's only. Ctrl-C, the end of the data or
``--duration`` stop the loop; pending proposals are finished, the webhook gets a bounded time to
drain, and a ``summary`` line closes the output.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from governance.bundle import write_bundle
from governance.chain import ChainReader
from governance.watch_chain import ChainSource
from governance.watch_emergency import (
    ACTIONS,
    EmergencyInputs,
    EmergencyTrigger,
    build_emergency_files,
    bundle_name,
    simulate_emergency,
    verify_emergency_bundle,
)
from governance.watch_sinks import LiveView, Webhook
from risk.breaker_policy import Breakers
from risk.breaker_rules import threshold_unit
from risk.data_text import iso_utc
from risk.errors import StewardError
from risk.policy_load import LoadedPolicy
from risk.snapshot import VenueSnapshot
from risk.watch_engine import WatchEngine
from risk.watch_events import (
    AlertEvent,
    HealthEvent,
    ResumedEvent,
    StaleEvent,
    Update,
    WatchEvent,
)
from risk.watch_replay import ReplayResult
from risk.watch_state import recommend_at

Emit = Callable[[dict[str, Any]], None]


def wall_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------- emergencies


@dataclass(frozen=True)
class EmergencyDesk:
    """Where and how proposals are made: the venue, the pinned parameters' source, and the simulator."""

    out_dir: Path
    venue: LoadedPolicy
    breaker_policy_sha256: str
    snapshot: Callable[[], VenueSnapshot]
    simulator: Callable[[], ChainReader] | None = None


class EmergencyWorker:
    """Turns action events into verified (and, with a chain, simulated) bundles in a background thread."""

    def __init__(self, desk: EmergencyDesk, breakers: Breakers, emit: Emit) -> None:
        self.desk, self.breakers, self._emit = desk, breakers, emit
        self._kinds = {r.name: r.kind for r in breakers.rules}
        self._last: dict[tuple[str, str], tuple[int, str]] = {}  # (reserve, action) → (trigger time, bundle)
        self._jobs: queue.Queue[EmergencyTrigger | None] = queue.Queue()
        self.counts: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="steward-emergency", daemon=True)
        self._thread.start()

    def trigger_for(self, event: WatchEvent) -> EmergencyTrigger | None:
        action = getattr(event, "action", None)
        if action not in ACTIONS:
            return None
        reserve = self.breakers.watch.emergency.venue_markets.get(event.market, event.market)
        floor = self.breakers.watch.emergency.ltv_floor.to_bps().value
        if isinstance(event, AlertEvent):
            a = event.alert
            return EmergencyTrigger(a.time, a.market, reserve, a.rule, "alert", a.value, a.threshold, threshold_unit(self._kinds[a.rule]), a.severity, action,
                                    floor, self.desk.breaker_policy_sha256)
        assert isinstance(event, HealthEvent)
        return EmergencyTrigger(event.time, event.market, reserve, "book-health", "health", event.value, event.threshold, "ratio", event.severity, action,
                                floor, self.desk.breaker_policy_sha256)

    def submit(self, event: WatchEvent) -> None:
        trigger = self.trigger_for(event)
        if trigger is None:
            return
        key = (trigger.reserve, trigger.action)
        earlier = self._last.get(key)
        if earlier is not None and trigger.time - earlier[0] < self.breakers.watch.emergency.cooldown.seconds:
            self.counts["duplicate"] += 1
            self._emit({"action": trigger.action, "bundle": earlier[1], "kind": "emergency", "market": trigger.market, "reserve": trigger.reserve,
                        "rule": trigger.rule, "status": "duplicate", "time": iso_utc(trigger.time)})
            return
        target = self.desk.out_dir / self.desk.venue.policy.venue.name / bundle_name(trigger)
        self._last[key] = (trigger.time, str(target))
        self._jobs.put(trigger)

    def _run(self) -> None:
        while (trigger := self._jobs.get()) is not None:
            try:
                self._emit(self._prepare(trigger))
            except Exception as exc:  # noqa: BLE001 - a failed proposal is reported; the monitor goes on
                self.counts["failed"] += 1
                cause = exc.cause if isinstance(exc, StewardError) else f"{type(exc).__name__}: {exc}"
                self._emit({"action": trigger.action, "detail": cause, "kind": "emergency", "market": trigger.market, "reserve": trigger.reserve,
                            "rule": trigger.rule, "status": "failed", "time": iso_utc(trigger.time)})
            finally:
                self._jobs.task_done()

    def _prepare(self, trigger: EmergencyTrigger) -> dict[str, Any]:
        started = time.perf_counter()
        venue = self.desk.venue
        files = build_emergency_files(EmergencyInputs(trigger, venue, self.desk.snapshot()))
        target = self.desk.out_dir / venue.policy.venue.name / bundle_name(trigger)
        write_bundle(files, target)
        verify_emergency_bundle(target)
        doc: dict[str, Any] = {"action": trigger.action, "bundle": str(target), "kind": "emergency", "market": trigger.market, "reserve": trigger.reserve,
                               "rule": trigger.rule, "status": "written", "time": iso_utc(trigger.time)}
        safe = files.get("safe-tx.json")
        if safe is None:
            doc["detail"] = "no call needed (already at the action's state) or no Safe in the venue policy"
        else:
            doc["safe_tx_hash"] = json.loads(safe)["safeTxHash"]
            if self.desk.simulator is not None:
                result = simulate_emergency(target, self.desk.simulator())
                doc["simulation"] = "ok" if result.ok else "failed"
                doc["status"] = "simulated" if result.ok else "simulation_failed"
                if not result.ok:
                    doc["detail"] = "; ".join([*result.differences, *result.unexpected_changes, result.revert_reason or ""]).strip("; ")
        doc["seconds"] = round(time.perf_counter() - started, 3)
        self.counts[doc["status"]] += 1
        return doc

    def close(self, timeout_s: float = 120.0) -> None:
        """Finish the queued proposals (a half-made proposal helps nobody), then stop."""
        self._jobs.put(None)
        self._thread.join(timeout_s)


def _silent_after(events: Iterable[WatchEvent]) -> list[tuple[str, str, int]]:
    """Sources reported stale and not resumed by the end of a replay."""
    silent: dict[tuple[str, str], int] = {}
    for e in events:
        if isinstance(e, StaleEvent):
            silent[(e.market, e.source)] = e.last_update
        elif isinstance(e, ResumedEvent):
            silent.pop((e.market, e.source), None)
    return sorted((m, s, t) for (m, s), t in silent.items())


# ------------------------------------------------------------------------------------------- the loop


@dataclass
class Monitor:
    """Routes events to the outputs and actions; runs the per-update, replay or chain loop."""

    engine: WatchEngine
    emit: Emit
    worker: EmergencyWorker | None = None
    webhook: Webhook | None = None
    view: LiveView | None = None
    venue: LoadedPolicy | None = None
    stopped: str = ""
    notices: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)

    def out(self, doc: dict[str, Any]) -> None:
        self.emit(doc)
        if self.webhook is not None:
            self.webhook.put(doc)

    def handle(self, events: Iterable[WatchEvent]) -> None:
        for e in events:
            self.out(e.to_json())
            if self.worker is not None and getattr(e, "action", None) is not None:
                self.worker.submit(e)

    def run_updates(self, updates: Iterable[Update], stop: threading.Event) -> None:
        for u in updates:
            if stop.is_set():
                self.stopped = "stopped"
                return
            self.handle(self.engine.process(u))
            if self.view is not None:
                self.view.refresh()
        self.stopped = self.stopped or "end of data"

    def run_replay(self, result: ReplayResult) -> None:
        self.handle(result.events)
        self.stopped = "end of data"

    def run_chain(self, source: ChainSource, stop: threading.Event, *, poll_s: float, duration_s: float | None,
                  max_backoff_s: float = 30.0) -> None:
        deadline = None if duration_s is None else time.monotonic() + duration_s
        backoff, down_since = poll_s, None
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                self.stopped = "duration"
                return
            try:
                updates, now = source.poll()
            except StewardError as exc:
                self.notices["source_error"] += 1
                down_since = down_since or time.monotonic()
                self.out({"detail": exc.cause, "kind": "source_error", "retry_in_s": backoff, "source": source.endpoint, "time": wall_iso()})
                stop.wait(backoff)
                backoff = min(max_backoff_s, backoff * 2)
                continue
            if down_since is not None:
                self.notices["reconnected"] += 1
                self.out({"kind": "reconnected", "source": source.endpoint, "time": wall_iso(), "value": round(time.monotonic() - down_since, 3)})
                down_since, backoff = None, poll_s
            for u in updates:
                self.handle(self.engine.process(u))
            self.handle(self.engine.tick(now))
            if self.view is not None:
                self.view.refresh()
            stop.wait(poll_s)
        self.stopped = "stopped"

    # -------------------------------------------------------------------------------------- reading

    def view_rows(self) -> tuple[str, list[dict[str, Any]]]:
        e = self.engine
        venue = self.venue.policy if self.venue is not None else None
        rows = []
        for m in e.markets:
            rec = m.recommendation(venue, e.venue_market(m.symbol, venue))
            alert = m.last_alert
            rows.append({"market": m.symbol, "price": m.price, "fresh": f"{sum(m.fresh)}/{len(m.fresh)}", "vol": rec.vol, "margin": rec.margin_scale,
                         "ltv": rec.ltv, "below": m.point.below if m.point else None, "near": m.point.near if m.point else None,
                         "at_risk": m.point.collateral_at_risk_usd if m.point else None,
                         "alert": f"{alert.rule} {iso_utc(alert.time)}" if alert else ""})
        flagged = sum(v for k, v in e.counts.items() if k.startswith("flagged:"))
        title = f"steward watch — {e.counts['used']:,} updates used, {flagged:,} flagged, {e.counts['events:alert']:,} alerts"
        return title, rows

    def summary(self, replay: ReplayResult | None = None) -> dict[str, Any]:
        e = self.engine
        venue = self.venue.policy if self.venue is not None else None
        if replay is not None:
            kinds = Counter(ev.kind for ev in replay.events)
            alerts = Counter(ev.alert.rule for ev in replay.events if isinstance(ev, AlertEvent))
            counts = {"updates": replay.updates, "used": replay.updates, "flagged": {}}
            markets = {}
            for s, f in replay.finals.items():
                rec = recommend_at(f.vol, f.price, f.vol_rule, venue, e.venue_market(s, venue)).to_json()
                markets[s] = {"health": f.health.to_json() if f.health else None, "price": f.price, "recommendation": rec, "time": iso_utc(f.time), "vol": rec["vol"]}
        else:
            kinds = Counter({k.removeprefix("events:"): v for k, v in e.counts.items() if k.startswith("events:")})
            alerts = Counter({k.removeprefix("alerts:"): v for k, v in e.counts.items() if k.startswith("alerts:")})
            counts = {"updates": e.counts["updates"], "used": e.counts["used"],
                      "flagged": {k.removeprefix("flagged:"): v for k, v in sorted(e.counts.items()) if k.startswith("flagged:")}}
            markets = {}
            for m in e.markets:
                if m.time is None:
                    continue
                rec = m.recommendation(venue, e.venue_market(m.symbol, venue))
                markets[m.symbol] = {"health": m.point.to_json() if m.point else None, "price": m.price, "recommendation": rec.to_json(), "time": iso_utc(m.time),
                                     "vol": rec.to_json()["vol"]}
        silent = e.silent_sources() if replay is None else _silent_after(replay.events)
        doc = {"kind": "summary", **counts, "alerts": dict(sorted(alerts.items())), "events": dict(sorted(kinds.items())), "markets": markets,
               "notices": dict(sorted(self.notices.items())), "silent_sources": [{"last_update": iso_utc(t), "market": m, "source": s} for m, s, t in silent],
               "stopped": self.stopped or "stopped", "elapsed_s": round(time.monotonic() - self.started, 3)}
        if self.worker is not None:
            doc["emergencies"] = dict(sorted(self.worker.counts.items()))
        if self.webhook is not None:
            doc["webhook"] = self.webhook.stats.to_json()
        return doc
