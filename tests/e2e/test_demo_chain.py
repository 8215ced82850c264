"""The demo loop end to end on its own devnet, and its fallback when anvil cannot start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from governance import devnet as devnet_mod
from governance.cli import app
from governance.demo_chain import run_demo_chain
from governance.devnet_chain import DevnetError
from governance.verify import verify_bundle

pytestmark = pytest.mark.e2e


def test_the_demo_runs_every_step_and_leaves_no_devnet(session, tmp_path: Path):
    state, out = tmp_path / "state", tmp_path / "proposals"
    result = CliRunner().invoke(app, ["demo-chain", "--out", str(out), "--state-dir", str(state)])
    assert result.exit_code == 0, result.output
    steps = [line.split(" ", 1)[0] for line in result.output.splitlines() if line[:1].isdigit()]
    assert steps == [f"{i}/8" for i in range(1, 9)]
    assert "SYNTHETIC price history" in result.output
    bundle = out / "steward-devnet-aave-v3" / "2023-10-31"
    doc = json.loads((bundle / "simulation.json").read_text())
    assert doc["mode"] == "reconcile" and doc["ok"] is True and doc["changed"]
    assert len(list((bundle / "signatures").iterdir())) == 2
    snapshot = json.loads((bundle / "inputs" / "snapshot.json").read_text())
    assert snapshot["source"] == f"rpc chain 1337 block {snapshot['block']}" and snapshot["safe_nonce"] == 0
    with pytest.raises(DevnetError, match="no running devnet"):
        devnet_mod.current(state)
    for key in session.devnet.owner_keys:  # the demo devnet's owners are the same anvil accounts
        assert key[2:] not in result.output


def test_without_anvil_the_demo_says_why_and_runs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STEWARD_ANVIL", str(tmp_path / "no-anvil-here"))
    lines: list[str] = []
    bundle = run_demo_chain(tmp_path / "proposals", say=lines.append)
    text = "\n".join(lines)
    assert "anvil cannot start: anvil not found" in text and "falling back to the offline demo" in text
    assert bundle == tmp_path / "proposals" / "steward-demo-aave-v3" / "2023-10-31"
    assert verify_bundle(bundle) == (10, 0) and not (bundle / "simulation.json").exists()
