"""Sign with owners' keystores, execute, reconcile — and every refusal happens before anything is sent."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from governance.artifacts import load_artifact
from governance.bundle import BundleError
from governance.chain import ChainError, connect
from governance.chain_bundle import load_chain_bundle
from governance.cli import app
from governance.signing import execute_bundle, sign_bundle
from governance.simulate import simulate
from governance.venues.aave_v3_read import pool_state, resolve_addresses

pytestmark = pytest.mark.e2e

STRANGER_KEY = bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba")


@pytest.fixture
def keystores(devnet, make_keystores) -> dict[str, Path]:
    """Keystores of owners 1 and 2 and of a stranger."""
    return make_keystores({"owner1": devnet.owner_keys[0], "owner2": devnet.owner_keys[1], "stranger": STRANGER_KEY})


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _sign(bundle: Path, keystore: Path, *extra: str) -> tuple[int, str]:
    return _cli("sign", bundle, "--keystore", keystore, "--password-env", "STEWARD_TEST_PASSWORD", *extra)


def _execute(bundle: Path, devnet, keystore: Path) -> tuple[int, str]:
    return _cli("execute", bundle, "--rpc", devnet.rpc_url, "--keystore", keystore, "--password-env", "STEWARD_TEST_PASSWORD")


def _no_key_anywhere(devnet, texts: list[str], bundle: Path) -> None:
    files = "".join(p.read_text(errors="replace") for p in bundle.rglob("*") if p.is_file())
    for key in (*devnet.owner_keys, "0x" + STRANGER_KEY.hex()):
        for text in (*texts, files):
            assert key[2:].lower() not in text.lower()
    assert all(os.environ["STEWARD_TEST_PASSWORD"] not in t for t in texts)  # set by make_keystores


def _nothing_sent(chain, devnet, action) -> str:
    head, sent = chain.block_number(), chain.w3.eth.get_transaction_count(devnet.owners[0])
    message = action()
    assert chain.block_number() == head and chain.w3.eth.get_transaction_count(devnet.owners[0]) == sent
    return message


def test_two_owners_sign_execute_reconciles_and_a_second_execution_is_refused(
    devnet, chain, bundle, keystores, restore_chain, caplog
):
    caplog.set_level(logging.DEBUG)  # web3 logs every request at DEBUG: the key must not be in them either
    texts = []
    for owner in ("owner1", "owner2"):
        code, out = _sign(bundle, keystores[owner], "--rpc", devnet.rpc_url)
        assert code == 0, out
        assert "signed safeTxHash 0x" in out and "warning" not in out
        texts.append(out)
    assert sorted(p.stem for p in (bundle / "signatures").iterdir()) == sorted(devnet.owners[:2])

    code, out = _execute(bundle, devnet, keystores["owner1"])
    assert code == 0, out
    texts.append(out)
    assert "executed: tx 0x" in out and ": OK;" in out
    assert f"signer packet (before → after, read on chain): {bundle / 'signer-packet.md'}" in " ".join(out.split())
    doc = json.loads((bundle / "simulation.json").read_text())
    assert doc["mode"] == "reconcile" and doc["ok"] is True and doc["execution_tx"].startswith("0x")

    cb = load_chain_bundle(bundle)
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    block = reader.block_number()
    state = pool_state(reader, resolve_addresses(reader, cb.policy, block=block), cb.markets, block=block)
    for symbol, values in cb.expected.items():
        assert {p: state[symbol][p] for p in values} == values
    assert reader.safe_state(devnet.addresses["safe"], block=block).nonce == 1
    assert "eth_sendRawTransaction" in caplog.text  # the logs were captured, so the check below can fail
    _no_key_anywhere(devnet, [*texts, caplog.text], bundle)

    code, out = _cli("reconcile", bundle, "--rpc", devnet.rpc_url)  # found through the Safe's ExecutionSuccess log
    assert code == 0 and ": OK;" in out and f"at block {doc['block']}" in out

    code, out = _nothing_sent(chain, devnet, lambda: _execute(bundle, devnet, keystores["owner1"]))
    assert code == 2 and "nonce 0 already used (the Safe is at nonce 1)" in out
    with pytest.raises(ChainError, match="nonce 0 already used"):
        simulate(bundle, devnet.rpc_url)
    code, out = _sign(bundle, keystores["owner2"], "--rpc", devnet.rpc_url)
    assert code == 2 and "already used" in out


def test_one_signature_is_not_enough(devnet, chain, bundle, keystores, restore_chain):
    assert _sign(bundle, keystores["owner1"], "--rpc", devnet.rpc_url)[0] == 0
    code, out = _nothing_sent(chain, devnet, lambda: _execute(bundle, devnet, keystores["owner1"]))
    assert code == 2 and "1 owner signature(s)" in out and "threshold is 2" in out


def test_a_non_owner_cannot_sign_with_rpc_and_their_signature_blocks_execution(devnet, chain, bundle, keystores, restore_chain):
    stranger = Account.from_key(STRANGER_KEY).address
    code, out = _sign(bundle, keystores["stranger"], "--rpc", devnet.rpc_url)
    assert code == 2 and f"{stranger} is not an owner" in out
    assert not (bundle / "signatures").exists()
    code, out = _sign(bundle, keystores["stranger"])  # offline: allowed, with a warning
    assert code == 0 and "ownership not checked" in out
    for owner in ("owner1", "owner2"):
        assert _sign(bundle, keystores[owner], "--rpc", devnet.rpc_url)[0] == 0
    code, out = _nothing_sent(chain, devnet, lambda: _execute(bundle, devnet, keystores["owner1"]))
    assert code == 2 and f"signature(s) from {stranger}, not an owner" in out


def test_a_call_the_safe_would_revert_is_refused_before_sending(devnet, chain, bundle, restore_chain):
    for key in devnet.owner_keys[:2]:
        sign_bundle(bundle, bytes.fromhex(key[2:]), rpc_url=devnet.rpc_url)
    acl = chain.contract(devnet.addresses["acl_manager"], load_artifact("@aave/core-v3", "ACLManager"))
    chain.transact("remove the Safe's risk admin role", chain.w3.eth.accounts[0], acl, "removeRiskAdmin",
                   devnet.addresses["safe"])

    def attempt() -> str:
        with pytest.raises(ChainError) as raised:
            execute_bundle(bundle, devnet.rpc_url, bytes.fromhex(devnet.owner_keys[0][2:]))
        return raised.value.cause

    cause = _nothing_sent(chain, devnet, attempt)
    assert cause.startswith("the Safe would revert: GS013") and "4 (CALLER_NOT_RISK_OR_POOL_ADMIN)" in cause
    assert not (bundle / "simulation.json").exists()


def test_a_tampered_signature_is_refused(devnet, chain, bundle, restore_chain):
    for key in devnet.owner_keys[:2]:
        sign_bundle(bundle, bytes.fromhex(key[2:]), rpc_url=devnet.rpc_url)
    path = bundle / "signatures" / f"{devnet.owners[1]}.json"
    doc = json.loads(path.read_text())
    flipped = doc["signature"][:10] + ("0" if doc["signature"][10] != "0" else "1") + doc["signature"][11:]
    path.write_text(json.dumps(doc | {"signature": flipped}))

    def attempt() -> str:
        # `steward verify` (run first by every chain step) checks each attached signature.
        with pytest.raises(BundleError) as raised:
            execute_bundle(bundle, devnet.rpc_url, bytes.fromhex(devnet.owner_keys[0][2:]))
        (problem,) = raised.value.problems
        return problem

    problem = _nothing_sent(chain, devnet, attempt)
    assert f"signatures/{devnet.owners[1]}.json: signature recovers to" in problem
