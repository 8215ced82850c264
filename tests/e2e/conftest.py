"""A devnet for the whole e2e session: up once in a temporary state dir, down at the end.

Without anvil (node_modules not installed) the e2e tests skip, except in CI (`CI=true`), where a
missing anvil is a failure.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from governance import devnet as devnet_mod
from governance.devnet_anvil import find_anvil
from governance.devnet_chain import Chain, DevnetError

_MEASURED: dict[str, float] = {}


def require_anvil() -> None:
    try:
        find_anvil()
    except DevnetError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"anvil is required in CI: {e}")
        pytest.skip(f"anvil not installed ({e.cause}); run `make install`")


@dataclass(frozen=True)
class Session:
    devnet: devnet_mod.Devnet
    state_dir: Path
    chain: Chain


@pytest.fixture(scope="session")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    require_anvil()
    state_dir = tmp_path_factory.mktemp("devnet")
    started = time.perf_counter()
    devnet = devnet_mod.up(state_dir)
    _MEASURED["devnet up (anvil start + full deployment), s"] = time.perf_counter() - started
    try:
        yield Session(devnet=devnet, state_dir=state_dir, chain=Chain(devnet.rpc_url))
    finally:
        devnet_mod.down(state_dir)


@pytest.fixture
def devnet(session: Session) -> devnet_mod.Devnet:
    return session.devnet


@pytest.fixture
def chain(session: Session) -> Chain:
    return session.chain


@pytest.fixture
def restore_chain(chain: Chain) -> Iterator[None]:
    """Undo a test's transactions (evm_snapshot / evm_revert) so tests do not see each other's."""
    snapshot = chain.rpc("evm_snapshot", [])
    yield
    assert chain.rpc("evm_revert", [snapshot]) is True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for what, seconds in _MEASURED.items():
        terminalreporter.write_line(f"measured: {what} = {seconds:.2f}")
