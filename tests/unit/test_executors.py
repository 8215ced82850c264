"""Executors: same bytes on every executor and worker count, seeds per task, dead workers retried."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import executor_tasks as et
import numpy as np
import pytest

from governance.executors import ExecutorError, LocalExecutor, RayExecutor, SerialExecutor, make_executor
from risk.errors import RiskInputError
from risk.lending import LossDistribution, simulate_market
from risk.parallel import key_words, serial_map, task_seed
from risk.parallel_lending import (
    ChunkedScenarios,
    ChunkTask,
    column_paths,
    plan_tasks,
    run_chunk,
    simulate_markets_chunked,
)
from risk.scenarios import simulate

FIELDS = ("bad_debt_usd", "deficit_usd", "liquidated_usd", "protocol_fee_usd", "repaid_usd")


def as_bytes(losses: dict[str, LossDistribution]) -> dict[str, tuple[object, ...]]:
    return {k: (d.name, d.total_debt_usd, *(getattr(d, f).tobytes() for f in FIELDS)) for k, d in losses.items()}


@pytest.fixture(scope="module")
def pool() -> LocalExecutor:
    with LocalExecutor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def run() -> tuple[list, ChunkedScenarios]:
    return et.lending_run()


@pytest.fixture(scope="module")
def reference(run: tuple[list, ChunkedScenarios]) -> dict[str, LossDistribution]:
    """Each market simulated once on the whole path set drawn by risk.scenarios.simulate, no chunks."""
    cases, src = run
    full = simulate(src.sampler, seed=src.seed, paths=src.paths, steps=src.steps)
    return {c.key: simulate_market(c.book, c.market, np.ascontiguousarray(full.relative[:, :, et.SYMBOLS.index(c.key)])) for c in cases}


# ----------------------------------------------------------------------------------- seeds per task


def test_task_seed_without_keys_is_the_root_seed() -> None:
    a = np.random.Generator(np.random.PCG64(task_seed(7))).random(8)
    b = np.random.Generator(np.random.PCG64(np.random.SeedSequence(7))).random(8)
    assert a.tobytes() == b.tobytes()


def test_task_keys_give_distinct_streams() -> None:
    draws = {keys: et.seeded_draw(keys) for keys in [("WETH",), ("WBTC",), (3,), ("3",), ("WETH", 0), ("WETH", 1), (0, "WETH")]}
    assert len(set(draws.values())) == len(draws)
    assert et.seeded_draw(("WETH", 1)) == draws[("WETH", 1)]
    assert key_words("3") != key_words(3)


@pytest.mark.parametrize("bad", [-1, 1.5, True, None, b"x"])
def test_bad_task_keys_are_refused(bad: object) -> None:
    with pytest.raises(RiskInputError, match="task key"):
        task_seed(1, bad)  # type: ignore[arg-type]


def test_same_draws_whatever_the_executor_and_worker_count(pool: LocalExecutor) -> None:
    """Spawned workers have their own (salted) str hashes: equal bytes mean no hash() and no worker identity."""
    keys = [(s, i) for s in et.SYMBOLS for i in range(12)]
    expected = serial_map(et.seeded_draw, keys)
    assert SerialExecutor().map(et.seeded_draw, keys) == expected
    assert pool.map(et.seeded_draw, keys) == expected
    with LocalExecutor(1) as one:
        assert one.map(et.seeded_draw, keys) == expected


# ------------------------------------------------------------------------------- chunked lending


def test_chunks_are_the_paths_simulate_draws(run: tuple[list, ChunkedScenarios]) -> None:
    _, src = run
    full = simulate(src.sampler, seed=src.seed, paths=src.paths, steps=src.steps)
    for j, s in enumerate(et.SYMBOLS):
        assert np.array_equal(column_paths([src], s), full.relative[:, :, j])
    keyed = ChunkedScenarios(src.sampler, src.seed, src.paths, src.steps, chunk_paths=1024, keys=("venue-a",))
    again = ChunkedScenarios(src.sampler, src.seed, src.paths, src.steps, chunk_paths=1024, keys=("venue-a",))
    assert not np.array_equal(keyed.chunk(0), src.chunk(0))
    assert np.array_equal(keyed.chunk(1), again.chunk(1))


def test_chunked_losses_equal_the_unchunked_run_on_every_executor(pool: LocalExecutor, run: tuple[list, ChunkedScenarios],
                                                                   reference: dict[str, LossDistribution]) -> None:
    cases, src = run
    expected = as_bytes(reference)
    assert any(d.bad_debt_usd.max() > 0 for d in reference.values()), "the run must have bad debt to compare"
    assert as_bytes(simulate_markets_chunked(plan_tasks(cases, [src]))) == expected
    assert as_bytes(simulate_markets_chunked(plan_tasks(cases, [src], cases_per_task=1), map=pool.map)) == expected
    bigger = ChunkedScenarios(src.sampler, src.seed, src.paths, src.steps, chunk_paths=2048)
    with LocalExecutor(1) as one:
        assert as_bytes(simulate_markets_chunked(plan_tasks(cases, [bigger], cases_per_task=2), map=one.map)) == expected


def test_task_order_does_not_matter(run: tuple[list, ChunkedScenarios], reference: dict[str, LossDistribution]) -> None:
    cases, src = run
    tasks = plan_tasks(cases, [src], cases_per_task=1)
    assert as_bytes(simulate_markets_chunked(tasks[::-1])) == as_bytes(reference)


def test_a_missing_or_doubled_chunk_is_refused(run: tuple[list, ChunkedScenarios]) -> None:
    cases, src = run
    tasks = plan_tasks(cases, [src])
    with pytest.raises(RiskInputError, match="not simulated"):
        simulate_markets_chunked(tasks[:-1])
    with pytest.raises(RiskInputError, match="twice"):
        simulate_markets_chunked([*tasks, tasks[0]])
    with pytest.raises(RiskInputError, match="multiple of block_paths"):
        ChunkedScenarios(src.sampler, 1, 100, 5, chunk_paths=1000)


def test_memory_does_not_grow_with_the_paths(run: tuple[list, ChunkedScenarios]) -> None:
    """Peak traced memory of a run, 4x the paths: it grows by the outcomes kept, not by the paths drawn."""
    cases, src = run
    steps = src.steps

    def peak(paths: int) -> int:
        source = ChunkedScenarios(src.sampler, src.seed, paths, steps, chunk_paths=1024)
        tracemalloc.start()
        try:
            simulate_markets_chunked(plan_tasks(cases, [source]))
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = 2048, 8192
    growth_per_path = (peak(large) - peak(small)) / (large - small)
    path_bytes = (steps + 1) * len(et.SYMBOLS) * 8  # what keeping the joint paths would cost per path
    outcome_bytes = len(FIELDS) * len(cases) * 8  # what the results must hold per path
    assert growth_per_path < path_bytes / 2, (growth_per_path, path_bytes)
    assert growth_per_path < 4 * outcome_bytes, (growth_per_path, outcome_bytes)


# ---------------------------------------------------------------------------------- dead workers


def test_worker_killed_mid_run_is_retried_with_the_same_result(tmp_path: Path, run: tuple[list, ChunkedScenarios],
                                                               reference: dict[str, LossDistribution]) -> None:
    cases, src = run
    marker = tmp_path / "died"
    tasks = plan_tasks(cases, [src], cases_per_task=1)
    victim = len(tasks) // 2

    with LocalExecutor(2) as ex:
        def dying_map(fn: object, items: list[ChunkTask]) -> list:
            assert fn is run_chunk
            return ex.map(et.run_chunk_dying_once, [(str(marker) if i == victim else None, t) for i, t in enumerate(items)])

        got = simulate_markets_chunked(tasks, map=dying_map)
        assert marker.exists(), "the victim task never ran its dying attempt"
        assert ex.restarts == 1
        assert as_bytes(got) == as_bytes(reference)
        assert ex.map(et.seeded_draw, [("after",)]) == [et.seeded_draw(("after",))]  # the rebuilt pool works


def test_a_task_that_always_kills_its_worker_gives_up() -> None:
    with LocalExecutor(1, max_attempts=2) as ex:
        with pytest.raises(ExecutorError, match="died in each of 2 attempts; task\\(s\\) 0 of 1"):
            ex.map(et.always_die, [0])
        assert ex.restarts == 2


def test_a_task_error_comes_back_as_itself(pool: LocalExecutor) -> None:
    with pytest.raises(RiskInputError) as info:
        pool.map(et.fail_with_policy_error, list(range(5)))
    assert info.value.cause == "task 2: bad input" and info.value.hint == "the hint travels too"
    assert pool.map(et.fail_with_policy_error, [0, 1]) == [0, 1]


def test_the_error_reported_is_the_first_in_task_order_not_in_time(pool: LocalExecutor) -> None:
    with pytest.raises(RiskInputError, match="task 1: the first in task order"):
        pool.map(et.fail_late_and_early, list(range(5)))


def test_run_chunk_is_what_the_map_runs(run: tuple[list, ChunkedScenarios]) -> None:
    cases, src = run
    result = run_chunk(plan_tasks(cases, [src])[1])
    assert (result.part, result.chunk, result.first_path, result.paths) == (0, 1, 1024, 1024)
    assert set(result.losses) == set(et.SYMBOLS)


# ----------------------------------------------------------------------------------- make_executor


def test_executor_specs() -> None:
    assert isinstance(make_executor("serial"), SerialExecutor)
    local = make_executor("local:3")
    assert isinstance(local, LocalExecutor) and local.workers == 3
    assert isinstance(make_executor("local"), LocalExecutor)
    ray_local = make_executor("ray:2")
    assert isinstance(ray_local, RayExecutor) and ray_local.address is None and ray_local.workers == 2
    assert make_executor("ray:auto").address == "auto"  # type: ignore[union-attr]
    assert make_executor("ray://head:10001").address == "ray://head:10001"  # type: ignore[union-attr]


@pytest.mark.parametrize("spec", ["dask", "local:0", "local:x", "local:", "ray:", "ray:-1", "threads:2"])
def test_bad_executor_specs_say_what_is_accepted(spec: str) -> None:
    with pytest.raises(ExecutorError) as info:
        make_executor(spec)
    assert spec in info.value.cause
    assert "local:2" in info.value.hint or "local:N" in info.value.hint


def test_ray_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError, as without the extra
    with pytest.raises(ExecutorError) as info:
        RayExecutor(workers=1).map(et.seeded_draw, [("x",)])
    assert "pip install .[ray]" in info.value.hint


def test_chunked_provenance_is_what_simulate_records(run: tuple[list, ChunkedScenarios]) -> None:
    _, src = run
    full = simulate(src.sampler, seed=src.seed, paths=src.paths, steps=src.steps)
    assert src.provenance == full.provenance and src.name == full.name
    keyed = ChunkedScenarios(src.sampler, src.seed, src.paths, src.steps, keys=("venue-a", 2))
    assert dict(keyed.provenance.settings)["seed_keys"] == "('venue-a', 2)"
