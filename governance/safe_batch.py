"""The Safe{Wallet} Transaction Builder batch file: build it, checksum it as the app does, decode it back.

The file is what signers import into the Safe app, so it follows the app's own export format: a call
with a known ABI is written as `contractMethod` + `contractInputsValues` (every value a string) with
`data: null`; a call the app's form cannot represent faithfully is written as raw `data` with
`contractMethod: null`. `build_tx_builder_batch` decodes its own output and refuses to return a file
that does not encode exactly the calls it was given.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import (
    function_signature_to_4byte_selector,
    is_address,
    is_checksum_address,
    keccak,
    to_checksum_address,
)

from governance.calls import Call
from risk.errors import StewardError

_JS_SAFE_INT = 2**53 - 1
_INT_TYPE = re.compile(r"^(u?)int(\d*)$")
_ARRAY_TYPE = re.compile(r"^(.*)\[(\d*)\]$")
_DECIMAL = re.compile(r"-?[0-9]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class TxBuilderError(StewardError):
    """A Transaction Builder file that cannot be built, checksummed or decoded."""


# --- checksum: the app's serialisation, reproduced ---------------------------------------------


def _js_number(x: float) -> str:
    """JSON.stringify of a JS number (ECMA-262 Number::toString), for numbers that survive JSON.parse."""
    if isinstance(x, int):
        if abs(x) > _JS_SAFE_INT:
            raise TxBuilderError(f"integer {x} is beyond 2**53 and changes when the Safe app parses it",
                                 "write large numbers as decimal strings")
        return str(x)
    if not math.isfinite(x):
        return "null"
    if x == 0:
        return "0"
    sign, digits, exp = Decimal(repr(x)).normalize().as_tuple()
    s = "".join(map(str, digits))
    k, n = len(s), len(s) + int(exp)  # value = 0.s × 10**n
    if k <= n <= 21:
        out = s + "0" * (n - k)
    elif 0 < n <= 21:
        out = s[:n] + "." + s[n:]
    elif -6 < n <= 0:
        out = "0." + "0" * -n + s
    else:
        e = n - 1
        out = (s[0] + ("." + s[1:] if k > 1 else "")) + "e" + ("+" if e >= 0 else "-") + str(abs(e))
    return ("-" if sign else "") + out


def _js_string(s: str) -> str:
    # JSON.stringify keeps non-ASCII and escapes lone surrogates (ES2019); Python agrees on the rest.
    out = json.dumps(s, ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", out)


def _serialize(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_serialize(v) for v in value) + "]"
    if isinstance(value, dict):
        # Array.prototype.sort compares UTF-16 code units; big-endian UTF-16 bytes sort the same way.
        keys = sorted(value, key=lambda k: k.encode("utf-16-be", "surrogatepass"))
        key_list = "[" + ",".join(_js_string(k) for k in keys) + "]"
        return "{" + key_list + "".join(_serialize(value[k]) + "," for k in keys) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _js_number(value)
    if isinstance(value, str):
        return _js_string(value)
    raise TxBuilderError(f"value of type {type(value).__name__} cannot appear in a batch file", "use JSON types only")


def tx_builder_checksum(batch: dict[str, Any]) -> str:
    """`meta.checksum` as the Transaction Builder computes it: keccak256 of its serialisation with meta.name null.

    The batch is hashed as given: a `meta.checksum` key, if present, is part of the hash.
    """
    if not isinstance(batch, dict) or not isinstance(batch.get("meta"), dict):
        raise TxBuilderError(
            "batch file has no `meta` object",
            "a Transaction Builder file has version, chainId, meta, transactions",
        )
    text = _serialize({**batch, "meta": {**batch["meta"], "name": None}})
    return "0x" + keccak(text.encode("utf-8")).hex()


def verify_tx_builder_checksum(batch: dict[str, Any]) -> bool:
    """True when `meta.checksum` matches the rest of the file (what the app checks on import)."""
    target = copy.deepcopy(batch)
    meta = target.get("meta") if isinstance(target, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("checksum"), str):
        return False
    claimed = meta.pop("checksum")
    return tx_builder_checksum(target) == claimed.lower()


# --- building -------------------------------------------------------------------------------


def _format_leaf(abi_type: str, value: Any) -> Any:
    """A value inside a JSON array: numbers as strings (JS would round them), bools as JSON booleans."""
    if (m := _ARRAY_TYPE.match(abi_type)) is not None:
        return [_format_leaf(m.group(1), v) for v in value]
    if abi_type == "bool":
        return bool(value)
    return _format_scalar(abi_type, value)


def _format_scalar(abi_type: str, value: Any) -> str:
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type == "bool":
        return "true" if value else "false"
    if _INT_TYPE.match(abi_type):
        return str(int(value))
    if abi_type.startswith("bytes"):
        return "0x" + bytes(value).hex()
    if abi_type == "string":
        return value
    raise TxBuilderError(f"ABI type {abi_type!r} has no Transaction Builder form", "write this call as raw data")


def _form_representable(call: Call) -> bool:
    """Whether the app's form can carry this call: no tuples (FunctionAbi has no components), and no
    string argument starting with '[' (the app JSON-parses any value that does)."""
    for inp, arg in zip(call.function.inputs, call.args, strict=True):
        if "(" in inp.type or inp.type.startswith("tuple"):
            return False
        if inp.type == "string" and arg.startswith("["):
            return False
    return True


def _batch_transaction(call: Call) -> dict[str, Any]:
    if isinstance(call.value, bool) or not isinstance(call.value, int) or not 0 <= call.value < 2**256:
        raise TxBuilderError(f"call to {call.to}: value {call.value!r} is not a wei amount", "pass value as a uint256 int")
    if not is_address(call.to):
        raise TxBuilderError(f"call target {call.to!r} is not an address", "build calls with governance.calls.encode_call")
    to = to_checksum_address(call.to)
    if not _form_representable(call):
        return {
            "to": to,
            "value": str(call.value),
            "data": call.data,
            "contractMethod": None,
            "contractInputsValues": None,
        }
    inputs = call.function.inputs
    keys = [inp.name or str(i) for i, inp in enumerate(inputs)]  # the app keys unnamed inputs by position
    if len(set(keys)) != len(keys):
        raise TxBuilderError(
            f"{call.function.signature}: input names repeat ({keys})",
            "give every ABI input a distinct name",
        )
    values: dict[str, str] = {}
    for key, inp, arg in zip(keys, inputs, call.args, strict=True):
        if _ARRAY_TYPE.match(inp.type):
            values[key] = json.dumps(_format_leaf(inp.type, arg), separators=(",", ":"), ensure_ascii=False)
        else:
            values[key] = _format_scalar(inp.type, arg)
    return {
        "to": to,
        "value": str(call.value),
        "data": None,
        "contractMethod": {
            "inputs": [{"internalType": i.internal_type, "name": i.name, "type": i.type} for i in inputs],
            "name": call.function.name,
            "payable": call.function.payable,
        },
        "contractInputsValues": values,
    }


def build_tx_builder_batch(
    calls: Sequence[Call],
    *,
    chain_id: int,
    safe_address: str,
    created_at_ms: int,
    name: str,
    description: str,
    owner_address: str | None = None,
    tx_builder_version: str = "1.16.5",
) -> dict[str, Any]:
    """A Transaction Builder batch file for `calls`, with the app's checksum, proven to decode back to `calls`."""
    if not calls:
        raise TxBuilderError("no calls to put in the batch file", "the recommendation produced no parameter change")
    if isinstance(chain_id, bool) or not isinstance(chain_id, int) or chain_id <= 0:
        raise TxBuilderError(
            f"chain id {chain_id!r} is not a positive integer",
            "pass the Safe's chain id (1 = Ethereum)",
        )
    if isinstance(created_at_ms, bool) or not isinstance(created_at_ms, int) or not 0 <= created_at_ms <= _JS_SAFE_INT:
        raise TxBuilderError(
            f"createdAt {created_at_ms!r} is not a millisecond timestamp",
            "pass an integer count of ms since 1970",
        )
    for label, addr in (("safe", safe_address), ("owner", owner_address)):
        if addr is not None and not is_address(addr):
            raise TxBuilderError(f"{label} address {addr!r} is not an address", "pass a 0x-prefixed 20-byte address")
    batch: dict[str, Any] = {
        "version": "1.0",
        "chainId": str(chain_id),
        "createdAt": created_at_ms,
        "meta": {
            "name": name,
            "description": description,
            "txBuilderVersion": tx_builder_version,
            "createdFromSafeAddress": to_checksum_address(safe_address),
            "createdFromOwnerAddress": to_checksum_address(owner_address) if owner_address else "",
        },
        "transactions": [_batch_transaction(c) for c in calls],
    }
    batch["meta"]["checksum"] = tx_builder_checksum(batch)
    decoded = decode_tx_builder_batch(batch)
    intended = [(to_checksum_address(c.to), c.value, c.data.lower()) for c in calls]
    for i, (got, want) in enumerate(zip(decoded, intended, strict=True)):
        if got != want:
            raise TxBuilderError(f"batch transaction {i} decodes to {got}, not the call {want}",
                                 "this is a bug in the batch writer; do not import this file")
    return batch


# --- decoding -------------------------------------------------------------------------------


def _canonical_type(inp: dict[str, Any], where: str) -> str:
    t = inp.get("type")
    if not isinstance(t, str) or not t:
        raise TxBuilderError(f"{where}: input without a type", "the contractMethod must list each input's type")
    if t.startswith("tuple"):
        comps = inp.get("components")
        if not isinstance(comps, list):
            raise TxBuilderError(
                f"{where}: tuple input without components",
                "add the tuple's components to contractMethod",
            )
        return "(" + ",".join(_canonical_type(c, where) for c in comps) + ")" + t[len("tuple"):]
    return t


def _coerce(inp: dict[str, Any], t: str, value: Any, where: str) -> Any:
    """A JSON-ish value (string at top level, anything inside arrays) as the Python value eth-abi encodes."""
    bad = TxBuilderError(f"{where}: {str(value)[:80]!r} is not a valid {t}", "fix the value in contractInputsValues")
    if (m := _ARRAY_TYPE.match(t)) is not None:
        if not isinstance(value, list) or (m.group(2) and len(value) != int(m.group(2))):
            raise bad
        return [_coerce(inp, m.group(1), v, where) for v in value]
    if t == "tuple":
        comps = inp["components"]
        if not isinstance(value, list) or len(value) != len(comps):
            raise bad
        return tuple(_coerce(c, c["type"], v, where) for c, v in zip(comps, value, strict=True))
    if t == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).lower()
        if text not in ("true", "false", "1", "0"):
            raise bad
        return text in ("true", "1")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise bad
    if (m := _INT_TYPE.match(t)) is not None:
        text = str(value)
        if _DECIMAL.fullmatch(text):
            n = int(text, 10)
        elif _HEX.fullmatch(text):
            n = int(text, 16)
        else:
            raise bad
        bits = int(m.group(2) or 256)
        lo, hi = (0, 2**bits) if m.group(1) == "u" else (-(2 ** (bits - 1)), 2 ** (bits - 1))
        if not lo <= n < hi:
            raise bad
        return n
    if t == "address":
        if not isinstance(value, str) or not is_address(value):
            raise bad
        if value[2:] != value[2:].lower() and not is_checksum_address(value):  # mixed case claims a checksum
            raise bad
        return to_checksum_address(value)
    if t.startswith("bytes"):
        if not isinstance(value, str) or not value.startswith("0x") or len(value) % 2:
            raise bad
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raise bad from None
        if t != "bytes" and len(raw) != int(t[5:]):
            raise bad
        return raw
    if t == "string" and isinstance(value, str):
        return value
    raise bad


def _reject_float(text: str) -> Any:
    raise ValueError(f"fractional number {text} (ABI values are integers; the app would round it)")


def _encode_from_method(tx: dict[str, Any], where: str) -> str:
    method, values = tx.get("contractMethod"), tx.get("contractInputsValues") or {}
    if not (isinstance(method, dict) and isinstance(method.get("name"), str) and isinstance(method.get("inputs"), list)):
        raise TxBuilderError(
            f"{where}: neither data nor a contractMethod with name and inputs",
            "the file is not a Transaction Builder batch",
        )
    if not isinstance(values, dict):
        raise TxBuilderError(
            f"{where}: contractInputsValues is not an object",
            "the file is not a Transaction Builder batch",
        )
    types, args = [], []
    for i, inp in enumerate(method["inputs"]):
        key = inp.get("name") or str(i)
        t = _canonical_type(inp, f"{where} input {key}")
        raw = values.get(key)
        if not isinstance(raw, str):
            raise TxBuilderError(
                f"{where}: no string value for input {key!r}",
                "every input needs a string in contractInputsValues",
            )
        if _ARRAY_TYPE.match(inp["type"]) or inp["type"] == "tuple":
            try:
                raw = json.loads(raw, parse_float=_reject_float)
            except ValueError as exc:
                raise TxBuilderError(
                    f"{where} input {key}: {raw[:80]!r} is not a JSON array ({exc})",
                    "write arrays and tuples as JSON arrays",
                ) from exc
        types.append(t)
        args.append(_coerce(inp, inp["type"], raw, f"{where} input {key}"))
    selector = function_signature_to_4byte_selector(f"{method['name']}({','.join(types)})")
    try:
        return "0x" + (selector + abi_encode(types, args)).hex()
    except Exception as exc:  # eth-abi rejects with several exception types
        raise TxBuilderError(
            f"{where}: arguments do not ABI-encode ({exc})",
            "check the values against the input types",
        ) from exc


def decode_tx_builder_batch(batch: dict[str, Any]) -> list[tuple[str, int, str]]:
    """Each transaction as (to, value in wei, calldata 0x-hex), read the way the Safe app reads it:
    non-empty `data` wins, otherwise calldata is encoded from `contractMethod` and `contractInputsValues`."""
    txs = batch.get("transactions") if isinstance(batch, dict) else None
    if not isinstance(txs, list) or not txs:
        raise TxBuilderError(
            "batch file has no transactions list",
            "a Transaction Builder file has a non-empty `transactions` array",
        )
    out: list[tuple[str, int, str]] = []
    for i, tx in enumerate(txs):
        where = f"batch transaction {i}"
        if not isinstance(tx, dict) or not isinstance(tx.get("to"), str) or not is_address(tx["to"]):
            raise TxBuilderError(
                f"{where}: `to` is missing or not an address",
                "every transaction needs a 0x address in `to`",
            )
        value = tx.get("value", "0")
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]+", value):
            raise TxBuilderError(
                f"{where}: value {value!r} is not a decimal string of wei",
                "write the value as a string, e.g. \"0\"",
            )
        data = tx.get("data")
        if data:
            if not isinstance(data, str) or not re.fullmatch(r"0x([0-9a-fA-F]{2})*", data):
                raise TxBuilderError(f"{where}: data is not 0x-prefixed hex", "write calldata as 0x-hex")
            calldata = data.lower()
        else:
            calldata = _encode_from_method(tx, where)
        out.append((to_checksum_address(tx["to"]), int(value), calldata))
    return out
