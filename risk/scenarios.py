"""Scenario sets: joint relative price paths for several assets, and how random ones are seeded.

A `ScenarioSet` holds ``relative[path, step, asset]``: each asset's price divided by its price at step 0,
so every path starts at 1.0 and a consumer multiplies by today's prices. Three kinds are built:

* replays of historical crash windows (`risk.scenarios_hist.crash_windows`);
* filtered historical simulation (`risk.scenarios_hist.FilteredHistorical`);
* Monte Carlo with fat tails, jumps and depegs (`risk.scenarios_mc.MonteCarlo`).

Seeding and chunks
------------------
A random set is drawn in blocks of `block_paths` paths (default `BLOCK_PATHS`). Block ``b`` of a run
seeded with ``seed`` draws from its own generator, ``PCG64(SeedSequence(seed, spawn_key=(b,)))`` — the
same as ``SeedSequence(seed).spawn(b + 1)[b]`` — so any block can be computed alone, by any worker, in
any order, and a run's paths are bit-identical whatever the chunk size (a multiple of the block) or
the number of workers. The last block is always drawn whole and cut, so asking for fewer paths gives
a prefix of the same paths. The seed comes from the policy (``scenarios.seed``).

Memory
------
Paths are computed in float64. A set may be stored as float32 (``dtype=np.float32``): that halves the
memory (10,000 paths × 168 steps × 25 assets: 336 MB → 168 MB) at a relative rounding of 6e-8, far
below a basis point, so liquidation-price crossings are unaffected; sums over many positions should
still accumulate in float64. `iter_chunks` bounds memory by the chunk whatever the number of paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from risk.errors import RiskInputError
from risk.vol import PERSISTENCE_TOLERANCE, GarchParams

BLOCK_PATHS = 1024
_DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass(frozen=True)
class Provenance:
    """Where a scenario set came from, for the bundle's manifest and the report.

    Attributes
    ----------
    method : str
        ``crash-window``, ``filtered-historical`` or ``monte-carlo``.
    source : str
        What it was built from: the window and data range, or the inputs of the model.
    seed : int or None
        The run's seed (None for a replay).
    first_path : int
        Index of this set's first path in the whole run (non-zero for a chunk).
    block_paths : int or None
        Paths per seeded block (None for a replay).
    settings : tuple of (str, str)
        The generator's settings, as text, sorted by name.
    """

    method: str
    source: str
    seed: int | None = None
    first_path: int = 0
    block_paths: int | None = None
    settings: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict[str, object]:
        return {
            "block_paths": self.block_paths,
            "first_path": self.first_path,
            "method": self.method,
            "seed": self.seed,
            "settings": dict(sorted(self.settings)),
            "source": self.source,
        }


def settings(**values: object) -> tuple[tuple[str, str], ...]:
    """Settings as sorted (name, text) pairs; floats in shortest round-trip form."""
    return tuple(sorted((k, repr(v) if isinstance(v, float) else str(v)) for k, v in values.items()))


@dataclass(frozen=True, eq=False)
class ScenarioSet:
    """Joint relative price paths.

    Attributes
    ----------
    name : str
        The window's name or the method.
    symbols : tuple[str, ...]
        Asset of each column.
    step_seconds : int
        Length of one step in seconds.
    relative : numpy.ndarray
        (paths, steps + 1, assets), float64 or float32, read-only: price / price at step 0 (dimensionless),
        so ``relative[:, 0, :] == 1``.
    provenance : Provenance
        How it was made.
    """

    name: str
    symbols: tuple[str, ...]
    step_seconds: int
    relative: np.ndarray
    provenance: Provenance = field(repr=False)

    def __post_init__(self) -> None:
        rel = np.asarray(self.relative)
        if rel.dtype not in _DTYPES:
            raise RiskInputError(f"scenario set {self.name!r}: dtype {rel.dtype} is not float64 or float32", "convert with .astype(np.float64)")
        if rel.ndim != 3 or rel.shape[2] != len(self.symbols) or rel.shape[1] < 2 or rel.shape[0] < 1:
            raise RiskInputError(
                f"scenario set {self.name!r}: shape {rel.shape} is not (paths >= 1, steps + 1 >= 2, {len(self.symbols)} assets)",
                "build it with one of the generators in risk.scenarios_*",
            )
        if not np.all(rel[:, 0, :] == 1.0):
            raise RiskInputError(f"scenario set {self.name!r}: paths do not start at 1.0", "divide each path by its first price")
        lo, hi = float(rel.min()), float(rel.max())
        if not (lo > 0 and hi < math.inf):  # NaN fails both comparisons
            raise RiskInputError(f"scenario set {self.name!r}: relative prices must be finite and positive", "check the generator's parameters")
        if isinstance(self.step_seconds, bool) or not isinstance(self.step_seconds, (int, np.integer)) or self.step_seconds <= 0:
            raise RiskInputError(f"scenario set {self.name!r}: step {self.step_seconds!r} is not a positive number of seconds", "e.g. 3600")
        rel.setflags(write=False)  # the set takes the array over (no copy: sets can be hundreds of MB)
        object.__setattr__(self, "relative", rel)
        object.__setattr__(self, "symbols", tuple(self.symbols))
        object.__setattr__(self, "step_seconds", int(self.step_seconds))

    @property
    def paths(self) -> int:
        return int(self.relative.shape[0])

    @property
    def steps(self) -> int:
        return int(self.relative.shape[1] - 1)

    @property
    def horizon_seconds(self) -> int:
        return self.steps * self.step_seconds

    def series(self, symbol: str) -> np.ndarray:
        """One asset's relative paths, shape (paths, steps + 1)."""
        if symbol not in self.symbols:
            raise RiskInputError(f"scenario set {self.name!r} has no asset {symbol!r}; it has {', '.join(self.symbols)}", "add the asset to the scenarios")
        return self.relative[:, :, self.symbols.index(symbol)]

    def per_asset(self) -> dict[str, np.ndarray]:
        """Each asset's relative paths (paths, steps + 1), row p the same scenario for all: the shape
        `risk.lending.simulate_venue` takes for its ``paths`` mapping."""
        return {s: self.relative[:, :, j] for j, s in enumerate(self.symbols)}

    def log_returns(self) -> np.ndarray:
        """Log return of each step, shape (paths, steps, assets), float64."""
        return np.diff(np.log(self.relative.astype(np.float64)), axis=1)


def concatenate(sets: Sequence[ScenarioSet]) -> ScenarioSet:
    """Join consecutive chunks of one run back into one set (the first chunk's provenance, first_path kept)."""
    if not sets:
        raise RiskInputError("no scenario sets to join", "pass the chunks of one run")
    head = sets[0]
    expected = head.provenance.first_path
    for s in sets:
        if (s.symbols, s.step_seconds, s.steps, s.name, s.relative.dtype) != (head.symbols, head.step_seconds, head.steps, head.name, head.relative.dtype):
            raise RiskInputError(f"scenario set {s.name!r} does not match {head.name!r} (assets, step, steps or dtype)", "join chunks of one run only")
        if replace(s.provenance, first_path=0) != replace(head.provenance, first_path=0) or s.provenance.first_path != expected:
            raise RiskInputError(f"chunk starting at path {s.provenance.first_path} does not follow path {expected} of the same run", "join the chunks in order")
        expected += s.paths
    return ScenarioSet(head.name, head.symbols, head.step_seconds, np.concatenate([s.relative for s in sets]), head.provenance)


# ----------------------------------------------------------------------------------- seeded drawing


class Sampler(Protocol):
    """A random scenario generator: `draw` makes `paths` joint paths from the generator it is given."""

    symbols: tuple[str, ...]
    step_seconds: int

    def draw(self, rng: np.random.Generator, paths: int, steps: int) -> np.ndarray:
        """Relative paths, shape (paths, steps + 1, assets), float64, starting at 1.0."""
        ...

    def describe(self) -> Provenance:
        """Method, source and settings (seed and chunk fields left empty)."""
        ...


def _whole(value: object, what: str, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise RiskInputError(f"{what} {value!r} is not a whole number >= {minimum}", hint)
    return int(value)


def block_rng(seed: int, block: int) -> np.random.Generator:
    """The generator of block `block` of a run seeded with `seed` (see the module docstring)."""
    seed = _whole(seed, "seed", 0, "use the policy's scenarios.seed (a whole number >= 0)")
    block = _whole(block, "block", 0, "blocks are numbered from 0")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


def sample_block(sampler: Sampler, *, seed: int, block: int, steps: int, block_paths: int = BLOCK_PATHS) -> np.ndarray:
    """Block `block` of a run: `block_paths` paths, float64, computable alone (e.g. on another worker)."""
    steps = _whole(steps, "steps", 1, "use a horizon of at least one step")
    block_paths = _whole(block_paths, "block_paths", 1, f"e.g. {BLOCK_PATHS}")
    rel = sampler.draw(block_rng(seed, block), block_paths, steps)
    if rel.shape != (block_paths, steps + 1, len(sampler.symbols)):
        raise RiskInputError(f"{type(sampler).__name__}.draw returned shape {rel.shape}", "a sampler returns (paths, steps + 1, assets)")
    return rel


def iter_chunks(
    sampler: Sampler, *, seed: int, paths: int, steps: int, chunk_paths: int, block_paths: int = BLOCK_PATHS, dtype: type = np.float64
) -> Iterator[ScenarioSet]:
    """Yield the run's paths in chunks of `chunk_paths` (the last may be shorter).

    Parameters
    ----------
    sampler : Sampler
        The generator (e.g. `MonteCarlo`, `FilteredHistorical`).
    seed : int
        The run's seed (policy ``scenarios.seed``).
    paths, steps : int
        Paths in the whole run; steps per path (of ``sampler.step_seconds`` each).
    chunk_paths : int
        Paths per chunk, a multiple of `block_paths`; memory is bounded by it.
    block_paths : int
        Paths per seeded block; part of the run's identity (changing it changes the paths).
    dtype : numpy float type
        float64 (default) or float32 storage; paths are computed in float64 either way.
    """
    # validated here, not on the first next(): a bad argument fails where the run is set up
    paths = _whole(paths, "paths", 1, "use at least one path")
    steps = _whole(steps, "steps", 1, "use a horizon of at least one step")
    seed = _whole(seed, "seed", 0, "use the policy's scenarios.seed (a whole number >= 0)")
    block_paths = _whole(block_paths, "block_paths", 1, f"e.g. {BLOCK_PATHS}")
    chunk_paths = _whole(chunk_paths, "chunk_paths", 1, f"a multiple of block_paths ({block_paths})")
    if chunk_paths % block_paths:
        raise RiskInputError(f"chunk_paths {chunk_paths} is not a multiple of block_paths {block_paths}", "chunks are whole blocks so that chunking never changes the paths")
    if np.dtype(dtype) not in _DTYPES:
        raise RiskInputError(f"dtype {np.dtype(dtype)} is not float64 or float32", "use np.float64 or np.float32")
    return _chunks(sampler, seed, paths, steps, chunk_paths, block_paths, dtype)


def _chunks(sampler: Sampler, seed: int, paths: int, steps: int, chunk_paths: int, block_paths: int, dtype: type) -> Iterator[ScenarioSet]:
    base = replace(sampler.describe(), seed=seed, block_paths=block_paths)
    per_chunk = chunk_paths // block_paths
    n_blocks = math.ceil(paths / block_paths)
    for first_block in range(0, n_blocks, per_chunk):
        blocks = range(first_block, min(first_block + per_chunk, n_blocks))
        first = first_block * block_paths
        count = min(paths, (blocks[-1] + 1) * block_paths) - first
        out = np.empty((count, steps + 1, len(sampler.symbols)), dtype=dtype)
        for b in blocks:
            lo = (b - first_block) * block_paths
            rel = sample_block(sampler, seed=seed, block=b, steps=steps, block_paths=block_paths)
            out[lo : lo + block_paths] = rel[: count - lo]
        yield ScenarioSet(base.method, sampler.symbols, sampler.step_seconds, out, replace(base, first_path=first))


def simulate(sampler: Sampler, *, seed: int, paths: int, steps: int, block_paths: int = BLOCK_PATHS, dtype: type = np.float64) -> ScenarioSet:
    """All `paths` paths of a run in one set; the same paths `iter_chunks` yields, joined."""
    paths = _whole(paths, "paths", 1, "use at least one path")
    block_paths = _whole(block_paths, "block_paths", 1, f"e.g. {BLOCK_PATHS}")
    whole = math.ceil(paths / block_paths) * block_paths
    return next(iter_chunks(sampler, seed=seed, paths=paths, steps=steps, chunk_paths=whole, block_paths=block_paths, dtype=dtype))


# --------------------------------------------------------------------------------- shared kernels


def to_relative(log_returns: np.ndarray) -> np.ndarray:
    """(paths, steps, assets) log returns → (paths, steps + 1, assets) relative prices starting at 1.0."""
    p, s, n = log_returns.shape
    out = np.empty((p, s + 1, n), dtype=np.float64)
    out[:, 0, :] = 1.0
    body = out[:, 1:, :]
    np.cumsum(log_returns, axis=1, out=body)
    # exp stays finite and positive for |log| < 700; min/max also catch NaN (comparisons fail)
    lo, hi = float(body.min()), float(body.max())
    if not (-700.0 < lo and hi < 700.0):
        raise RiskInputError(f"simulated log prices reach {lo:.3g}..{hi:.3g}: the prices overflow or hit zero", "lower the volatility, jump sizes or horizon")
    np.exp(body, out=body)
    return out


def garch_returns(shocks: np.ndarray, sigma0: np.ndarray, params: Sequence[GarchParams]) -> np.ndarray:
    """Returns whose variance evolves by GARCH(1,1) from today's, driven by unit-variance `shocks`.

    ``r_t = sigma_t z_t``, ``sigma2_{t+1} = omega + alpha r_t**2 + beta sigma2_t`` per asset, with
    ``sigma_0 = sigma0``. The recursion is a loop over steps, vectorised over paths × assets.

    Parameters
    ----------
    shocks : numpy.ndarray
        (paths, steps, assets) standardised shocks z.
    sigma0 : numpy.ndarray
        (assets,) volatility per step of the first step (decimal log return).
    params : sequence of GarchParams
        One per asset.
    """
    omega = np.array([p.omega for p in params])
    alpha = np.array([p.alpha for p in params])
    beta = np.array([p.beta for p in params])
    # step-major copy: each step of the recursion then reads and writes contiguous memory
    z = np.ascontiguousarray(np.moveaxis(shocks, 1, 0))
    out = np.empty_like(z, dtype=np.float64)
    var = np.broadcast_to(np.asarray(sigma0, dtype=np.float64) ** 2, z.shape[1:]).copy()
    sd, sq = np.empty_like(var), np.empty_like(var)
    for t in range(z.shape[0]):
        np.sqrt(var, out=sd)
        np.multiply(sd, z[t], out=out[t])
        np.square(out[t], out=sq)
        sq *= alpha
        var *= beta
        var += sq
        var += omega
    return np.moveaxis(out, 0, 1)


def check_garch(params: Sequence[GarchParams] | None, n: int, where: str) -> tuple[GarchParams, ...] | None:
    """Validate optional per-asset GARCH parameters for evolving variance."""
    if params is None:
        return None
    params = tuple(params)
    if len(params) != n or not all(isinstance(p, GarchParams) for p in params):
        raise RiskInputError(f"{where}: garch needs one GarchParams per asset ({n}), got {len(params)}", "pass GarchT().fit(returns).params")
    for p in params:
        if not (p.omega >= 0 and p.alpha >= 0 and p.beta >= 0 and p.persistence <= 1.0 + PERSISTENCE_TOLERANCE):
            raise RiskInputError(f"{where}: GARCH parameters {p} are not a valid (non-explosive) GARCH(1,1)", "use a fitted GarchT model's params")
    return params
