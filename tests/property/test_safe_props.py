"""Invariants of governance.safe over generated inputs: round trips, refusal of garbage, agreement
with safe-eth-py, signatures that recover, checksums blind to key order."""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safe_eth.safe.multi_send import MultiSend
from safe_eth.safe.safe_tx import SafeTx as RefSafeTx

from governance.calls import AbiInput, FunctionAbi, encode_call
from governance.safe import (
    MultiSendError,
    SafeTx,
    build_tx_builder_batch,
    decode_multisend,
    decode_tx_builder_batch,
    encode_multisend,
    pack_signatures,
    recover_signer,
    safe_tx_hash,
    sign_safe_tx,
    tx_builder_checksum,
    verify_tx_builder_checksum,
)
from governance.safe_tx import MULTISEND_SELECTOR

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class RawCall:
    to: str
    value: int
    data: str


addresses = st.binary(min_size=20, max_size=20).map(to_checksum_address)
uint256 = st.integers(0, 2**256 - 1)
calldata = st.binary(max_size=300).map(lambda b: "0x" + b.hex())
raw_calls = st.builds(RawCall, addresses, uint256, calldata)
private_keys = st.integers(1, SECP256K1_N - 1).map(lambda n: n.to_bytes(32, "big"))


@PROPS
@given(st.lists(raw_calls, min_size=1, max_size=8))
def test_multisend_round_trips_and_agrees_with_safe_eth_py(calls):
    data = encode_multisend(calls)
    decoded = decode_multisend(data)
    assert [(t.operation, t.to, t.value, t.data) for t in decoded] == [(0, c.to, c.value, c.data) for c in calls]
    theirs = MultiSend.from_transaction_data(data)
    assert [(t.to, t.value, "0x" + bytes(t.data).hex()) for t in theirs] == [(c.to, c.value, c.data) for c in calls]


@PROPS
@given(st.binary(max_size=400))
def test_multisend_decoder_refuses_garbage_with_its_own_error(noise):
    for data in (noise, MULTISEND_SELECTOR + noise, MULTISEND_SELECTOR + abi_encode(["bytes"], [noise])):
        try:
            txs = decode_multisend(data)
        except MultiSendError as err:
            assert err.cause and err.hint
        else:  # whatever decodes must re-encode to exactly the same bytes
            packed = b"".join(bytes([t.operation]) + bytes.fromhex(t.to[2:]) + t.value.to_bytes(32, "big")
                              + (len(t.data) // 2 - 1).to_bytes(32, "big") + bytes.fromhex(t.data[2:]) for t in txs)
            assert MULTISEND_SELECTOR + abi_encode(["bytes"], [packed]) == data


@PROPS
@given(st.lists(raw_calls, min_size=1, max_size=4), st.data())
def test_any_single_byte_change_is_refused_or_changes_the_decoding(calls, data):
    good = bytearray(encode_multisend(calls))
    i = data.draw(st.integers(0, len(good) - 1))
    flip = data.draw(st.integers(1, 255))
    good[i] ^= flip
    try:
        decoded = decode_multisend(bytes(good))
    except MultiSendError:
        return
    assert [(t.to, t.value, t.data) for t in decoded] != [(c.to, c.value, c.data) for c in calls]


safe_txs = st.builds(
    SafeTx,
    safe_address=addresses,
    chain_id=st.integers(1, 2**64),
    to=addresses,
    value=uint256,
    data=st.binary(max_size=200),
    operation=st.sampled_from([0, 1]),
    safe_tx_gas=uint256,
    base_gas=uint256,
    gas_price=uint256,
    gas_token=addresses,
    refund_receiver=addresses,
    nonce=uint256,
)


@settings(max_examples=40, deadline=None)
@given(safe_txs)
def test_safe_tx_hash_agrees_with_safe_eth_py(tx):
    ref = RefSafeTx(None, tx.safe_address, tx.to, tx.value, tx.data, tx.operation, tx.safe_tx_gas, tx.base_gas,
                    tx.gas_price, tx.gas_token, tx.refund_receiver, safe_nonce=tx.nonce, safe_version="1.4.1",
                    chain_id=tx.chain_id)
    assert safe_tx_hash(tx) == bytes(ref.safe_tx_hash)


@settings(max_examples=25, deadline=None)
@given(safe_txs, st.lists(private_keys, min_size=1, max_size=4, unique=True))
def test_signatures_recover_and_pack_in_ascending_owner_order(tx, keys):
    sigs = [sign_safe_tx(tx, k) for k in keys]
    assert [s.signer for s in sigs] == [Account.from_key(k).address for k in keys]
    packed = pack_signatures(sigs, tx=tx)
    owners = [recover_signer(tx, packed[i : i + 65]) for i in range(0, len(packed), 65)]
    assert sorted(owners, key=lambda a: int(a, 16)) == owners
    assert sorted(owners) == sorted(s.signer for s in sigs)


json_scalars = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _shuffled(value, rnd):
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


@PROPS
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=5), json_values, st.randoms(use_true_random=False))
def test_checksum_is_blind_to_key_order_and_to_the_batch_name(extra, name, rnd):
    batch = {"version": "1.0", "meta": {"name": "x", **extra}, "transactions": [extra]}
    shuffled = _shuffled(batch, rnd)
    shuffled["meta"]["name"] = name
    assert tx_builder_checksum(shuffled) == tx_builder_checksum(batch)


SCALARS = {
    "address": addresses.map(str.lower),
    "uint256": uint256,
    "uint8": st.integers(0, 255),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "bool": st.booleans(),
    "bytes32": st.binary(min_size=32, max_size=32),
    "bytes": st.binary(max_size=40),
    "string": st.text(max_size=20),
}


@st.composite
def calls_with_args(draw):
    n = draw(st.integers(0, 4))
    types, args = [], []
    for _ in range(n):
        base = draw(st.sampled_from(sorted(SCALARS)))
        shape = draw(st.sampled_from(["", "[]", "[2]"]))
        if shape == "":
            args.append(draw(SCALARS[base]))
        else:
            size = 2 if shape == "[2]" else draw(st.integers(0, 3))
            args.append(tuple(draw(st.lists(SCALARS[base], min_size=size, max_size=size))))
        types.append(base + shape)
    fn = FunctionAbi(draw(st.sampled_from(["setCap", "update", "configure"])),
                     tuple(AbiInput(f"arg{i}", t, t) for i, t in enumerate(types)), payable=draw(st.booleans()))
    value = draw(st.integers(0, 10**24)) if fn.payable else 0
    return encode_call(draw(addresses), fn, tuple(args), "generated", value=value)


@PROPS
@given(st.lists(calls_with_args(), min_size=1, max_size=4), st.integers(0, 2**53 - 1))
def test_batch_file_decodes_to_its_calls_and_checksums(calls, created_at):
    batch = build_tx_builder_batch(calls, chain_id=1, safe_address="0x" + "22" * 20, created_at_ms=created_at,
                                   name="n", description="d")
    assert decode_tx_builder_batch(batch) == [(c.to, c.value, c.data) for c in calls]
    assert verify_tx_builder_checksum(batch)
    for tx in batch["transactions"]:
        assert all(isinstance(v, str) for v in (tx["contractInputsValues"] or {}).values())
    assert isinstance(batch["createdAt"], int)
