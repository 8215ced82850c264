"""governance.compile: artifacts are rebuilt exactly when what they follow from changed, and a missing
Node.js is named. (The compilation itself runs in the e2e tests, whose devnet deploys its output.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance import compile as contracts
from governance.artifacts import ArtifactError, node_modules


@pytest.fixture
def no_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    if not (node_modules() / "solc").is_dir():
        pytest.skip("npm packages not installed; run `make install`")
    build = tmp_path / "build"
    monkeypatch.setenv("STEWARD_BUILD_DIR", str(build))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no node anywhere
    return build / "contracts"


def _fake_artifacts(folder: Path, digest: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, unit in contracts.CONTRACTS.items():
        doc = {"abi": [], "bytecode": "0x00", "contractName": name, "inputs_sha256": digest, "linkReferences": {},
               "sourceName": unit}
        (folder / f"{name}.json").write_text(json.dumps(doc))


def test_a_missing_build_without_node_is_a_clear_error(no_node):
    with pytest.raises(ArtifactError) as raised:
        contracts.ensure_built()
    assert raised.value.cause == "node (Node.js) is not on PATH: the governance contracts cannot be compiled"
    assert "make install" in raised.value.hint


def test_current_artifacts_are_used_and_stale_ones_recompiled(no_node):
    _fake_artifacts(no_node, contracts.inputs_digest())
    assert contracts.ensure_built() == no_node  # up to date: node is never needed
    assert contracts.load_built("StewardVotes").bytecode == "0x00"
    doc = json.loads((no_node / "StewardGovernor.json").read_text())
    (no_node / "StewardGovernor.json").write_text(json.dumps(doc | {"inputs_sha256": "0" * 64}))
    with pytest.raises(ArtifactError, match="node"):
        contracts.ensure_built()  # stale: it tries to compile


def test_the_digest_follows_settings_and_sources(no_node, monkeypatch):
    before = contracts.inputs_digest()
    monkeypatch.setitem(contracts.SETTINGS, "evmVersion", "shanghai")
    assert contracts.inputs_digest() != before
    monkeypatch.setitem(contracts.SETTINGS, "evmVersion", "cancun")
    assert contracts.inputs_digest() == before
    monkeypatch.setattr(contracts, "SOURCES", contracts.SOURCES[:-1])
    assert contracts.inputs_digest() != before


def test_only_governance_contracts_are_loaded():
    with pytest.raises(ArtifactError, match="not a governance contract"):
        contracts.load_built("Pool")
