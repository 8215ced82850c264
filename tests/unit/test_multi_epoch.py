"""`steward epoch POLICY...`: price files read once for all policies, the same bundles as alone, on any executor."""

from __future__ import annotations

from pathlib import Path

import pytest
from multi_policies import bundles, policy_text, write_policies

from governance.epoch_inputs import gather_inputs
from governance.executors import LocalExecutor
from governance.multi_epoch import run_epochs
from governance.pipeline import build_files
from risk.errors import StewardError


def test_price_file_read_once_and_bundles_as_alone(tmp_path: Path, shared_data: Path) -> None:
    policies = write_policies(tmp_path)
    result = run_epochs(policies, data_dir=shared_data, out_dir=tmp_path / "out")
    assert result.files_read == 1  # four markets over two policies, one file
    assert result.files_reused == 3
    assert [r.venue for r in result.runs] == ["firm-venue-a", "firm-venue-b"]
    for run in result.runs:
        alone = build_files(gather_inputs(run.policy, data_dir=shared_data))
        written = {p.relative_to(run.bundle).as_posix(): p.read_bytes() for p in sorted(run.bundle.rglob("*")) if p.is_file()}
        assert written == alone, f"{run.venue}: the bundle differs from the policy's epoch run alone"


def test_local_processes_write_the_same_bundles(tmp_path: Path, shared_data: Path) -> None:
    policies = write_policies(tmp_path)
    run_epochs(policies, data_dir=shared_data, out_dir=tmp_path / "serial")
    with LocalExecutor(2) as ex:
        run_epochs(policies, data_dir=shared_data, out_dir=tmp_path / "local", executor=ex)
    serial = bundles(tmp_path / "serial")
    assert len(serial) > 10 and bundles(tmp_path / "local") == serial


def test_a_policy_given_twice_or_two_policies_on_one_bundle_are_refused(tmp_path: Path, shared_data: Path) -> None:
    a, _ = write_policies(tmp_path)
    with pytest.raises(StewardError, match="given twice"):
        run_epochs([a, tmp_path / ".." / tmp_path.name / a.name], data_dir=shared_data, out_dir=tmp_path / "out")
    twin = tmp_path / "twin.yaml"
    twin.write_text(policy_text("firm-venue-a", ("LINK",), seed=2))
    with pytest.raises(StewardError, match="same bundle"):
        run_epochs([a, twin], data_dir=shared_data, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written when the run is refused


def test_no_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StewardError, match="no policy"):
        run_epochs([], out_dir=tmp_path)
