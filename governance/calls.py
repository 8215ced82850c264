"""A contract call as signers see it: target, ABI-encoded data, the decoded arguments and one human line.

A `Call` is built only through `encode_call`, which encodes with eth-abi and immediately decodes the
bytes back, refusing to return a call whose decoded arguments differ from the intent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.grammar import TupleType
from eth_abi.grammar import parse as parse_abi_type
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from risk.errors import StewardError


@dataclass(frozen=True, slots=True)
class AbiInput:
    name: str
    type: str
    internal_type: str


@dataclass(frozen=True, slots=True)
class FunctionAbi:
    """One function of a contract's ABI: enough to encode, decode and fill the Tx Builder's contractMethod."""

    name: str
    inputs: tuple[AbiInput, ...]
    payable: bool = False

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(i.type for i in self.inputs)})"

    @property
    def selector(self) -> bytes:
        return function_signature_to_4byte_selector(self.signature)

    @property
    def types(self) -> list[str]:
        return [i.type for i in self.inputs]


@dataclass(frozen=True, slots=True)
class Call:
    """One call of a batch. `args` are the decoded values, in ABI order, as eth-abi returns them."""

    to: str
    value: int
    data: str
    function: FunctionAbi
    args: tuple[Any, ...]
    human: str
    contract_label: str = ""

    @property
    def named_args(self) -> dict[str, Any]:
        return {i.name: a for i, a in zip(self.function.inputs, self.args, strict=True)}


class CallMismatchError(StewardError):
    """Encoded calldata that does not decode to the intended call."""


def _normalise(value: Any, abi_type: str) -> Any:
    """The form eth-abi decodes to (tuples, checksummed addresses, bytes), so intent and decoding compare."""
    return _normalise_node(value, parse_abi_type(abi_type))


def _normalise_node(value: Any, node: Any) -> Any:
    if node.is_array:
        return tuple(_normalise_node(v, node.item_type) for v in value)
    if isinstance(node, TupleType):
        return tuple(_normalise_node(v, c) for v, c in zip(value, node.components, strict=True))
    if node.base == "address":
        return to_checksum_address(value)
    if node.base == "bytes" and isinstance(value, (bytes, bytearray)):
        return bytes(value)
    return value


def decode_call(function: FunctionAbi, data: str) -> tuple[Any, ...]:
    """Decode calldata for `function`, checking the selector first."""
    raw = bytes.fromhex(data.removeprefix("0x"))
    if raw[:4] != function.selector:
        raise CallMismatchError(
            f"calldata selector 0x{raw[:4].hex()} is not {function.signature} (0x{function.selector.hex()})",
            "the call was built for another function",
        )
    decoded = abi_decode(function.types, raw[4:])
    return tuple(_normalise(v, t) for v, t in zip(decoded, function.types, strict=True))


def encode_call(
    to: str,
    function: FunctionAbi,
    args: tuple[Any, ...],
    human: str,
    *,
    value: int = 0,
    contract_label: str = "",
) -> Call:
    """ABI-encode a call and prove it by decoding it back and comparing with the intent."""
    intent = tuple(_normalise(a, t) for a, t in zip(args, function.types, strict=True))
    data = "0x" + (function.selector + abi_encode(function.types, list(intent))).hex()
    decoded = decode_call(function, data)
    if decoded != intent:
        raise CallMismatchError(
            f"{function.signature} on {to}: decoded {decoded} differs from intended {intent}",
            "this is a bug in the encoder; do not sign this batch",
        )
    return Call(
        to=to_checksum_address(to),
        value=value,
        data=data,
        function=function,
        args=decoded,
        human=human,
        contract_label=contract_label,
    )
