"""Simulation on the devnet: the real execTransaction on a snapshot, compared with the recommendation."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
from signer_packet_rows import check_rows_match
from typer.testing import CliRunner

from governance import jsonio
from governance.artifacts import load_artifact
from governance.bundle import SIGNER_PACKET, SIMULATION, BundleError
from governance.calls import AbiInput, FunctionAbi, encode_call
from governance.chain import connect
from governance.chain_bundle import load_chain_bundle
from governance.cli import app
from governance.safe import safe_tx_for_calls, safe_tx_json
from governance.simulate import SimulationError, require_ok, simulate, simulate_safe_tx
from governance.venues.aave_v3 import SET_SUPPLY_CAP
from governance.venues.aave_v3_read import pool_state, resolve_addresses
from governance.verify import verify_bundle

pytestmark = pytest.mark.e2e

SET_RESERVE_FACTOR = FunctionAbi(
    "setReserveFactor", (AbiInput("asset", "address", "address"), AbiInput("newReserveFactor", "uint256", "uint256"))
)


@pytest.fixture
def reader(devnet):
    return connect(devnet.rpc_url, expected_chain_id=devnet.chain_id, timeout_s=5)


def _state(reader, cb) -> dict:
    block = reader.block_number()
    return pool_state(reader, resolve_addresses(reader, cb.policy, block=block), cb.markets, block=block)


class _Raw:
    def __init__(self, call: dict) -> None:
        self.to, self.value, self.data = call["to"], int(call["value"]), call["data"]


def _bundle_calls(bundle: Path) -> list:
    return [_Raw(c) for c in json.loads((bundle / "calls.json").read_text())]


def test_a_fresh_bundle_simulates_exactly_and_leaves_no_trace(devnet, reader, bundle, restore_chain):
    cb = load_chain_bundle(bundle)
    rec = json.loads((bundle / "recommendation.json").read_text())
    snapshot = json.loads((bundle / "inputs" / "snapshot.json").read_text())
    block, before = reader.block_number(), _state(reader, cb)
    assert snapshot["block"] == block  # the bundle was read at this very state

    result = simulate(bundle, devnet.rpc_url)

    assert result.ok and not result.reverted and result.differences == () and result.unexpected_changes == ()
    assert result.block == block and result.chain_id == 1337 and result.gas_used > 21_000
    n_changed = sum(p["proposed"] != p["current"] for m in rec["markets"].values() for p in m["parameters"].values())
    assert len(result.changed) == n_changed > 0
    for symbol, market in rec["markets"].items():
        for param, change in market["parameters"].items():
            unit = "bps" if "bps" in change["proposed"] else "tokens"
            assert result.post_state[symbol][param] == change["proposed"][unit] == result.expected[symbol][param]
            assert result.pre_state[symbol][param] == change["current"][unit]
    # nothing stays: same head, same state
    assert reader.block_number() == block and _state(reader, cb) == before
    written = (bundle / "simulation.json").read_bytes()
    assert written == jsonio.dumps(result.to_json())
    doc = json.loads(written)
    assert doc["mode"] == "simulate" and doc["ok"] is True
    assert doc["bundle_manifest_sha256"] == hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    load_chain_bundle(bundle)  # the attachment does not break verification


def test_the_cli_simulates_and_prints_each_move(devnet, bundle, restore_chain):
    result = CliRunner().invoke(app, ["simulate", str(bundle), "--rpc", devnet.rpc_url])
    assert result.exit_code == 0, result.output
    assert ": OK; gas used" in result.output and "WETH ltv:" in result.output and "nothing else changed" in result.output


def test_calls_that_do_not_match_the_recommendation_are_caught_on_chain(devnet, reader, bundle, restore_chain):
    # verify and check_calls refuse such a bundle before simulation (tests/unit); here the chain-side
    # comparison is exercised on its own with forged transactions.
    cb = load_chain_bundle(bundle)
    calls = _bundle_calls(bundle)
    weth = cb.markets["WETH"]
    rec = json.loads((bundle / "recommendation.json").read_text())["markets"]["WETH"]["parameters"]
    supply_index = next(i for i, c in enumerate(calls) if c.data.startswith("0x" + SET_SUPPLY_CAP.selector.hex())
                        and weth[2:].lower() in c.data)
    configurator = cb.policy.venue.addresses.pool_configurator
    proposed = rec["supply_cap"]["proposed"]["tokens"]
    wrong_cap = encode_call(configurator, SET_SUPPLY_CAP, (weth, proposed + 7), "forged")
    forged = safe_tx_for_calls([*calls[:supply_index], wrong_cap, *calls[supply_index + 1:]],
                               safe_address=cb.safe_tx.safe_address, chain_id=1337, nonce=cb.safe_tx.nonce)
    result = simulate_safe_tx(reader, replace(cb, safe_tx=forged))
    assert not result.ok and not result.reverted
    was = rec["supply_cap"]["current"]["tokens"]
    assert result.differences == (f"WETH supply_cap: {proposed + 7} on chain, {proposed} recommended (was {was})",)
    assert result.unexpected_changes == ()
    with pytest.raises(SimulationError) as raised:
        require_ok(result)
    assert raised.value.problems == (f"not as recommended: {result.differences[0]}",)

    extra = encode_call(configurator, SET_RESERVE_FACTOR, (weth, 1234), "forged")
    sneaky = safe_tx_for_calls([*calls, extra], safe_address=cb.safe_tx.safe_address, chain_id=1337, nonce=cb.safe_tx.nonce)
    result = simulate_safe_tx(reader, replace(cb, safe_tx=sneaky))
    assert result.differences == ()
    before_rf = result.pre_state["WETH"]["reserve_factor"]
    assert result.unexpected_changes == (f"WETH reserve_factor: {before_rf} → 1234",)


def test_a_consistently_forged_bundle_is_stopped_by_verify_before_the_chain(devnet, reader, bundle, restore_chain):
    cb = load_chain_bundle(bundle)
    calls = _bundle_calls(bundle)
    calls[0] = _Raw({"to": calls[0].to, "value": "0", "data": calls[-1].data})  # a call replaced by another
    forged = safe_tx_for_calls(calls, safe_address=cb.safe_tx.safe_address, chain_id=1337, nonce=cb.safe_tx.nonce)
    (bundle / "safe-tx.json").write_bytes(jsonio.dumps(safe_tx_json(forged)))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["safe-tx.json"] = hashlib.sha256((bundle / "safe-tx.json").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_bytes(jsonio.dumps(manifest))
    head = reader.block_number()
    with pytest.raises(BundleError) as raised:
        simulate(bundle, devnet.rpc_url)
    assert any("safe-tx.json: differs from the rebuild" in p for p in raised.value.problems)
    assert reader.block_number() == head and not (bundle / "simulation.json").exists()


def test_a_call_the_safe_would_revert_is_reported(devnet, chain, bundle, restore_chain):
    acl = chain.contract(devnet.addresses["acl_manager"], load_artifact("@aave/core-v3", "ACLManager"))
    chain.transact("remove the Safe's risk admin role", chain.w3.eth.accounts[0], acl, "removeRiskAdmin",
                   devnet.addresses["safe"])
    result = simulate(bundle, devnet.rpc_url)
    assert result.reverted and not result.ok
    assert "GS013" in result.revert_reason and "4 (CALLER_NOT_RISK_OR_POOL_ADMIN)" in result.revert_reason
    assert "call 0 (configureReserveAsCollateral" in result.revert_reason
    assert result.unexpected_changes == () and result.changed == ()
    rec = json.loads((bundle / "recommendation.json").read_text())["markets"]
    n_changed = sum(p["proposed"] != p["current"] for m in rec.values() for p in m["parameters"].values())
    assert len(result.differences) == n_changed  # nothing moved: every change is missing
    assert json.loads((bundle / "simulation.json").read_text())["ok"] is False
    cli = CliRunner().invoke(app, ["simulate", str(bundle), "--rpc", devnet.rpc_url])
    assert cli.exit_code == 2 and "simulation failed" in cli.output and "reverted: GS013" in cli.output


def test_simulate_writes_a_signer_packet_that_verify_renders_again(devnet, bundle, restore_chain):
    result = simulate(bundle, devnet.rpc_url)
    packet, simulation = (bundle / SIGNER_PACKET).read_bytes(), (bundle / SIMULATION).read_bytes()
    rec = json.loads((bundle / "recommendation.json").read_text())
    assert check_rows_match(packet, simulation) == sum(len(m["parameters"]) for m in rec["markets"].values())
    text = packet.decode()
    assert "✗" not in text and "**OK.**" in text and result.safe_tx_hash in text
    assert f"on chain {result.chain_id} at block {result.block}" in text and f"Gas used: {result.gas_used:,}" in text
    verify_bundle(bundle)

    (bundle / SIGNER_PACKET).write_bytes(text.replace("✓", "✗", 1).encode())
    with pytest.raises(BundleError) as raised:
        verify_bundle(bundle)
    assert any(SIGNER_PACKET in p and "differs" in p for p in raised.value.problems)
