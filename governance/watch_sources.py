"""Recorded oracle updates for `steward watch --source csv:...`, and the book the monitor watches.

Files are read exactly as `steward breakers replay` reads them (`risk.breakers_feed.load_market_stream`:
the policy's column or symbol, time offset, market range, allowed repairs), so a replay through the
monitor sees the events the breakers' replay sees. Each file row is one round of its source: its
index in the source's (repaired) series is the round id the gate tracks.

`recorded_updates` interleaves the markets in time order (ties: market order, then each stream's
order) and `paced` plays them back at recorded speed times N, sleeping between updates.

A book file is CSV with a header ``owner,market,collateral,debt_usd``: one row per sub-position
(collateral in tokens of that market, debt in USD), the shape `risk.book.Book` holds.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from governance.cli_breakers import source_files
from risk.book import Book
from risk.breaker_policy import Breakers
from risk.breakers_feed import MarketStream, load_market_stream
from risk.data_files import PriceTable
from risk.errors import DataError, PolicyError
from risk.watch_events import Update


@dataclass(frozen=True)
class SourceSpec:
    """`--source`: ``csv`` (the policy's own files), ``csv:[NAME=]FILE[,...]`` (one market's sources) or ``rpc:URL``."""

    kind: str  # "csv" | "rpc"
    files: tuple[str, ...] = ()
    url: str = ""

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        head, sep, tail = text.partition(":")
        if head == "csv":
            return cls("csv", tuple(f for f in tail.split(",") if f) if sep else ())
        if head == "rpc" and tail:
            return cls("rpc", url=tail)
        raise DataError(f"--source {text!r} is neither csv:FILE[,FILE...] nor rpc:URL", "e.g. --source csv:prices.csv or --source rpc:http://127.0.0.1:8545")


def load_streams(breakers: Breakers, spec: SourceSpec, *, market: str | None, data_dir: Path | None) -> tuple[dict[str, MarketStream], list[str]]:
    """The markets' merged streams and a note per repair applied (as `steward breakers replay` prints them)."""
    streams: dict[str, MarketStream] = {}
    notes: list[str] = []
    tables: dict[Path, PriceTable] = {}
    if spec.files:
        if market is None and len(breakers.markets) > 1:
            raise PolicyError(f"the policy has {len(breakers.markets)} markets ({', '.join(m.symbol for m in breakers.markets)}); which one are the files of?",
                              "add --market SYMBOL")
        chosen = breakers.market(market) if market is not None else breakers.markets[0]
        files = source_files(chosen, list(spec.files))
        if not files:
            raise DataError(f"no csv file for market {chosen.symbol}", "pass --source csv:FILE (one per source)")
        selected = [(chosen, files)]
    else:
        if data_dir is None:
            raise DataError("--source csv without files needs the policy's data folder", "pass --data DIR or name the files: csv:FILE")
        selected = [(m, None) for m in ([breakers.market(market)] if market is not None else breakers.markets)]
    for m, files in selected:
        stream, repairs = load_market_stream(m, breakers.data, data_dir=data_dir, files=files, tables=tables)
        streams[m.symbol] = stream
        notes += [f"{r.file}: {r.kind} — {r.detail}" for r in repairs]
    return streams, notes


def recorded_updates(breakers: Breakers, streams: Mapping[str, MarketStream]) -> list[Update]:
    """Every event of `streams` as an update, in processing order; the round id is the row's index in its source."""
    parts = []
    for i, m in enumerate(breakers.markets):
        s = streams.get(m.symbol)
        if s is None:
            continue
        rounds = np.empty(len(s.times), np.int64)
        for j in range(len(s.sources)):
            at = s.source == j
            rounds[at] = np.arange(int(at.sum()))
        parts.append((s.times, np.full(len(s.times), i), np.arange(len(s.times)), s.source, s.price, rounds, s))
    if not parts:
        return []
    times, market, local = (np.concatenate([p[k] for p in parts]) for k in range(3))
    order = np.lexsort((local, market, times)).tolist()
    rows = [(p[6].market, p[6].sources, t, j, px, r) for p in parts for t, j, px, r in zip(p[0].tolist(), p[3].tolist(), p[4].tolist(), p[5].tolist())]
    return [Update(rows[k][2], rows[k][0], rows[k][1][rows[k][3]], rows[k][4], rows[k][5]) for k in order]


def paced(updates: Sequence[Update], speed: float, *, sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> Iterator[Update]:
    """Yield `updates` at `speed` × their recorded pace (sleeping until each one's time has come)."""
    if not (math.isfinite(speed) and speed > 0):
        raise DataError(f"--speed {speed!r}", "a positive factor (1 = recorded speed, 3600 = an hour a second) or max")
    if not updates:
        return
    t0, w0 = updates[0].time, clock()
    for u in updates:
        wait = (u.time - t0) / speed - (clock() - w0)
        if wait > 0:
            sleep(wait)
        yield u


def load_book_csv(path: Path) -> Book:
    """A book from CSV ``owner,market,collateral,debt_usd`` (one sub-position a row)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise DataError(f"book {path} cannot be read ({exc.strerror or exc})", "check the path given with --book") from None
    reader = csv.DictReader(io.StringIO(text))
    wanted = ["owner", "market", "collateral", "debt_usd"]
    if reader.fieldnames is None or sorted(reader.fieldnames) != sorted(wanted):
        raise DataError(f"{path}: header {reader.fieldnames} is not {','.join(wanted)}", "write one sub-position a row: owner,market,collateral,debt_usd")
    owners, markets, collateral, debt = [], [], [], []
    for line, row in enumerate(reader, start=2):
        try:
            owners.append(int(row["owner"]))
            collateral.append(float(row["collateral"]))
            debt.append(float(row["debt_usd"]))
        except (TypeError, ValueError):
            raise DataError(f"{path}:{line}: owner must be an integer, collateral and debt_usd numbers", "fix the row") from None
        markets.append(str(row["market"]))
    if not owners:
        raise DataError(f"{path}: no position", "a book needs at least one row")
    symbols = tuple(sorted(set(markets)))
    index = {s: i for i, s in enumerate(symbols)}
    return Book(symbols, np.array([index[m] for m in markets], np.int64), np.array(collateral), np.array(debt), np.array(owners, np.int64))
