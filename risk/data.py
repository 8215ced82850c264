"""Market prices: load CSV/Parquet series, validate them, repair only what is allowed, put them on a grid.

Two file shapes are read, told apart by their columns:

* wide — ``timestamp_utc`` plus price columns: OHLCV (``open, high, low, close[, volume, ...]``, one
  market per file) or any single price column (e.g. the canonical `MarketData` CSV, one column a symbol);
* long — ``timestamp_utc, symbol, price_usd``: many symbols, one row per observation.

Timestamps are ISO-8601 text; naive ones are UTC; sub-second parts are floored to the second.

Validation finds, in this order, each with the file, line and column: bad timestamps, missing or
non-positive prices, rows out of order, repeated timestamps, single-bar spikes that revert, gaps above a
limit. Every finding is a `Problem`. A problem whose repair the caller allowed (`DataOptions.repairs`) is
fixed and the fix is returned as a `Repair` for the manifest; any other problem makes `load_series`
raise one `DataError` listing them. Nothing is repaired silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import pandas as pd

from risk.errors import DataError

RepairKind = Literal["sort", "drop_duplicates", "drop_invalid", "remove_spikes", "fill_gaps"]
REPAIR_KINDS: tuple[str, ...] = get_args(RepairKind)
Shape = Literal["ohlcv", "long", "wide"]

TIME = "timestamp_utc"
OHLC = ("open", "high", "low", "close")
LONG = (TIME, "symbol", "price_usd")
_FIXED_BY: dict[str, str] = {
    "bad_timestamp": "drop_invalid",
    "nan": "drop_invalid",
    "non_positive": "drop_invalid",
    "unsorted": "sort",
    "duplicate": "drop_duplicates",
    "spike": "remove_spikes",
    "gap": "fill_gaps",
}
_SHOWN_PROBLEMS = 10
_SHOWN_ROWS = 20


@dataclass(frozen=True)
class DataOptions:
    """How strict loading is.

    Parameters
    ----------
    max_gap_seconds : int
        Longest time between two observations, in seconds; a longer gap is a problem (repair
        ``fill_gaps`` carries the last price forward across it).
    spike_threshold : float
        Size of a log price move (0.25 ≈ 28% up or 22% down) that makes a single bar which moves away
        from its neighbours and comes back a spike.
    repairs : frozenset of str
        The repairs allowed (`REPAIR_KINDS`); a problem found whose repair is not allowed is an error.
    """

    max_gap_seconds: int = 6 * 3600
    spike_threshold: float = 0.25
    repairs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        repairs = frozenset(str(r) for r in self.repairs)
        unknown = sorted(repairs - set(REPAIR_KINDS))
        if unknown:
            raise DataError(f"data.repairs: unknown repair {', '.join(unknown)}", f"use some of {', '.join(REPAIR_KINDS)}")
        if isinstance(self.max_gap_seconds, bool) or not isinstance(self.max_gap_seconds, int) or self.max_gap_seconds <= 0:
            raise DataError(f"data.max_gap_seconds: {self.max_gap_seconds!r} is not a positive whole number of seconds", "e.g. 21600 for 6 h")
        if not (math.isfinite(self.spike_threshold) and self.spike_threshold > 0):
            raise DataError(f"data.spike_threshold: {self.spike_threshold!r} is not a positive log move", "e.g. 0.25")
        object.__setattr__(self, "repairs", repairs)


@dataclass(frozen=True)
class Problem:
    """One finding in a price file.

    ``row`` is the 1-based line number for CSV (the header is line 1, the first record line 2) and the
    1-based record number for Parquet. ``column`` is the price column (for long files the symbol), or
    ``timestamp_utc`` for problems of time.
    """

    file: str
    row: int
    column: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row} {self.column}: {self.kind} — {self.detail}"


@dataclass(frozen=True)
class Repair:
    """A change made to loaded data, for the manifest: ``rows`` holds at most the first 20 rows, ``count`` all."""

    file: str
    kind: RepairKind
    rows: tuple[int, ...]
    count: int
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"count": int(self.count), "detail": self.detail, "file": self.file, "kind": self.kind, "rows": [int(r) for r in self.rows]}


def _frozen_array(values: np.ndarray, dtype: type) -> np.ndarray:
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
        times, prices = _frozen_array(self.times, np.int64), _frozen_array(self.prices, np.float64)
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


# --------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, eq=False)
class PriceTable:
    """A price file as read, before validation: its shape, its rows and the row number of the first record."""

    name: str
    shape: Shape
    frame: pd.DataFrame
    first_row: int


def _expected_shapes() -> str:
    return f"{','.join(LONG)} (long) or {TIME},{','.join(OHLC)}[,volume,...] (OHLCV) or {TIME},<price column>..."


def load_prices_file(path: Path, *, name: str | None = None) -> PriceTable:
    """Read a CSV (optionally gzipped) or Parquet price file and detect its shape from the columns.

    Parameters
    ----------
    path : Path
        The file; ``.parquet``/``.pq`` is Parquet, ``.csv``/``.csv.gz``/``.txt`` is CSV.
    name : str, optional
        How the file is named in messages (a relative name); default ``path.name``.
    """
    path = Path(path)
    name = name if name is not None else path.name
    suffixes = "".join(path.suffixes[-2:]).lower()
    if not path.is_file():
        raise DataError(f"{name}: file not found", "check the path, or point --data / STEWARD_DATA at the data directory")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a damaged file
            raise DataError(f"{name}: not a readable Parquet file ({exc})", "rewrite it with pandas.DataFrame.to_parquet") from None
        first_row = 1
    elif path.suffix.lower() in (".csv", ".txt") or suffixes.endswith(".csv.gz"):
        frame = _read_csv(path, name)
        first_row = 2
    else:
        raise DataError(f"{name}: unknown file type {path.suffix!r}", "use .csv, .csv.gz or .parquet")
    frame = frame.reset_index(drop=True)  # row i is record i, whatever index a Parquet file stored
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = set(frame.columns)
    if set(LONG) <= columns:
        shape: Shape = "long"
    elif {TIME, *OHLC} <= columns:
        shape = "ohlcv"
    elif TIME in columns and len(columns) > 1:
        shape = "wide"
    else:
        raise DataError(f"{name}: unknown columns {','.join(frame.columns) or '(none)'}", f"expected {_expected_shapes()}")
    if len(frame) == 0:
        raise DataError(f"{name}: no data rows", "a price series needs at least 2 rows")
    return PriceTable(name=name, shape=shape, frame=frame, first_row=first_row)


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    try:
        # Blank lines are kept (as empty rows) so that record i stays on line i + 2.
        return pd.read_csv(path, dtype={TIME: str, "symbol": str}, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: file is empty", "a price file needs a header and at least 2 rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{name}: not a readable CSV file ({str(exc).strip()})", "fix the line named, or re-export the file") from None


def _parse_times(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds (floored) and a validity mask; naive times are UTC."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return np.zeros(len(raw), np.int64), np.zeros(len(raw), bool)
    parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    ok = parsed.notna().to_numpy()
    seconds = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return np.where(ok, seconds, 0), ok


def _iso(t: int | np.integer) -> str:
    return datetime.fromtimestamp(int(t), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt(x: float | np.floating) -> str:
    return repr(float(x))


def _duration(seconds: int | np.integer) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds / 3600:.2f} h"


# ------------------------------------------------------------------------------------------ validation


@dataclass
class _Rows:
    """Working copy of the rows under validation; every stage keeps the arrays aligned."""

    lines: np.ndarray
    times: np.ndarray
    values: dict[str, np.ndarray]  # price columns checked, NaN where invalid

    def keep(self, index: np.ndarray) -> None:
        """Keep rows by boolean mask or reorder them by an index array."""
        self.lines, self.times = self.lines[index], self.times[index]
        self.values = {k: v[index] for k, v in self.values.items()}


@dataclass(frozen=True)
class Inspection:
    """Everything validation found: all problems, those left unrepaired, the repairs made, the result rows."""

    problems: tuple[Problem, ...]
    unrepaired: tuple[Problem, ...]
    repairs: tuple[Repair, ...]
    times: np.ndarray = field(repr=False)
    prices: np.ndarray = field(repr=False)


class _Findings:
    def __init__(self, name: str, options: DataOptions) -> None:
        self.name, self.options = name, options
        self.problems: list[Problem] = []
        self.unrepaired: list[Problem] = []
        self.repairs: list[Repair] = []

    def add(self, problems: list[Problem], repair_rows: np.ndarray, detail: str) -> None:
        """Record problems of one repair kind and, if that repair is allowed, the repair made."""
        if not problems:
            return
        kind = _FIXED_BY[problems[0].kind]
        self.problems += problems
        if kind in self.options.repairs:
            rows = np.unique(repair_rows)
            self.repairs.append(Repair(self.name, kind, tuple(int(r) for r in rows[:_SHOWN_ROWS]), len(rows), detail))  # type: ignore[arg-type]
        else:
            self.unrepaired += problems


def _problem(name: str, row: int | np.integer, column: str, kind: str, detail: str) -> Problem:
    return Problem(name, int(row), column, kind, detail)


def _extract(table: PriceTable, symbol: str | None, column: str) -> tuple[str, str, _Rows, dict[str, pd.Series], np.ndarray]:
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
            raise DataError(f"{name}: no price column {column!r} in columns {','.join(frame.columns)}", f"expected {_expected_shapes()}")
        rows = frame
        checked = OHLC if table.shape == "ohlcv" else (column,)
        raw = {c: rows[c] for c in checked}
        series_column = column
        if symbol is None:
            symbol = Path(name).name.split(".")[0] if table.shape == "ohlcv" else column
    lines = rows.index.to_numpy(np.int64) + table.first_row
    times, time_ok = _parse_times(rows[TIME])
    values = {c: np.array(pd.to_numeric(r, errors="coerce"), dtype=np.float64) for c, r in raw.items()}
    return symbol, series_column, _Rows(lines, times, values), {TIME: rows[TIME], **raw}, time_ok


def _check_invalid(rows: _Rows, raw: dict[str, pd.Series], time_ok: np.ndarray, series_column: str, found: _Findings) -> None:
    name = found.name
    problems: list[Problem] = []
    for i in np.flatnonzero(~time_ok):
        text = raw[TIME].iloc[i]
        problems.append(_problem(name, rows.lines[i], TIME, "bad_timestamp", "missing time" if pd.isna(text) else f"{str(text)!r} is not an ISO-8601 time"))
    drop = ~time_ok
    kept_invalid: list[str] = []
    for column, values in rows.values.items():
        finite = np.isfinite(values)
        bad = ~finite | (values <= 0)
        for i in np.flatnonzero(bad):
            text = raw[column].iloc[i]
            if finite[i]:
                problems.append(_problem(name, rows.lines[i], column, "non_positive", f"{_fmt(values[i])} is not a positive price"))
            elif pd.isna(text) or str(text).strip() == "":
                problems.append(_problem(name, rows.lines[i], column, "nan", "missing value"))
            else:
                problems.append(_problem(name, rows.lines[i], column, "nan", f"{str(text)!r} is not a finite number"))
        if column == series_column:
            drop |= bad
        elif bad.any():
            kept_invalid.append(column)
            values[bad] = np.nan  # ignored as a spike reference; the series does not use this column
    problems.sort(key=lambda p: p.row)
    parts = [f"dropped {int(drop.sum())} row(s) with a bad timestamp or {series_column}"] if drop.any() else []
    if kept_invalid:
        parts.append(f"kept rows where only {'/'.join(kept_invalid)} was invalid: the series uses {series_column} only")
    found.add(problems, np.array([p.row for p in problems], np.int64), "; ".join(parts))
    rows.keep(~drop)


def _check_order(rows: _Rows, series_column: str, found: _Findings) -> None:
    name, t = found.name, rows.times
    if len(t) > 1:
        latest = np.maximum.accumulate(t)
        late = np.flatnonzero(t[1:] < latest[:-1]) + 1
        problems = [_problem(name, rows.lines[i], TIME, "unsorted", f"{_iso(t[i])} comes after {_iso(latest[i - 1])}") for i in late]
        found.add(problems, rows.lines[late], f"sorted {len(late)} out-of-order row(s) by time (stable)")
        rows.keep(np.argsort(t, kind="stable"))
    t, v = rows.times, rows.values[series_column]
    if len(t) > 1:
        repeat = np.flatnonzero(t[1:] == t[:-1]) + 1
        # the first row of a run of equal times is the one kept
        first = np.maximum.accumulate(np.where(np.r_[True, t[1:] != t[:-1]], np.arange(len(t)), 0))
        problems, differ = [], 0
        for i in repeat:
            k = first[i]
            same = v[i] == v[k]
            differ += not same
            note = "same price" if same else f"price {_fmt(v[i])} vs {_fmt(v[k])}"
            problems.append(_problem(name, rows.lines[i], TIME, "duplicate", f"{_iso(t[i])} repeats line {rows.lines[k]} ({note})"))
        found.add(problems, rows.lines[repeat], f"dropped {len(repeat)} row(s) repeating an earlier time, kept the first; {differ} had a different {series_column}")
        keep = np.ones(len(t), bool)
        keep[repeat] = False
        rows.keep(keep)


def _shift(x: np.ndarray, k: int) -> np.ndarray:
    """x shifted so that out[i] = x[i - k]; NaN where there is no such element."""
    out = np.full_like(x, np.nan)
    if k > 0:
        out[k:] = x[:-k]
    else:
        out[:k] = x[-k:]
    return out


def _spikes(v: np.ndarray, before: list[np.ndarray], after: list[np.ndarray], threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Where price `v` is more than `threshold` (log) away from every reference, all on one side, while the
    references agree; needs two references, one after the bar. Returns (indices, first reference there)."""
    refs = np.vstack([*before, *after])
    avail = ~np.isnan(refs)
    log_refs = np.log(np.where(avail, refs, 1.0))
    diff = np.log(v)[None, :] - log_refs
    up = np.where(avail, diff > threshold, True).all(axis=0)
    down = np.where(avail, diff < -threshold, True).all(axis=0)
    span = np.where(avail, log_refs, -np.inf).max(axis=0) - np.where(avail, log_refs, np.inf).min(axis=0)
    enough = (avail.sum(axis=0) >= 2) & avail[len(before):].any(axis=0)
    hit = np.flatnonzero(enough & (up | down) & (span <= threshold) & ~np.isnan(v))
    return hit, refs[np.argmax(avail[:, hit], axis=0), hit]


def _check_spikes(rows: _Rows, shape: Shape, series_column: str, found: _Findings) -> None:
    values, threshold = rows.values, found.options.spike_threshold  # invalid cells are NaN by now
    hits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if shape == "ohlcv":
        o, c = values["open"], values["close"]
        # An open, high or low is judged against the previous close, its own close and the next open; a
        # close against the previous close and the next open and close. In a real crash the closes move
        # and the next bar opens where this one closed, so it is not a spike; a bad print stands alone.
        for column in ("open", "high", "low"):
            hits[column] = _spikes(values[column], [_shift(c, 1)], [c, _shift(o, -1)], threshold)
        hits["close"] = _spikes(c, [_shift(c, 1)], [_shift(o, -1), _shift(c, -1)], threshold)
    else:
        x = values[series_column]
        hits[series_column] = _spikes(x, [_shift(x, 1)], [_shift(x, -1)], threshold)
    problems = [
        _problem(found.name, rows.lines[i], column, "spike", f"{_fmt(values[column][i])} vs neighbours ~{_fmt(ref)} (reverts next bar)")
        for column, (index, shown) in hits.items()
        for i, ref in zip(index, shown)
    ]
    problems.sort(key=lambda p: p.row)
    dropped = hits[series_column][0]
    kept = sorted({c for c, (index, _) in hits.items() if c != series_column and len(np.setdiff1d(index, dropped))})
    parts = [f"dropped {len(dropped)} row(s) whose {series_column} was a spike"] if len(dropped) else []
    if kept:
        parts.append(f"left the {'/'.join(kept)} spike(s) in place: the series uses {series_column} only")
    found.add(problems, np.array([p.row for p in problems], np.int64), "; ".join(parts))
    keep = np.ones(len(rows.times), bool)
    keep[dropped] = False
    rows.keep(keep)


def _check_gaps(rows: _Rows, series_column: str, found: _Findings) -> tuple[np.ndarray, np.ndarray]:
    limit = found.options.max_gap_seconds
    t, p = rows.times, rows.values[series_column]
    if len(t) < 2:
        return t, p
    d = np.diff(t)
    gaps = np.flatnonzero(d > limit)
    problems = [
        _problem(found.name, rows.lines[i + 1], TIME, "gap", f"{_duration(d[i])} without data since {_iso(t[i])} (line {rows.lines[i]}); limit {_duration(limit)}")
        for i in gaps
    ]
    if not len(gaps):
        return t, p
    # carried-forward points at the file's usual spacing, so a resample sees no stale stretch
    step = int(min(max(np.median(d), 1), limit))
    count = (d[gaps] - 1) // step
    offsets = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + 1
    new_t = np.repeat(t[gaps], count) + step * offsets
    new_p = np.repeat(p[gaps], count)
    detail = f"carried the last {series_column} forward across {len(gaps)} gap(s) (longest {_duration(d[gaps].max())}), inserting {int(count.sum())} point(s) every {step} s"
    found.add(problems, rows.lines[gaps + 1], detail)
    index = np.argsort(np.r_[t, new_t], kind="stable")
    return np.r_[t, new_t][index], np.r_[p, new_p][index]


def inspect_table(table: PriceTable, *, symbol: str | None = None, column: str = "close", options: DataOptions = DataOptions()) -> tuple[str, Inspection]:
    """Validate one series of a read file; returns its symbol and what was found and repaired (never raises for problems)."""
    found = _Findings(table.name, options)
    symbol, series_column, rows, raw, time_ok = _extract(table, symbol, column)
    _check_invalid(rows, raw, time_ok, series_column, found)
    _check_order(rows, series_column, found)
    _check_spikes(rows, table.shape, series_column, found)
    times, prices = _check_gaps(rows, series_column, found)
    return symbol, Inspection(tuple(found.problems), tuple(found.unrepaired), tuple(found.repairs), times, prices)


def find_problems(path: Path | PriceTable, *, symbol: str | None = None, column: str = "close", options: DataOptions = DataOptions(), name: str | None = None) -> tuple[Problem, ...]:
    """Every problem in one series of a file, whether or not its repair is allowed, in file order per check."""
    table = path if isinstance(path, PriceTable) else load_prices_file(path, name=name)
    return inspect_table(table, symbol=symbol, column=column, options=options)[1].problems


def load_series(path: Path | PriceTable, *, symbol: str | None = None, column: str = "close", options: DataOptions = DataOptions(), name: str | None = None) -> tuple[PriceSeries, tuple[Repair, ...]]:
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
        kinds = [k for k in REPAIR_KINDS if any(_FIXED_BY[p.kind] == k for p in bad)]
        hint = f"fix the file, or allow the repair with data.repairs: [{', '.join(kinds)}] in the policy"
        if "fill_gaps" in kinds:
            hint += f" (or raise data.max_gap above {_duration(options.max_gap_seconds)})"
        raise DataError(f"{table.name}: {len(bad)} data problem(s) in {symbol}: {shown}{more}", hint)
    if len(found.times) < 2:
        raise DataError(f"{table.name}: {len(found.times)} valid row(s) for {symbol}; a series needs at least 2", "check the file and the symbol")
    return PriceSeries(symbol, found.times, found.prices, table.name), found.repairs


# ------------------------------------------------------------------------------------------------ grid
