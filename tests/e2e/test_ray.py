"""Ray: a local cluster of 2 workers, started here, gives the local executor's results bit for bit,
retries a task whose worker was killed, and writes the same epoch bundles.

Ray is the ``[ray]`` extra: without it these tests skip, except in CI (``CI=true``), where a missing
Ray is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import executor_tasks as et
import pytest
from multi_policies import bundles, write_policies

from governance.executors import ExecutorError, LocalExecutor, RayExecutor
from governance.multi_epoch import run_epochs
from risk.errors import RiskInputError
from risk.parallel_lending import ChunkTask, plan_tasks, run_chunk, simulate_markets_chunked

pytestmark = pytest.mark.e2e
FIELDS = ("bad_debt_usd", "deficit_usd", "liquidated_usd", "protocol_fee_usd", "repaid_usd")


def _require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("Ray is required in CI: install the extra with pip install .[ray]")
        pytest.skip("Ray not installed (pip install .[ray])")


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayExecutor]:
    _require_ray()
    import ray

    # Ray's workers do not have tests/ on their path: ship this helper module by value.
    ray.cloudpickle.register_pickle_by_value(et)
    ex = RayExecutor(workers=2, max_retries=2)
    try:
        yield ex
    finally:
        ex.close()
        ray.cloudpickle.unregister_pickle_by_value(et)


@pytest.fixture(scope="module")
def local_losses() -> dict[str, tuple[object, ...]]:
    cases, src = et.lending_run()
    with LocalExecutor(2) as ex:
        return as_bytes(simulate_markets_chunked(plan_tasks(cases, [src]), map=ex.map))


def as_bytes(losses: dict) -> dict[str, tuple[object, ...]]:
    return {k: (d.name, d.total_debt_usd, *(getattr(d, f).tobytes() for f in FIELDS)) for k, d in losses.items()}


def test_ray_cluster_gives_the_local_results_bit_for_bit(cluster: RayExecutor, local_losses: dict) -> None:
    keys = [(s, i) for s in et.SYMBOLS for i in range(8)]
    assert cluster.map(et.seeded_draw, keys) == [et.seeded_draw(k) for k in keys]
    cases, src = et.lending_run()
    got = simulate_markets_chunked(plan_tasks(cases, [src], cases_per_task=1), map=cluster.map)
    assert as_bytes(got) == local_losses
    assert any(d.bad_debt_usd.max() > 0 for d in got.values()), "the run must have bad debt to compare"


def test_ray_retries_a_killed_worker_with_the_same_result(cluster: RayExecutor, local_losses: dict, tmp_path: Path) -> None:
    cases, src = et.lending_run()
    tasks = plan_tasks(cases, [src], cases_per_task=1)
    marker = tmp_path / "died"
    victim = len(tasks) // 2

    def dying_map(fn: object, items: list[ChunkTask]) -> list:
        assert fn is run_chunk
        return cluster.map(et.run_chunk_dying_once, [(str(marker) if i == victim else None, t) for i, t in enumerate(items)])

    got = simulate_markets_chunked(tasks, map=dying_map)
    assert marker.exists(), "the victim task never ran its dying attempt"
    assert as_bytes(got) == local_losses


def test_ray_writes_the_same_epoch_bundles(cluster: RayExecutor, tmp_path: Path, shared_data: Path) -> None:
    policies = write_policies(tmp_path)
    with LocalExecutor(2) as local:
        run_epochs(policies, data_dir=shared_data, out_dir=tmp_path / "local", executor=local)
    run_epochs(policies, data_dir=shared_data, out_dir=tmp_path / "ray", executor=cluster)
    expected = bundles(tmp_path / "local")
    assert len(expected) > 10 and bundles(tmp_path / "ray") == expected


def test_ray_task_errors_come_back_as_themselves_and_retries_are_bounded(cluster: RayExecutor) -> None:
    with pytest.raises(RiskInputError) as info:
        cluster.map(et.fail_with_policy_error, list(range(5)))
    assert info.value.hint == "the hint travels too"
    with pytest.raises(ExecutorError, match="died more than 2 time"):
        cluster.map(et.always_die, [0])
    assert cluster.map(et.fail_with_policy_error, [0, 1]) == [0, 1]  # the cluster is still usable


def test_ray_reports_the_first_error_in_task_order_not_in_time(cluster: RayExecutor) -> None:
    # Task 3 fails first; Ray must not cancel task 1 (a cancel racing a reply aborted the driver in
    # Ray 2.60), and the error reported is task 1's, as the local and serial executors report it.
    with pytest.raises(RiskInputError, match="task 1: the first in task order"):
        cluster.map(et.fail_late_and_early, list(range(5)))
    assert cluster.map(et.fail_with_policy_error, [0, 1]) == [0, 1]
