"""Reconcile the chain after a Governor executed a bundle's proposal, as `simulate.reconcile` does for the Safe.

The execution is the transaction in which the governor emitted `ProposalExecuted(proposalId)` (found
in the governor's logs since the bundle's snapshot block, or given by hash). The policy's markets
and every other reserve are read at the block before it and at its block with the Safe path's
`pool_state`, and compared with the same `compare`: every recommended value reached exactly,
nothing else changed. Two governor facts are checked too: the proposal is `Executed`, and with a
timelock, the timelock's `CallExecuted` events for the proposal's operation are exactly its actions,
in order. The result goes to simulation.json (mode "reconcile-governor").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address

from governance import jsonio
from governance.bundle import SIMULATION
from governance.chain import (
    DEFAULT_TIMEOUT_S,
    ChainError,
    ChainReader,
    RpcError,
    connect,
)
from governance.chain_bundle import write_attachment
from governance.governor import GovernorError
from governance.governor_chain import (
    PROPOSAL_EXECUTED,
    GovernorBundle,
    ProposalState,
    load_governor_bundle,
    proposal_state,
)
from governance.simulate import compare, state_check_json
from governance.venues.aave_v3_read import pool_state, resolve_addresses

CALL_EXECUTED = "0x" + keccak(text="CallExecuted(bytes32,uint256,address,uint256,bytes)").hex()
MODE = "reconcile-governor"


@dataclass(frozen=True)
class GovernorReconciliation:
    """The content of simulation.json after a governor execution."""

    bundle_manifest_sha256: str
    chain_id: int
    block: int
    governor: str
    proposal_id: int
    timelock_operation_id: str | None
    execution_tx: str
    gas_used: int
    pre_state: dict[str, dict[str, Any]]
    post_state: dict[str, dict[str, Any]]
    expected: dict[str, dict[str, int]]
    differences: tuple[str, ...]
    unexpected_changes: tuple[str, ...]
    changed: tuple[str, ...]

    mode = MODE

    @property
    def ok(self) -> bool:
        return not self.differences and not self.unexpected_changes

    def to_json(self) -> dict[str, Any]:
        return {
            **state_check_json(self),
            "governor": self.governor,
            "proposal_id": str(self.proposal_id),
            "revert_reason": None,
            "reverted": False,
            "timelock_operation_id": self.timelock_operation_id,
        }


def require_ok(result: GovernorReconciliation) -> None:
    if result.ok:
        return
    problems = (*(f"not as recommended: {d}" for d in result.differences),
                *(f"unexpected change: {u}" for u in result.unexpected_changes))
    raise GovernorError(
        f"reconciliation of proposal {result.proposal_id} failed on chain {result.chain_id} at block {result.block}: "
        f"{len(problems)} problem(s)",
        "the chain does not hold what the recommendation says; see simulation.json for the pre- and post-state",
        problems,
    )


def _executed_id(log: Mapping[str, Any]) -> int | None:
    if [t.lower() for t in log.get("topics", [])][:1] != [PROPOSAL_EXECUTED]:
        return None
    (found,) = abi_decode(["uint256"], bytes.fromhex(str(log["data"])[2:]))
    return int(found)


def execution_receipt(reader: ChainReader, gb: GovernorBundle, tx_hash: str | None) -> Mapping[str, Any]:
    """The receipt of the transaction in which the governor executed the bundle's proposal."""
    p = gb.proposal
    if tx_hash is None:
        head, start = reader.block_number(), gb.snapshot_block or 0
        try:
            logs = reader.logs(p.governor, [PROPOSAL_EXECUTED], from_block=start, to_block=head)
        except RpcError as exc:
            raise ChainError(f"cannot search the governor's executions in blocks {start}..{head} ({exc.cause})",
                             "pass the execution's transaction hash with --tx") from None
        found = [log for log in logs if _executed_id(log) == p.proposal_id]
        if not found:
            state = proposal_state(reader, p, block=head)
            raise ChainError(
                f"proposal {p.proposal_id} has not been executed on chain {reader.chain_id} (blocks {start}..{head}; "
                f"its state is {'not proposed' if state is None else state.name})",
                "propose, vote, queue and execute it first (`steward governor …`), or pass --tx if it ran earlier",
            )
        tx_hash = str(found[-1]["transactionHash"])
    receipt = reader.receipt(tx_hash)
    if receipt is None:
        raise ChainError(f"transaction {tx_hash} is not mined on chain {reader.chain_id}", "check the hash and the RPC")
    if not any(to_checksum_address(log["address"]) == p.governor and _executed_id(log) == p.proposal_id
               for log in receipt.get("logs", [])):
        raise ChainError(f"transaction {tx_hash} did not execute proposal {p.proposal_id} on governor {p.governor}",
                         "pass the hash of the transaction that ran the proposal")
    return receipt


def _timelock_problems(gb: GovernorBundle, receipt: Mapping[str, Any]) -> list[str]:
    """The timelock's CallExecuted events for the operation, compared with the proposal's actions."""
    p = gb.proposal
    op = p.timelock_operation_id
    if p.timelock is None or op is None:
        return []
    ran = []
    for log in receipt.get("logs", []):
        topics = [t.lower() for t in log.get("topics", [])]
        if to_checksum_address(log["address"]) == p.timelock and topics[:2] == [CALL_EXECUTED, "0x" + op.hex()]:
            target, value, data = abi_decode(["address", "uint256", "bytes"], bytes.fromhex(str(log["data"])[2:]))
            ran.append((int(topics[2], 16), to_checksum_address(target), int(value), bytes(data)))
    wanted = [(i, t, v, d) for i, (t, v, d) in enumerate(zip(*p.args, strict=True))]
    if ran != wanted:
        return [(f"the timelock ran {len(ran)} call(s) of operation 0x{op.hex()}, not exactly the proposal's "
                 f"{len(wanted)} actions in order")]
    return []


def reconcile_on_chain(reader: ChainReader, gb: GovernorBundle, *, tx_hash: str | None = None) -> GovernorReconciliation:
    """Compare the block before the governor's execution with the block of it."""
    receipt = execution_receipt(reader, gb, tx_hash)
    block = int(receipt["blockNumber"], 16)
    addresses = resolve_addresses(reader, gb.policy, block=block)
    pre = pool_state(reader, addresses, gb.markets, block=block - 1)
    post = pool_state(reader, addresses, gb.markets, block=block)
    differences, unexpected, changed = compare(pre, post, gb.expected)
    extra = _timelock_problems(gb, receipt)
    state = proposal_state(reader, gb.proposal, block=block)
    if state is not ProposalState.EXECUTED:
        extra.append(f"proposal {gb.proposal.proposal_id} is {state.name if state else 'unknown'} after its execution")
    op = gb.proposal.timelock_operation_id
    return GovernorReconciliation(
        bundle_manifest_sha256=gb.manifest_sha256, chain_id=reader.chain_id, block=block, governor=gb.proposal.governor,
        proposal_id=gb.proposal.proposal_id, timelock_operation_id=None if op is None else "0x" + op.hex(),
        execution_tx=str(receipt["transactionHash"]), gas_used=int(receipt["gasUsed"], 16), pre_state=pre,
        post_state=post, expected=gb.expected, differences=differences, unexpected_changes=(*unexpected, *extra),
        changed=changed,
    )


def write_result(gb: GovernorBundle, result: GovernorReconciliation) -> None:
    write_attachment(gb.path, SIMULATION, jsonio.dumps(result.to_json()))


def reconcile(bundle: Path, rpc_url: str, *, tx_hash: str | None = None,
              timeout_s: float = DEFAULT_TIMEOUT_S) -> GovernorReconciliation:
    """Verify the bundle, find the governor's execution, compare, write simulation.json."""
    gb = load_governor_bundle(bundle, for_reconcile=True)
    reader = connect(rpc_url, expected_chain_id=gb.chain_id, timeout_s=timeout_s, expected_by="the bundle")
    result = reconcile_on_chain(reader, gb, tx_hash=tx_hash)
    write_result(gb, result)
    return result
