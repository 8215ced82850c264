"""The transaction a Safe executes: SafeTx, MultiSendCallOnly packing, and the EIP-712 hash owners sign.

Everything here is offline and pure: no client, no clock. The hash is computed from the Safe
contracts' own definitions (Safe >= 1.3.0: the domain holds chainId and the Safe's address) and the
tests check it against safe-eth-py and eth-account, two independent implementations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, NamedTuple, Protocol

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import (
    function_signature_to_4byte_selector,
    is_address,
    keccak,
    to_checksum_address,
)

from risk.errors import StewardError

MULTISEND_CALL_ONLY_141 = "0x9641d764fc13c8B624c04430C7356C1C7C8102e2"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MULTISEND_SELECTOR = function_signature_to_4byte_selector("multiSend(bytes)")

_UINT256_MAX = 2**256 - 1
# Safe >= 1.3.0 (safe-contracts SafeL2/Safe.sol: DOMAIN_SEPARATOR_TYPEHASH, SAFE_TX_TYPEHASH).
_DOMAIN_TYPE = "EIP712Domain(uint256 chainId,address verifyingContract)"
_SAFE_TX_TYPE = (
    "SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,uint256 baseGas,"
    "uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
)
DOMAIN_TYPEHASH = keccak(text=_DOMAIN_TYPE)
SAFE_TX_TYPEHASH = keccak(text=_SAFE_TX_TYPE)
# Packed MultiSend entry header: uint8 operation, address to, uint256 value, uint256 data length.
_ENTRY_HEADER = 1 + 20 + 32 + 32


class SafeTxError(StewardError):
    """A SafeTx that cannot be built or hashed as given."""


class MultiSendError(SafeTxError):
    """MultiSend calldata that is malformed or cannot be packed."""


class Operation(IntEnum):
    CALL = 0
    DELEGATECALL = 1


class CallLike(Protocol):
    """What MultiSend needs of a call: `governance.calls.Call` satisfies it."""

    @property
    def to(self) -> str: ...

    @property
    def value(self) -> int: ...

    @property
    def data(self) -> str: ...


class MultiSendTx(NamedTuple):
    """One decoded entry of a MultiSend batch; `data` is 0x-prefixed lowercase hex."""

    operation: int
    to: str
    value: int
    data: str


def _address(value: str, field: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise SafeTxError(f"SafeTx field {field}: {value!r} is not an address", "pass a 0x-prefixed 20-byte address")
    return to_checksum_address(value)


def _uint(value: int, field: str, bits: int = 256) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
        raise SafeTxError(
            f"SafeTx field {field}: {value!r} is not a uint{bits}",
            "pass a non-negative integer (wei, gas units)",
        )
    return value


def hex_to_bytes(data: str | bytes, field: str) -> bytes:
    """Bytes from a 0x-hex string (or bytes); errors name the field."""
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if not isinstance(data, str) or not data.startswith("0x") or len(data) % 2:
        raise SafeTxError(
            f"{field}: {str(data)[:20]!r} is not 0x-prefixed even-length hex",
            "encode calldata as 0x-hex",
        )
    try:
        return bytes.fromhex(data[2:])
    except ValueError as exc:
        raise SafeTxError(f"{field}: not valid hex ({exc})", "encode calldata as 0x-hex") from exc


@dataclass(frozen=True, slots=True)
class SafeTx:
    """A Safe transaction as `execTransaction` takes it, plus where it runs (Safe address, chain id).

    Addresses are normalised to checksum form; `data` is raw bytes (a 0x-hex string is accepted).
    """

    safe_address: str
    chain_id: int
    to: str
    value: int
    data: bytes
    operation: int
    safe_tx_gas: int = 0
    base_gas: int = 0
    gas_price: int = 0
    gas_token: str = ZERO_ADDRESS
    refund_receiver: str = ZERO_ADDRESS
    nonce: int = 0

    def __post_init__(self) -> None:
        fix = object.__setattr__  # frozen: normalise once, at construction
        for name in ("safe_address", "to", "gas_token", "refund_receiver"):
            fix(self, name, _address(getattr(self, name), name))
        if _uint(self.chain_id, "chain_id") == 0:
            raise SafeTxError("SafeTx field chain_id is 0", "pass the chain id the Safe lives on (1 = Ethereum)")
        for name in ("value", "safe_tx_gas", "base_gas", "gas_price", "nonce"):
            _uint(getattr(self, name), name)
        if isinstance(self.operation, bool) or self.operation not in (Operation.CALL, Operation.DELEGATECALL):
            raise SafeTxError(f"SafeTx field operation: {self.operation!r} is neither 0 (CALL) nor 1 (DELEGATECALL)",
                              "a Safe only knows CALL and DELEGATECALL")
        fix(self, "operation", int(self.operation))
        fix(self, "data", hex_to_bytes(self.data, "SafeTx field data"))


# --- MultiSend -------------------------------------------------------------------------------


def pack_multisend(txs: Sequence[MultiSendTx]) -> bytes:
    """The `transactions` bytes of MultiSend: each entry operation ‖ to ‖ value ‖ len ‖ data, concatenated."""
    parts: list[bytes] = []
    for i, tx in enumerate(txs):
        data = hex_to_bytes(tx.data, f"multisend entry {i} data")
        if tx.operation not in (0, 1):
            raise MultiSendError(f"multisend entry {i}: operation {tx.operation!r} is not 0 or 1", "use 0 (CALL)")
        to = _address(tx.to, f"multisend entry {i} to")
        value = _uint(tx.value, f"multisend entry {i} value")
        parts.append(
            bytes([tx.operation])
            + bytes.fromhex(to[2:])
            + value.to_bytes(32, "big")
            + len(data).to_bytes(32, "big")
            + data
        )
    return b"".join(parts)


def encode_multisend(calls: Sequence[CallLike]) -> bytes:
    """`multiSend(bytes)` calldata running every call with operation CALL (what MultiSendCallOnly accepts)."""
    if not calls:
        raise MultiSendError("cannot build a MultiSend of zero calls", "pass at least one call")
    packed = pack_multisend([MultiSendTx(0, c.to, c.value, c.data) for c in calls])
    return MULTISEND_SELECTOR + abi_encode(["bytes"], [packed])


def decode_multisend(data: bytes | str) -> list[MultiSendTx]:
    """Split `multiSend(bytes)` calldata back into its entries, refusing anything not canonically encoded."""
    raw = hex_to_bytes(data, "multisend calldata")
    hint = "this is not calldata produced by encode_multisend; do not sign it without decoding it by hand"
    if raw[:4] != MULTISEND_SELECTOR:
        raise MultiSendError(
            f"calldata selector 0x{raw[:4].hex()} is not multiSend(bytes) (0x{MULTISEND_SELECTOR.hex()})",
            hint,
        )
    try:
        (packed,) = abi_decode(["bytes"], raw[4:])
    except Exception as exc:  # eth-abi raises several unrelated types for short or bad input
        raise MultiSendError(f"multiSend argument does not ABI-decode as bytes: {exc}", hint) from exc
    if MULTISEND_SELECTOR + abi_encode(["bytes"], [packed]) != raw:
        raise MultiSendError("multiSend calldata is not canonically ABI-encoded (extra or dirty bytes)", hint)
    if not packed:
        raise MultiSendError("multiSend carries no transactions", hint)
    txs: list[MultiSendTx] = []
    pos = 0
    while pos < len(packed):
        if len(packed) - pos < _ENTRY_HEADER:
            raise MultiSendError(
                f"multisend entry {len(txs)} at byte {pos}: {len(packed) - pos} bytes left, "
                f"header needs {_ENTRY_HEADER}",
                hint,
            )
        operation = packed[pos]
        if operation not in (0, 1):
            raise MultiSendError(f"multisend entry {len(txs)}: operation byte {operation} is not 0 or 1", hint)
        to = to_checksum_address(packed[pos + 1 : pos + 21])
        value = int.from_bytes(packed[pos + 21 : pos + 53], "big")
        length = int.from_bytes(packed[pos + 53 : pos + 85], "big")
        end = pos + _ENTRY_HEADER + length
        if end > len(packed):
            raise MultiSendError(
                f"multisend entry {len(txs)}: data length {length} runs past the end of the batch",
                hint,
            )
        txs.append(MultiSendTx(operation, to, value, "0x" + packed[pos + _ENTRY_HEADER : end].hex()))
        pos = end
    return txs


def inner_calls(tx: SafeTx) -> list[MultiSendTx]:
    """What the Safe actually runs: the MultiSend entries for a batch, else the transaction itself."""
    if tx.operation == Operation.DELEGATECALL and tx.to == MULTISEND_CALL_ONLY_141:
        return decode_multisend(tx.data)
    return [MultiSendTx(tx.operation, tx.to, tx.value, "0x" + tx.data.hex())]


def safe_tx_for_calls(calls: Sequence[CallLike], *, safe_address: str, chain_id: int, nonce: int) -> SafeTx:
    """One call → a plain CALL to it; several → DELEGATECALL to MultiSendCallOnly 1.4.1 with every call packed."""
    if not calls:
        raise SafeTxError("no calls to put in a Safe transaction", "the recommendation produced no parameter change")
    if len(calls) == 1:
        (c,) = calls
        data = hex_to_bytes(c.data, "call data")
        return SafeTx(safe_address, chain_id, c.to, c.value, data, Operation.CALL, nonce=nonce)
    data = encode_multisend(calls)
    return SafeTx(safe_address, chain_id, MULTISEND_CALL_ONLY_141, 0, data, Operation.DELEGATECALL, nonce=nonce)


# --- EIP-712 ---------------------------------------------------------------------------------


def domain_hash(tx: SafeTx) -> bytes:
    """The Safe's EIP-712 domain separator (chainId, verifyingContract)."""
    return keccak(abi_encode(["bytes32", "uint256", "address"], [DOMAIN_TYPEHASH, tx.chain_id, tx.safe_address]))


def message_hash(tx: SafeTx) -> bytes:
    """hashStruct(SafeTx): the typed-data hash of the transaction fields."""
    return keccak(
        abi_encode(
            ["bytes32", "address", "uint256", "bytes32", "uint8", "uint256", "uint256", "uint256", "address", "address",
             "uint256"],
            [SAFE_TX_TYPEHASH, tx.to, tx.value, keccak(tx.data), tx.operation, tx.safe_tx_gas, tx.base_gas,
             tx.gas_price, tx.gas_token, tx.refund_receiver, tx.nonce],
        )
    )


def safe_tx_hash(tx: SafeTx) -> bytes:
    """safeTxHash = keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(SafeTx)), as Safe.getTransactionHash."""
    return keccak(b"\x19\x01" + domain_hash(tx) + message_hash(tx))


def eip712_typed_data(tx: SafeTx) -> dict[str, Any]:
    """The typed data `eth_signTypedData_v4` and hardware wallets take.

    uint256 fields are decimal strings (JSON numbers lose precision past 2**53); operation (uint8)
    and the domain's chainId are plain integers, as wallets compare chainId numerically.
    """
    return {
        "types": {
            "EIP712Domain": [
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "SafeTx": [
                {"name": "to", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "data", "type": "bytes"},
                {"name": "operation", "type": "uint8"},
                {"name": "safeTxGas", "type": "uint256"},
                {"name": "baseGas", "type": "uint256"},
                {"name": "gasPrice", "type": "uint256"},
                {"name": "gasToken", "type": "address"},
                {"name": "refundReceiver", "type": "address"},
                {"name": "nonce", "type": "uint256"},
            ],
        },
        "primaryType": "SafeTx",
        "domain": {"chainId": tx.chain_id, "verifyingContract": tx.safe_address},
        "message": {
            "to": tx.to,
            "value": str(tx.value),
            "data": "0x" + tx.data.hex(),
            "operation": tx.operation,
            "safeTxGas": str(tx.safe_tx_gas),
            "baseGas": str(tx.base_gas),
            "gasPrice": str(tx.gas_price),
            "gasToken": tx.gas_token,
            "refundReceiver": tx.refund_receiver,
            "nonce": str(tx.nonce),
        },
    }


def safe_tx_json(tx: SafeTx) -> dict[str, Any]:
    """The content of a bundle's safe-tx.json: fields, hashes, typed data and the decoded inner calls."""
    return {
        "safe": tx.safe_address,
        "chainId": str(tx.chain_id),
        "to": tx.to,
        "value": str(tx.value),
        "data": "0x" + tx.data.hex(),
        "operation": str(tx.operation),
        "safeTxGas": str(tx.safe_tx_gas),
        "baseGas": str(tx.base_gas),
        "gasPrice": str(tx.gas_price),
        "gasToken": tx.gas_token,
        "refundReceiver": tx.refund_receiver,
        "nonce": str(tx.nonce),
        "safeTxHash": "0x" + safe_tx_hash(tx).hex(),
        "domainHash": "0x" + domain_hash(tx).hex(),
        "messageHash": "0x" + message_hash(tx).hex(),
        "typedData": eip712_typed_data(tx),
        "calls": [
            {"operation": str(c.operation), "to": c.to, "value": str(c.value), "data": c.data} for c in inner_calls(tx)
        ],
    }
