"""Data structures of the liquidation engine: subsets of the sorted book, and cohorts in an arena.

`BookSubsets` holds position subsets (boolean masks over the book sorted by collateral per debt),
deduplicated by content, with prefix sums so that the count, Σdebt and Σcollateral of any subset over
any index range cost two lookups. Subsets are refined by keeper profitability per generation.

`CohortArena` holds every path's live cohorts in one set of flat arrays, one contiguous segment per
path, so that the cohorts of the paths a step touches are gathered without scanning the others.
Both are internal to `risk.lending_engine`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from risk.lending_params import LendingMarket


class BookSubsets:
    """Subsets of the sorted book, deduplicated by content, each with prefix sums and next-member index."""

    def __init__(self, w: np.ndarray, c: np.ndarray, d: np.ndarray, market: LendingMarket, gammas: np.ndarray) -> None:
        self.n = w.size
        self._c, self._d, self._market, self._gammas = c, d, market, gammas
        self._ids: dict[bytes, int] = {}
        self._masks: list[np.ndarray] = []
        self._derived: dict[tuple[int, str, int], int] = {}
        self._lookup: dict[str, np.ndarray] = {}
        self._full: dict[int, np.ndarray] = {}
        self._share: dict[int, np.ndarray] = {}
        cap = 8
        self.count = np.zeros((cap, self.n + 1), dtype=np.int64)
        self.sum_d = np.zeros((cap, self.n + 1))
        self.sum_c = np.zeros((cap, self.n + 1))
        self.next = np.zeros((cap, self.n + 1), dtype=np.int64)
        self.empty = self.add(np.zeros(self.n, dtype=bool))
        self.all = self.add(np.ones(self.n, dtype=bool))

    def add(self, mask: np.ndarray) -> int:
        key = np.packbits(mask).tobytes()
        found = self._ids.get(key)
        if found is not None:
            return found
        k = len(self._masks)
        if k == self.count.shape[0]:
            self.count, self.sum_d, self.sum_c, self.next = (
                np.concatenate([a, np.zeros_like(a)]) for a in (self.count, self.sum_d, self.sum_c, self.next)
            )
        self.count[k, 1:] = np.cumsum(mask)
        self.sum_d[k, 1:] = np.cumsum(np.where(mask, self._d, 0.0))
        self.sum_c[k, 1:] = np.cumsum(np.where(mask, self._c, 0.0))
        members = np.append(np.flatnonzero(mask), self.n)
        self.next[k] = members[np.searchsorted(members[:-1], np.arange(self.n + 1), side="left")]
        self._masks.append(mask)
        self._ids[key] = k
        return k

    def _full_ok(self, gen: int) -> np.ndarray:
        """Keeper would execute the full call at this generation (repay γ·d)."""
        if gen not in self._full:
            self._full[gen] = self._market.is_profitable(self._gammas[gen] * self._d)
        return self._full[gen]

    def _share_ok(self, gen: int) -> np.ndarray:
        """Keeper would execute the close-factor call at this generation (repay cf·γ·d); never for whole positions."""
        if gen not in self._share:
            if not self._market.partial_calls:
                self._share[gen] = np.zeros(self.n, dtype=bool)
            else:
                self._share[gen] = self._market.is_profitable(self._market.close_factor * (self._gammas[gen] * self._d))
        return self._share[gen]

    def derive(self, mask_id: int, op: str, gen: int) -> int:
        key = (mask_id, op, gen)
        found = self._derived.get(key)
        if found is None:
            m = self._masks[mask_id]
            full, share = self._full_ok(gen), self._share_ok(gen)
            sub = {
                "full": m & full,
                "not_full": m & ~full,
                "below_1": m & share,
                "below_full": m & ~share & full,
                "stuck": m & ~share & ~full,
            }[op]
            found = self._derived[key] = self.add(sub)
        return found

    def at(self, mask: np.ndarray, point: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Member count, Σd and Σc of each subset over sorted indices [0, point)."""
        flat = mask * (self.n + 1) + point
        return self.count.ravel().take(flat), self.sum_d.ravel().take(flat), self.sum_c.ravel().take(flat)

    def derive_many(self, mask: np.ndarray, op: str, gen: np.ndarray) -> np.ndarray:
        """`derive` for arrays of (subset, generation), through a lazily filled lookup table per op."""
        table = self._lookup.get(op)
        rows = len(self._masks)
        if table is None or table.shape[0] < rows:
            grown = np.full((max(2 * rows, 16), self._gammas.size), -1, dtype=np.int64)
            if table is not None:
                grown[: table.shape[0]] = table
            table = self._lookup[op] = grown
        found = table[mask, gen]
        missing = found < 0
        if missing.any():
            for k, g in set(zip(mask[missing].tolist(), gen[missing].tolist(), strict=True)):
                self._lookup[op][k, g] = self.derive(k, op, g)
            table = self._lookup[op]
            found = table[mask, gen]
        return found


class CohortArena:
    """Live cohorts in one arena; each path owns a contiguous segment of it.

    A path whose segment overflows moves its live cohorts to a segment twice the size at the end of
    the arena, so a crash path with hundreds of cohorts costs nothing to the quiet paths (a dense
    paths × slots table would size every row for the worst path).
    """

    FIELDS = ("lo", "hi", "mask", "gen", "beta", "trig", "kind")
    _DTYPES: ClassVar[dict[str, type]] = {"beta": np.float64, "trig": np.float64, "kind": np.int8}

    def __init__(self, n_paths: int, per_path: int) -> None:
        size = n_paths * per_path
        for name in self.FIELDS:  # twice the initial segments: room for relocations before any growth
            setattr(self, name, np.zeros(2 * size, dtype=self._DTYPES.get(name, np.int64)))
        self.trig[:] = -np.inf
        self.start = np.arange(n_paths, dtype=np.int64) * per_path
        self.cap = np.full(n_paths, per_path, dtype=np.int64)
        self.used = np.zeros(n_paths, dtype=np.int64)
        self.end = size
        self.garbage = 0

    def segments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Arena indices of the used slots of `rows`, and the row each belongs to."""
        counts = self.used[rows]
        owner = np.repeat(rows, counts)
        first = np.cumsum(counts) - counts
        idx = np.arange(owner.size) - np.repeat(first, counts) + np.repeat(self.start[rows], counts)
        return idx, owner

    def _reserve(self, extra: int) -> None:
        size = self.kind.size
        if self.end + extra <= size:
            return
        if self.garbage > size // 2:
            self._collect()
            if self.end + extra <= size:
                return
        grow = max(size, self.end + extra - size)
        for name in self.FIELDS:
            a = getattr(self, name)
            pad = np.full(grow, -np.inf) if name == "trig" else np.zeros(grow, dtype=a.dtype)
            setattr(self, name, np.concatenate([a, pad]))

    def _collect(self) -> None:
        """Pack every path's segment back to back, dropping the space left by relocations."""
        rows = np.arange(self.used.size)
        idx, _ = self.segments(rows)
        start = np.cumsum(self.cap) - self.cap
        dest = idx - np.repeat(self.start - start, self.used)
        for name in self.FIELDS:
            a = getattr(self, name)
            a[dest] = a[idx]  # the gather is materialised before the scatter, so overlap is harmless
        self.start = start
        self.end = int(self.cap.sum())
        self.garbage = 0

    def _relocate(self, rows: np.ndarray, extra: np.ndarray) -> None:
        """Give `rows` fresh segments with room for `extra` more cohorts, keeping only live ones."""
        # reserve first: reserving may pack the arena, which would move the slots gathered below
        self._reserve(int(np.maximum(8, 2 * (self.used[rows] + extra)).sum()))
        idx, owner = self.segments(rows)
        keep = self.kind[idx] != 0
        idx, owner = idx[keep], owner[keep]
        live = np.bincount(np.searchsorted(rows, owner), minlength=rows.size)
        cap = np.maximum(8, 2 * (live + extra))
        start = self.end + np.cumsum(cap) - cap
        rank = np.arange(idx.size) - np.repeat(np.cumsum(live) - live, live)
        dest = np.repeat(start, live) + rank
        for name in self.FIELDS:
            a = getattr(self, name)
            a[dest] = a[idx]
        self.garbage += int(self.cap[rows].sum())
        self.end += int(cap.sum())
        self.start[rows], self.cap[rows], self.used[rows] = start, cap, live

    def append(self, path: np.ndarray, **values: np.ndarray) -> None:
        if path.size == 0:
            return
        order = np.argsort(path, kind="stable")
        path = path[order]
        first = np.flatnonzero(np.concatenate([[True], path[1:] != path[:-1]]))
        rows = path[first]
        count = np.diff(np.append(first, path.size))
        full = self.used[rows] + count > self.cap[rows]
        if full.any():
            self._relocate(rows[full], count[full])
        rank = np.arange(path.size) - np.repeat(first, count)
        dest = self.start[path] + self.used[path] + rank
        for name, value in values.items():
            getattr(self, name)[dest] = value[order]
        self.used[rows] += count
