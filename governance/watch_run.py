"""Set up and run one `steward watch`: policies, sources, book, outputs, emergency desk; then the loop.

`prepare` does everything that can fail on bad input (it raises `StewardError`s, which the CLI turns
into cause + hint, exit 2) before a single update is read; `run` owns the loop and its ending: the
end of the data, ``--duration``, or Ctrl-C all finish the pending proposals, drain the webhook for a
bounded time and write the ``summary`` line.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from rich.console import Console

from governance.chain import connect
from governance.watch import EmergencyDesk, EmergencyWorker, Monitor
from governance.watch_chain import ChainSource, feeds_from_policy
from governance.watch_sinks import JsonLines, LiveView, Webhook
from governance.watch_sources import (
    SourceSpec,
    load_book_csv,
    load_streams,
    paced,
    recorded_updates,
)
from risk.breaker_policy import Breakers, load_breaker_policy
from risk.breakers_feed import MarketStream
from risk.errors import DataError, PolicyError
from risk.policy_load import LoadedPolicy, check_policy_text, load_policy
from risk.snapshot import VenueSnapshot, parse_aave_reserves_csv, parse_snapshot_json
from risk.watch_engine import WatchEngine
from risk.watch_health import book_factory, generated_factory
from risk.watch_replay import replay_events
from risk.watch_state import HealthFactory

GENERATED_LT = 0.80  # LT of a generated book's market when the policy names none


@dataclass(frozen=True)
class WatchOptions:
    policy: Path
    source: str
    market: str | None = None
    data: Path | None = None
    speed: str = "max"
    book: Path | None = None
    generate_book: int | None = None
    seed: int = 0
    venue: Path | None = None
    devnet_state: Path | None = None
    snapshot: Path | None = None
    simulate_rpc: str | None = None
    emergency_out: Path | None = None
    webhook: str | None = None
    feed_mode: str = "events"
    poll: float = 1.0
    duration: float | None = None
    view: bool = False


@dataclass
class Session:
    options: WatchOptions
    breakers: Breakers
    engine: WatchEngine
    speed: float | None
    health_factory: HealthFactory | None
    venue: LoadedPolicy | None
    desk: EmergencyDesk | None
    streams: dict[str, MarketStream] = field(default_factory=dict)
    chain: ChainSource | None = None
    notes: list[str] = field(default_factory=list)


def parse_speed(text: str) -> float | None:
    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"--speed {text!r}", "max, or a factor of the recorded pace (1, 60, 3600)") from None
    if not value > 0:
        raise DataError(f"--speed {text!r}", "a positive factor")
    return value


def _venue(options: WatchOptions, devnet: Any) -> LoadedPolicy | None:
    if options.venue is not None and devnet is not None:
        raise PolicyError("--venue and --devnet-state both given", "the devnet brings its own venue; give one")
    if options.venue is not None:
        return load_policy(options.venue)
    if devnet is not None:
        from governance.demo_chain import devnet_policy_text

        text = devnet_policy_text(devnet)
        policy, problems = check_policy_text(text, "devnet venue policy")
        if policy is None:
            raise PolicyError(f"the devnet's venue policy does not validate: {problems[0]}", "run `steward devnet down` then `up`")
        return LoadedPolicy(policy=policy, path=Path("devnet-policy.yaml"), text=text)
    return None


def _health(options: WatchOptions, breakers: Breakers, fed: dict[str, tuple[str, ...]], notes: list[str]) -> HealthFactory | None:
    if options.book is not None and options.generate_book is not None:
        raise DataError("--book and --generate-book both given", "watch one book")
    watch = breakers.watch
    if options.book is not None:
        book = load_book_csv(options.book)
        lts = {m: lt.as_float() for m in book.markets if (lt := watch.liquidation_threshold(m)) is not None}
        return book_factory(book, lts, watch.health.near)
    if options.generate_book is not None:
        markets = [m.symbol for m in breakers.markets if m.symbol in fed]
        lts = {m: lt.as_float() for m in markets if (lt := watch.liquidation_threshold(m)) is not None}
        defaulted = [m for m in markets if m not in lts]
        if defaulted:  # a synthetic book: any plausible LT will do, said out loud
            notes.append(f"generated book: LT {GENERATED_LT:.0%} for {', '.join(defaulted)} (no watch.liquidation_thresholds)")
            lts.update(dict.fromkeys(defaulted, GENERATED_LT))
        return generated_factory(options.seed, options.generate_book, markets, lts, watch.health.near)
    return None


def _snapshot_reader(options: WatchOptions, venue: LoadedPolicy, devnet: Any, rpc: str | None) -> Any:
    policy = venue.policy
    if options.snapshot is not None:
        data = options.snapshot.read_bytes() if options.snapshot.is_file() else None
        if data is None:
            raise DataError(f"snapshot {options.snapshot} not found", "give the current parameters as Steward JSON or an Aave reserves CSV")
        snap = (parse_aave_reserves_csv(data, options.snapshot.name, policy.venue.chain_id, policy.venue.name) if options.snapshot.suffix.lower() == ".csv"
                else parse_snapshot_json(data, options.snapshot.name))
        return lambda: snap
    url = devnet.rpc_url if devnet is not None else rpc
    if url is None:
        raise PolicyError("--emergency-out needs the reserves' current parameters", "pass --devnet-state DIR, --snapshot FILE, or watch a chain (--source rpc:URL)")
    from governance.venues.aave_v3_read import read_snapshot

    def read() -> VenueSnapshot:
        reader = connect(url, expected_chain_id=policy.venue.chain_id)
        return read_snapshot(reader, policy, block=None, safe=policy.venue.addresses.safe)

    return read


def prepare(options: WatchOptions, err: Console | None = None) -> Session:
    """Load and check everything the run needs; nothing is read from a source yet."""
    loaded = load_breaker_policy(options.policy)
    breakers = loaded.policy.breakers
    spec = SourceSpec.parse(options.source)
    speed = parse_speed(options.speed)
    devnet = None
    if options.devnet_state is not None:
        from governance import devnet as devnet_mod

        devnet = devnet_mod.current(options.devnet_state)
    venue = _venue(options, devnet)
    notes: list[str] = []
    streams: dict[str, MarketStream] = {}
    chain = None
    if spec.kind == "csv":
        data_dir = options.data
        if data_dir is None and not spec.files:
            from governance.epoch_inputs import default_data_dir

            data_dir = default_data_dir()
        streams, notes = load_streams(breakers, spec, market=options.market, data_dir=data_dir)
        fed = {s: stream.sources for s, stream in streams.items()}
    else:
        feeds = feeds_from_policy(breakers.watch.feeds)
        for f in feeds:
            m = next((x for x in breakers.markets if x.symbol == f.market), None)
            if m is None or f.source not in [s.name for s in m.sources]:
                raise PolicyError(f"{options.policy}: watch.feeds.{f.market}.{f.source} is not a source of the policy's markets",
                                  "name a market under breakers.markets and one of its sources")
        if not feeds:
            raise PolicyError(f"{options.policy}: --source rpc needs watch.feeds (market → source → aggregator address)", "add a watch.feeds section")
        fed = {}
        for f in feeds:
            fed.setdefault(f.market, ())
            fed[f.market] += (f.source,)
        order = {m.symbol: [s.name for s in m.sources] for m in breakers.markets}
        fed = {m: tuple(sorted(srcs, key=order[m].index)) for m, srcs in fed.items()}
        chain_id = venue.policy.venue.chain_id if venue is not None else (devnet.chain_id if devnet is not None else None)
        chain = ChainSource(spec.url, feeds, chain_id=chain_id, mode=options.feed_mode)
    health = _health(options, breakers, fed, notes)
    engine = WatchEngine(breakers, sources=fed, health_factory=health)
    notes += engine.notes
    desk = None
    if options.emergency_out is not None:
        if venue is None:
            raise PolicyError("--emergency-out needs the venue the proposals are for", "pass --venue POLICY or --devnet-state DIR")
        simulate = devnet.rpc_url if devnet is not None else options.simulate_rpc
        chain_id = venue.policy.venue.chain_id
        desk = EmergencyDesk(out_dir=options.emergency_out, venue=venue, breaker_policy_sha256=hashlib.sha256(loaded.text).hexdigest(),
                             snapshot=_snapshot_reader(options, venue, devnet, spec.url or None),
                             simulator=(lambda: connect(simulate, expected_chain_id=chain_id)) if simulate else None)
    elif any(r.action is not None for r in breakers.rules):
        notes.append("rules with an action only report: pass --emergency-out DIR (and --venue or --devnet-state) for proposals")
    if err is not None:
        for note in notes:
            err.print(f"note: {note}", markup=False)
    return Session(options, breakers, engine, speed, health, venue, desk, streams, chain, notes)


def run(session: Session, *, stop: threading.Event, stdout: IO[str] = sys.stdout, err: Console | None = None) -> dict[str, Any]:
    """Run the loop until the data ends, ``--duration`` passes, `stop` is set or Ctrl-C; returns the summary."""
    o = session.options
    fast = session.chain is None and session.speed is None
    lines = JsonLines(stdout, live=not fast)
    webhook = Webhook(o.webhook) if o.webhook else None
    monitor = Monitor(session.engine, lines.write, None, webhook, venue=session.venue)
    worker = EmergencyWorker(session.desk, session.breakers, monitor.out) if session.desk is not None else None
    monitor.worker = worker
    view = None
    if o.view and not fast and err is not None:
        view = LiveView(err, monitor.view_rows, redirect_stdout=stdout.isatty() if hasattr(stdout, "isatty") else False)
        monitor.view = view
    replay = None
    mode = "replay" if fast else ("paced" if session.chain is None else "chain")
    lines.write({"kind": "start", "markets": {m.symbol: list(m.sources) for m in session.engine.markets}, "mode": mode, "source": o.source,
                 "speed": o.speed if session.chain is None else None})
    try:
        if view is not None:
            view.__enter__()
        if fast:
            replay = replay_events(session.breakers, session.streams, health_factory=session.health_factory)
            monitor.run_replay(replay)
        elif session.chain is None:
            monitor.run_updates(paced(recorded_updates(session.breakers, session.streams), session.speed or 1.0), stop)
        else:
            monitor.run_chain(session.chain, stop, poll_s=o.poll, duration_s=o.duration)
    except KeyboardInterrupt:
        monitor.stopped = "interrupted"
    finally:
        if view is not None:
            view.__exit__(None, None, None)
        if worker is not None:
            worker.close()
        if webhook is not None:
            webhook.close()
        summary = monitor.summary(replay)
        lines.write(summary)
        lines.flush()
    return summary
