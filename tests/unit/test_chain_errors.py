"""Chain steps' failures that need no chain: dead or wrong RPCs, tampered bundles, bad keys and signatures.

A tiny JSON-RPC server on loopback stands in for a node where a real answer matters (a chain id, an
HTTP error); it records every request, so "nothing was sent" is checked, not assumed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from jsonrpc_standin import JsonRpcServer, rpc_error, rpc_result
from typer.testing import CliRunner

from governance.bundle import BundleError, sha256, write_bundle
from governance.calls import encode_call
from governance.chain import (
    CallReverted,
    ChainError,
    RpcError,
    connect,
    redact_url,
    revert_reason,
)
from governance.chain_bundle import (
    check_calls,
    load_chain_bundle,
    verify_core,
    write_attachment,
)
from governance.cli import app
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files, bundle_dir
from governance.safe import safe_tx_for_calls, safe_tx_json
from governance.signing import (
    SigningError,
    execute_bundle,
    load_keystore,
    password_from_env,
    read_signatures,
    sign_bundle,
)
from governance.simulate import compare, nonce_problem, simulate
from governance.venues.aave_v3 import SET_SUPPLY_CAP

OWNER_KEY = bytes.fromhex("59c6995e998f97a0a8a1b5b3c6c6b1a1b2c3d4e5f60718293a4b5c6d7e8f9012")
PASSWORD = "correct horse battery staple"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the socket is: nothing listens there


class FakeNode(JsonRpcServer):
    """A JSON-RPC endpoint answering from `answers` (method → result, or callable → (status, body))."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.methods: list[str] = []
        super().__init__()

    def respond(self, request: dict[str, Any]) -> tuple[int, Any]:
        self.methods.append(request["method"])
        answer = self.answers.get(request["method"])
        if callable(answer):
            return answer(request)
        return 200, rpc_error(request) if answer is None else rpc_result(request, answer)


# --- connect ----------------------------------------------------------------------------------------


def test_a_dead_rpc_fails_fast_after_three_tries_with_backoff() -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{_closed_port()}/v2/SECRET-API-KEY"
    started = time.perf_counter()
    with pytest.raises(ChainError) as raised:
        connect(url, expected_chain_id=1337, timeout_s=1, sleep=sleeps.append)
    assert time.perf_counter() - started < 2
    assert raised.value.cause.startswith(f"RPC http://127.0.0.1:{url.split(':')[2].split('/')[0]}/… unreachable after 3 tries")
    assert "connection refused" in raised.value.cause
    assert "SECRET-API-KEY" not in str(raised.value)
    assert sleeps == [0.25, 0.5]  # exponential backoff between the three tries


def test_a_node_of_another_chain_is_refused_after_one_question() -> None:
    with FakeNode({"eth_chainId": "0x1"}) as node, pytest.raises(
        ChainError, match="serves chain 1, but the policy's venue is on chain 1337"
    ) as raised:
        connect(node.url, expected_chain_id=1337)
    assert node.methods == ["eth_chainId"]
    assert "1337" in raised.value.hint


def test_http_errors_and_rpc_errors_are_answers_not_retried() -> None:
    with FakeNode({"eth_chainId": lambda r: (401, b"unauthorized")}) as node:
        with pytest.raises(ChainError, match="answered HTTP 401") as raised:
            connect(node.url, expected_chain_id=1, sleep=lambda s: None)
        assert node.methods == ["eth_chainId"] and "API key" in raised.value.hint
    with FakeNode({"eth_chainId": "0x1"}) as node:
        reader = connect(node.url, expected_chain_id=1)
        with pytest.raises(RpcError, match="eth_blockNumber failed .*method not found"):
            reader.block_number()
        assert node.methods == ["eth_chainId", "eth_blockNumber"]


def test_a_body_that_is_not_json_rpc_is_named() -> None:
    with FakeNode({"eth_chainId": lambda r: (200, b"<html>gateway</html>")}) as node, pytest.raises(
        ChainError, match="not JSON-RPC"
    ):
        connect(node.url, expected_chain_id=1)


def test_a_revert_is_decoded_and_a_read_names_its_block() -> None:
    data = "0x08c379a0" + abi_encode(["string"], ["GS013"]).hex()

    def revert(request: dict) -> tuple[int, dict]:
        assert request["params"][1] == hex(1234)  # the pinned block, not "latest"
        return 200, {"jsonrpc": "2.0", "id": request["id"], "error": {"code": 3, "message": "execution reverted", "data": data}}

    with FakeNode({"eth_chainId": "0x1", "eth_call": revert}) as node:
        reader = connect(node.url, expected_chain_id=1)
        with pytest.raises(CallReverted) as raised:
            reader.call("0x" + "11" * 20, b"\x00" * 4, block=1234)
        assert raised.value.reason == "GS013"


def test_revert_reasons_and_urls() -> None:
    assert revert_reason(None, "execution reverted: 4") == "4"
    assert revert_reason("0x4e487b71" + (17).to_bytes(32, "big").hex(), "x") == "panic 0x11"
    assert revert_reason("0xdeadbeef", "x") == "custom error 0xdeadbeef"
    assert redact_url("https://eth.example.com/v2/KEY?x=1") == "https://eth.example.com/…"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    with pytest.raises(ChainError, match="not an http"):
        connect("ws://127.0.0.1:8545", expected_chain_id=1)


# --- bundles, keys and signatures offline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded demo's bundle (chain 1337, no chain needed to build it)."""
    inputs = gather_inputs(None)
    target = bundle_dir(tmp_path_factory.mktemp("bundles"), inputs)
    write_bundle(build_files(inputs), target)
    return target


@pytest.fixture
def bundle(offline_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(offline_bundle, copy)
    return copy


@pytest.fixture
def keystore(tmp_path: Path) -> Path:
    path = tmp_path / "owner.json"
    path.write_text(json.dumps(Account.encrypt(OWNER_KEY, PASSWORD, kdf="scrypt", iterations=2**10)))
    return path


def _files_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file())


def test_sign_without_rpc_warns_writes_a_recoverable_signature_and_never_the_key(bundle: Path, keystore: Path) -> None:
    key = load_keystore(keystore, PASSWORD)
    signed = sign_bundle(bundle, key)
    signer = Account.from_key(OWNER_KEY).address
    assert signed.signer == signer and not signed.owner_checked
    assert any("ownership not checked" in w for w in signed.warnings)
    assert signed.path == bundle / "signatures" / f"{signer}.json"
    (sig,) = read_signatures(load_chain_bundle(bundle))
    assert sig.signer == signer
    doc = json.loads(signed.path.read_text())
    assert doc["safeTxHash"] == json.loads((bundle / "safe-tx.json").read_text())["safeTxHash"]
    assert len(bytes.fromhex(doc["signature"][2:])) == 65
    assert OWNER_KEY.hex() not in _files_text(bundle).lower() and OWNER_KEY.hex() not in repr(signed).lower()


def test_cli_sign_reads_the_password_from_the_environment_and_prints_no_key(
    bundle: Path, keystore: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEWARD_TEST_PW", PASSWORD)
    result = CliRunner().invoke(app, ["sign", str(bundle), "--keystore", str(keystore), "--password-env", "STEWARD_TEST_PW"])
    assert result.exit_code == 0, result.output
    assert "signed safeTxHash 0x" in result.output and "ownership not checked" in result.output
    assert OWNER_KEY.hex() not in result.output.lower() and PASSWORD not in result.output
    monkeypatch.delenv("STEWARD_TEST_PW")
    result = CliRunner().invoke(app, ["sign", str(bundle), "--keystore", str(keystore), "--password-env", "STEWARD_TEST_PW"])
    assert result.exit_code == 2 and "STEWARD_TEST_PW is not set" in result.output


def test_a_wrong_password_or_a_broken_keystore_is_explained(keystore: Path, tmp_path: Path) -> None:
    with pytest.raises(SigningError, match="wrong password") as raised:
        load_keystore(keystore, "not the password")
    assert OWNER_KEY.hex() not in str(raised.value).lower()
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(SigningError, match="not a v3 keystore|cannot be decrypted"):
        load_keystore(tmp_path / "junk.json", PASSWORD)
    with pytest.raises(SigningError, match="cannot be read"):
        load_keystore(tmp_path / "missing.json", PASSWORD)
    with pytest.raises(SigningError, match="NO_SUCH_VAR"):
        password_from_env("NO_SUCH_VAR")


def test_a_tampered_bundle_is_never_signed_simulated_or_executed(bundle: Path) -> None:
    (bundle / "report.md").write_text((bundle / "report.md").read_text().replace("LTV", "LTV (edited)", 1))
    for step in (lambda: sign_bundle(bundle, OWNER_KEY), lambda: simulate(bundle, "http://127.0.0.1:1"),
                 lambda: execute_bundle(bundle, "http://127.0.0.1:1", OWNER_KEY)):
        with pytest.raises(BundleError) as raised:
            step()
        assert any("report.md" in p for p in raised.value.problems)
    assert not (bundle / "signatures").exists() and not (bundle / "simulation.json").exists()


def test_attachments_pass_verification_but_stray_files_do_not(bundle: Path) -> None:
    manifest_sha = sha256((bundle / "manifest.json").read_bytes())
    write_attachment(bundle, "simulation.json", b'{"bundle_manifest_sha256": "%s", "ok": true}\n' % manifest_sha.encode())
    verify_core(bundle)
    # a simulation record of another bundle, or one that failed, is itself a problem for signers
    write_attachment(bundle, "simulation.json", b'{"bundle_manifest_sha256": "00", "ok": true}\n')
    with pytest.raises(BundleError) as raised:
        verify_core(bundle)
    assert "another bundle" in raised.value.problems[0]
    write_attachment(bundle, "simulation.json", b'{"bundle_manifest_sha256": "%s", "ok": false}\n' % manifest_sha.encode())
    with pytest.raises(BundleError, match="problem"):
        verify_core(bundle)
    verify_core(bundle, require_passed_simulation=False)  # simulating again stays possible
    write_attachment(bundle, "simulation.json", b'{"bundle_manifest_sha256": "%s", "ok": true}\n' % manifest_sha.encode())
    (bundle / "notes.txt").write_text("hello")
    with pytest.raises(BundleError) as raised:
        verify_core(bundle)
    assert [p for p in raised.value.problems if "notes.txt" in p] and not [p for p in raised.value.problems if "simulation" in p]
    with pytest.raises(BundleError, match="not an attachment"):
        write_attachment(bundle, "report.md", b"x")


def test_a_dead_rpc_stops_simulate_and_execute_before_anything_is_written(bundle: Path) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ChainError, match="unreachable after 3 tries"):
        simulate(bundle, dead, timeout_s=1)
    assert not (bundle / "simulation.json").exists()


def test_execute_on_a_node_of_another_chain_sends_nothing(bundle: Path) -> None:
    sign_bundle(bundle, OWNER_KEY)
    with FakeNode({"eth_chainId": "0x1"}) as node, pytest.raises(
        ChainError, match="serves chain 1, but the bundle is on chain 1337"
    ):
        execute_bundle(bundle, node.url, OWNER_KEY)
    assert node.methods == ["eth_chainId"]


def test_a_signature_for_another_transaction_or_by_another_key_is_refused(bundle: Path) -> None:
    signed = sign_bundle(bundle, OWNER_KEY)
    cb = load_chain_bundle(bundle)
    doc = json.loads(signed.path.read_text())
    signed.path.write_text(json.dumps(doc | {"safeTxHash": "0x" + "00" * 32}))
    with pytest.raises(SigningError, match="signs safeTxHash 0x00"):
        read_signatures(cb)
    other = Account.create().address
    signed.path.rename(bundle / "signatures" / f"{other}.json")
    (bundle / "signatures" / f"{other}.json").write_text(json.dumps(doc | {"signer": other}))
    with pytest.raises(SigningError, match=f"made by {doc['signer']}, not by {other}"):
        read_signatures(cb)


def test_calls_that_differ_from_the_recommendation_are_listed(bundle: Path) -> None:
    cb = load_chain_bundle(bundle)
    rec = json.loads((bundle / "recommendation.json").read_text())
    calls = json.loads((bundle / "calls.json").read_text())
    configurator = cb.policy.venue.addresses.pool_configurator
    weth = rec["markets"]["WETH"]
    supply = next(
        i for i, c in enumerate(calls) if c["signature"].startswith("setSupplyCap") and c["args"]["asset"] == weth["asset"]
    )
    proposed = weth["parameters"]["supply_cap"]["proposed"]["tokens"]

    class Raw:
        def __init__(self, c: dict) -> None:
            self.to, self.value, self.data = c["to"], int(c["value"]), c["data"]

    raw = [Raw(c) for c in calls]
    bigger = encode_call(configurator, SET_SUPPLY_CAP, (weth["asset"], proposed + 1), "forged")
    forged = safe_tx_for_calls([*raw[:supply], bigger, *raw[supply + 1:]], safe_address=cb.safe_tx.safe_address,
                               chain_id=cb.chain_id, nonce=cb.safe_tx.nonce)
    with pytest.raises(BundleError) as raised:
        check_calls(forged, rec, configurator)
    assert raised.value.problems == (
        f"call {supply} (setSupplyCap on WETH) sets ({proposed + 1},), the recommendation says ({proposed},)",
    )
    dropped = safe_tx_for_calls(raw[:supply] + raw[supply + 1:], safe_address=cb.safe_tx.safe_address,
                                chain_id=cb.chain_id, nonce=cb.safe_tx.nonce)
    with pytest.raises(BundleError) as raised:
        check_calls(dropped, rec, configurator)
    assert raised.value.problems == ("the recommendation changes WETH supply_cap but no call sets it",)
    check_calls(cb.safe_tx, rec, configurator)  # the bundle's own transaction passes
    # a consistent forgery (safe-tx.json re-hashed, manifest updated) is still stopped by verify
    (bundle / "safe-tx.json").write_text(json.dumps(safe_tx_json(forged)))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["safe-tx.json"] = hashlib.sha256((bundle / "safe-tx.json").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError) as raised:
        load_chain_bundle(bundle)
    assert any("safe-tx.json: differs from the rebuild" in p for p in raised.value.problems)


def test_compare_separates_differences_unexpected_changes_and_recommended_moves() -> None:
    pre = {"WETH": {"ltv": 8050, "supply_cap": 10, "reserve_factor": 1500}, "0xOther": {"configuration": "0x1"}}
    post = {"WETH": {"ltv": 8000, "supply_cap": 11, "reserve_factor": 1000}, "0xOther": {"configuration": "0x2"}}
    differences, unexpected, changed = compare(pre, post, {"WETH": {"ltv": 8000, "supply_cap": 12}})
    assert differences == ("WETH supply_cap: 11 on chain, 12 recommended (was 10)",)
    assert unexpected == ("0xOther configuration: 0x1 → 0x2", "WETH reserve_factor: 1500 → 1000")
    assert changed == ("WETH ltv: 8050 → 8000",)
    assert compare(pre, pre, {"WETH": {"ltv": 8050}}) == ((), (), ())


def test_nonce_problems_say_which_way() -> None:
    assert nonce_problem(3, 3) is None
    assert nonce_problem(4, 3)[0] == "nonce 3 already used (the Safe is at nonce 4)"
    assert nonce_problem(1, 3)[0] == "nonce 3 not yet reached (the Safe is at nonce 1)"
    assert "1..2" in nonce_problem(1, 3)[1]
