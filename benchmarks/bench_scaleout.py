"""Scale-out: a 25-market, 100,000-path epoch on 1 and 2 local workers, per-task overhead, peak memory.

The epoch: 25 markets on joint Monte Carlo paths (Student-t(4) shocks at 0.5-1.5% an hour, pairwise
correlation 0.6, common crash jumps), one day of hourly steps, each market's book of 2,000 positions
($100M of debt, health factors lognormal median 1.3, ten whales holding 20%) at Aave-like parameters
(LTV 80%, LT 83%, bonus 5%, fee 10%, $10 gas, $20M of depth per 2%). Tasks are chunks of 4,096 paths
with all 25 markets: each task draws its chunk (all 25 assets) and simulates every market on it
(`risk.parallel_lending`), so the paths never leave the worker.

Figures: wall seconds on 1 and 2 worker processes with warm pools (process start-up is reported
apart), the speed-up and the efficiency (speed-up / workers); the per-task overhead of each
executor (a no-op task, amortised over 200 tasks on 2 warm workers); and peak memory, as each
worker's peak resident set (``VmHWM`` of ``/proc/self/status``, read inside the worker after each
task) at 10,000 and at 100,000 paths: paths are drawn and consumed per chunk, so it does not grow
with the paths. The parent keeps the per-path outcomes (5 float64 per path and market); its traced
peak (tracemalloc) is printed too. Results are checked to be bit-identical between 1 and 2 workers.

Run with ``python -m benchmarks.bench_scaleout`` (about two minutes on 2 cores). ``SCALEOUT_PATHS``
and ``SCALEOUT_STEPS`` shrink it for a quick try; the figure names carry the sizes.
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from governance.executors import LocalExecutor, RayExecutor
from risk.book import Book, HfLognormal
from risk.lending import DepthCurve, LendingMarket, LossDistribution
from risk.parallel_lending import (
    ChunkedScenarios,
    MarketCase,
    plan_tasks,
    simulate_markets_chunked,
)
from risk.scenarios_mc import MonteCarlo

MARKETS = 25
PATHS = int(os.environ.get("SCALEOUT_PATHS", "100000"))
SMALL_PATHS = min(10_000, PATHS)
STEPS = int(os.environ.get("SCALEOUT_STEPS", "24"))
POSITIONS = 2_000
CHUNK = 4_096
SEED = 20240801
OVERHEAD_TASKS = 200
FIELDS = ("bad_debt_usd", "deficit_usd", "liquidated_usd", "protocol_fee_usd", "repaid_usd")


def _noop(x: int) -> int:
    return x


def _peak_rss_kib() -> int:
    """This process's peak resident set, KiB: VmHWM, which starts afresh at exec.

    Not ``getrusage(...).ru_maxrss``: Linux carries that across the fork + exec that starts a worker,
    so a worker would report its parent's size at the time it was started.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _with_rss(job: tuple[Callable[[Any], Any], Any]) -> tuple[Any, int, float]:
    fn, task = job
    cpu = time.process_time()
    result = fn(task)
    return result, _peak_rss_kib(), time.process_time() - cpu


class _RssProbe:
    """A TaskMap over an executor that also records each worker's peak RSS and the tasks' CPU seconds."""

    def __init__(self, executor: LocalExecutor) -> None:
        self.executor = executor
        self.peak_kib: list[int] = []
        self.cpu_s = 0.0

    def __call__(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> list[Any]:
        out = self.executor.map(_with_rss, [(fn, t) for t in tasks])
        self.peak_kib += [kib for _, kib, _ in out]
        self.cpu_s += sum(cpu for _, _, cpu in out)
        return [r for r, _, _ in out]


def _epoch() -> tuple[list[MarketCase], MonteCarlo]:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(SEED)))
    symbols = tuple(f"M{i:02d}" for i in range(MARKETS))
    corr = np.full((MARKETS, MARKETS), 0.6)
    np.fill_diagonal(corr, 1.0)
    sampler = MonteCarlo(symbols, 3600, rng.uniform(0.005, 0.015, MARKETS), corr, nu=4.0, jump_intensity=0.002,
                         jump_mean=-0.05, jump_std=0.03, common_jumps=True)
    cases = []
    for s, price in zip(symbols, rng.uniform(1.0, 3000.0, MARKETS), strict=True):
        market = LendingMarket(s, float(price), 0.80, 0.83, 0.05, 0.10, gas_usd=10.0, depth=DepthCurve(20e6, 0.02))
        book = Book.generate(rng, POSITIONS, 100e6, market=s, price_usd=market.price_usd, liquidation_threshold=0.83, ltv=0.80,
                             hf=HfLognormal(1.3, 0.3), size_sigma=1.5, whales=10, whale_share=0.2)
        cases.append(MarketCase(s, market, book))
    return cases, sampler


def _run(cases: list[MarketCase], sampler: MonteCarlo, paths: int, workers: int) -> tuple[float, _RssProbe, int, dict[str, LossDistribution]]:
    """(wall seconds on a warm pool, the probe's worker figures, parent traced peak bytes, losses)."""
    tasks = plan_tasks(cases, [ChunkedScenarios(sampler, SEED, paths, STEPS, chunk_paths=CHUNK)])
    with LocalExecutor(workers) as ex:
        ex.map(_noop, list(range(workers * 4)))  # start the workers (spawn + imports) outside the timing
        probe = _RssProbe(ex)
        tracemalloc.start()
        t0 = time.perf_counter()
        losses = simulate_markets_chunked(tasks, map=probe)
        wall = time.perf_counter() - t0
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return wall, probe, traced, losses


def _overhead_ms(executor: LocalExecutor | RayExecutor) -> tuple[float, float]:
    """(start-up seconds, per-task milliseconds of a no-op task on the warm executor)."""
    t0 = time.perf_counter()
    executor.map(_noop, list(range(8)))
    startup = time.perf_counter() - t0
    tasks = list(range(OVERHEAD_TASKS))
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        if executor.map(_noop, tasks) != tasks:
            raise SystemExit("executor returned wrong results")
        best = min(best, time.perf_counter() - t0)
    return startup, best / OVERHEAD_TASKS * 1000.0


def _same(a: dict[str, LossDistribution], b: dict[str, LossDistribution]) -> bool:
    return a.keys() == b.keys() and all(getattr(a[k], f).tobytes() == getattr(b[k], f).tobytes() for k in a for f in FIELDS)


def run() -> dict[str, float]:
    cases, sampler = _epoch()
    size = f"{MARKETS}_markets_{PATHS // 1000}k_paths"
    print(f"epoch: {MARKETS} markets x {POSITIONS:,} positions, {PATHS:,} joint paths x {STEPS} hourly steps, "
          f"chunks of {CHUNK:,} paths ({-(-PATHS // CHUNK)} tasks, all markets per task); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the machine is shared)")
    _, small, small_traced, _ = _run(cases, sampler, SMALL_PATHS, 2)
    t1, probe1, _, one = _run(cases, sampler, PATHS, 1)
    t2, probe2, traced, two = _run(cases, sampler, PATHS, 2)
    if not _same(one, two):
        raise SystemExit("1 and 2 workers gave different losses: seeds are not per task")
    bad = sum(float(d.bad_debt_usd.mean()) for d in one.values())
    speedup = t1 / t2
    print(f"  1 worker {t1:.1f} s, 2 workers {t2:.1f} s: speed-up {speedup:.2f}, efficiency {speedup / 2:.0%} "
          f"(bit-identical; mean bad debt over the markets ${bad:,.0f} per path)")
    print(f"  task CPU {probe1.cpu_s:.1f} s on 1 worker, {probe2.cpu_s:.1f} s on 2: CPUs obtained {probe1.cpu_s / t1:.2f} and "
          f"{probe2.cpu_s / t2:.2f} (2.00 is an idle 2-core machine)")
    peak_small, peak_large = max(small.peak_kib) / 1024, max(probe1.peak_kib + probe2.peak_kib) / 1024
    print(f"  peak worker RSS (VmHWM, read in the worker): {peak_small:.0f} MB at {SMALL_PATHS:,} paths, {peak_large:.0f} MB at {PATHS:,} paths "
          f"(1 worker: {max(probe1.peak_kib) / 1024:.0f} MB, 2 workers: {max(probe2.peak_kib) / 1024:.0f} MB)")
    print(f"  parent traced peak (tracemalloc: the per-path outcomes it keeps): {small_traced / 1e6:.0f} MB at {SMALL_PATHS:,}, "
          f"{traced / 1e6:.0f} MB at {PATHS:,} paths")
    result = {
        f"scaleout_{size}_1_worker_s": t1,
        f"scaleout_{size}_2_workers_s": t2,
        "scaleout_speedup_2_workers": speedup,
        "scaleout_efficiency_2_workers": speedup / 2,
        "scaleout_peak_memory_mb": peak_large,
        f"scaleout_peak_memory_{SMALL_PATHS // 1000}k_paths_mb": peak_small,
        "scaleout_parent_traced_peak_mb": traced / 1e6,
    }
    with LocalExecutor(2) as local:
        startup, per_task = _overhead_ms(local)
    print(f"  local executor: start-up {startup:.2f} s (2 workers), {per_task:.3f} ms per no-op task")
    result["executor_local_task_overhead_ms"] = per_task
    try:
        import ray  # noqa: F401
    except ImportError:
        print("  ray executor: not installed (pip install .[ray]); figure left out")
        return result
    with RayExecutor(workers=2) as cluster:
        startup, per_task = _overhead_ms(cluster)
    print(f"  ray executor: local cluster start-up {startup:.2f} s (2 CPUs), {per_task:.3f} ms per no-op task")
    result["executor_ray_task_overhead_ms"] = per_task
    return result


if __name__ == "__main__":
    run()
