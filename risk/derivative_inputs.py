"""The extra inputs of derivative markets, read from the bytes pinned in a bundle: funding history and option books.

Both are parsed from bytes (the bundle's ``inputs/`` copy), never from a path, so that an epoch and its
rebuild by `steward verify` read the same thing. Problems name the file and the line.

* Funding: a CSV with ``timestamp_utc`` and a rate column (fraction of notional per interval,
  positive when longs pay shorts), one row per interval, times strictly increasing.
* Option book: a CSV ``kind,moneyness_pct,expiry_days,quantity`` — call/put, strike as a percentage of
  the forward when struck, days to expiry when struck, signed units of underlying (negative = written).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

from risk.data import frozen_array
from risk.data_text import iso_utc
from risk.errors import DataError
from risk.policy_derivatives import OptionLeg
from risk.units import Duration, Ratio

BOOK_COLUMNS = ("kind", "moneyness_pct", "expiry_days", "quantity")


@dataclass(frozen=True, eq=False)
class FundingSeries:
    """Funding rates (fraction of notional per interval) at ``times`` (unix seconds UTC, increasing)."""

    times: np.ndarray
    rates: np.ndarray
    source: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", frozen_array(self.times, np.int64))
        object.__setattr__(self, "rates", frozen_array(self.rates, np.float64))

    def until(self, end: int) -> np.ndarray:
        """Rates known at ``end`` (unix s): those stamped at or before it, nothing after "now"."""
        rates = self.rates[self.times <= end]
        if rates.size < 2:
            raise DataError(f"{self.source}: {rates.size} funding rate(s) at or before {iso_utc(end)}", "use a funding file covering the price history")
        return rates


def parse_funding_csv(data: bytes, name: str, column: str = "funding_rate") -> FundingSeries:
    """Read a funding history from CSV bytes; every problem names ``name`` and the line."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{name}: not a readable CSV ({exc})", "write timestamp_utc,funding_rate rows") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for needed in ("timestamp_utc", column):
        if needed not in frame.columns:
            raise DataError(f"{name}:1: no column {needed!r} (columns: {', '.join(frame.columns)})", "name the rate column in the policy's funding.column")
    times = pd.to_datetime(frame["timestamp_utc"], utc=True, errors="coerce")
    bad_time = np.flatnonzero(times.isna().to_numpy())
    if bad_time.size:
        raise DataError(f"{name}:{int(bad_time[0]) + 2}: timestamp {frame['timestamp_utc'].iloc[bad_time[0]]!r} is not a time", "write ISO-8601 UTC times")
    rates = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(rates))
    if bad.size:
        raise DataError(f"{name}:{int(bad[0]) + 2}: funding rate {frame[column].iloc[bad[0]]!r} is not a number", "repair the file")
    seconds = times.dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    order = np.flatnonzero(np.diff(seconds) <= 0)
    if order.size:
        raise DataError(f"{name}:{int(order[0]) + 3}: time is not after the previous row's", "sort the file and drop duplicate times")
    if seconds.size < 2:
        raise DataError(f"{name}: {seconds.size} funding row(s)", "a funding history needs at least two rates")
    return FundingSeries(seconds, rates, name)


def _book_field(row: dict[str, str], key: str, line: int, name: str) -> str:
    value = (row.get(key) or "").strip()
    if not value:
        raise DataError(f"{name}:{line}: {key} is empty", f"every row needs {', '.join(BOOK_COLUMNS)}")
    return value


def parse_book_csv(data: bytes, name: str) -> tuple[OptionLeg, ...]:
    """Read an option book (``kind,moneyness_pct,expiry_days,quantity``) from CSV bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not UTF-8 text (byte {exc.start})", "save the book as UTF-8 CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(c.strip() for c in reader.fieldnames or ()) != BOOK_COLUMNS:
        raise DataError(f"{name}:1: header {reader.fieldnames!r} is not {','.join(BOOK_COLUMNS)}", "write the book with exactly these columns")
    legs = []
    for i, raw in enumerate(reader):
        line = i + 2
        row = {k.strip(): v for k, v in raw.items() if k is not None}
        kind = _book_field(row, "kind", line, name)
        if kind not in ("call", "put"):
            raise DataError(f"{name}:{line}: kind {kind!r} is not call or put", "write call or put")
        try:
            moneyness = Ratio.parse(f"{_book_field(row, 'moneyness_pct', line, name)}%")
            days = Decimal(_book_field(row, "expiry_days", line, name))
            quantity = int(_book_field(row, "quantity", line, name))
        except (ValueError, InvalidOperation) as exc:
            raise DataError(f"{name}:{line}: {exc}", "moneyness_pct and expiry_days are numbers, quantity an integer") from None
        if not (days.is_finite() and days > 0 and days == days.to_integral_value() and math.isfinite(float(moneyness))):
            raise DataError(f"{name}:{line}: expiry_days {days} is not a positive whole number of days", "e.g. 30")
        if moneyness <= Ratio.parse("0%") or quantity == 0:
            raise DataError(f"{name}:{line}: moneyness must be > 0 and quantity non-zero", "e.g. call,100,30,-1000")
        legs.append(OptionLeg(kind=kind, moneyness=moneyness, expiry=Duration(int(days) * 86400), quantity=quantity))
    if not legs:
        raise DataError(f"{name}: the book has no legs", "add at least one row")
    return tuple(legs)
