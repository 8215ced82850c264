"""Sign a bundle's Safe transaction with an owner's keystore, and execute it once enough owners signed.

A private key lives only in this process's memory, between the keystore's decryption and the
signature: it is never printed, logged, put in an error message or written anywhere. A signature
is an attachment, `signatures/<owner>.json` = {safeTxHash, signer, signature (65 bytes r‖s‖v)}.

`execute_bundle` refuses — before anything is sent — unless the bundle verifies, the chain id is the
bundle's, the Safe's nonce is the SafeTx's, the signatures come from distinct current owners and
reach the threshold, and an `eth_call` of `execTransaction` succeeds. After the transaction is mined
it reconciles the chain with the recommendation and writes simulation.json (mode "reconcile").
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_utils import to_checksum_address

from governance import jsonio
from governance.bundle import SIGNATURES_DIR, SIMULATION
from governance.chain import (
    DEFAULT_TIMEOUT_S,
    CallReverted,
    ChainError,
    ChainReader,
    connect,
    send_transaction,
)
from governance.chain_bundle import (
    ChainBundle,
    load_chain_bundle,
    write_attachment,
)
from governance.chain_bundle_venues import AAVE
from governance.safe import (
    Signature,
    SignatureError,
    pack_signatures,
    recover_signer,
    safe_tx_hash,
    sign_safe_tx,
)
from governance.simulate import (
    SimulationResult,
    diagnose_inner_calls,
    exec_transaction_data,
    explain_safe_revert,
    nonce_problem,
    reconcile_on_chain,
)
from risk.errors import StewardError

_SIGNATURE_FILE = re.compile(r"^0x[0-9a-fA-F]{40}\.json$")
RECEIPT_TIMEOUT_S = 180.0


class SigningError(StewardError):
    """A keystore, password, signature or signer that cannot be used."""


# --- keys ------------------------------------------------------------------------------------------


def password_from_env(var: str) -> str:
    value = os.environ.get(var)
    if value is None:
        raise SigningError(f"environment variable {var} is not set", f"export {var}=… or omit --password-env to be prompted")
    return value


def load_keystore(path: Path, password: str) -> bytes:
    """The private key of a standard (Web3 Secret Storage) keystore; errors never carry key material."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise SigningError(f"keystore {path} cannot be read ({exc.strerror})", "pass the path of a JSON keystore file") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SigningError(f"keystore {path} is not JSON", "pass a Web3 Secret Storage (v3) keystore file") from None
    try:
        key = bytes(Account.decrypt(doc, password))
    except ValueError as exc:
        wrong = "MAC mismatch" in str(exc)
        raise SigningError(
            f"keystore {path}: {'wrong password' if wrong else 'cannot be decrypted'}",
            "check the password (or the variable named by --password-env)" if wrong else "is it a v3 keystore?",
        ) from None
    except (KeyError, TypeError, AttributeError):
        raise SigningError(f"keystore {path} is not a v3 keystore", "pass a Web3 Secret Storage (v3) keystore file") from None
    claimed = doc.get("address") if isinstance(doc, dict) else None
    if claimed:
        actual = Account.from_key(key).address
        if to_checksum_address("0x" + str(claimed).removeprefix("0x")) != actual:
            raise SigningError(f"keystore {path} claims address {claimed} but holds the key of {actual}", "the file was modified")
    return key


def address_of(private_key: bytes) -> str:
    return str(Account.from_key(private_key).address)


# --- signatures ------------------------------------------------------------------------------------


def read_signatures(cb: ChainBundle) -> list[Signature]:
    """Every signatures/<owner>.json, each checked: this bundle's safeTxHash, its named signer, recovered."""
    folder = cb.path / SIGNATURES_DIR
    if not folder.is_dir():
        return []
    want = "0x" + safe_tx_hash(cb.safe_tx).hex()
    signatures = []
    for path in sorted(folder.iterdir()):
        where = f"{SIGNATURES_DIR}/{path.name}"
        if path.name.startswith(".") and path.name.endswith(".partial"):
            continue  # a write in progress (or interrupted) by another signer
        if not _SIGNATURE_FILE.match(path.name) or not path.is_file():
            raise SigningError(f"{where}: not a signature file", "signatures/ holds only <owner address>.json files")
        try:
            doc = json.loads(path.read_text())
            stored_hash, signer, signature = str(doc["safeTxHash"]).lower(), str(doc["signer"]), str(doc["signature"])
        except (OSError, ValueError, KeyError, TypeError):
            raise SigningError(f"{where} is not a signature file", "re-sign with `steward sign`") from None
        if stored_hash != want:
            raise SigningError(f"{where} signs safeTxHash {stored_hash}, this bundle's is {want}",
                               "it was made for another bundle; delete it and re-sign")
        if to_checksum_address(path.name[:-5]) != to_checksum_address(signer):
            raise SigningError(f"{where} names signer {signer}", "the file name must be the signer's address")
        try:
            recovered = recover_signer(cb.safe_tx, signature)
        except SignatureError as exc:
            raise SigningError(f"{where}: {exc.cause}", exc.hint) from None
        if recovered != to_checksum_address(signer):
            raise SigningError(f"{where}: the signature was made by {recovered}, not by {signer}",
                               "delete it and ask the owner to sign again")
        raw = bytes.fromhex(signature[2:])
        signatures.append(Signature(signer=recovered, r=int.from_bytes(raw[:32], "big"),
                                    s=int.from_bytes(raw[32:64], "big"), v=raw[64]))
    return signatures


@dataclass(frozen=True)
class SignOutcome:
    path: Path
    signer: str
    safe_tx_hash: str
    owner_checked: bool
    warnings: tuple[str, ...]


def sign_bundle(
    bundle: Path, private_key: bytes, *, rpc_url: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SignOutcome:
    """Sign the verified bundle's SafeTx; with `rpc_url`, refuse a signer who is not a current owner."""
    cb = load_chain_bundle(bundle)
    signer = address_of(private_key)
    warnings: list[str] = []
    if rpc_url is not None:
        reader = connect(rpc_url, expected_chain_id=cb.chain_id, timeout_s=timeout_s, expected_by="the bundle")
        state = reader.safe_state(cb.safe_tx.safe_address, block=reader.block_number())
        if signer not in state.owners:
            raise SigningError(f"{signer} is not an owner of Safe {cb.safe_tx.safe_address}",
                               f"owners: {', '.join(state.owners)}; use an owner's keystore")
        problem = nonce_problem(state.nonce, cb.safe_tx.nonce)
        if problem is not None and state.nonce > cb.safe_tx.nonce:
            raise SigningError(*problem)
        if problem is not None:
            warnings.append(problem[0])
    else:
        warnings.append("ownership not checked: pass --rpc to check that the signer owns the Safe")
    signature = sign_safe_tx(cb.safe_tx, private_key)
    if recover_signer(cb.safe_tx, signature) != signer:
        raise SigningError("the signature does not recover to the signer", "this is a bug; nothing was written")
    tx_hash = "0x" + safe_tx_hash(cb.safe_tx).hex()
    doc = {"safeTxHash": tx_hash, "signature": signature.hex, "signer": signer}
    path = write_attachment(cb.path, f"{SIGNATURES_DIR}/{signer}.json", jsonio.dumps(doc))
    return SignOutcome(path=path, signer=signer, safe_tx_hash=tx_hash, owner_checked=rpc_url is not None,
                       warnings=tuple(warnings))


# --- execution -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecuteOutcome:
    tx_hash: str
    block: int
    gas_used: int
    sender: str
    signers: tuple[str, ...]
    reconciliation: SimulationResult
    warnings: tuple[str, ...]


def _owner_signatures(reader: ChainReader, cb: ChainBundle, block: int) -> list[Signature]:
    """The bundle's signatures, refused unless all are from current owners and they reach the threshold."""
    state = reader.safe_state(cb.safe_tx.safe_address, block=block)
    if (problem := nonce_problem(state.nonce, cb.safe_tx.nonce)) is not None:
        raise ChainError(*problem)
    signatures = read_signatures(cb)
    strangers = [s.signer for s in signatures if s.signer not in state.owners]
    if strangers:
        raise SigningError(
            f"signature(s) from {', '.join(strangers)}, not an owner of Safe {cb.safe_tx.safe_address}",
            f"delete {', '.join(f'{SIGNATURES_DIR}/{a}.json' for a in strangers)}; owners: {', '.join(state.owners)}",
        )
    if len(signatures) < state.threshold:
        have = ", ".join(s.signer for s in signatures) or "none"
        raise SigningError(
            f"{len(signatures)} owner signature(s) ({have}), the Safe's threshold is {state.threshold}",
            "collect more owners' signatures with `steward sign BUNDLE --keystore FILE`",
        )
    return signatures


def execute_bundle(
    bundle: Path,
    rpc_url: str,
    private_key: bytes,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    receipt_timeout_s: float = RECEIPT_TIMEOUT_S,
) -> ExecuteOutcome:
    """Send `execTransaction` for the bundle's SafeTx from the key's account; then reconcile."""
    cb = load_chain_bundle(bundle)
    if cb.kind != AAVE:  # reconcile after sending reads Aave v3 state only
        raise SigningError(f"{bundle}: steward execute runs Aave v3 bundles only (this is a {cb.kind} bundle)",
                           "execute the signed SafeTx from the Safe UI with the collected signatures; nothing was sent")
    reader = connect(rpc_url, expected_chain_id=cb.chain_id, timeout_s=timeout_s, expected_by="the bundle")
    block = reader.block_number()
    signatures = _owner_signatures(reader, cb, block)
    data = exec_transaction_data(cb.safe_tx, pack_signatures(signatures, tx=cb.safe_tx))
    sender = address_of(private_key)
    safe = cb.safe_tx.safe_address
    try:
        result = reader.call(safe, data, block=block, sender=sender)
    except CallReverted as exc:
        raise ChainError(
            f"the Safe would revert: {explain_safe_revert(exc.reason)}; {diagnose_inner_calls(reader, cb.safe_tx, block=block)}",
            "nothing was sent; run `steward simulate` to see the state, or rebuild the bundle",
        ) from None
    if int.from_bytes(result[-32:] or b"\0", "big") != 1:
        raise ChainError("execTransaction would return false: the batch's call fails", "nothing was sent; run `steward simulate`")
    receipt = send_transaction(
        reader, private_key, safe, data, what="execTransaction", error=ChainError,
        explain=lambda exc: explain_safe_revert(exc.reason), receipt_timeout_s=receipt_timeout_s,
        after_revert_hint="the chain changed between the check and the execution; nothing changed on the Safe",
    )
    tx_hash = receipt["transactionHash"]
    warnings = () if (cb.path / SIMULATION).is_file() else ("the bundle was executed without a prior simulation.json",)
    reconciliation = reconcile_on_chain(reader, cb, tx_hash=tx_hash)
    write_attachment(cb.path, SIMULATION, jsonio.dumps(reconciliation.to_json()))
    return ExecuteOutcome(
        tx_hash=tx_hash, block=int(receipt["blockNumber"], 16), gas_used=int(receipt["gasUsed"], 16), sender=sender,
        signers=tuple(s.signer for s in signatures), reconciliation=reconciliation, warnings=warnings,
    )
