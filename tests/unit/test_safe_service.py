"""Proposing to the Safe Transaction Service, against a local stand-in with the real service's shapes.

Every failure is checked to happen before the POST (the stand-in records each request), and the API
key is checked to be sent as a Bearer token and to appear in no message, log or output.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import typer
from eth_account import Account
from safe_service_standin import SafeServiceStandin
from typer.testing import CliRunner

from governance import cli as steward_cli
from governance import jsonio
from governance.bundle import write_bundle
from governance.calls import encode_call
from governance.chain_bundle import write_attachment
from governance.cli_propose import register
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files, bundle_dir
from governance.safe import (
    SafeTx,
    Signature,
    safe_tx_for_calls,
    safe_tx_from_json,
    safe_tx_hash,
    sign_safe_tx,
)
from governance.safe_service import SafeServiceError, propose_to_service, request_body
from governance.venues.aave_v3 import SET_BORROW_CAP, SET_SUPPLY_CAP

KEYS = [bytes([i]) * 32 for i in (1, 2, 3, 9)]
OWNER, OWNER2, OWNER3, STRANGER = (Account.from_key(k).address for k in KEYS)
SAFE = "0x5300A1a15135EA4dc7aD5a167152C01EFc9b192A"
CONFIGURATOR = "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
API_KEY = "stw-test-9f1c2e7a5b3d4c8e"  # distinctive, to be searched for in every output


def make_tx(nonce: int = 5, chain_id: int = 1, cap: int = 1_800_000) -> SafeTx:
    calls = [encode_call(CONFIGURATOR, SET_SUPPLY_CAP, (WETH, cap), "supply cap"),
             encode_call(CONFIGURATOR, SET_BORROW_CAP, (WETH, cap // 2), "borrow cap")]
    return safe_tx_for_calls(calls, safe_address=SAFE, chain_id=chain_id, nonce=nonce)


def sigs(tx: SafeTx, *keys: bytes) -> list[Signature]:
    return [sign_safe_tx(tx, k) for k in keys]


def fields(tx: SafeTx) -> dict[str, Any]:
    """A transaction as another client would have posted it (for seeding the queue)."""
    return {"to": tx.to, "value": str(tx.value), "data": "0x" + tx.data.hex(), "operation": tx.operation,
            "safeTxGas": "0", "baseGas": "0", "gasPrice": "0", "gasToken": tx.gas_token,
            "refundReceiver": tx.refund_receiver, "nonce": tx.nonce}


@pytest.fixture
def svc(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SAFE_API_KEY", API_KEY)
    with SafeServiceStandin(chain_id=1, api_key=API_KEY, delay_s=1.5) as service:
        service.add_safe(SAFE, [OWNER, OWNER2, OWNER3], threshold=2, nonce=5)
        yield service


def propose(svc: SafeServiceStandin, tx: SafeTx, signatures: list[Signature], **kw: Any) -> Any:
    kw.setdefault("sender", OWNER)
    kw.setdefault("timeout", 2.0)
    kw.setdefault("sleep", lambda s: None)
    return propose_to_service(svc.url, tx, signatures, **kw)


def paths(svc: SafeServiceStandin) -> list[str]:
    return [f"{m} {p.split('/api/')[1].split('/')[0]}/{p.split('/')[3]}" for m, p, _ in svc.log]


# --- the happy path ---------------------------------------------------------------------------------


def test_propose_posts_once_and_reads_back_the_same_hash(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    done = propose(svc, tx, sigs(tx, KEYS[0], KEYS[1]))
    ours = "0x" + safe_tx_hash(tx).hex()
    assert done.safe_tx_hash == ours and done.nonce == 5 and not done.already_queued and done.warnings == ()
    assert done.confirmations == tuple(sorted([OWNER, OWNER2]))
    assert [m for m, _, _ in svc.log] == ["GET", "GET", "POST", "GET"]
    assert svc.log[0][1] == f"/api/v1/safes/{SAFE}/" and svc.log[3][1] == f"/api/v2/multisig-transactions/{ours}/"
    assert "nonce__gte=5" in svc.log[1][2] and "executed=false" in svc.log[1][2]
    assert list(svc.txs) == [ours] and svc.txs[ours].proposer == OWNER and svc.txs[ours].trusted
    assert svc.auth_seen == [f"Bearer {API_KEY}"] * 4
    assert done.service == svc.url


def test_one_signature_below_threshold_is_posted_with_a_warning_and_a_second_owner_adds_theirs(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    first = propose(svc, tx, sigs(tx, KEYS[0]))
    assert first.warnings == ("1 of 2 required signatures: other owners sign in Safe{Wallet}",)
    second = propose(svc, tx, sigs(tx, KEYS[1]), sender=OWNER2)
    assert second.already_queued and second.confirmations == tuple(sorted([OWNER, OWNER2]))
    assert len(svc.txs) == 1


# --- refusals before anything is posted --------------------------------------------------------------


def test_a_service_on_another_chain_refuses_our_hash_and_nothing_is_stored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFE_API_KEY", API_KEY)
    with SafeServiceStandin(chain_id=5, api_key=API_KEY) as other:
        other.add_safe(SAFE, [OWNER, OWNER2], threshold=1, nonce=5)
        tx = make_tx()
        with pytest.raises(SafeServiceError) as raised:
            propose(other, tx, sigs(tx, KEYS[0]))
    assert "HTTP 422" in raised.value.cause
    assert f"does not match provided contract-tx-hash=0x{safe_tx_hash(tx).hex()}" in raised.value.cause
    assert raised.value.hint == "nothing was posted" and other.txs == {}


def test_a_stored_transaction_that_differs_from_ours_is_reported(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    svc.detail_hook = lambda doc: {**doc, "nonce": "6"}
    with pytest.raises(SafeServiceError, match="its fields hash to 0x") as raised:
        propose(svc, tx, sigs(tx, KEYS[0]))
    assert "do not sign it" in raised.value.hint
    svc.detail_hook = lambda doc: {**doc, "safeTxHash": "0x" + "11" * 32}
    with pytest.raises(SafeServiceError, match="stores safeTxHash 0x1111"):
        propose(svc, tx, sigs(tx, KEYS[0]))


def test_a_queued_transaction_at_the_same_nonce_is_a_conflict_named_by_hash(svc: SafeServiceStandin) -> None:
    other = make_tx(cap=1_000_000)
    theirs = svc.queue(SAFE, fields(other), proposer=OWNER2)
    tx = make_tx()
    with pytest.raises(SafeServiceError, match=f"nonce 5 of Safe {SAFE} is already taken by queued transaction") as raised:
        propose(svc, tx, sigs(tx, KEYS[0]))
    assert theirs in raised.value.cause and "Nothing was posted" in raised.value.hint
    assert svc.posts == []


def test_a_conflict_on_the_second_page_is_found_too(svc: SafeServiceStandin) -> None:
    for nonce in range(6, 156):  # 150 later transactions; listed by descending nonce, nonce 5 is on page 2
        svc.queue(SAFE, fields(make_tx(nonce=nonce)), proposer=OWNER2)
    theirs = svc.queue(SAFE, fields(make_tx(cap=7)), proposer=OWNER2, trusted=False)
    tx = make_tx()
    with pytest.raises(SafeServiceError, match=theirs):
        propose(svc, tx, sigs(tx, KEYS[0]))
    assert [q for m, _, q in svc.log if m == "GET"][-1].endswith("offset=100") and svc.posts == []


def test_used_nonces_unknown_safes_and_strangers_are_refused_before_posting(svc: SafeServiceStandin) -> None:
    old = make_tx(nonce=4)
    with pytest.raises(SafeServiceError, match="uses nonce 4, but Safe .* is already at nonce 5"):
        propose(svc, old, sigs(old, KEYS[0]))
    tx = make_tx()
    with pytest.raises(SafeServiceError, match=f"{STRANGER} not an owner"):
        propose(svc, tx, sigs(tx, KEYS[0], KEYS[3]))
    svc.safes.clear()
    with pytest.raises(SafeServiceError, match=f"Safe {SAFE} is not known to the service"):
        propose(svc, tx, sigs(tx, KEYS[0]))
    assert svc.posts == []


def test_signature_problems_are_found_locally_without_any_request(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    with pytest.raises(SafeServiceError, match=f"sender {OWNER2} has not signed"):
        propose(svc, tx, sigs(tx, KEYS[0]), sender=OWNER2)
    forged = Signature(signer=OWNER2, r=sigs(tx, KEYS[0])[0].r, s=sigs(tx, KEYS[0])[0].s, v=sigs(tx, KEYS[0])[0].v)
    with pytest.raises(SafeServiceError, match=f"labelled {OWNER2} was made by {OWNER}"):
        propose(svc, tx, [forged], sender=OWNER2)
    other = make_tx(cap=5)
    with pytest.raises(SafeServiceError, match="was made by"):
        propose(svc, tx, sigs(other, KEYS[0]))  # signed another transaction
    with pytest.raises(SafeServiceError, match="no signatures"):
        propose(svc, tx, [])
    assert svc.log == []


def test_queued_earlier_nonces_and_gaps_are_warned(svc: SafeServiceStandin) -> None:
    svc.safes[SAFE].nonce = 3
    svc.queue(SAFE, fields(make_tx(nonce=3)), proposer=OWNER2)
    tx = make_tx(nonce=5)
    done = propose(svc, tx, sigs(tx, KEYS[0], KEYS[1]))
    assert done.warnings == (("the Safe is at nonce 3; nonces [3] are queued before this one, [4] are missing: this "
                              "transaction cannot execute until they do"),)


# --- 4xx, 5xx, timeouts --------------------------------------------------------------------------------


def test_a_missing_api_key_is_a_clear_401_and_nothing_is_posted(svc: SafeServiceStandin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFE_API_KEY")
    tx = make_tx()
    with pytest.raises(SafeServiceError, match="HTTP 401: Authentication credentials were not provided") as raised:
        propose(svc, tx, sigs(tx, KEYS[0]))
    assert "SAFE_API_KEY" in raised.value.hint and svc.auth_seen == [None] and svc.posts == []
    monkeypatch.setenv("OTHER_VAR", "wrong")
    with pytest.raises(SafeServiceError, match="HTTP 401: Invalid token"):
        propose(svc, tx, sigs(tx, KEYS[0]), api_key_env="OTHER_VAR")


def test_5xx_is_retried_with_backoff_then_reported(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    sleeps: list[float] = []
    svc.fail_next("info", "500")
    assert propose(svc, tx, sigs(tx, KEYS[0]), sleep=sleeps.append).safe_tx_hash
    assert sleeps == [0.5] and [m for m, _, _ in svc.log][:2] == ["GET", "GET"]
    svc.fail_next("list", "503", times=3)
    with pytest.raises(SafeServiceError, match=r"GET /api/v2/safes/.*/multisig-transactions/ failed after 3 tries \(HTTP 503\)"):
        propose(svc, make_tx(cap=9), sigs(make_tx(cap=9), KEYS[0]))
    assert len(svc.posts) == 1  # the first, successful proposal only


def test_timeouts_are_retried_then_reported_before_anything_is_posted(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    svc.fail_next("info", "timeout", times=2)
    started = time.perf_counter()
    with pytest.raises(SafeServiceError, match=r"failed after 2 tries \(timed out after 0.5 s\)"):
        propose(svc, tx, sigs(tx, KEYS[0]), timeout=0.5, retries=2)
    assert time.perf_counter() - started < 2.5 and svc.posts == []


def test_a_failed_or_slow_post_is_retried_safely_because_the_service_is_idempotent(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    svc.fail_next("post", "timeout")  # the service stores it late, after the client gave up
    done = propose(svc, tx, sigs(tx, KEYS[0]), timeout=0.8)
    assert len(svc.posts) == 2 and list(svc.txs) == [done.safe_tx_hash]
    time.sleep(1.0)  # let the late first POST finish: still one transaction
    assert list(svc.txs) == [done.safe_tx_hash] and svc.txs[done.safe_tx_hash].confirmations.keys() == {OWNER}
    other = make_tx(nonce=6)
    svc.fail_next("post", "500", times=3)
    with pytest.raises(SafeServiceError, match="may or may not have been recorded") as raised:
        propose(svc, other, sigs(other, KEYS[0]))
    assert "proposing again is safe" in raised.value.hint


def test_the_api_key_is_never_in_a_message_a_log_or_an_outcome(svc: SafeServiceStandin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tx = make_tx()
    texts = [repr(propose(svc, tx, sigs(tx, KEYS[0])))]
    scenarios = [lambda: svc.fail_next("info", "500", 3), lambda: svc.fail_next("list", "timeout", 3),
                 lambda: svc.queue(SAFE, fields(make_tx(nonce=7, cap=3)), proposer=OWNER2)]
    for i, arrange in enumerate(scenarios):
        arrange()
        t = make_tx(nonce=7, cap=100 + i)
        with pytest.raises(SafeServiceError) as raised:
            propose(svc, t, sigs(t, KEYS[0]), timeout=0.8)
        texts += [str(raised.value), raised.value.cause, raised.value.hint, repr(raised.value)]
    assert all(API_KEY not in t for t in texts)
    assert API_KEY not in caplog.text
    assert f"Bearer {API_KEY}" in svc.auth_seen  # it was sent, only to the service


# --- the stand-in refuses what the real service refuses ------------------------------------------------


def test_the_standin_rejects_bad_requests_like_the_service(svc: SafeServiceStandin) -> None:
    tx = make_tx()
    url = f"{svc.url}/api/v2/safes/{SAFE}/multisig-transactions/"
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

    def post(body: Any, raw: bytes | None = None, where: str = url) -> requests.Response:
        return requests.post(where, data=raw if raw is not None else json.dumps(body), headers=headers, timeout=5)

    good = request_body(tx, sigs(tx, KEYS[0]), sender=OWNER)
    missing = post({k: v for k, v in good.items() if k not in ("to", "nonce", "contractTransactionHash")})
    assert missing.status_code == 422
    assert missing.json() == {"to": ["This field is required."], "nonce": ["This field is required."],
                              "contractTransactionHash": ["This field is required."]}
    bad = post({**good, "to": good["to"].lower(), "value": "-1", "operation": 7, "safeTxGas": "1.5"})
    assert bad.status_code == 422 and bad.json() == {
        "to": [f"Address {good['to'].lower()} is not checksumed"],
        "value": ["Ensure this value is greater than or equal to 0."],
        "operation": ["Unknown operation"], "safeTxGas": ["A valid integer is required."]}
    assert post(None, raw=b"{not json").status_code == 400
    wrong_hash = post({**good, "contractTransactionHash": "0x" + "ab" * 32})
    assert wrong_hash.status_code == 422
    assert wrong_hash.json()["nonFieldErrors"][0].startswith(f"Contract-transaction-hash=0x{safe_tx_hash(tx).hex()} does not match")
    stranger = post(request_body(tx, sigs(tx, KEYS[3]), sender=OWNER))
    assert stranger.status_code == 422 and f"Signer={STRANGER} is not an owner or delegate" in stranger.json()["nonFieldErrors"][0]
    other_sender = post({**good, "sender": OWNER2})
    assert "Signature does not match sender" in other_sender.json()["nonFieldErrors"][0]
    assert post({**good, "operation": 2}).json() == {"nonFieldErrors": ["Operation CREATE not supported. Please use Safe CreateLib"]}
    assert post(good, where=url.replace(SAFE, SAFE.lower())).json()["message"] == "Checksum address validation failed"
    assert svc.txs == {}
    assert post(good).status_code == 201 and post(good).status_code == 201 and len(svc.txs) == 1
    detail = requests.get(f"{svc.url}/api/v2/multisig-transactions/0x{'00' * 32}/", headers=headers, timeout=5)
    assert detail.status_code == 404


def test_the_standin_can_refuse_delegatecalls_to_untrusted_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFE_API_KEY", API_KEY)
    with SafeServiceStandin(chain_id=1, api_key=API_KEY, delegatecall_allowed_to=[CONFIGURATOR]) as strict:
        strict.add_safe(SAFE, [OWNER], threshold=1, nonce=5)
        tx = make_tx()  # DELEGATECALL to MultiSendCallOnly, not trusted here
        with pytest.raises(SafeServiceError, match="Operation DELEGATE_CALL is not allowed"):
            propose(strict, tx, sigs(tx, KEYS[0]))


# --- the command --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = gather_inputs(None)
    target = bundle_dir(tmp_path_factory.mktemp("bundles"), inputs)
    write_bundle(build_files(inputs), target)
    return target


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        pass

    register(app, guarded=steward_cli.guarded, out=steward_cli.out, err=steward_cli.err)
    return app


def _sign_offline(bundle: Path, key: bytes) -> None:
    """signatures/<owner>.json as `steward sign` writes it (without re-verifying the bundle each time)."""
    tx = safe_tx_from_json(json.loads((bundle / "safe-tx.json").read_text()))
    sig = sign_safe_tx(tx, key)
    doc = {"safeTxHash": "0x" + safe_tx_hash(tx).hex(), "signature": sig.hex, "signer": sig.signer}
    write_attachment(bundle, f"signatures/{sig.signer}.json", jsonio.dumps(doc))


def test_cli_propose_posts_the_signed_bundle_and_prints_no_key(demo_bundle: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(demo_bundle, bundle)
    monkeypatch.setenv("SAFE_API_KEY", API_KEY)
    runner = CliRunner()
    with SafeServiceStandin(chain_id=1337, api_key=API_KEY) as service:
        nonce = json.loads((bundle / "safe-tx.json").read_text())["nonce"]
        service.add_safe(SAFE, [OWNER, OWNER2, OWNER3], threshold=2, nonce=int(nonce))
        unsigned = runner.invoke(_app(), ["propose", str(bundle), "--safe-service", service.url])
        assert unsigned.exit_code == 2 and "error:" in unsigned.output and "no owner signatures" in unsigned.output
        assert "hint:" in unsigned.output and service.log == []
        for key in KEYS[:2]:
            _sign_offline(bundle, key)
        done = runner.invoke(_app(), ["propose", str(bundle), "--safe-service", service.url, "--sender", OWNER2])
        assert done.exit_code == 0, done.output
        stored = json.loads((bundle / "safe-tx.json").read_text())["safeTxHash"]
        assert f"proposed: safeTxHash {stored}" in done.output and f"by {OWNER2}" in done.output
        assert list(service.txs) == [stored] and service.txs[stored].proposer == OWNER2
        assert set(service.txs[stored].confirmations) == {OWNER, OWNER2}
    both = runner.invoke(_app(), ["propose", str(bundle), "--safe-service", "http://127.0.0.1:9", "--governor"])
    assert both.exit_code == 2 and "exactly one of --safe-service URL or --governor" in both.output
    assert all(API_KEY not in r.output for r in (unsigned, done, both))
