"""governance.watch_emergency (offline; the devnet simulation is in tests/e2e/test_watch_devnet.py): each
action's calls decode to what it means, cut_ltv keeps threshold and bonus and does nothing at the floor,
the bundle is byte-identical from the same inputs and rebuilds from its own inputs/, a modified file or
a consistent forgery is caught, and the watch's worker writes one proposal per reserve and action
within the cooldown."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from governance.bundle import BundleError, sha256, write_bundle
from governance.calls import decode_call
from governance.safe import (
    decode_tx_builder_batch,
    safe_tx_from_json,
    verify_tx_builder_checksum,
)
from governance.venues.aave_v3 import CONFIGURE_RESERVE_AS_COLLATERAL
from governance.watch import EmergencyDesk, EmergencyWorker
from governance.watch_emergency import (
    SET_RESERVE_FREEZE,
    SET_RESERVE_PAUSE,
    EmergencyInputs,
    EmergencyTrigger,
    build_emergency_files,
    verify_emergency_bundle,
)
from governance.watch_sinks import JsonLines
from risk.breaker_policy import BreakerPolicy
from risk.breakers import Alert
from risk.policy_load import load_policy
from risk.snapshot import parse_snapshot_json
from risk.watch_events import AlertEvent

REPO = Path(__file__).resolve().parents[2]
VENUE = load_policy(REPO / "risk" / "demo" / "policy.yaml")
SNAPSHOT = parse_snapshot_json((REPO / "risk" / "demo" / "snapshot.json").read_bytes(), "snapshot.json")
WETH = VENUE.policy.market("WETH").asset
T = 1_652_140_800  # 2022-05-10T00:00:00Z


def trigger(action: str, floor_bps: int = 0) -> EmergencyTrigger:
    return EmergencyTrigger(T, "ETH", "WETH", "eth-drop-1h", "alert", 0.071, 0.055, "ratio", "critical", action, floor_bps, "ab" * 32)


def files_for(action: str, floor_bps: int = 0) -> dict[str, bytes]:
    return build_emergency_files(EmergencyInputs(trigger(action, floor_bps), VENUE, SNAPSHOT))


@pytest.mark.parametrize(("action", "function", "args"), [
    ("freeze", SET_RESERVE_FREEZE, (WETH, True)),
    ("pause", SET_RESERVE_PAUSE, (WETH, True)),
    ("cut_ltv", CONFIGURE_RESERVE_AS_COLLATERAL, (WETH, 2500, 8300, 10500)),  # demo WETH: LT 83%, bonus 5% kept
])
def test_each_action_encodes_one_call_that_decodes_to_its_meaning(action: str, function: object, args: tuple) -> None:
    files = files_for(action, 2500)
    calls = json.loads(files["calls.json"])
    assert len(calls) == 1 and calls[0]["to"] == VENUE.policy.venue.addresses.pool_configurator
    assert decode_call(function, calls[0]["data"]) == args  # type: ignore[arg-type]
    batch = json.loads(files["safe-tx-builder.json"])
    assert verify_tx_builder_checksum(batch) and decode_tx_builder_batch(batch) == [(calls[0]["to"], 0, calls[0]["data"])]
    tx = safe_tx_from_json(json.loads(files["safe-tx.json"]))
    assert (tx.to, tx.data.hex(), tx.operation, tx.nonce) == (calls[0]["to"], calls[0]["data"][2:], 0, SNAPSHOT.safe_nonce)  # one call: a plain CALL
    manifest = json.loads(files["manifest.json"])
    assert (manifest["kind"], manifest["action"], manifest["reserve"]) == ("emergency", action, "WETH")
    assert manifest["files"] == {rel: sha256(data) for rel, data in sorted(files.items()) if rel != "manifest.json"}
    assert files == files_for(action, 2500)  # no clock, no randomness


def test_cut_ltv_at_or_below_the_floor_proposes_nothing() -> None:
    files = files_for("cut_ltv", 8050)  # demo WETH LTV is 80.50%
    assert json.loads(files["calls.json"]) == [] and "safe-tx.json" not in files
    assert "No call: the reserve is already where the action would put it" in files["report.md"].decode()


def test_the_bundle_rebuilds_from_its_inputs_and_forgeries_are_caught(tmp_path: Path) -> None:
    target = tmp_path / "b"
    write_bundle(files_for("freeze"), target)
    assert verify_emergency_bundle(target) == (8, 0)
    edited = tmp_path / "edited"
    shutil.copytree(target, edited)
    (edited / "report.md").write_text("sign me\n")
    with pytest.raises(BundleError) as caught:
        verify_emergency_bundle(edited)
    assert any("report.md: sha256" in p for p in caught.value.problems)
    forged = tmp_path / "forged"  # a call swapped and the manifest updated to match: only the rebuild sees it
    shutil.copytree(target, forged)
    other = files_for("pause")
    for rel in ("calls.json", "safe-tx.json", "safe-tx-builder.json"):
        (forged / rel).write_bytes(other[rel])
    manifest = json.loads((forged / "manifest.json").read_text())
    manifest["files"].update({rel: sha256(other[rel]) for rel in ("calls.json", "safe-tx.json", "safe-tx-builder.json")})
    (forged / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as caught:
        verify_emergency_bundle(forged)
    for rel in ("calls.json", "safe-tx.json", "safe-tx-builder.json"):
        assert f"{forged}/{rel}: differs from the rebuild from inputs/" in caught.value.problems
    assert not any("sha256" in p for p in caught.value.problems)  # the manifest itself was consistent


def test_the_worker_writes_one_proposal_per_reserve_and_action_within_the_cooldown(tmp_path: Path) -> None:
    doc = {"version": 1, "breakers": {"name": "t", "markets": [{"symbol": "ETH", "sources": [{"name": "a", "file": "a.csv"}]}],
                                       "rules": [{"name": "drop", "kind": "price_band", "threshold": "5%", "action": "freeze"}],
                                       "watch": {"emergency": {"venue_markets": {"ETH": "WETH"}, "cooldown": "6h"}}}}
    b = BreakerPolicy.model_validate_json(json.dumps(doc)).breakers
    out = io.StringIO()
    desk = EmergencyDesk(out_dir=tmp_path, venue=VENUE, breaker_policy_sha256="cd" * 32, snapshot=lambda: SNAPSHOT)
    worker = EmergencyWorker(desk, b, JsonLines(out, live=True).write)
    for dt in (0, 3600, 7 * 3600):  # the second is inside the 6h cooldown, the third after it
        worker.submit(AlertEvent(Alert(T + dt, "ETH", "drop", 0.08, 0.05, "warning"), "freeze"))
    worker.close()
    lines = sorted((json.loads(x) for x in out.getvalue().splitlines()), key=lambda d: (d["time"], d["status"]))
    assert [(d["time"], d["status"]) for d in lines] == [("2022-05-10T00:00:00Z", "written"), ("2022-05-10T01:00:00Z", "duplicate"),
                                                         ("2022-05-10T07:00:00Z", "written")]
    assert lines[1]["bundle"] == lines[0]["bundle"]
    assert [Path(d["bundle"]).name for d in (lines[0], lines[2])] == ["emergency-20220510T000000Z-WETH-freeze", "emergency-20220510T070000Z-WETH-freeze"]
    assert Path(lines[0]["bundle"]).parent == tmp_path / VENUE.policy.venue.name
    for d in (lines[0], lines[2]):
        assert verify_emergency_bundle(Path(d["bundle"])) == (8, 0)
        assert d["safe_tx_hash"] == json.loads((Path(d["bundle"]) / "safe-tx.json").read_text())["safeTxHash"]
    assert worker.counts == {"written": 2, "duplicate": 1}
