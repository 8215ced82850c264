"""Tasks and a small lending run shared by the executor tests (unit: local processes; e2e: Ray).

Task functions live here, at module level, because an executor ships them to other processes by
reference (the Ray test registers this module to be pickled by value: Ray's workers do not have
``tests/`` on their path).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from risk.book import Book, HfLognormal
from risk.lending import DepthCurve, LendingMarket
from risk.parallel import task_generator
from risk.parallel_lending import ChunkedScenarios, ChunkLosses, ChunkTask, MarketCase, run_chunk
from risk.scenarios_mc import MonteCarlo

SYMBOLS = ("WETH", "WBTC", "LINK")
SEED = 20240607


def seeded_draw(keys: tuple[str | int, ...]) -> bytes:
    """What a task draws from its own keys (no worker identity can enter)."""
    return task_generator(SEED, *keys).standard_normal(256).tobytes()


def run_chunk_dying_once(job: tuple[str | None, ChunkTask]) -> ChunkLosses:
    """`run_chunk`, except that the first attempt of a job with a marker path kills its worker.

    The marker is created atomically (O_EXCL) before dying, so exactly one attempt dies whichever
    worker runs it; the retry finds the marker and computes.
    """
    marker, task = job
    if marker is not None:
        try:
            fd = os.open(Path(marker), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.close(fd)
            os._exit(17)  # no cleanup, no exception: what an OOM kill or a segfault looks like to the parent
    return run_chunk(task)


def always_die(_: object) -> None:
    os._exit(23)


def fail_with_policy_error(index: int) -> int:
    from risk.errors import RiskInputError

    if index == 2:
        raise RiskInputError(f"task {index}: bad input", "the hint travels too")
    return index


def fail_late_and_early(index: int) -> int:
    """Task 1 fails after a pause, task 3 at once: an executor must report task 1's error (task order, not time)."""
    from risk.errors import RiskInputError

    if index == 1:
        time.sleep(1.0)
        raise RiskInputError("task 1: the first in task order", "")
    if index == 3:
        raise RiskInputError("task 3: the first in time", "")
    return index


def lending_run(paths: int = 3000, steps: int = 36, chunk_paths: int = 1024) -> tuple[list[MarketCase], ChunkedScenarios]:
    """Three markets on joint fat-tailed paths with crash jumps and thin books: some paths end in bad debt."""
    n = len(SYMBOLS)
    corr = np.full((n, n), 0.6)
    np.fill_diagonal(corr, 1.0)
    sampler = MonteCarlo(SYMBOLS, 3600, np.array([0.012, 0.01, 0.02]), corr, nu=4.0, jump_intensity=0.004,
                         jump_mean=-0.08, jump_std=0.05, common_jumps=True)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(SEED)))
    cases = []
    for i, symbol in enumerate(SYMBOLS):
        market = LendingMarket(symbol, 100.0 * (i + 1), 0.8, 0.83, 0.05, 0.1, gas_usd=10.0, depth=DepthCurve(2e6, 0.02))
        book = Book.generate(rng, 400, 3e7, market=symbol, price_usd=market.price_usd, liquidation_threshold=0.83, ltv=0.8,
                             hf=HfLognormal(1.15, 0.2), size_sigma=1.5, whales=4, whale_share=0.3)
        cases.append(MarketCase(symbol, market, book))
    return cases, ChunkedScenarios(sampler, SEED, paths, steps, chunk_paths=chunk_paths)
