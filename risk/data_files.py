"""Reading a price file: CSV (optionally gzipped) or Parquet, its shape told apart by its columns.

* wide — ``timestamp_utc`` plus price columns: OHLCV (``open, high, low, close[, volume, ...]``, one
  market per file) or any single price column (e.g. the canonical `MarketData` CSV, one column a symbol);
* long — ``timestamp_utc, symbol, price_usd``: many symbols, one row per observation.

Timestamps are ISO-8601 text; naive ones are UTC; sub-second parts are floored to the second. Nothing
here judges the values: `risk.data` validates a series of the table read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from risk.errors import DataError

Shape = Literal["ohlcv", "long", "wide"]

TIME = "timestamp_utc"
OHLC = ("open", "high", "low", "close")
LONG = (TIME, "symbol", "price_usd")


@dataclass(frozen=True, eq=False)
class PriceTable:
    """A price file as read, before validation: its shape, its rows and the row number of the first record."""

    name: str
    shape: Shape
    frame: pd.DataFrame
    first_row: int


def expected_shapes() -> str:
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
        raise DataError(f"{name}: unknown columns {','.join(frame.columns) or '(none)'}", f"expected {expected_shapes()}")
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


def parse_times(raw: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds (floored) and a validity mask; naive times are UTC."""
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return np.zeros(len(raw), np.int64), np.zeros(len(raw), bool)
    parsed = pd.to_datetime(raw, format="ISO8601", utc=True, errors="coerce")
    ok = parsed.notna().to_numpy()
    seconds = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return np.where(ok, seconds, 0), ok

