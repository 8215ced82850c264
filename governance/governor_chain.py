"""A bundle's Governor proposal on chain: load it verified, check it against the governor, send its steps.

`load_governor_bundle` starts every step: the bundle must pass `steward verify`, governor.json's
ids must follow from its actions, its governor and chain must be the policy's, and its actions —
decoded independently of the pipeline that encoded them — must set exactly the recommendation.

`check_proposal` asks the governor, before anything is sent, whether it will take the proposal as
Steward computed it: `hashProposal` must give our id and an `eth_call` of `propose` from the
proposer must return it (a governor that numbers proposals itself — sequential ids — returns
another), the proposal must not exist yet, fit the action limits (the policy's and the governor's
`proposalMaxOperations()` where it has one) and the proposer must hold the proposal threshold. With
a timelock, the timelock's `hashOperationBatch` must give our operation id. Every problem is listed.
Vote, queue and execute each check the proposal's state and `eth_call` the step first; a refusal
means nothing was sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

from governance.bundle import MANIFEST, BundleError, read_bundle, sha256
from governance.chain import CallReverted, ChainError, ChainReader, ViewFn, send_transaction
from governance.chain_bundle import (
    call_label,
    check_calls,
    expected_values,
    verify_core,
)
from governance.governor import (
    GOVERNOR_JSON,
    GovernorError,
    GovernorProposal,
    proposal_from_json,
    timelock_salt,
)
from governance.pinned import INPUT_POLICY
from governance.safe import safe_tx_for_calls
from governance.signing import RECEIPT_TIMEOUT_S, address_of
from governance.venues.aave_v3_read import explain_revert
from risk.policy import Policy
from risk.policy_load import check_policy_text

_ACTIONS = "address[]", "uint256[]", "bytes[]"
HASH_PROPOSAL = ViewFn("hashProposal(address[],uint256[],bytes[],bytes32)", ("uint256",))
PROPOSE = ViewFn("propose(address[],uint256[],bytes[],string)", ("uint256",))
QUEUE = ViewFn("queue(address[],uint256[],bytes[],bytes32)", ("uint256",))
EXECUTE = ViewFn("execute(address[],uint256[],bytes[],bytes32)", ("uint256",))
CAST_VOTE = ViewFn("castVote(uint256,uint8)", ("uint256",))
STATE = ViewFn("state(uint256)", ("uint8",))
THRESHOLD = ViewFn("proposalThreshold()", ("uint256",))
CLOCK = ViewFn("clock()", ("uint48",))
GET_VOTES = ViewFn("getVotes(address,uint256)", ("uint256",))
HAS_VOTED = ViewFn("hasVoted(uint256,address)", ("bool",))
SNAPSHOT = ViewFn("proposalSnapshot(uint256)", ("uint256",))
DEADLINE = ViewFn("proposalDeadline(uint256)", ("uint256",))
ETA = ViewFn("proposalEta(uint256)", ("uint256",))
TIMELOCK = ViewFn("timelock()", ("address",))
MAX_OPERATIONS = ViewFn("proposalMaxOperations()", ("uint256",))
HASH_OPERATION_BATCH = ViewFn("hashOperationBatch(address[],uint256[],bytes[],bytes32,bytes32)", ("bytes32",))
PROPOSAL_CREATED = "0x" + keccak(
    text="ProposalCreated(uint256,address,address[],uint256[],string[],bytes[],uint256,uint256,string)"
).hex()
PROPOSAL_EXECUTED = "0x" + keccak(text="ProposalExecuted(uint256)").hex()

# OpenZeppelin 5's custom errors (IGovernor, TimelockController, GovernorSequentialProposalId) and
# the devnet governor's action cap; a revert is shown with its name and arguments.
_ERRORS = (
    "GovernorInvalidProposalLength(uint256,uint256,uint256)", "GovernorAlreadyCastVote(address)",
    "GovernorOnlyExecutor(address)", "GovernorNonexistentProposal(uint256)",
    "GovernorUnexpectedProposalState(uint256,uint8,bytes32)", "GovernorInsufficientProposerVotes(address,uint256,uint256)",
    "GovernorRestrictedProposer(address)", "GovernorInvalidVoteType()", "GovernorProposalQueueingNotRequired(uint256)",
    "GovernorProposalQueueingFailed(uint256)", "GovernorAlreadyQueuedProposal(uint256)",
    "GovernorUnableToCancel(uint256,address)", "GovernorTooManyOperations(uint256,uint256)",
    "TimelockInsufficientDelay(uint256,uint256)", "TimelockUnexpectedOperationState(bytes32,bytes32)",
    "TimelockUnexecutedPredecessor(bytes32)", "TimelockUnauthorizedCaller(address)",
    "AccessControlUnauthorizedAccount(address,bytes32)", "FailedCall()",
)
_ERROR_SELECTORS = {function_signature_to_4byte_selector(s): s for s in _ERRORS}


class ProposalState(IntEnum):
    PENDING = 0
    ACTIVE = 1
    CANCELED = 2
    DEFEATED = 3
    SUCCEEDED = 4
    QUEUED = 5
    EXPIRED = 6
    EXECUTED = 7


def explain_governor_revert(exc: CallReverted) -> str:
    """A governor or timelock custom error with its arguments, else the Aave or plain reason."""
    raw = bytes.fromhex(exc.data[2:]) if isinstance(exc.data, str) and exc.data.startswith("0x") else b""
    signature = _ERROR_SELECTORS.get(raw[:4])
    if signature is None:
        return explain_revert(exc.reason)
    name, types = signature.split("(")[0], [t for t in signature[signature.index("(") + 1 : -1].split(",") if t]
    try:
        args = abi_decode(types, raw[4:])
    except (DecodingError, OverflowError):
        return name
    shown = []
    for t, a in zip(types, args, strict=True):
        if t == "bytes32":
            shown.append("0x" + a.hex())
        elif t == "uint8" and name == "GovernorUnexpectedProposalState":
            shown.append(ProposalState(a).name if a in ProposalState._value2member_map_ else str(a))
        else:
            shown.append(str(a))
    return f"{name}({', '.join(shown)})"


@dataclass(frozen=True)
class GovernorBundle:
    """A verified bundle's facts the governor steps need."""

    path: Path
    manifest_sha256: str
    chain_id: int
    snapshot_block: int | None
    policy: Policy
    proposal: GovernorProposal
    markets: dict[str, str]  # symbol → asset
    expected: dict[str, dict[str, int]]  # symbol → parameter → proposed value, on-chain units


@dataclass(frozen=True)
class _Action:
    to: str
    value: int
    data: str


def load_governor_bundle(bundle: Path, *, for_reconcile: bool = False) -> GovernorBundle:
    """Verify `bundle` and read its governor proposal; refuse anything inconsistent."""
    bundle = Path(bundle)
    verify_core(bundle, require_passed_simulation=not for_reconcile)
    files = read_bundle(bundle)
    if GOVERNOR_JSON not in files:
        raise GovernorError(f"{bundle}/{GOVERNOR_JSON} is missing",
                            "the policy has no `governor:` section, or the epoch made no call; add it and rerun the epoch")
    try:
        manifest, recommendation = json.loads(files[MANIFEST]), json.loads(files["recommendation.json"])
        proposal = proposal_from_json(json.loads(files[GOVERNOR_JSON]), f"{bundle}/{GOVERNOR_JSON}")
    except (KeyError, ValueError) as exc:
        raise BundleError(f"{bundle}: cannot read the manifest, recommendation or governor file ({exc})",
                          "rebuild the bundle with `steward epoch`") from None
    policy, found = check_policy_text(files[INPUT_POLICY], f"{bundle}/{INPUT_POLICY}")
    if policy is None:
        raise BundleError(f"{bundle}/{INPUT_POLICY} does not validate: {found[0]}", "rebuild the bundle")
    chain_id = int(manifest["chain_id"])
    if policy.governor is None or to_checksum_address(policy.governor.address) != proposal.governor:
        raise GovernorError(f"{bundle}/{GOVERNOR_JSON} is for governor {proposal.governor}, the policy's is "
                            f"{policy.governor.address if policy.governor else 'none'}", "rebuild the bundle")
    if proposal.chain_id != chain_id or policy.venue.chain_id != chain_id:
        raise GovernorError(f"{bundle}/{GOVERNOR_JSON} is for chain {proposal.chain_id}, the manifest says {chain_id}",
                            "rebuild the bundle with `steward epoch`")
    if len(proposal.targets) > policy.governor.max_actions:
        raise GovernorError(f"{len(proposal.targets)} actions, the policy allows {policy.governor.max_actions} per proposal",
                            "rebuild the bundle with `steward epoch`")
    # The shared checker reads calls out of a SafeTx; packing the actions into one (never sent) lets
    # the governor's actions pass the same independent decoding as the Safe's.
    actions = [_Action(t, v, "0x" + d.hex()) for t, v, d in zip(*proposal.args, strict=True)]
    packed = safe_tx_for_calls(actions, safe_address=proposal.governor, chain_id=chain_id, nonce=0)
    try:
        check_calls(packed, recommendation, policy.venue.addresses.pool_configurator, batch="governor")
    except BundleError as exc:
        raise GovernorError(f"{GOVERNOR_JSON}: the proposal's actions do not match recommendation.json",
                            "do not propose: the actions do not do what the report says", exc.problems) from None
    block = manifest.get("block")
    return GovernorBundle(
        path=bundle, manifest_sha256=sha256(files[MANIFEST]), chain_id=chain_id,
        snapshot_block=int(block) if block is not None else None, policy=policy, proposal=proposal,
        markets={m.symbol: to_checksum_address(m.asset) for m in policy.markets},
        expected=expected_values(recommendation, batch="governor"),
    )


# --- reads -----------------------------------------------------------------------------------------


def _optional(reader: ChainReader, address: str, fn: ViewFn, *args: Any, block: int) -> tuple[Any, ...] | None:
    """A view the contract may not have (older governors): None when it reverts or returns nothing."""
    try:
        raw = reader.call(address, fn.encode(*args), block=block)
    except CallReverted:
        return None
    return fn.decode(raw, f"{fn.signature} on {address}") if raw else None


def proposal_state(reader: ChainReader, proposal: GovernorProposal, *, block: int) -> ProposalState | None:
    """The proposal's state, None when the governor does not know it."""
    try:
        raw = reader.call(proposal.governor, STATE.encode(proposal.proposal_id), block=block)
    except CallReverted as exc:
        if explain_governor_revert(exc).startswith("GovernorNonexistentProposal"):
            return None
        raise ChainError(f"state() on governor {proposal.governor} reverted ({explain_governor_revert(exc)})",
                         "is the address an OpenZeppelin Governor?") from None
    (value,) = STATE.decode(raw, f"state on {proposal.governor}")
    return ProposalState(value)


def _timepoint(reader: ChainReader, governor: str, block: int) -> int:
    """The governor's clock (IERC6372) at `block`; block numbers when it has none."""
    found = _optional(reader, governor, CLOCK, block=block)
    return int(found[0]) if found is not None else block


@dataclass(frozen=True)
class ProposeCheck:
    block: int
    proposer: str
    proposer_votes: int
    threshold: int
    max_operations: int | None


def check_proposal(reader: ChainReader, gb: GovernorBundle, proposer: str) -> ProposeCheck:
    """Everything `propose` would trip on, asked of the chain without sending; raise listing every problem."""
    p, block = gb.proposal, reader.block_number()
    ours = p.proposal_id
    if not reader.code(p.governor, block=block):
        raise GovernorError(f"there is no contract at governor {p.governor} on chain {reader.chain_id}",
                            "check governor.address in the policy and the RPC's chain; nothing was sent")
    problems: list[str] = []
    stated_lock = gb.policy.governor.timelock if gb.policy.governor else None
    onchain_lock = _optional(reader, p.governor, TIMELOCK, block=block)
    if stated_lock is not None and (onchain_lock is None or to_checksum_address(onchain_lock[0]) != p.timelock):
        problems.append(f"the governor's timelock is {onchain_lock[0] if onchain_lock else 'unknown'}, the policy says {stated_lock}")
    if stated_lock is None and onchain_lock is not None:
        problems.append(f"the governor executes through timelock {onchain_lock[0]}, which the policy does not name "
                        "(add governor.timelock: reviewers must see who executes)")
    # Each action alone, run by the executor (the timelock, else the governor) on today's state: an
    # executor without the risk-admin role is found now rather than after the vote.
    executor = to_checksum_address(onchain_lock[0]) if onchain_lock is not None else p.governor
    for i, (target, _, data) in enumerate(zip(*p.args, strict=True)):
        try:
            reader.call(target, data, block=block, sender=executor)
        except CallReverted as exc:
            problems.append(f"action {i} ({call_label('0x' + data.hex())} on {target}) reverts when the executor "
                            f"{executor} runs it: {explain_revert(exc.reason)}")
    found = _optional(reader, p.governor, HASH_PROPOSAL, *p.args, p.description_hash, block=block)
    if found is None or found[0] != ours:
        problems.append(f"the governor's hashProposal gives {found[0] if found else 'nothing (it reverts)'}, "
                        f"Steward computes {ours}: it hashes proposals differently")
    cap = _optional(reader, p.governor, MAX_OPERATIONS, block=block)
    max_ops = int(cap[0]) if cap is not None else None
    if max_ops is not None and len(p.targets) > max_ops:
        problems.append(f"{len(p.targets)} actions, the governor's proposalMaxOperations() is {max_ops}")
    if (state := proposal_state(reader, p, block=block)) is not None:
        problems.append(f"proposal {ours} already exists on the governor (state {state.name})")
    (threshold,) = reader.read(p.governor, THRESHOLD, block=block)
    (votes,) = reader.read(p.governor, GET_VOTES, proposer, _timepoint(reader, p.governor, block) - 1, block=block)
    if votes < threshold:
        problems.append(f"proposer {proposer} has {votes} votes, the proposal threshold is {threshold}")
    if p.timelock is not None and onchain_lock is not None:
        salt = timelock_salt(p.governor, p.description_hash)
        op = _optional(reader, p.timelock, HASH_OPERATION_BATCH, *p.args, bytes(32), salt, block=block)
        if op is None or op[0] != p.timelock_operation_id:
            problems.append(f"the timelock's hashOperationBatch gives {('0x' + op[0].hex()) if op else 'nothing'}, "
                            f"governor.json says 0x{(p.timelock_operation_id or b'').hex()}")
    if not problems:  # a dry run of propose itself: what id the governor assigns, or why it refuses
        try:
            raw = reader.call(p.governor, PROPOSE.encode(*p.args, p.description), block=block, sender=proposer)
            (assigned,) = PROPOSE.decode(raw, f"propose on {p.governor}")
            if assigned != ours:
                problems.append(f"the governor would number this proposal {assigned}, not {ours} (the hash of its "
                                "actions and description): it overrides proposal ids (e.g. sequential ids)")
        except CallReverted as exc:
            problems.append(f"propose would revert: {explain_governor_revert(exc)}")
    if problems:
        raise GovernorError(f"governor {p.governor} would not take proposal {ours} as built: "
                            f"{len(problems)} problem(s)", "nothing was sent", tuple(problems))
    return ProposeCheck(block=block, proposer=proposer, proposer_votes=votes, threshold=threshold, max_operations=max_ops)


# --- sending ---------------------------------------------------------------------------------------


def send_checked(reader: ChainReader, private_key: bytes, to: str, data: bytes, what: str) -> Mapping[str, Any]:
    """eth_call, estimate, sign, send once, wait; any refusal before the send leaves the chain untouched."""
    sender = address_of(private_key)
    try:
        reader.call(to, data, block="latest", sender=sender)
    except CallReverted as exc:
        raise GovernorError(f"{what} would revert: {explain_governor_revert(exc)}", "nothing was sent") from None
    return send_transaction(
        reader, private_key, to, data, what=what, error=GovernorError, explain=explain_governor_revert,
        receipt_timeout_s=RECEIPT_TIMEOUT_S,
        after_revert_hint="the chain changed between the check and the transaction; check the proposal's state",
    )


@dataclass(frozen=True)
class StepOutcome:
    step: str
    proposal_id: int
    tx_hash: str
    block: int
    detail: str


def _outcome(step: str, gb: GovernorBundle, receipt: Mapping[str, Any], detail: str) -> StepOutcome:
    return StepOutcome(step=step, proposal_id=gb.proposal.proposal_id, tx_hash=str(receipt["transactionHash"]),
                       block=int(receipt["blockNumber"], 16), detail=detail)


def propose(reader: ChainReader, gb: GovernorBundle, private_key: bytes) -> StepOutcome:
    """Check, then send `propose`; the ProposalCreated event must carry our id."""
    p = gb.proposal
    check_proposal(reader, gb, address_of(private_key))
    receipt = send_checked(reader, private_key, p.governor, PROPOSE.encode(*p.args, p.description), "propose")
    created = [log for log in receipt.get("logs", [])
               if to_checksum_address(log["address"]) == p.governor and log["topics"][:1] == [PROPOSAL_CREATED]]
    types = ["uint256", "address", *_ACTIONS[:2], "string[]", "bytes[]", "uint256", "uint256", "string"]
    if len(created) != 1:
        raise GovernorError(f"propose was mined ({receipt['transactionHash']}) but emitted {len(created)} ProposalCreated",
                            "inspect the transaction on chain")
    fields = abi_decode(types, bytes.fromhex(created[0]["data"][2:]))
    if fields[0] != p.proposal_id:
        raise GovernorError(f"the governor created proposal {fields[0]}, not {p.proposal_id}",
                            "its ids are not the hash Steward computes; cancel it on chain")
    return _outcome("proposed", gb, receipt, f"voting from {fields[6]} to {fields[7]} (governor clock)")


def _require_state(reader: ChainReader, gb: GovernorBundle, wanted: ProposalState, step: str, hint: str) -> int:
    block = reader.block_number()
    state = proposal_state(reader, gb.proposal, block=block)
    if state is not wanted:
        raise GovernorError(f"cannot {step}: proposal {gb.proposal.proposal_id} is "
                            f"{'not proposed' if state is None else state.name}, {step} needs {wanted.name}", hint)
    return block


def vote(reader: ChainReader, gb: GovernorBundle, private_key: bytes, support: int) -> StepOutcome:
    """castVote(id, support) — 0 against, 1 for, 2 abstain — from the key's account."""
    p, voter = gb.proposal, address_of(private_key)
    block = reader.block_number()
    state = proposal_state(reader, p, block=block)
    if state is not ProposalState.ACTIVE:
        (start,) = reader.read(p.governor, SNAPSHOT, p.proposal_id, block=block) if state is not None else (None,)
        hint = (f"voting opens after timepoint {start} (now {_timepoint(reader, p.governor, block)})"
                if state is ProposalState.PENDING else "propose it first (`steward propose BUNDLE --governor`)")
        raise GovernorError(f"cannot vote: proposal {p.proposal_id} is {'not proposed' if state is None else state.name}",
                            hint + "; nothing was sent")
    (voted,) = reader.read(p.governor, HAS_VOTED, p.proposal_id, voter, block=block)
    if voted:
        raise GovernorError(f"{voter} has already voted on proposal {p.proposal_id}", "nothing was sent")
    (snapshot,) = reader.read(p.governor, SNAPSHOT, p.proposal_id, block=block)
    (weight,) = reader.read(p.governor, GET_VOTES, voter, snapshot, block=block)
    if weight == 0:
        raise GovernorError(f"{voter} had no votes at the proposal's snapshot ({snapshot})",
                            "delegate votes before a proposal is made; nothing was sent")
    receipt = send_checked(reader, private_key, p.governor, CAST_VOTE.encode(p.proposal_id, support), "castVote")
    return _outcome("voted", gb, receipt, f"{('against', 'for', 'abstain')[support]} with {weight} votes")


def queue(reader: ChainReader, gb: GovernorBundle, private_key: bytes) -> StepOutcome:
    """queue(...) a succeeded proposal into the timelock."""
    p = gb.proposal
    _require_state(reader, gb, ProposalState.SUCCEEDED, "queue", "wait for the vote to end and pass; nothing was sent")
    receipt = send_checked(reader, private_key, p.governor, QUEUE.encode(*p.args, p.description_hash), "queue")
    (eta,) = reader.read(p.governor, ETA, p.proposal_id, block=int(receipt["blockNumber"], 16))
    return _outcome("queued", gb, receipt, f"executable from timestamp {eta}")


def execute(reader: ChainReader, gb: GovernorBundle, private_key: bytes) -> StepOutcome:
    """execute(...) a queued proposal whose timelock delay is over."""
    p = gb.proposal
    block = _require_state(reader, gb, ProposalState.QUEUED, "execute", "queue it first; nothing was sent")
    (eta,) = reader.read(p.governor, ETA, p.proposal_id, block=block)
    now = int(reader.block("latest")["timestamp"], 16)
    if eta and now < eta:
        raise GovernorError(f"cannot execute yet: the timelock's delay ends at timestamp {eta} ({eta - now} s from now)",
                            "wait, then run it again; nothing was sent")
    receipt = send_checked(reader, private_key, p.governor, EXECUTE.encode(*p.args, p.description_hash), "execute")
    return _outcome("executed", gb, receipt, f"{len(p.targets)} action(s) run by the timelock")



def connect_bundle(gb: GovernorBundle, rpc_url: str, *, timeout_s: float) -> ChainReader:
    """A reader on the bundle's chain (refused if the RPC serves another chain)."""
    from governance.chain import connect

    return connect(rpc_url, expected_chain_id=gb.chain_id, timeout_s=timeout_s, expected_by="the bundle")
