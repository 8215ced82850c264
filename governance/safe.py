"""Safe multisig output, public entry: the Transaction Builder file, the SafeTx and its hash, signing, red flags.

The pieces live in `safe_batch` (Tx Builder JSON) and `safe_tx` (SafeTx, MultiSend, EIP-712); this
module adds what owners do with a SafeTx — sign it offline, check signatures, pack them in the
order `checkSignatures` requires — and the checks that tell a signer what looks unusual.

Private keys are only ever passed through to the signer and never appear in errors or reprs.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from eth_keys import keys
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import is_address, to_checksum_address

from governance.safe_batch import (
    TxBuilderError,
    build_tx_builder_batch,
    decode_tx_builder_batch,
    tx_builder_checksum,
    verify_tx_builder_checksum,
)
from governance.safe_tx import (
    MULTISEND_CALL_ONLY_141,
    ZERO_ADDRESS,
    MultiSendError,
    MultiSendTx,
    Operation,
    SafeTx,
    SafeTxError,
    decode_multisend,
    domain_hash,
    eip712_typed_data,
    encode_multisend,
    hex_to_bytes,
    inner_calls,
    message_hash,
    pack_multisend,
    safe_tx_for_calls,
    safe_tx_hash,
    safe_tx_json,
)

__all__ = [
    "MULTISEND_CALL_ONLY_141",
    "ZERO_ADDRESS",
    "MultiSendError",
    "MultiSendTx",
    "Operation",
    "SafeTx",
    "SafeTxError",
    "Signature",
    "SignatureError",
    "TxBuilderError",
    "build_tx_builder_batch",
    "decode_multisend",
    "decode_tx_builder_batch",
    "domain_hash",
    "eip712_typed_data",
    "encode_multisend",
    "flag_call",
    "flag_unusual",
    "inner_calls",
    "message_hash",
    "pack_multisend",
    "pack_signatures",
    "recover_signer",
    "safe_tx_for_calls",
    "safe_tx_from_json",
    "safe_tx_hash",
    "safe_tx_json",
    "sign_safe_tx",
    "tx_builder_checksum",
    "unusual_by_call",
    "verify_tx_builder_checksum",
]

# secp256k1 group order: a signature needs 0 < r, s < N.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class SignatureError(SafeTxError):
    """A signature or key that cannot be used for a Safe transaction."""


@dataclass(frozen=True, slots=True)
class Signature:
    """An owner's ECDSA signature over a safeTxHash, with v in {27, 28} as Safe expects for EIP-712."""

    signer: str
    r: int
    s: int
    v: int

    def __post_init__(self) -> None:
        if not is_address(self.signer):
            raise SignatureError(f"signer {self.signer!r} is not an address", "pass the owner's 0x address")
        object.__setattr__(self, "signer", to_checksum_address(self.signer))
        if self.v not in (27, 28) or not (0 < self.r < _SECP256K1_N and 0 < self.s < _SECP256K1_N):
            raise SignatureError(
                f"signature by {self.signer} has v={self.v} or r/s out of range",
                "an EIP-712 owner signature is r ‖ s ‖ v with v 27 or 28",
            )

    def to_bytes(self) -> bytes:
        """r ‖ s ‖ v, 65 bytes, the layout `execTransaction` expects for each owner."""
        return self.r.to_bytes(32, "big") + self.s.to_bytes(32, "big") + bytes([self.v])

    @property
    def hex(self) -> str:
        return "0x" + self.to_bytes().hex()


def _private_key(private_key: bytes | str) -> keys.PrivateKey:
    # Errors here name sizes and ranges only: nothing derived from the key may reach a message or traceback.
    hint = "pass the owner key as 32 raw bytes or 64 hex characters; it is never written anywhere"
    if isinstance(private_key, str):
        text = private_key.removeprefix("0x")
        if not re.fullmatch(r"[0-9a-fA-F]*", text) or len(text) % 2:
            raise SignatureError("private key is not hex", hint)
        raw = bytes.fromhex(text)
    elif isinstance(private_key, (bytes, bytearray)):
        raw = bytes(private_key)
    else:
        raise SignatureError(f"private key is a {type(private_key).__name__}, not bytes or hex", hint)
    if len(raw) != 32:
        raise SignatureError(f"private key is {len(raw)} bytes, not 32", hint)
    try:
        return keys.PrivateKey(raw)
    except ValidationError:
        raise SignatureError("private key is outside the secp256k1 range", hint) from None


def sign_safe_tx(tx: SafeTx, private_key: bytes | str) -> Signature:
    """Sign the safeTxHash directly (EIP-712, what a hardware wallet produces from the typed data)."""
    key = _private_key(private_key)
    sig = key.sign_msg_hash(safe_tx_hash(tx))
    return Signature(signer=key.public_key.to_checksum_address(), r=sig.r, s=sig.s, v=sig.v + 27)


def _as_signature_parts(signature: Signature | bytes | str) -> tuple[int, int, int]:
    if isinstance(signature, Signature):
        return signature.r, signature.s, signature.v
    raw = hex_to_bytes(signature, "signature")
    if len(raw) != 65:
        raise SignatureError(f"signature is {len(raw)} bytes, not 65", "an owner signature is r ‖ s ‖ v (65 bytes)")
    return int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64]


def recover_signer(tx: SafeTx, signature: Signature | bytes | str) -> str:
    """The address whose key made `signature` over this transaction's safeTxHash."""
    r, s, v = _as_signature_parts(signature)
    if v not in (27, 28):
        raise SignatureError(
            f"signature v={v} is not 27 or 28",
            "only EIP-712 owner signatures are handled (no eth_sign v>30, contract or approved-hash ones)",
        )
    try:
        public = keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(safe_tx_hash(tx))
    except (BadSignature, ValidationError) as exc:
        raise SignatureError(
            f"signature does not recover to any key ({exc})",
            "the signature is corrupt; ask the owner to sign again",
        ) from None
    return public.to_checksum_address()


def pack_signatures(signatures: Sequence[Signature], *, tx: SafeTx | None = None) -> bytes:
    """Concatenate signatures sorted by signer address ascending, as the Safe's `checkNSignatures` requires.

    With `tx`, each signature is first recovered and must come from the signer it names.
    """
    if not signatures:
        raise SignatureError("no signatures to pack", "collect at least the Safe's threshold of owner signatures")
    signers = [s.signer for s in signatures]
    if len(set(signers)) != len(signers):
        raise SignatureError(f"the same owner signed twice: {sorted(signers)}", "keep one signature per owner")
    if tx is not None:
        for sig in signatures:
            if (got := recover_signer(tx, sig)) != sig.signer:
                raise SignatureError(f"signature labelled {sig.signer} was made by {got}",
                                     "it was made for another transaction or by another key")
    return b"".join(s.to_bytes() for s in sorted(signatures, key=lambda s: int(s.signer, 16)))


def flag_unusual(tx: SafeTx, *, allowed_targets: Collection[str]) -> list[str]:
    """What a signer should look at twice, one line each; an empty list means nothing unusual.

    Flags DELEGATECALL to anything but MultiSendCallOnly 1.4.1, DELEGATECALL inside the batch,
    CALL into the MultiSend contract itself, any non-zero value, targets outside `allowed_targets`,
    gas refund settings, and MultiSend data that does not decode.
    """
    own, per_call = unusual_by_call(tx, allowed_targets=allowed_targets)
    return [*own, *(line for lines in per_call for line in lines)]


def unusual_by_call(tx: SafeTx, *, allowed_targets: Collection[str]) -> tuple[list[str], list[list[str]]]:
    """`flag_unusual`'s lines, split: the Safe transaction's own, and each inner call's in batch order
    (no inner calls when the MultiSend data does not decode; that is then a line of the transaction's)."""
    flags: list[str] = []
    if tx.operation == Operation.DELEGATECALL and tx.to != MULTISEND_CALL_ONLY_141:
        flags.append(
            f"DELEGATECALL to {tx.to}, not MultiSendCallOnly 1.4.1: that code runs with the Safe's storage and funds"
        )
    if tx.operation == Operation.CALL and tx.to == MULTISEND_CALL_ONLY_141:
        flags.append(
            "CALL (not DELEGATECALL) to MultiSendCallOnly: the batch would run as the MultiSend contract, not the Safe"
        )
    if tx.value:
        flags.append(f"the Safe transaction sends {tx.value} wei of native currency")
    refund = (tx.safe_tx_gas, tx.base_gas, tx.gas_price, tx.gas_token != ZERO_ADDRESS, tx.refund_receiver != ZERO_ADDRESS)
    if any(refund):
        flags.append(
            f"gas refund settings are set (safeTxGas={tx.safe_tx_gas}, baseGas={tx.base_gas}, gasPrice={tx.gas_price}, "
            f"gasToken={tx.gas_token}, refundReceiver={tx.refund_receiver}): the Safe pays the executor"
        )
    try:
        calls = inner_calls(tx)
    except MultiSendError as exc:
        return [*flags, f"MultiSend data does not decode: {exc.cause}"], []
    is_batch = tx.operation == Operation.DELEGATECALL and tx.to == MULTISEND_CALL_ONLY_141
    per_call = [
        flag_call(call, allowed_targets=allowed_targets, where=f"call {i} to {call.to}" if is_batch else f"call to {call.to}",
                  in_batch=is_batch)
        for i, call in enumerate(calls)
    ]
    return flags, per_call


def flag_call(call: MultiSendTx, *, allowed_targets: Collection[str] | None, where: str, in_batch: bool = True) -> list[str]:
    """One call's red flags. `in_batch`: the call is a MultiSend entry, so its own operation and value are
    checked here (for a lone Safe transaction they are the transaction's). `allowed_targets` None: no
    allow-list to check against (only the operation and value are looked at)."""
    flags = []
    if in_batch and call.operation == Operation.DELEGATECALL:
        flags.append(f"{where} is a DELEGATECALL inside the batch (MultiSendCallOnly reverts on it)")
    if in_batch and call.value:
        flags.append(f"{where} sends {call.value} wei of native currency")
    if allowed_targets is not None and call.to.lower() not in {a.lower() for a in allowed_targets}:
        flags.append(f"{where}: target is not in the allow-list")
    return flags


def safe_tx_from_json(doc: dict[str, Any]) -> SafeTx:
    """Read back a safe-tx.json, refusing one whose stored safeTxHash does not match its fields."""
    try:
        tx = SafeTx(
            safe_address=doc["safe"], chain_id=int(doc["chainId"]), to=doc["to"], value=int(doc["value"]),
            data=doc["data"], operation=int(doc["operation"]), safe_tx_gas=int(doc["safeTxGas"]),
            base_gas=int(doc["baseGas"]), gas_price=int(doc["gasPrice"]), gas_token=doc["gasToken"],
            refund_receiver=doc["refundReceiver"], nonce=int(doc["nonce"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SafeTxError(
            f"safe-tx.json field missing or not a number: {exc}",
            "regenerate the bundle with `steward epoch`",
        ) from None
    stored = str(doc.get("safeTxHash", "")).lower()
    computed = "0x" + safe_tx_hash(tx).hex()
    if stored != computed:
        raise SafeTxError(f"safe-tx.json safeTxHash {stored or '(missing)'} does not match its fields ({computed})",
                          "the file was edited after it was generated; do not sign it")
    return tx
