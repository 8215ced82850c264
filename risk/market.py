"""Prices on a fixed time grid: resampling, alignment of several series, and the pinned CSV form.

`MarketData` is what the risk core computes on and what a bundle pins in `inputs/prices.csv`; its
CSV form round-trips floats exactly so that `steward verify` can rebuild a bundle byte for byte.
Loading and validating the raw files lives in `risk.data`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from risk.data import PriceSeries, frozen_array
from risk.data_files import TIME
from risk.data_text import hours_text, iso_utc
from risk.errors import DataError


def _grid(first: int, last: int, step: int) -> np.ndarray:
    lo, hi = -(-first // step) * step, (last // step) * step
    return np.arange(lo, hi + 1, step, dtype=np.int64) if hi >= lo else np.zeros(0, np.int64)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) index pairs, inclusive, of the runs of True in `mask`."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def resample(series: PriceSeries, step_seconds: int, *, start: int | None = None, end: int | None = None, max_gap_seconds: int) -> PriceSeries:
    """Put a series on a fixed time grid by carrying the last observation forward.

    Parameters
    ----------
    series : PriceSeries
        Irregular observations (unix seconds UTC).
    step_seconds : int
        Grid step in seconds; grid times are multiples of it.
    start, end : int, optional
        Unix seconds; the grid covers ``[start, end]`` (rounded inwards to the grid), by default the
        series' own range.
    max_gap_seconds : int
        Oldest an observation may be, in seconds, to stand for a grid time.

    Returns
    -------
    PriceSeries
        Value at grid time t = the last observation at or before t.

    Raises
    ------
    DataError
        Naming the symbol and the time range where no observation is recent enough, or an empty grid.
    """
    if step_seconds <= 0 or max_gap_seconds <= 0:
        raise DataError(f"{series.symbol}: step {step_seconds} s and max gap {max_gap_seconds} s must be positive", "e.g. step 3600")
    t = series.times
    first = int(t[0]) if start is None else int(start)
    last = int(t[-1]) if end is None else int(end)
    grid = _grid(first, last, step_seconds)
    if len(grid) < 2:
        raise DataError(f"{series.source} {series.symbol}: {iso_utc(first)}..{iso_utc(last)} holds {len(grid)} point(s) of a {step_seconds} s grid", "widen the range; a series needs at least 2 points")
    at = np.searchsorted(t, grid, side="right") - 1
    if at[0] < 0:
        raise DataError(f"{series.source} {series.symbol}: no observation at or before {iso_utc(grid[0])}; the data starts {iso_utc(t[0])}", "start the range later")
    age = grid - t[at]
    stale = age > max_gap_seconds
    if stale.any():
        runs = _runs(stale)
        a, b = runs[0]
        raise DataError(
            f"{series.source} {series.symbol}: no observation within {hours_text(max_gap_seconds)} before {iso_utc(grid[a])}..{iso_utc(grid[b])} "
            f"(last one {iso_utc(t[at[a]])}); {int(stale.sum())} grid point(s) in {len(runs)} stale range(s)",
            "allow data.repairs: [fill_gaps], raise data.max_gap, or choose a range without the gap",
        )
    return PriceSeries(series.symbol, grid, series.prices[at], series.source)


_CSV_TIME_LEN = len("2021-05-19T12:00:00Z")


def _symbols_wrong(symbols: tuple[str, ...]) -> str:
    """Why these symbols cannot head a canonical CSV, or ''."""
    bad = [s for s in symbols if not isinstance(s, str) or not s or s == TIME or any(ch in s for ch in ',"\r\n')]
    if bad or len(set(symbols)) != len(symbols) or not symbols:
        return f"symbols {symbols!r} must be distinct, non-empty, and without , \" or line breaks"
    return ""


@dataclass(frozen=True, eq=False)
class MarketData:
    """Prices of several symbols on one fixed grid: ``prices[:, j]`` is ``symbols[j]`` at ``times`` (unix s UTC)."""

    step_seconds: int
    times: np.ndarray
    symbols: tuple[str, ...]
    prices: np.ndarray

    def __post_init__(self) -> None:
        times, prices = frozen_array(self.times, np.int64), frozen_array(self.prices, np.float64)
        symbols = tuple(self.symbols)
        if isinstance(self.step_seconds, bool) or not isinstance(self.step_seconds, (int, np.integer)) or self.step_seconds <= 0:
            raise DataError(f"market data: step {self.step_seconds!r} is not a positive number of seconds", "e.g. 3600")
        if _symbols_wrong(symbols):
            raise DataError(f"market data: {_symbols_wrong(symbols)}", "rename the series")
        if times.ndim != 1 or prices.shape != (len(times), len(symbols)):
            raise DataError(f"market data: prices {prices.shape} do not match {len(times)} times × {len(symbols)} symbols", "build it with align()")
        if len(times) < 2:
            raise DataError(f"market data: {len(times)} time(s); at least 2 are needed", "widen the range")
        if np.any(np.diff(times) != self.step_seconds) or times[0] % self.step_seconds:
            raise DataError(f"market data: times are not a grid of step {self.step_seconds} s", "build it with align()")
        if not np.all(np.isfinite(prices) & (prices > 0)):
            raise DataError("market data: prices must be finite and positive", "build it with align()")
        object.__setattr__(self, "step_seconds", int(self.step_seconds))
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "prices", prices)
        object.__setattr__(self, "symbols", symbols)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MarketData):
            return NotImplemented
        return (self.step_seconds, self.symbols) == (other.step_seconds, other.symbols) and np.array_equal(self.times, other.times) and np.array_equal(self.prices, other.prices)

    __hash__ = None  # type: ignore[assignment]

    def series(self, symbol: str) -> np.ndarray:
        """Prices of one symbol, shape (T,)."""
        if symbol not in self.symbols:
            raise DataError(f"market data has no symbol {symbol!r}; it has {', '.join(self.symbols)}", "add the series to the policy's markets")
        return self.prices[:, self.symbols.index(symbol)]

    def log_returns(self) -> np.ndarray:
        """Log returns per step, shape (T-1, N)."""
        return np.diff(np.log(self.prices), axis=0)

    def slice(self, start: int, end: int) -> MarketData:
        """The rows with ``start <= time <= end`` (unix seconds, both ends included)."""
        keep = (self.times >= start) & (self.times <= end)
        if keep.sum() < 2:
            raise DataError(f"market data: {iso_utc(start)}..{iso_utc(end)} holds {int(keep.sum())} of its times ({iso_utc(self.times[0])}..{iso_utc(self.times[-1])})", "choose a range inside the data")
        return MarketData(self.step_seconds, self.times[keep], self.symbols, self.prices[keep])

    def to_csv_bytes(self) -> bytes:
        """Canonical wide CSV: ``timestamp_utc,<symbols>``, ISO-8601 UTC times, shortest round-trip floats, ``\\n`` line ends."""
        stamps = np.char.add(np.datetime_as_string(self.times.astype("datetime64[s]"), unit="s"), "Z").tolist()
        columns = [[repr(x) for x in column] for column in self.prices.T.tolist()]
        lines = [",".join((TIME, *self.symbols)), *(",".join(cells) for cells in zip(stamps, *columns))]
        return ("\n".join(lines) + "\n").encode("ascii")

    @classmethod
    def from_csv_bytes(cls, data: bytes, name: str) -> MarketData:
        """Read what `to_csv_bytes` wrote; anything else (even an equivalent but differently written file) is refused.

        The step is the most common spacing of the times. Problems name ``name`` and the line.
        """
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            raise DataError(f"{name}: not ASCII text (byte {exc.start})", "write it with MarketData.to_csv_bytes") from None
        lines = text.split("\n")
        if len(lines) < 2 or lines[-1] != "":
            raise DataError(f"{name}: empty or not ending in a newline", "write it with MarketData.to_csv_bytes")
        lines.pop()
        header = lines[0].split(",")
        if header[0] != TIME or len(header) < 2:
            raise DataError(f"{name}:1: header {lines[0]!r} is not {TIME},<symbol>,...", "write it with MarketData.to_csv_bytes")
        symbols = tuple(header[1:])
        if _symbols_wrong(symbols):
            raise DataError(f"{name}:1: {_symbols_wrong(symbols)}", "write it with MarketData.to_csv_bytes")
        if len(lines) < 3:
            raise DataError(f"{name}: {len(lines) - 1} data row(s); at least 2 are needed", "write a longer range")
        cells = [line.split(",") for line in lines[1:]]
        for i, row in enumerate(cells):
            if len(row) != len(header) or len(row[0]) != _CSV_TIME_LEN or not row[0].endswith("Z"):
                raise DataError(f"{name}:{i + 2}: expected {len(header)} fields starting with a time like 2021-05-19T12:00:00Z", "write it with MarketData.to_csv_bytes")
        try:
            times = np.array([row[0][:-1] for row in cells], dtype="datetime64[s]").astype(np.int64)
        except ValueError as exc:
            raise DataError(f"{name}: a time is not ISO-8601 ({exc})", "write it with MarketData.to_csv_bytes") from None
        prices = np.empty((len(cells), len(symbols)), np.float64)
        for i, row in enumerate(cells):
            try:
                prices[i] = [float(x) for x in row[1:]]
            except ValueError:
                raise DataError(f"{name}:{i + 2}: a price is not a number", "write it with MarketData.to_csv_bytes") from None
            if not all(math.isfinite(x) and x > 0 for x in prices[i]):
                raise DataError(f"{name}:{i + 2}: prices must be finite and positive", "write it with MarketData.to_csv_bytes")
        steps, counts = np.unique(np.diff(times), return_counts=True)
        step = int(steps[np.argmax(counts)])  # the usual spacing, so the line named is the odd one
        off = np.flatnonzero(np.diff(times) != step)
        if step <= 0 or times[0] % step or len(off):
            line = int(off[0]) + 3 if len(off) else 2
            raise DataError(f"{name}:{line}: times are not a fixed grid of step {step} s", "write it with MarketData.to_csv_bytes")
        market = cls(step, times, symbols, prices)
        canonical = market.to_csv_bytes().decode("ascii").split("\n")
        for i, (got, want) in enumerate(zip(lines, canonical)):
            if got != want:
                raise DataError(f"{name}:{i + 1}: not in canonical form ({got!r} would be written {want!r})", "write it with MarketData.to_csv_bytes")
        return market


def align(series: Sequence[PriceSeries], step_seconds: int, *, start: int | None = None, end: int | None = None, max_gap_seconds: int) -> MarketData:
    """Resample several series onto one grid over the range they all cover.

    Parameters
    ----------
    series : sequence of PriceSeries
        Distinct symbols; their order is the column order.
    step_seconds : int
        Grid step in seconds.
    start, end : int, optional
        Unix seconds; default the overlap of all series. An explicit range must be covered by every series.
    max_gap_seconds : int
        Oldest an observation may be, in seconds, to stand for a grid time.

    Raises
    ------
    DataError
        No series, repeated symbols, no overlap (naming each symbol's range), or a stale stretch.
    """
    if not series:
        raise DataError("no price series to align", "list the markets' price files in the policy")
    symbols = [s.symbol for s in series]
    repeated = sorted({s for s in symbols if symbols.count(s) > 1})
    if repeated:
        raise DataError(f"symbol(s) {', '.join(repeated)} given more than once", "give each series a distinct symbol")
    lo = max(int(s.times[0]) for s in series) if start is None else int(start)
    hi = min(int(s.times[-1]) for s in series) if end is None else int(end)
    if len(_grid(lo, hi, step_seconds)) < 2:
        ranges = ", ".join(f"{s.symbol} {iso_utc(s.times[0])}..{iso_utc(s.times[-1])}" for s in series)
        raise DataError(f"the series share fewer than 2 points of a {step_seconds} s grid in {iso_utc(lo)}..{iso_utc(hi)}: {ranges}", "choose series that overlap in time, or another range")
    columns = [resample(s, step_seconds, start=lo, end=hi, max_gap_seconds=max_gap_seconds) for s in series]
    return MarketData(step_seconds, columns[0].times, tuple(symbols), np.column_stack([c.prices for c in columns]))
