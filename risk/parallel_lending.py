"""Lending losses over many paths, chunk by chunk, on any `risk.parallel.TaskMap`.

A run is split into tasks ``(cases, scenario source, part, chunk)``: a *case* is one market at one
parameter set with its book (a market of a venue, a parameter candidate, a venue of a steward firm);
a *source* says how the paths are made. Each task draws its chunk of paths **inside** the task from
the chunk's own seeds, simulates every case on it and returns per-path outcomes only. So nothing
large crosses a process boundary (a task is its book and the generator's settings; a result is five
numbers per path and case), and a worker's memory is bounded by one chunk of paths whatever the
number of paths.

Identical results, bit for bit
------------------------------
Block ``b`` of a seeded source draws from ``SeedSequence(seed, spawn_key=key_words(*keys) + (b,))``
(`risk.parallel.task_seed` with the block appended): the same numbers in any process, in any order.
With no keys this is `risk.scenarios.block_rng`, so the chunks are exactly the paths
`risk.scenarios.simulate` draws with the same seed. Each path's liquidations depend on that path
only, and the per-path arrays are put back together by (part, chunk), so the losses are the same
whatever the executor, the number of workers, the grouping of cases into tasks, or the order the
tasks finish in. The chunk size does not change the paths either (chunks are whole blocks); the
tests also check that it leaves the losses unchanged.

What it costs
-------------
Paths are drawn once per task, for every case of the task: put the cases that share a scenario (all
markets of a venue, all candidates of a grid) in one task and parallelise over chunks. A joint
sampler draws every asset even when a case uses one column; that is the price of joint scenarios.
The outcomes kept in the parent grow with paths × cases (five float64 per path and case: 100,000
paths × 25 markets = 100 MB), the paths themselves never do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from risk.book import Book
from risk.errors import RiskInputError
from risk.lending import LendingMarket, LossDistribution, simulate_market
from risk.parallel import TaskMap, key_words, serial_map
from risk.scenarios import BLOCK_PATHS, Provenance, Sampler, ScenarioSet

__all__ = [
    "ChunkLosses",
    "ChunkTask",
    "ChunkedScenarios",
    "FixedScenarios",
    "MarketCase",
    "PathSource",
    "column_paths",
    "plan_tasks",
    "run_chunk",
    "simulate_markets_chunked",
]

DEFAULT_CHUNK_PATHS = 8 * BLOCK_PATHS


class PathSource(Protocol):
    """Joint relative paths (paths, steps + 1, assets), made one chunk at a time."""

    @property
    def name(self) -> str: ...

    @property
    def provenance(self) -> Provenance: ...

    @property
    def symbols(self) -> tuple[str, ...]: ...

    @property
    def paths(self) -> int: ...

    @property
    def n_chunks(self) -> int: ...

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        """(first path, number of paths) of chunk `chunk`."""
        ...

    def chunk(self, chunk: int) -> np.ndarray:
        """The chunk's relative paths, float64 (count, steps + 1, assets), starting at 1.0."""
        ...


def _whole(value: object, what: str, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise RiskInputError(f"{what} {value!r} is not a whole number >= {minimum}", hint)
    return int(value)


@dataclass(frozen=True, eq=False)
class ChunkedScenarios:
    """A seeded random scenario run (`risk.scenarios.Sampler`), drawn chunk by chunk where it is used.

    Attributes
    ----------
    sampler : Sampler
        The generator (`MonteCarlo`, `FilteredHistorical`); picklable, it travels with each task.
    seed : int
        The run's root seed (e.g. the policy's ``scenarios.seed``).
    paths, steps : int
        Paths of the whole run; steps per path (of ``sampler.step_seconds``).
    chunk_paths : int
        Paths per chunk, a multiple of `block_paths`: the unit of work and of memory.
    keys : tuple of str or int
        Stable keys of this run's stream under `seed` (e.g. the venue, or a market for per-market
        scenarios); empty: the stream `risk.scenarios.simulate` draws with `seed`.
    block_paths : int
        Paths per seeded block; part of the run's identity.
    """

    sampler: Sampler
    seed: int
    paths: int
    steps: int
    chunk_paths: int = DEFAULT_CHUNK_PATHS
    keys: tuple[str | int, ...] = ()
    block_paths: int = BLOCK_PATHS
    _words: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name, minimum, hint in (("seed", 0, "use the policy's scenarios.seed"), ("paths", 1, "use at least one path"),
                                    ("steps", 1, "use a horizon of at least one step"), ("block_paths", 1, f"e.g. {BLOCK_PATHS}"),
                                    ("chunk_paths", 1, f"a multiple of block_paths, e.g. {DEFAULT_CHUNK_PATHS}")):
            object.__setattr__(self, name, _whole(getattr(self, name), f"chunked scenarios: {name}", minimum, hint))
        if self.chunk_paths % self.block_paths:
            raise RiskInputError(f"chunked scenarios: chunk_paths {self.chunk_paths} is not a multiple of block_paths {self.block_paths}",
                                 "chunks are whole blocks so that chunking never changes the paths")
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "_words", key_words(*self.keys))

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.sampler.symbols)

    @property
    def n_chunks(self) -> int:
        return math.ceil(self.paths / self.chunk_paths)

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        chunk = _whole(chunk, "chunk", 0, "chunks are numbered from 0")
        if chunk >= self.n_chunks:
            raise RiskInputError(f"chunk {chunk} of a run with {self.n_chunks} chunks", f"use 0..{self.n_chunks - 1}")
        first = chunk * self.chunk_paths
        return first, min(self.paths, first + self.chunk_paths) - first

    @property
    def name(self) -> str:
        return self.sampler.describe().method

    @property
    def provenance(self) -> Provenance:
        """As `risk.scenarios.simulate` records it for the same run (plus the keys, when there are any)."""
        base = replace(self.sampler.describe(), seed=self.seed, block_paths=self.block_paths)
        if self.keys:
            base = replace(base, settings=tuple(sorted((*base.settings, ("seed_keys", repr(self.keys))))))
        return base

    def block_generator(self, block: int) -> np.random.Generator:
        """Generator of block `block`: ``SeedSequence(seed, spawn_key=key_words(*keys) + (block,))``."""
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(self.seed, spawn_key=(*self._words, int(block)))))

    def chunk(self, chunk: int) -> np.ndarray:
        first, count = self.chunk_range(chunk)
        n = len(self.symbols)
        out = np.empty((count, self.steps + 1, n), dtype=np.float64)
        first_block = first // self.block_paths
        for b in range(first_block, math.ceil((first + count) / self.block_paths)):
            lo = (b - first_block) * self.block_paths
            rel = self.sampler.draw(self.block_generator(b), self.block_paths, self.steps)
            if rel.shape != (self.block_paths, self.steps + 1, n):
                raise RiskInputError(f"{type(self.sampler).__name__}.draw returned shape {rel.shape}", "a sampler returns (paths, steps + 1, assets)")
            out[lo : lo + self.block_paths] = rel[: count - lo]  # the last block is drawn whole and cut, as risk.scenarios does
        return out


@dataclass(frozen=True, eq=False)
class FixedScenarios:
    """Paths already made (a crash-window replay: a few hundred paths), as one chunk."""

    scenarios: ScenarioSet

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.scenarios.symbols

    @property
    def name(self) -> str:
        return self.scenarios.name

    @property
    def provenance(self) -> Provenance:
        return self.scenarios.provenance

    @property
    def paths(self) -> int:
        return self.scenarios.paths

    @property
    def n_chunks(self) -> int:
        return 1

    def chunk_range(self, chunk: int) -> tuple[int, int]:
        if chunk != 0:
            raise RiskInputError(f"chunk {chunk!r} of fixed scenarios {self.scenarios.name!r}", "fixed scenarios are one chunk: 0")
        return 0, self.scenarios.paths

    def chunk(self, chunk: int) -> np.ndarray:
        self.chunk_range(chunk)
        return np.asarray(self.scenarios.relative, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class MarketCase:
    """One market at one parameter set: the rules, its book and the scenario column it lives on.

    Attributes
    ----------
    key : str
        What the losses are returned under (e.g. ``"WETH"``, or ``"WETH lt=8250"`` for a candidate).
    market : LendingMarket
        Rules and depth (floats, see `risk.lending_params`).
    book : Book
        Borrower book holding `market.name`; give a single-market book (``book.for_market``): it is
        pickled into every task.
    symbol : str, optional
        Scenario column of the market's price; default ``market.name``.
    cascade : bool
        Keepers' sales move the price (`risk.lending.run_ledger`).
    """

    key: str
    market: LendingMarket
    book: Book
    symbol: str | None = None
    cascade: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise RiskInputError(f"market case key {self.key!r}", "name each case, e.g. by its market symbol")
        if not isinstance(self.market, LendingMarket) or not isinstance(self.book, Book):
            raise RiskInputError(f"market case {self.key!r}: needs a LendingMarket and a Book", "build them with risk.lending_params and risk.book")
        if self.market.name not in self.book.markets:
            raise RiskInputError(f"market case {self.key!r}: the book has no market {self.market.name!r}", "pass book.for_market(name)")

    @property
    def column(self) -> str:
        return self.market.name if self.symbol is None else self.symbol


@dataclass(frozen=True, eq=False)
class ChunkTask:
    """One unit of work: every case of `cases` on chunk `chunk` of `source` (part `part` of the run)."""

    cases: tuple[MarketCase, ...]
    source: PathSource
    part: int
    chunk: int


@dataclass(frozen=True, eq=False)
class ChunkLosses:
    """Per-path outcomes of a task's cases on its chunk: key → (total debt, bad debt, deficit, liquidated, fee, repaid)."""

    part: int
    chunk: int
    first_path: int
    paths: int
    losses: dict[str, tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def run_chunk(task: ChunkTask) -> ChunkLosses:
    """Draw the task's chunk and simulate every case on it (module level: any executor can run it)."""
    first, count = task.source.chunk_range(task.chunk)
    rel = task.source.chunk(task.chunk)
    symbols = tuple(task.source.symbols)
    out: dict[str, tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for case in task.cases:
        if case.column not in symbols:
            raise RiskInputError(f"market case {case.key!r}: the scenarios have no asset {case.column!r}", f"they have {', '.join(symbols)}")
        paths = np.ascontiguousarray(rel[:, :, symbols.index(case.column)])
        loss = simulate_market(case.book, case.market, paths, cascade=case.cascade)
        out[case.key] = (loss.total_debt_usd, loss.bad_debt_usd, loss.deficit_usd, loss.liquidated_usd, loss.protocol_fee_usd, loss.repaid_usd)
    return ChunkLosses(task.part, task.chunk, first, count, out)


def plan_tasks(cases: Sequence[MarketCase], sources: Sequence[PathSource], *, cases_per_task: int | None = None) -> list[ChunkTask]:
    """Tasks for every case on every chunk of every source, in (part, chunk, case group) order.

    Parameters
    ----------
    cases : sequence of MarketCase
        Distinct keys.
    sources : sequence of PathSource
        The run's parts, pooled in this order (e.g. Monte Carlo, filtered historical, replays).
    cases_per_task : int, optional
        Split the cases into groups of this size, one task per group and chunk (more, smaller tasks;
        each draws its chunk again). Default: all cases in one task per chunk.
    """
    keys = [c.key for c in cases]
    if not cases or len(set(keys)) != len(keys):
        raise RiskInputError(f"market cases {keys}: need at least one, with distinct keys", "key each case once")
    if not sources:
        raise RiskInputError("no scenario source", "give at least one ChunkedScenarios or FixedScenarios")
    size = len(cases) if cases_per_task is None else _whole(cases_per_task, "cases_per_task", 1, "e.g. 1 for one case per task")
    groups = [tuple(cases[i : i + size]) for i in range(0, len(cases), size)]
    return [ChunkTask(group, source, part, chunk) for part, source in enumerate(sources) for chunk in range(source.n_chunks) for group in groups]


def simulate_markets_chunked(tasks: Sequence[ChunkTask], *, map: TaskMap = serial_map) -> dict[str, LossDistribution]:
    """Run the tasks on `map` and put each case's per-path losses back together.

    Parameters
    ----------
    tasks : sequence of ChunkTask
        From `plan_tasks` (or built by hand): every case must cover every chunk of every part once.
    map : TaskMap
        Where the tasks run: `risk.parallel.serial_map`, or an executor's ``map``.

    Returns
    -------
    dict of str to LossDistribution
        Per case key, in the order of first appearance: the per-path outcomes of all parts and chunks
        joined in (part, chunk) order — path ``i`` is path ``i`` of the pooled run — USD.
    """
    tasks = list(tasks)
    if not tasks:
        raise RiskInputError("no tasks to run", "build them with plan_tasks(cases, sources)")
    expected = {}
    cases: dict[str, MarketCase] = {}
    for t in tasks:
        expected.setdefault(t.part, t.source.n_chunks)
        for c in t.cases:
            cases.setdefault(c.key, c)
    results = map(run_chunk, tasks)
    if len(results) != len(tasks):
        raise RiskInputError(f"the executor returned {len(results)} results for {len(tasks)} tasks", "a TaskMap returns one result per task")
    pieces: dict[str, dict[tuple[int, int], tuple]] = {k: {} for k in cases}
    for r in results:
        for key, value in r.losses.items():
            if (r.part, r.chunk) in pieces[key]:
                raise RiskInputError(f"case {key!r}: chunk {r.chunk} of part {r.part} was simulated twice", "give each case each chunk once")
            pieces[key][(r.part, r.chunk)] = value
    want = sorted((p, c) for p, n in expected.items() for c in range(n))
    out: dict[str, LossDistribution] = {}
    for key, case in cases.items():
        got = pieces[key]
        if sorted(got) != want:
            missing = sorted(set(want) - set(got))
            raise RiskInputError(f"case {key!r}: (part, chunk) {missing[:5]} not simulated", "plan the tasks with plan_tasks")
        parts = [got[pc] for pc in want]
        columns = [np.concatenate([p[i] for p in parts]) for i in range(1, 6)]
        out[key] = LossDistribution(case.market.name, parts[0][0], *columns)
    return out


def column_paths(sources: Sequence[PathSource], symbol: str) -> np.ndarray:
    """One asset's relative paths of the whole pooled run, (paths, steps + 1), built chunk by chunk.

    Memory is the column plus one chunk of the joint paths, not the joint paths of the run: what a
    task needs when it must keep its market's paths (an optimiser that revisits them adaptively).
    """
    columns = []
    for source in sources:
        if symbol not in source.symbols:
            raise RiskInputError(f"the scenarios have no asset {symbol!r}", f"they have {', '.join(source.symbols)}")
        j = tuple(source.symbols).index(symbol)
        columns += [np.ascontiguousarray(source.chunk(i)[:, :, j]) for i in range(source.n_chunks)]
    return np.concatenate(columns) if len(columns) > 1 else columns[0]
