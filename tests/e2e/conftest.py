"""A devnet for the whole e2e session: up once in a temporary state dir, down at the end.

Without anvil (node_modules not installed) the e2e tests skip, except in CI (`CI=true`), where a
missing anvil is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from governance import devnet as devnet_mod
from governance.demo_chain import devnet_epoch
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


TEST_PASSWORD = "test password, not a secret"


@pytest.fixture
def make_keystores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str | bytes]], dict[str, Path]]:
    """Write keystores (name → private key) encrypted with TEST_PASSWORD (fast scrypt); the CLI reads the
    password from STEWARD_TEST_PASSWORD."""
    monkeypatch.setenv("STEWARD_TEST_PASSWORD", TEST_PASSWORD)
    folder = tmp_path / "keys"
    folder.mkdir()

    def write(keys: Mapping[str, str | bytes]) -> dict[str, Path]:
        out = {}
        for name, key in keys.items():
            path = folder / f"{name}.json"
            path.write_text(json.dumps(Account.encrypt(key, TEST_PASSWORD, kdf="scrypt", iterations=2**10)))
            out[name] = path
        return out

    return write


@pytest.fixture(scope="module")
def devnet_bundle(session: Session, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One epoch read from the devnet per test module (a Safe batch of the demo policy's changes)."""
    return devnet_epoch(session.devnet, tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("out")).bundle


@pytest.fixture
def bundle(devnet_bundle: Path, tmp_path: Path) -> Path:
    """A copy of `devnet_bundle` the test may add attachments to or damage."""
    copy = tmp_path / "bundle"
    shutil.copytree(devnet_bundle, copy)
    return copy


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for what, seconds in _MEASURED.items():
        terminalreporter.write_line(f"measured: {what} = {seconds:.2f}")
