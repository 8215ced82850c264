"""A market's price updates as one event stream: several sources merged, their median, their freshness.

Circuit breakers watch oracle updates, not a grid: every update of every source is an event. Events
are ordered by time, then by the source's position in the policy (two sources updating in the same
second give two events). After each event the stream knows each source's last price and its age; a
source is *fresh* while its last update is at most ``fresh_within`` seconds old, and the market's
*composite* price is the median of the fresh sources (the updating source is always fresh, so the
composite is defined at every event).

Two paths compute the same thing: `merge_sources` for a whole history at once (numpy), and
`CompositeFeed.update` for one event at a time (the real-time monitor). They use the same float
operations in the same order, so their composites are equal bit for bit (tests/unit/test_breakers.py).

Loading a policy's sources from files lives here too (`load_market_stream`): it resolves which
column or symbol of a file is the source, applies the declared time offset and the market's range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from risk.breaker_markets import BreakerMarket, BreakerSource
from risk.data import frozen_array, load_series
from risk.data_files import OHLC, TIME, PriceTable, load_prices_file
from risk.data_problems import DataOptions, Repair
from risk.data_text import iso_utc
from risk.errors import DataError
from risk.policy import DataPolicy


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """One source's updates: ``times`` unix seconds UTC strictly increasing, ``values`` finite and > 0."""

    name: str
    times: np.ndarray
    values: np.ndarray
    origin: str = ""

    def __post_init__(self) -> None:
        times, values = frozen_array(self.times, np.int64), frozen_array(self.values, np.float64)
        where = f"source {self.name!r}" + (f" ({self.origin})" if self.origin else "")
        if times.ndim != 1 or times.shape != values.shape:
            raise DataError(f"{where}: times {times.shape} and values {values.shape} differ in shape", "pass two 1-D arrays of one length")
        if len(times) < 2:
            raise DataError(f"{where}: {len(times)} update(s); a breaker needs at least 2", "give a longer series (empty and single-row files cannot be replayed)")
        if np.any(np.diff(times) <= 0):
            raise DataError(f"{where}: times are not strictly increasing", "load it through risk.data.load_series, which sorts and de-duplicates")
        if not np.all(np.isfinite(values) & (values > 0)):
            raise DataError(f"{where}: values must be finite and positive", "load it through risk.data.load_series, which validates")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)

    @property
    def span(self) -> str:
        return f"{iso_utc(self.times[0])}..{iso_utc(self.times[-1])}"


@dataclass(frozen=True, eq=False)
class MarketStream:
    """All price updates of one market, merged; E events, S sources.

    Attributes
    ----------
    times : (E,) int64
        Unix seconds UTC, non-decreasing.
    source : (E,) int64
        Index of the source that updated (into ``sources``).
    price : (E,) float64
        The price that source reported.
    last : (E, S) float64
        Each source's last price after the event (NaN before its first update).
    fresh : (E, S) bool
        Whether that price is at most ``fresh_within`` seconds old at the event.
    composite : (E,) float64
        Median of the fresh sources' last prices.
    open_interest : SourceSeries or None
        Open interest in USD, its own updates (for the OI-cap rule).
    """

    market: str
    sources: tuple[str, ...]
    fresh_within: int
    times: np.ndarray
    source: np.ndarray
    price: np.ndarray
    last: np.ndarray
    fresh: np.ndarray
    composite: np.ndarray
    open_interest: SourceSeries | None = None

    def signal(self, source: str | None) -> np.ndarray:
        """Boolean mask (E,) of the events a rule watching `source` sees (all events for the composite)."""
        if source is None:
            return np.ones(len(self.times), bool)
        return self.source == self.source_index(source)

    def signal_prices(self, source: str | None) -> np.ndarray:
        """Price (E,) seen by a rule watching `source`: its own price at its events, the composite otherwise."""
        return self.composite if source is None else self.price

    def source_index(self, name: str) -> int:
        if name not in self.sources:
            raise DataError(f"market {self.market}: no source {name!r} in this replay (sources: {', '.join(self.sources)})", "pass that source's prices, or replay without the rule")
        return self.sources.index(name)

    def span(self, source: str | None) -> tuple[int, int]:
        """First and last event time (unix s) a rule watching `source` sees."""
        t = self.times[self.signal(source)]
        return int(t[0]), int(t[-1])


def _median_of_sorted(rows: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Median of the first `counts[i]` entries of each sorted row: the middle one, or the mean of the two middle ones."""
    r = np.arange(len(rows))
    return (rows[r, (counts - 1) // 2] + rows[r, counts // 2]) / 2.0


def merge_sources(market: str, sources: Sequence[SourceSeries], fresh_within: int, open_interest: SourceSeries | None = None) -> MarketStream:
    """Merge several sources of one market into an event stream with its composite price.

    Parameters
    ----------
    market : str
        The market's symbol, for messages.
    sources : sequence of SourceSeries
        Distinct names; their order breaks ties between events of the same second.
    fresh_within : int
        Seconds a source's last price stays fresh (counts toward the median and the divergence).
    open_interest : SourceSeries, optional
        Open interest in USD.

    Raises
    ------
    DataError
        No sources, repeated names, or sources that share no stretch of time (naming each one's range).
    """
    if not sources:
        raise DataError(f"market {market}: no price sources", "list the market's sources in the policy, or pass --prices")
    names = [s.name for s in sources]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(f"market {market}: source(s) {', '.join(repeated)} given more than once", "give each source once")
    if isinstance(fresh_within, bool) or not isinstance(fresh_within, (int, np.integer)) or fresh_within <= 0:
        raise DataError(f"market {market}: fresh_within {fresh_within!r} is not a positive number of seconds", "e.g. 7200 (2h)")
    if len(sources) > 1:
        lo, hi = max(int(s.times[0]) for s in sources), min(int(s.times[-1]) for s in sources)
        if lo >= hi:
            ranges = "; ".join(f"{s.name} {s.span}" for s in sources)
            raise DataError(f"market {market}: its sources share no stretch of time ({ranges})", "replay sources of the same period (divergence and the median need them side by side)")
    times = np.concatenate([s.times for s in sources])
    index = np.concatenate([np.full(len(s.times), j, np.int64) for j, s in enumerate(sources)])
    price = np.concatenate([s.values for s in sources])
    order = np.lexsort((index, times))
    times, index, price = times[order], index[order], price[order]
    n = len(times)
    last = np.full((n, len(sources)), np.nan)
    fresh = np.zeros((n, len(sources)), bool)
    positions = np.arange(n)
    for j in range(len(sources)):
        at = np.maximum.accumulate(np.where(index == j, positions, -1))  # this source's latest event so far
        seen = at >= 0
        last[seen, j] = price[at[seen]]
        fresh[:, j] = seen & (times - times[np.maximum(at, 0)] <= fresh_within)
    ordered = np.sort(np.where(fresh, last, np.inf), axis=1)  # stale and unseen go to the end
    composite = _median_of_sorted(ordered, fresh.sum(axis=1))
    return MarketStream(market, tuple(names), int(fresh_within), times, index, price, last, fresh, composite, open_interest)


@dataclass(frozen=True, slots=True)
class Tick:
    """One event as the per-update path sees it: the update, every source's last price and freshness, the composite."""

    time: int
    source: int
    price: float
    last: tuple[float | None, ...]
    fresh: tuple[bool, ...]
    composite: float


class CompositeFeed:
    """Per-update twin of `merge_sources`: feed it events in stream order, get the same composite."""

    def __init__(self, sources: Sequence[str], fresh_within: int) -> None:
        self.sources = tuple(sources)
        self.fresh_within = int(fresh_within)
        self._value: list[float | None] = [None] * len(self.sources)
        self._time: list[int] = [0] * len(self.sources)

    def update(self, time: int, source: int, price: float) -> Tick:
        self._value[source], self._time[source] = float(price), int(time)
        fresh = tuple(v is not None and time - t <= self.fresh_within for v, t in zip(self._value, self._time))
        values = sorted(v for v, f in zip(self._value, fresh) if f and v is not None)
        k = len(values)
        composite = (values[(k - 1) // 2] + values[k // 2]) / 2.0
        return Tick(int(time), int(source), float(price), tuple(self._value), fresh, composite)


def ticks(stream: MarketStream) -> list[tuple[int, int, float]]:
    """The stream's events as (time, source index, price), in order: what a monitor would receive."""
    return list(zip(stream.times.tolist(), stream.source.tolist(), stream.price.tolist()))


# --------------------------------------------------------------------------------------------- loading


def data_options(data: DataPolicy) -> DataOptions:
    return DataOptions(max_gap_seconds=data.max_gap.seconds, spike_threshold=data.spike_threshold.as_float(), repairs=frozenset(r.value for r in data.repairs))


def _column_and_symbol(table: PriceTable, spec_column: str, spec_symbol: str | None) -> tuple[str, str | None]:
    """Which series of a file is the source: the policy's column/symbol when the file has it, else its only one."""
    frame = table.frame
    if table.shape == "long":
        symbols = sorted(frame["symbol"].dropna().astype(str).unique())
        if spec_symbol in symbols or len(symbols) != 1:
            return "close", spec_symbol  # load_series names the symbols if spec_symbol is absent
        return "close", symbols[0]
    if table.shape == "ohlcv":
        return (spec_column if spec_column in OHLC else "close"), spec_symbol
    prices = [c for c in frame.columns if c != TIME]
    if spec_column in prices:
        return spec_column, spec_symbol
    if len(prices) == 1:
        return prices[0], spec_symbol
    raise DataError(f"{table.name}: no column {spec_column!r} and several price columns ({', '.join(prices)})", "name the column in the policy's source (column:)")


def load_source(path: Path, name: str, display: str, *, column: str, symbol: str | None, offset: int, options: DataOptions,
                start: int | None = None, end: int | None = None, tables: dict[Path, PriceTable] | None = None) -> tuple[SourceSeries, tuple[Repair, ...]]:
    """Read one source from a price file (any shape `risk.data` reads), shifted by `offset` seconds and cut to [start, end]."""
    tables = {} if tables is None else tables
    if path not in tables:
        tables[path] = load_prices_file(path, name=display)
    table = tables[path]
    col, sym = _column_and_symbol(table, column, symbol)
    series, repairs = load_series(table, symbol=sym, column=col, options=options, name=display)
    times = series.times + int(offset)
    keep = np.ones(len(times), bool)
    if start is not None:
        keep &= times >= start
    if end is not None:
        keep &= times <= end
    if keep.sum() < 2:
        window = f"{iso_utc(start) if start is not None else '…'}..{iso_utc(end) if end is not None else '…'}"
        raise DataError(f"{display}: source {name!r} has {int(keep.sum())} update(s) in the market's range {window} (the file covers {iso_utc(times[0])}..{iso_utc(times[-1])})", "widen the market's start/end or pass a file of that period")
    return SourceSeries(name, times[keep], series.prices[keep], display), repairs


def load_market_stream(market: BreakerMarket, data: DataPolicy, *, data_dir: Path | None = None, files: Mapping[str, Path] | None = None,
                       open_interest: Path | None = None, tables: dict[Path, PriceTable] | None = None) -> tuple[MarketStream, tuple[Repair, ...]]:
    """Load a policy market's sources and merge them.

    Parameters
    ----------
    market : BreakerMarket
        The policy's market: its sources (file, column/symbol, time offset), range and freshness.
    data : DataPolicy
        Gap limit, spike threshold and the repairs allowed.
    data_dir : Path, optional
        Where the policy's files live (used for the sources not in `files`, when `files` is None).
    files : mapping of source name to Path, optional
        Files replacing the policy's: only these sources are replayed.
    open_interest : Path, optional
        A file of open interest in USD replacing the policy's.
    """
    options = data_options(data)
    start = None if market.start is None else int(market.start.timestamp())
    end = None if market.end is None else int(market.end.timestamp())
    tables = {} if tables is None else tables
    chosen: list[tuple[BreakerSource, Path, str]] = []
    if files:
        by_name = {s.name: s for s in market.sources}
        for name, path in files.items():
            if name not in by_name:
                raise DataError(f"market {market.symbol} has no source {name!r}", f"its sources are {', '.join(by_name)}")
            chosen.append((by_name[name], Path(path), Path(path).name))
        chosen.sort(key=lambda c: list(by_name).index(c[0].name))
    else:
        if data_dir is None:
            raise DataError(f"market {market.symbol}: no data directory and no price files", "pass --data DIR or --prices CSV")
        for spec in market.sources:
            path = data_dir / spec.file
            if not path.is_file():
                raise DataError(f"market {market.symbol}: source {spec.name} file {spec.file} not found under {data_dir}", "pass --data DIR (default ../shared/data, or set STEWARD_DATA)")
            chosen.append((spec, path, spec.file))
    series, repairs = [], []
    for spec, path, display in chosen:
        s, r = load_source(path, spec.name, display, column=spec.column, symbol=spec.symbol, offset=spec.time_offset.seconds, options=options, start=start, end=end, tables=tables)
        series.append(s)
        repairs.extend(r)
    oi, spec = None, market.open_interest
    where: tuple[Path, str] | None = None
    if open_interest is not None:
        where = (Path(open_interest), Path(open_interest).name)
    elif spec is not None and not files and data_dir is not None:
        where = (data_dir / spec.file, spec.file)
    if where is not None:
        column = spec.column if spec is not None else "open_interest_usd"  # or the file's only column
        oi, r = load_source(where[0], "open_interest", where[1], column=column, symbol=None if spec is None else spec.symbol, offset=0, options=options, start=start, end=end, tables=tables)
        repairs.extend(r)
    return merge_sources(market.symbol, series, market.fresh_within.seconds, oi), tuple(repairs)
