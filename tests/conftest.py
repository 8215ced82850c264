"""Shared fixtures: where the real market data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data directory: $STEWARD_DATA, else <repo>/../shared/data.

    Missing data skips the test locally and fails it in CI, where a silent skip would hide lost coverage.
    """
    env = os.environ.get("STEWARD_DATA")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"../shared/data missing in CI (looked at {path})")
        pytest.skip(f"shared data not found at {path}; set STEWARD_DATA")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files (the example bundle in proposals/) instead of comparing; review the diff.",
    )


@pytest.fixture(scope="session")
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture(autouse=True, scope="session")
def _serial_executor_by_default() -> None:
    """CLI epochs in tests run serially unless a test picks an executor: starting worker processes
    costs seconds per run, and the executor tests prove every executor gives the same bytes."""
    os.environ.setdefault("STEWARD_EXECUTOR", "serial")
