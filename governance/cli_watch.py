"""`steward watch`: the real-time monitor on recorded files or a chain (see governance/watch.py).

    steward watch POLICY --source csv[:[SOURCE=]FILE,...] | rpc:URL
        [--market SYMBOL] [--data DIR] [--speed max|N]
        [--book FILE | --generate-book N [--seed S]]
        [--venue POLICY | --devnet-state DIR] [--snapshot FILE] [--simulate-rpc URL] [--emergency-out DIR]
        [--webhook URL] [--feed-mode events|poll] [--poll S] [--duration S] [--no-view]

One JSON line per event on stdout (sorted keys), notes on stderr, a live table on stderr when it is a
terminal. Ends with a ``summary`` line at the end of the data, after ``--duration``, or on Ctrl-C
(exit 0). Expected failures before the loop starts print cause and hint and exit 2.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

T = TypeVar("T")
Guarded = Callable[[Callable[[], T]], T]


def register(app: typer.Typer, *, guarded: Guarded[Any], out: Console, err: Console) -> None:
    """Add `steward watch` to `app`."""

    @app.command("watch")
    def watch_cmd(
        policy: Annotated[Path, typer.Argument(help="A breaker policy (policies/*-breaker*.yaml), with an optional watch: section.")],
        source: Annotated[str, typer.Option("--source", help="csv (the policy's files), csv:[SOURCE=]FILE[,...] (one market) or rpc:URL.")],
        market: Annotated[str | None, typer.Option("--market", help="The market csv files belong to (if the policy has several).")] = None,
        data: Annotated[Path | None, typer.Option("--data", help="Market data folder for --source csv (default ../shared/data).")] = None,
        speed: Annotated[str, typer.Option("--speed", help="Replay speed: max, or a factor of the recorded pace.")] = "max",
        book: Annotated[Path | None, typer.Option("--book", help="Book CSV: owner,market,collateral,debt_usd.")] = None,
        generate_book: Annotated[int | None, typer.Option("--generate-book", help="Watch a synthetic book of N positions opened at the first prices.")] = None,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the generated book.")] = 0,
        venue: Annotated[Path | None, typer.Option("--venue", help="Venue policy: LTV recommendations and emergency proposals.")] = None,
        devnet_state: Annotated[Path | None, typer.Option("--devnet-state", help="A running devnet's state dir: its venue, parameters and simulation.")] = None,
        snapshot: Annotated[Path | None, typer.Option("--snapshot", help="Current parameters (Steward JSON) for proposals made without a chain.")] = None,
        simulate_rpc: Annotated[str | None, typer.Option("--simulate-rpc", help="Simulate proposals on this anvil node (devnet or fork).")] = None,
        emergency_out: Annotated[Path | None, typer.Option("--emergency-out", help="Write emergency proposals here (OUT/<venue>/emergency-...).")] = None,
        webhook: Annotated[str | None, typer.Option("--webhook", help="POST every event (JSON) to this URL, in the background.")] = None,
        feed_mode: Annotated[str, typer.Option("--feed-mode", help="rpc: follow AnswerUpdated events or poll latestRoundData.")] = "events",
        poll: Annotated[float, typer.Option("--poll", help="rpc: seconds between polls.")] = 1.0,
        duration: Annotated[float | None, typer.Option("--duration", help="Stop after this many seconds (live sources).")] = None,
        no_view: Annotated[bool, typer.Option("--no-view", help="No live table, even on a terminal.")] = False,
    ) -> None:
        """Watch oracle updates: breakers, book health, vol-adjusted parameters; emergency proposals on actions."""
        from governance.watch_run import WatchOptions, prepare, run

        options = WatchOptions(policy=policy, source=source, market=market, data=data, speed=speed, book=book, generate_book=generate_book,
                               seed=seed, venue=venue, devnet_state=devnet_state, snapshot=snapshot, simulate_rpc=simulate_rpc,
                               emergency_out=emergency_out, webhook=webhook, feed_mode=feed_mode, poll=poll, duration=duration,
                               view=not no_view and err.is_terminal)
        session = guarded(lambda: prepare(options, err))
        run(session, stop=threading.Event(), stdout=sys.stdout, err=err)
