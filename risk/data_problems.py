"""What validating a price series can find, and what it may repair: the options, findings and repairs.

Every finding is a `Problem` at a file, line and column. A problem whose repair the caller allowed
(`DataOptions.repairs`) is fixed and the fix is recorded as a `Repair` for the manifest; the others are
left for `risk.data.load_series` to raise. Nothing is repaired silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from risk.errors import DataError

RepairKind = Literal["sort", "drop_duplicates", "drop_invalid", "remove_spikes", "fill_gaps"]
REPAIR_KINDS: tuple[str, ...] = get_args(RepairKind)
FIXED_BY: dict[str, str] = {
    "bad_timestamp": "drop_invalid",
    "nan": "drop_invalid",
    "non_positive": "drop_invalid",
    "unsorted": "sort",
    "duplicate": "drop_duplicates",
    "spike": "remove_spikes",
    "gap": "fill_gaps",
}
SHOWN_ROWS = 20  # rows a Repair lists; its count has them all


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

@dataclass(frozen=True)
class Inspection:
    """Everything validation found: all problems, those left unrepaired, the repairs made, the result rows."""

    problems: tuple[Problem, ...]
    unrepaired: tuple[Problem, ...]
    repairs: tuple[Repair, ...]
    times: np.ndarray = field(repr=False)
    prices: np.ndarray = field(repr=False)


class Findings:
    """What the checks of one series found so far: every problem, those left unrepaired, the repairs made."""

    def __init__(self, name: str, options: DataOptions) -> None:
        self.name, self.options = name, options
        self.problems: list[Problem] = []
        self.unrepaired: list[Problem] = []
        self.repairs: list[Repair] = []

    def add(self, problems: list[Problem], repair_rows: np.ndarray, detail: str) -> None:
        """Record problems of one repair kind and, if that repair is allowed, the repair made."""
        if not problems:
            return
        kind = FIXED_BY[problems[0].kind]
        self.problems += problems
        if kind in self.options.repairs:
            rows = np.unique(repair_rows)
            self.repairs.append(Repair(self.name, kind, tuple(int(r) for r in rows[:SHOWN_ROWS]), len(rows), detail))  # type: ignore[arg-type]
        else:
            self.unrepaired += problems


def problem(name: str, row: int | np.integer, column: str, kind: str, detail: str) -> Problem:
    """A `Problem` from numpy row numbers."""
    return Problem(name, int(row), column, kind, detail)

