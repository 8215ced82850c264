"""The checks that validate one price series, in order, each finding problems and applying its repair.

Bad timestamps and missing or non-positive prices (``drop_invalid``), rows out of order (``sort``),
repeated timestamps (``drop_duplicates``), single-bar spikes that revert (``remove_spikes``), gaps above
the limit (``fill_gaps``). A check records what it found in the `Findings`; the rows it works on are
changed only as the allowed repair would change them, and a disallowed repair fails the load later.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from risk.data_files import TIME, Shape
from risk.data_problems import Findings, Problem, problem
from risk.data_text import float_text, hours_text, iso_utc


@dataclass
class Rows:
    """Working copy of the rows under validation; every stage keeps the arrays aligned."""

    lines: np.ndarray
    times: np.ndarray
    values: dict[str, np.ndarray]  # price columns checked, NaN where invalid

    def keep(self, index: np.ndarray) -> None:
        """Keep rows by boolean mask or reorder them by an index array."""
        self.lines, self.times = self.lines[index], self.times[index]
        self.values = {k: v[index] for k, v in self.values.items()}


def check_invalid(rows: Rows, raw: dict[str, pd.Series], time_ok: np.ndarray, series_column: str, found: Findings) -> None:
    """Bad timestamps and missing or non-positive prices; the rows whose time or series price is bad go (``drop_invalid``)."""
    name = found.name
    problems: list[Problem] = []
    for i in np.flatnonzero(~time_ok):
        text = raw[TIME].iloc[i]
        problems.append(problem(name, rows.lines[i], TIME, "bad_timestamp", "missing time" if pd.isna(text) else f"{str(text)!r} is not an ISO-8601 time"))
    drop = ~time_ok
    kept_invalid: list[str] = []
    for column, values in rows.values.items():
        finite = np.isfinite(values)
        bad = ~finite | (values <= 0)
        for i in np.flatnonzero(bad):
            text = raw[column].iloc[i]
            if finite[i]:
                problems.append(problem(name, rows.lines[i], column, "non_positive", f"{float_text(values[i])} is not a positive price"))
            elif pd.isna(text) or str(text).strip() == "":
                problems.append(problem(name, rows.lines[i], column, "nan", "missing value"))
            else:
                problems.append(problem(name, rows.lines[i], column, "nan", f"{str(text)!r} is not a finite number"))
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


def check_order(rows: Rows, series_column: str, found: Findings) -> None:
    """Rows out of time order (``sort``, stable) and rows repeating an earlier time (``drop_duplicates``, first kept)."""
    name, t = found.name, rows.times
    if len(t) > 1:
        latest = np.maximum.accumulate(t)
        late = np.flatnonzero(t[1:] < latest[:-1]) + 1
        problems = [problem(name, rows.lines[i], TIME, "unsorted", f"{iso_utc(t[i])} comes after {iso_utc(latest[i - 1])}") for i in late]
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
            note = "same price" if same else f"price {float_text(v[i])} vs {float_text(v[k])}"
            problems.append(problem(name, rows.lines[i], TIME, "duplicate", f"{iso_utc(t[i])} repeats line {rows.lines[k]} ({note})"))
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


def check_spikes(rows: Rows, shape: Shape, series_column: str, found: Findings) -> None:
    """Single bars far from their agreeing neighbours that revert next bar (``remove_spikes``)."""
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
        problem(found.name, rows.lines[i], column, "spike", f"{float_text(values[column][i])} vs neighbours ~{float_text(ref)} (reverts next bar)")
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


def check_gaps(rows: Rows, series_column: str, found: Findings) -> tuple[np.ndarray, np.ndarray]:
    """Gaps above the limit (``fill_gaps``): the returned times and prices carry the last price across them."""
    limit = found.options.max_gap_seconds
    t, p = rows.times, rows.values[series_column]
    if len(t) < 2:
        return t, p
    d = np.diff(t)
    gaps = np.flatnonzero(d > limit)
    problems = [
        problem(found.name, rows.lines[i + 1], TIME, "gap", f"{hours_text(d[i])} without data since {iso_utc(t[i])} (line {rows.lines[i]}); limit {hours_text(limit)}")
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
    detail = f"carried the last {series_column} forward across {len(gaps)} gap(s) (longest {hours_text(d[gaps].max())}), inserting {int(count.sum())} point(s) every {step} s"
    found.add(problems, rows.lines[gaps + 1], detail)
    index = np.argsort(np.r_[t, new_t], kind="stable")
    return np.r_[t, new_t][index], np.r_[p, new_p][index]

