"""Market prices: load one validated series from a price file, repairing only what is allowed.

The file is read by `risk.data_files` (CSV or Parquet, wide or long); the series chosen from it is
checked by `risk.data_checks` in order — bad timestamps, missing or non-positive prices, rows out of
order, repeated timestamps, single-bar spikes that revert, gaps above a limit — each finding a
`Problem` with its file, line and column (`risk.data_problems`). A problem whose repair the caller
allowed (`DataOptions.repairs`) is fixed and the fix is returned as a `Repair` for the manifest; any
other problem makes `load_series` raise one `DataError` listing them. Nothing is repaired silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from risk.data_checks import Rows, check_gaps, check_invalid, check_order, check_spikes
from risk.data_files import OHLC, TIME, PriceTable, expected_shapes, load_prices_file, parse_times
from risk.data_problems import FIXED_BY, REPAIR_KINDS, DataOptions, Findings, Inspection, Problem, Repair
from risk.data_text import hours_text
from risk.errors import DataError

_SHOWN_PROBLEMS = 10
_DEFAULT_OPTIONS = DataOptions()  # frozen: one shared default is safe


def frozen_array(values: np.ndarray, dtype: type) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class PriceSeries:
    """One symbol's prices: ``times`` in unix seconds UTC (strictly increasing), ``prices`` > 0 and finite."""

    symbol: str
    times: np.ndarray
    prices: np.ndarray
    source: str

    def __post_init__(self) -> None:
        times, prices = frozen_array(self.times, np.int64), frozen_array(self.prices, np.float64)
        where = f"{self.source} {self.symbol}"
        if not self.symbol:
            raise DataError(f"{self.source}: a price series needs a symbol", "name it with symbol=")
        if Path(self.source).is_absolute():
            raise DataError(f"{where}: source {self.source!r} is an absolute path", "name the file relative to the data directory")
        if times.ndim != 1 or times.shape != prices.shape:
            raise DataError(f"{where}: times {times.shape} and prices {prices.shape} differ in shape", "pass two 1-D arrays of one length")
        if len(times) < 2:
            raise DataError(f"{where}: {len(times)} observation(s); a series needs at least 2", "widen the date range or check the file")
        if np.any(np.diff(times) <= 0):
            raise DataError(f"{where}: times are not strictly increasing", "load through load_series, which sorts and de-duplicates")
        if not np.all(np.isfinite(prices) & (prices > 0)):
            raise DataError(f"{where}: prices must be finite and positive", "load through load_series, which validates")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "prices", prices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceSeries):
            return NotImplemented
        return (self.symbol, self.source) == (other.symbol, other.source) and np.array_equal(self.times, other.times) and np.array_equal(self.prices, other.prices)

    __hash__ = None  # type: ignore[assignment]



def _extract(table: PriceTable, symbol: str | None, column: str) -> tuple[str, str, Rows, dict[str, pd.Series], np.ndarray]:
    """Select the rows and columns that matter: (symbol, series column, rows, raw columns, timestamp validity)."""
    frame, name = table.frame, table.name
    if table.shape == "long":
        symbols = sorted(frame["symbol"].dropna().astype(str).unique())
        if symbol is None:
            raise DataError(f"{name}: long file with symbols {', '.join(symbols)}; no symbol chosen", "name the symbol in the price source (symbol:)")
        selected = frame.index[frame["symbol"].astype(str).to_numpy() == symbol]
        if len(selected) == 0:
            close = [s for s in symbols if s.lower() == symbol.lower()]
            raise DataError(f"{name}: no rows for symbol {symbol!r}; the file has {', '.join(symbols)}", f"did you mean {close[0]!r}?" if close else "pick one of those")
        rows = frame.loc[selected]
        raw = {symbol: rows["price_usd"]}
        series_column = symbol
    else:
        if table.shape == "ohlcv" and column not in OHLC:
            raise DataError(f"{name}: column {column!r} is not a price column of an OHLCV file", f"use one of {', '.join(OHLC)}")
        if column not in frame.columns or column == TIME:
            raise DataError(f"{name}: no price column {column!r} in columns {','.join(frame.columns)}", f"expected {expected_shapes()}")
        rows = frame
        checked = OHLC if table.shape == "ohlcv" else (column,)
        raw = {c: rows[c] for c in checked}
        series_column = column
        if symbol is None:
            symbol = Path(name).name.split(".")[0] if table.shape == "ohlcv" else column
    lines = rows.index.to_numpy(np.int64) + table.first_row
    times, time_ok = parse_times(rows[TIME])
    values = {c: np.array(pd.to_numeric(r, errors="coerce"), dtype=np.float64) for c, r in raw.items()}
    return symbol, series_column, Rows(lines, times, values), {TIME: rows[TIME], **raw}, time_ok



def inspect_table(table: PriceTable, *, symbol: str | None = None, column: str = "close", options: DataOptions = _DEFAULT_OPTIONS) -> tuple[str, Inspection]:
    """Validate one series of a read file; returns its symbol and what was found and repaired (never raises for problems)."""
    found = Findings(table.name, options)
    symbol, series_column, rows, raw, time_ok = _extract(table, symbol, column)
    check_invalid(rows, raw, time_ok, series_column, found)
    check_order(rows, series_column, found)
    check_spikes(rows, table.shape, series_column, found)
    times, prices = check_gaps(rows, series_column, found)
    return symbol, Inspection(tuple(found.problems), tuple(found.unrepaired), tuple(found.repairs), times, prices)


def find_problems(path: Path | PriceTable, *, symbol: str | None = None, column: str = "close", options: DataOptions = _DEFAULT_OPTIONS, name: str | None = None) -> tuple[Problem, ...]:
    """Every problem in one series of a file, whether or not its repair is allowed, in file order per check."""
    table = path if isinstance(path, PriceTable) else load_prices_file(path, name=name)
    return inspect_table(table, symbol=symbol, column=column, options=options)[1].problems


def load_series(path: Path | PriceTable, *, symbol: str | None = None, column: str = "close", options: DataOptions = _DEFAULT_OPTIONS, name: str | None = None) -> tuple[PriceSeries, tuple[Repair, ...]]:
    """Load and validate one price series, applying only the repairs `options` allows.

    Parameters
    ----------
    path : Path or PriceTable
        A price file (CSV or Parquet), or a table already read by `load_prices_file` (to load many
        symbols from one long file without re-reading it).
    symbol : str, optional
        Long files: the symbol whose rows to take (required). Wide files: the series' name (default the
        file stem for OHLCV, the column name otherwise).
    column : str
        Wide files: the price column of the series (``close`` by default). Long files use ``price_usd``.
    options : DataOptions
        Gap limit (seconds), spike threshold (log move) and the repairs allowed.
    name : str, optional
        The file's name in messages and in the series' ``source``; default the file name.

    Returns
    -------
    (PriceSeries, tuple of Repair)
        Times in unix seconds UTC, prices in the file's quote unit; the repairs applied, in check order.

    Raises
    ------
    DataError
        For an unreadable or unknown file, and for any problem whose repair is not allowed: the cause
        counts them and lists the first ten as ``file:row column: kind — detail``; the hint names the
        repairs that would fix them.
    """
    table = path if isinstance(path, PriceTable) else load_prices_file(path, name=name)
    symbol, found = inspect_table(table, symbol=symbol, column=column, options=options)
    if found.unrepaired:
        bad = found.unrepaired
        shown = "; ".join(str(p) for p in bad[:_SHOWN_PROBLEMS])
        more = f"; … and {len(bad) - _SHOWN_PROBLEMS} more" if len(bad) > _SHOWN_PROBLEMS else ""
        kinds = [k for k in REPAIR_KINDS if any(FIXED_BY[p.kind] == k for p in bad)]
        hint = f"fix the file, or allow the repair with data.repairs: [{', '.join(kinds)}] in the policy"
        if "fill_gaps" in kinds:
            hint += f" (or raise data.max_gap above {hours_text(options.max_gap_seconds)})"
        raise DataError(f"{table.name}: {len(bad)} data problem(s) in {symbol}: {shown}{more}", hint)
    if len(found.times) < 2:
        raise DataError(f"{table.name}: {len(found.times)} valid row(s) for {symbol}; a series needs at least 2", "check the file and the symbol")
    return PriceSeries(symbol, found.times, found.prices, table.name), found.repairs
