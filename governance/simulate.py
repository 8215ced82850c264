"""Simulate a bundle's Safe transaction before anyone signs, and reconcile the chain after it ran.

`simulate` forks nothing itself: it runs on the devnet or on an `anvil --fork-url` node. It pins the
head, reads every reserve's configuration, takes an `evm_snapshot`, has the Safe's owners approve the
safeTxHash (impersonated), runs the real `execTransaction` — so the MultiSendCallOnly DELEGATECALL,
the signature check and the nonce run as they will for real — reads everything again and reverts the
snapshot. `reconcile` finds the execution on chain (ExecutionSuccess / ExecutionFailure with the
safeTxHash) and compares the block before it with the block of it.

Both pass only if every recommended parameter of every policy market ends exactly at its proposed
value and nothing else changed: no other parameter or flag of those reserves, no other reserve's
configuration word, not the Safe's owners or threshold (its nonce moves by one). Both write
`simulation.json` (an attachment, not in the manifest).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from governance import jsonio
from governance.bundle import MANIFEST, SIMULATION
from governance.chain import (
    DEFAULT_TIMEOUT_S,
    CallReverted,
    ChainError,
    ChainReader,
    RpcError,
    SafeState,
    connect,
)
from governance.chain_bundle import (
    ChainBundle,
    call_label,
    load_chain_bundle,
    write_attachment,
)
from governance.safe import SafeTx, inner_calls, safe_tx_hash
from governance.venues.aave_v3_read import explain_revert, pool_state, resolve_addresses

EXEC_TRANSACTION = (
    "execTransaction(address,uint256,bytes,uint8,uint256,uint256,uint256,address,address,bytes)"
)
APPROVE_HASH = "approveHash(bytes32)"
EXECUTION_SUCCESS = "0x" + keccak(text="ExecutionSuccess(bytes32,uint256)").hex()
EXECUTION_FAILURE = "0x" + keccak(text="ExecutionFailure(bytes32,uint256)").hex()
# Safe v1.4.1 require() codes (safe-contracts, docs/error_codes.md) that execution can hit.
SAFE_ERRORS = {
    "GS010": "not enough gas to execute the Safe transaction",
    "GS011": "could not pay gas costs with ether",
    "GS012": "could not pay gas costs with token",
    "GS013": "the Safe transaction's call failed (safeTxGas and gasPrice are 0, so the Safe reverts)",
    "GS020": "signatures data too short (fewer signatures than the threshold)",
    "GS021": "invalid contract signature location: inside static part",
    "GS022": "invalid contract signature location: length not present",
    "GS023": "invalid contract signature location: data not complete",
    "GS024": "invalid contract signature provided",
    "GS025": "hash has not been approved",
    "GS026": "invalid owner provided (a signer is not an owner, or signatures are not sorted)",
}
_SIM_BALANCE_WEI = 10**21  # gas money for impersonated owners; undone by evm_revert
_SIM_GAS = 15_000_000


class SimulationError(ChainError):
    """A simulation or reconciliation that did not end as the recommendation says; `problems` lists why."""

    def __init__(self, cause: str, hint: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(cause, hint)
        self.problems = problems


@dataclass(frozen=True)
class SimulationResult:
    """The content of simulation.json."""

    mode: str  # "simulate" | "reconcile"
    bundle_manifest_sha256: str
    chain_id: int
    block: int
    safe_tx_hash: str
    execution_tx: str | None
    reverted: bool
    revert_reason: str | None
    gas_used: int | None
    pre_state: dict[str, dict[str, Any]]
    post_state: dict[str, dict[str, Any]]
    expected: dict[str, dict[str, int]]
    differences: tuple[str, ...]
    unexpected_changes: tuple[str, ...]
    changed: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.reverted and not self.differences and not self.unexpected_changes

    def to_json(self) -> dict[str, Any]:
        return {
            **state_check_json(self),
            "revert_reason": self.revert_reason,
            "reverted": self.reverted,
            "safe_tx_hash": self.safe_tx_hash,
        }


def state_check_json(result: Any) -> dict[str, Any]:
    """The keys every simulation.json has, whatever executed the batch (a Safe or a Governor)."""
    return {
        "block": result.block,
        "bundle_manifest_sha256": result.bundle_manifest_sha256,
        "chain_id": result.chain_id,
        "changed": list(result.changed),
        "differences": list(result.differences),
        "execution_tx": result.execution_tx,
        "expected": result.expected,
        "gas_used": result.gas_used,
        "mode": result.mode,
        "ok": result.ok,
        "post_state": result.post_state,
        "pre_state": result.pre_state,
        "unexpected_changes": list(result.unexpected_changes),
    }


def require_ok(result: SimulationResult) -> None:
    """Raise SimulationError listing every problem unless the result is OK."""
    if result.ok:
        return
    problems = ([f"reverted: {result.revert_reason}"] if result.reverted else []) + [
        *(f"not as recommended: {d}" for d in result.differences),
        *(f"unexpected change: {u}" for u in result.unexpected_changes),
    ]
    what = "simulation" if result.mode == "simulate" else "reconciliation"
    raise SimulationError(
        f"{what} failed on chain {result.chain_id} at block {result.block}: {len(problems)} problem(s)",
        "do not sign or execute this bundle; see simulation.json for the pre- and post-state",
        tuple(problems),
    )


# --- comparison --------------------------------------------------------------------------------


def compare(
    pre: Mapping[str, Mapping[str, Any]],
    post: Mapping[str, Mapping[str, Any]],
    expected: Mapping[str, Mapping[str, int]],
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(differences from the recommendation, changes nobody asked for, recommended changes made)."""
    differences, unexpected, changed = [], [], []
    for market in sorted(set(pre) | set(post) | set(expected)):
        before, after, wanted = pre.get(market, {}), post.get(market, {}), expected.get(market, {})
        for param in sorted(set(before) | set(after) | set(wanted)):
            a, b = before.get(param), after.get(param)
            if param in wanted:
                if b != wanted[param]:
                    differences.append(f"{market} {param}: {b} on chain, {wanted[param]} recommended (was {a})")
                elif a != b:
                    changed.append(f"{market} {param}: {a} → {b}")
            elif a != b:
                unexpected.append(f"{market} {param}: {a} → {b}")
    return tuple(differences), tuple(unexpected), tuple(changed)


def _safe_changes(tx: SafeTx, before: SafeState, after: SafeState) -> list[str]:
    problems = []
    if after.nonce != before.nonce + 1:
        problems.append(f"Safe nonce: {before.nonce} → {after.nonce} (one execution moves it by 1)")
    if sorted(after.owners) != sorted(before.owners):
        problems.append(f"Safe owners: {sorted(before.owners)} → {sorted(after.owners)}")
    if after.threshold != before.threshold:
        problems.append(f"Safe threshold: {before.threshold} → {after.threshold}")
    return problems


def nonce_problem(onchain: int, tx_nonce: int) -> tuple[str, str] | None:
    """(cause, hint) when the SafeTx's nonce is not the Safe's next one."""
    if onchain > tx_nonce:
        return (f"nonce {tx_nonce} already used (the Safe is at nonce {onchain})",
                "this bundle was executed or replaced; run a new epoch for a fresh bundle")
    if onchain < tx_nonce:
        return (f"nonce {tx_nonce} not yet reached (the Safe is at nonce {onchain})",
                f"execute the Safe's queued transactions {onchain}..{tx_nonce - 1} first")
    return None


# --- the Safe on chain ------------------------------------------------------------------------------


def exec_transaction_data(tx: SafeTx, signatures: bytes) -> bytes:
    """Calldata of `execTransaction` for `tx` with packed `signatures`."""
    types = ["address", "uint256", "bytes", "uint8", "uint256", "uint256", "uint256", "address", "address", "bytes"]
    args = [tx.to, tx.value, tx.data, tx.operation, tx.safe_tx_gas, tx.base_gas, tx.gas_price, tx.gas_token,
            tx.refund_receiver, signatures]
    return function_signature_to_4byte_selector(EXEC_TRANSACTION) + abi_encode(types, args)


def explain_safe_revert(reason: str) -> str:
    return f"{reason}: {SAFE_ERRORS[reason]}" if reason in SAFE_ERRORS else explain_revert(reason)


def diagnose_inner_calls(reader: ChainReader, tx: SafeTx, *, block: int | str) -> str:
    """Which inner call reverts when run alone by the Safe, and why (eth_call: nothing is sent)."""
    for i, call in enumerate(inner_calls(tx)):
        try:
            reader.call(call.to, bytes.fromhex(call.data[2:]), block=block, sender=tx.safe_address)
        except CallReverted as exc:
            return f"call {i} ({call_label(call.data)} on {call.to}) reverts: {explain_revert(exc.reason)}"
    return "each call succeeds alone; the batch fails as a whole"


def _send_as(reader: ChainReader, sender: str, to: str, data: bytes, step: str) -> Mapping[str, Any]:
    tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(_SIM_GAS)}
    tx_hash = reader.request("eth_sendTransaction", [tx], retry=False)
    receipt = reader.wait_for_receipt(tx_hash, timeout_s=30)
    if int(receipt["status"], 16) != 1 and step != "execTransaction":
        raise ChainError(f"simulation step {step} reverted (tx {tx_hash})", "the Safe's state is not what simulation expects")
    return receipt


@dataclass(frozen=True)
class _Run:
    block: int
    reverted: bool
    reason: str | None
    gas_used: int


def _execute_as_owners(reader: ChainReader, tx: SafeTx, safe: SafeState) -> _Run:
    """Run the SafeTx for real on an anvil snapshot: owners approve its hash, the first executes."""
    approvers = sorted(safe.owners, key=lambda a: int(a, 16))[: safe.threshold]
    tx_hash = safe_tx_hash(tx)
    for owner in approvers:
        reader.request("anvil_impersonateAccount", [owner], retry=False)
        if reader.balance(owner, block="latest") < _SIM_BALANCE_WEI:
            reader.request("anvil_setBalance", [owner, hex(_SIM_BALANCE_WEI)], retry=False)
    try:
        approve = function_signature_to_4byte_selector(APPROVE_HASH) + tx_hash
        for owner in approvers[1:]:  # the executor's own approval is being msg.sender
            _send_as(reader, owner, tx.safe_address, approve, "approveHash")
        # v = 1: "approved hash" signatures, r = the owner, sorted by owner as checkNSignatures wants
        signatures = b"".join(int(o, 16).to_bytes(32, "big") + bytes(32) + b"\x01" for o in approvers)
        data = exec_transaction_data(tx, signatures)
        receipt = _send_as(reader, approvers[0], tx.safe_address, data, "execTransaction")
    finally:
        for owner in approvers:
            reader.request("anvil_stopImpersonatingAccount", [owner], retry=False)
    block = int(receipt["blockNumber"], 16)
    gas = int(receipt["gasUsed"], 16)
    if int(receipt["status"], 16) == 1:
        return _Run(block=block, reverted=False, reason=None, gas_used=gas)
    try:
        reader.call(tx.safe_address, data, block=block - 1, sender=approvers[0])
        reason = "reverted on chain, but not on replay"
    except CallReverted as exc:
        reason = explain_safe_revert(exc.reason)
    return _Run(block=block, reverted=True, reason=f"{reason}; {diagnose_inner_calls(reader, tx, block=block - 1)}", gas_used=gas)


def _evm_snapshot(reader: ChainReader) -> str:
    try:
        return str(reader.request("evm_snapshot", [], retry=False))
    except RpcError as exc:
        raise ChainError(
            f"RPC {reader.endpoint} cannot take state snapshots ({exc.cause})",
            "simulate on the devnet (`steward devnet up`) or on an anvil fork: `anvil --fork-url <RPC> --chain-id <id>`",
        ) from None


def require_code(reader: ChainReader, cb: ChainBundle, *, block: int) -> None:
    """Refuse a batch calling an address without code: the call would 'succeed' doing nothing.

    A routed bundle calls the policy's RiskSteward; the devnet has none (no RiskSteward bytecode is
    published to npm), so such a bundle can only be simulated on a fork of a chain where it is deployed.
    """
    routing = cb.policy.routing
    steward = to_checksum_address(routing.steward) if routing is not None and routing.steward is not None else None
    for target in dict.fromkeys(to_checksum_address(c.to) for c in inner_calls(cb.safe_tx)):
        if reader.code(target, block=block):
            continue
        if target == steward:
            raise ChainError(
                f"the RiskSteward {target} has no code on chain {reader.chain_id} at block {block}: the batch's steward "
                "calls cannot be simulated here",
                "simulate on an anvil fork of the chain where the steward is deployed (`anvil --fork-url <RPC>`); "
                "the devnet has no RiskSteward",
            )
        raise ChainError(f"call target {target} has no code on chain {reader.chain_id} at block {block}",
                         "check the policy's venue.addresses against this chain")


def simulate_safe_tx(reader: ChainReader, cb: ChainBundle) -> SimulationResult:
    """Run the bundle's SafeTx on an anvil snapshot, compare, revert. Nothing stays on chain."""
    tx = cb.safe_tx
    block = reader.block_number()
    require_code(reader, cb, block=block)
    addresses = resolve_addresses(reader, cb.policy, block=block)
    safe_before = reader.safe_state(tx.safe_address, block=block)
    if (problem := nonce_problem(safe_before.nonce, tx.nonce)) is not None:
        raise ChainError(*problem)
    snapshot = _evm_snapshot(reader)  # first: a node that cannot snapshot is refused before the long reads
    try:
        pre = pool_state(reader, addresses, cb.markets, block=block)
        run = _execute_as_owners(reader, tx, safe_before)
        post = pool_state(reader, addresses, cb.markets, block=run.block)
        safe_after = reader.safe_state(tx.safe_address, block=run.block)
    finally:
        if reader.request("evm_revert", [snapshot], retry=False) is not True:
            raise ChainError(f"evm_revert to snapshot {snapshot} failed: the simulation's state may remain", "restart the devnet or fork")
    safe_problems = [] if run.reverted else _safe_changes(tx, safe_before, safe_after)
    return _result(cb, "simulate", reader.chain_id, block, None, run.reverted, run.reason, run.gas_used, pre, post, safe_problems)


def _result(
    cb: ChainBundle, mode: str, chain_id: int, block: int, execution_tx: str | None, reverted: bool, reason: str | None,
    gas: int | None, pre: dict[str, dict[str, Any]], post: dict[str, dict[str, Any]], safe_problems: list[str],
) -> SimulationResult:
    differences, unexpected, changed = compare(pre, post, cb.expected)
    return SimulationResult(
        mode=mode, bundle_manifest_sha256=cb.manifest_sha256, chain_id=chain_id, block=block,
        safe_tx_hash="0x" + safe_tx_hash(cb.safe_tx).hex(), execution_tx=execution_tx, reverted=reverted,
        revert_reason=reason, gas_used=gas, pre_state=pre, post_state=post, expected=cb.expected,
        differences=differences, unexpected_changes=(*unexpected, *safe_problems), changed=changed,
    )


def simulate(bundle: Path, rpc_url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> SimulationResult:
    """Verify the bundle, simulate its SafeTx on the node at `rpc_url`, write simulation.json."""
    manifest = json.loads((Path(bundle) / MANIFEST).read_bytes()) if (Path(bundle) / MANIFEST).is_file() else {}
    if manifest.get("kind") == "emergency":  # the monitor's bundles carry their own expected post-state
        from governance.watch_emergency import simulate_emergency

        return simulate_emergency(
            bundle, connect(rpc_url, expected_chain_id=int(manifest["chain_id"]), timeout_s=timeout_s, expected_by="the bundle")
        )
    cb = load_chain_bundle(bundle, for_simulation=True)
    reader = connect(rpc_url, expected_chain_id=cb.chain_id, timeout_s=timeout_s, expected_by="the bundle")
    result = simulate_safe_tx(reader, cb)
    write_attachment(bundle, SIMULATION, jsonio.dumps(result.to_json()))
    return result


# --- reconcile ------------------------------------------------------------------------------------


def _execution_receipt(reader: ChainReader, cb: ChainBundle, tx_hash: str | None) -> Mapping[str, Any]:
    """The receipt of the transaction that executed the bundle's safeTxHash."""
    safe_hash = "0x" + safe_tx_hash(cb.safe_tx).hex()
    safe = cb.safe_tx.safe_address
    if tx_hash is None:
        head = reader.block_number()
        start = cb.snapshot_block or 0
        try:
            found = reader.logs(safe, [[EXECUTION_SUCCESS, EXECUTION_FAILURE], safe_hash], from_block=start, to_block=head)
        except RpcError as exc:
            raise ChainError(f"cannot search the Safe's executions in blocks {start}..{head} ({exc.cause})",
                             "pass the execution's transaction hash with --tx") from None
        if not found:
            nonce = reader.safe_state(safe, block=head).nonce
            raise ChainError(
                f"safeTxHash {safe_hash} has not been executed on chain {reader.chain_id} "
                f"(blocks {start}..{head}; the Safe is at nonce {nonce}, the bundle's is {cb.safe_tx.nonce})",
                "execute it first (`steward execute`), or pass --tx if it ran earlier",
            )
        tx_hash = str(found[-1]["transactionHash"])
    receipt = reader.receipt(tx_hash)
    if receipt is None:
        raise ChainError(f"transaction {tx_hash} is not mined on chain {reader.chain_id}", "check the hash and the RPC")
    for log in receipt.get("logs", []):
        topics = [t.lower() for t in log.get("topics", [])]
        if (to_checksum_address(log["address"]) == safe and len(topics) >= 2
                and topics[0] in (EXECUTION_SUCCESS, EXECUTION_FAILURE) and topics[1] == safe_hash):
            return receipt
    raise ChainError(f"transaction {tx_hash} did not execute safeTxHash {safe_hash} on Safe {safe}",
                     "pass the hash of the transaction that ran the bundle")


def reconcile_on_chain(reader: ChainReader, cb: ChainBundle, *, tx_hash: str | None = None) -> SimulationResult:
    """Compare the block before the execution with the block of it."""
    receipt = _execution_receipt(reader, cb, tx_hash)
    block = int(receipt["blockNumber"], 16)
    safe_hash = "0x" + safe_tx_hash(cb.safe_tx).hex()
    failed = any(
        [t.lower() for t in log.get("topics", [])][:2] == [EXECUTION_FAILURE, safe_hash] for log in receipt.get("logs", [])
    )
    addresses = resolve_addresses(reader, cb.policy, block=block)
    pre = pool_state(reader, addresses, cb.markets, block=block - 1)
    post = pool_state(reader, addresses, cb.markets, block=block)
    safe_before = reader.safe_state(cb.safe_tx.safe_address, block=block - 1)
    safe_after = reader.safe_state(cb.safe_tx.safe_address, block=block)
    return _result(
        cb, "reconcile", reader.chain_id, block, str(receipt["transactionHash"]), failed,
        "the Safe emitted ExecutionFailure: the batch's call failed" if failed else None,
        int(receipt["gasUsed"], 16), pre, post, _safe_changes(cb.safe_tx, safe_before, safe_after),
    )


def reconcile(
    bundle: Path, rpc_url: str, *, tx_hash: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S
) -> SimulationResult:
    """Verify the bundle, find its execution on chain, compare, write simulation.json."""
    cb = load_chain_bundle(bundle, for_simulation=True)
    reader = connect(rpc_url, expected_chain_id=cb.chain_id, timeout_s=timeout_s, expected_by="the bundle")
    result = reconcile_on_chain(reader, cb, tx_hash=tx_hash)
    write_attachment(bundle, SIMULATION, jsonio.dumps(result.to_json()))
    return result

