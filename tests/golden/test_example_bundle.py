"""The example bundle committed in proposals/ is exactly what this code produces.

Refresh with `make golden` (pytest --update-golden) and review `git diff proposals/` like code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from governance.cli import app

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "proposals" / "steward-demo-aave-v3" / "2023-10-31"
runner = CliRunner()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_example_bundle_matches_a_fresh_epoch(tmp_path: Path, update_golden: bool) -> None:
    result = runner.invoke(app, ["epoch", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    fresh = tmp_path / "steward-demo-aave-v3" / "2023-10-31"
    if update_golden:
        shutil.rmtree(EXAMPLE, ignore_errors=True)
        shutil.copytree(fresh, EXAMPLE)
    expected, got = _files(EXAMPLE), _files(fresh)
    assert sorted(got) == sorted(expected), "file list changed: run `make golden` and review the diff"
    changed = [rel for rel in expected if expected[rel] != got[rel]]
    assert changed == [], f"{changed} differ from proposals/: run `make golden` and review `git diff proposals/`"


def test_example_bundle_verifies() -> None:
    result = runner.invoke(app, ["verify", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
