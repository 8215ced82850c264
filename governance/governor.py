"""A bundle's calls as an OpenZeppelin Governor proposal: governor.json, with the proposal id computed here.

The actions are the same `Call`s as the Safe batch, in the same order. The description is rendered
from templates/governor_description.md.j2 (the changes in people's units, the pinned inputs' sha256
and the `steward verify` command). The id is the governor's default (DOMAIN.md):

    proposalId = uint256(keccak256(abi.encode(targets, values, calldatas, keccak256(bytes(description)))))

and, with a TimelockControl governor, the timelock's operation id is
`hashOperationBatch(targets, values, calldatas, 0, bytes20(governor) ^ descriptionHash)`.
`steward propose` checks both ids against the chain before anything is sent.

Why the description names the inputs' hashes and not the manifest's: governor.json is a core file,
listed in the manifest and rebuilt by `steward verify`, so the manifest's own hash cannot be inside
it. The inputs' sha256 plus the steward version determine every byte of the bundle, manifest
included, and the verify command named in the description rebuilds it.

Pure: no chain, no clock; same bundle inputs, same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import is_address, keccak, to_checksum_address

from governance import jsonio
from governance.calls import Call
from governance.report import LABELS, delta_text, environment
from risk.errors import StewardError
from risk.policy import Policy
from risk.recommendation import Recommendation, value_text

GOVERNOR_JSON = "governor.json"
TEMPLATE = "governor_description.md.j2"
_ID_TYPES = ["address[]", "uint256[]", "bytes[]", "bytes32"]
_OPERATION_TYPES = ["address[]", "uint256[]", "bytes[]", "bytes32", "bytes32"]
_UINT256_MAX = 2**256 - 1


class GovernorError(StewardError):
    """A governor proposal that cannot be built, read, or sent as it stands."""

    def __init__(self, cause: str, hint: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(cause, hint)
        self.problems = problems


def description_hash(description: str) -> bytes:
    """keccak256(bytes(description)): Solidity's `bytes(string)` is the UTF-8 encoding."""
    return keccak(description.encode("utf-8"))


def proposal_id(targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes], descr_hash: bytes) -> int:
    """OpenZeppelin Governor's `hashProposal`."""
    encoded = abi_encode(_ID_TYPES, [list(targets), list(values), list(calldatas), descr_hash])
    return int.from_bytes(keccak(encoded), "big")


def timelock_salt(governor: str, descr_hash: bytes) -> bytes:
    """GovernorTimelockControl's salt: bytes20(governor) ^ descriptionHash (the address fills the high bytes)."""
    left = bytes.fromhex(to_checksum_address(governor)[2:]) + bytes(12)
    return bytes(a ^ b for a, b in zip(left, descr_hash, strict=True))


def timelock_operation_id(targets: Sequence[str], values: Sequence[int], calldatas: Sequence[bytes], salt: bytes) -> bytes:
    """TimelockController's `hashOperationBatch` with no predecessor."""
    return keccak(abi_encode(_OPERATION_TYPES, [list(targets), list(values), list(calldatas), bytes(32), salt]))


@dataclass(frozen=True)
class GovernorProposal:
    """What `propose(targets, values, calldatas, description)` sends to `governor` on `chain_id`."""

    governor: str
    chain_id: int
    targets: tuple[str, ...]
    values: tuple[int, ...]
    calldatas: tuple[bytes, ...]
    description: str
    timelock: str | None = None

    def __post_init__(self) -> None:
        n = len(self.targets)
        if n == 0 or len(self.values) != n or len(self.calldatas) != n:
            raise GovernorError(
                f"a proposal needs as many targets, values and calldatas, at least one ({n}, {len(self.values)}, "
                f"{len(self.calldatas)})",
                "rebuild the bundle with `steward epoch`",
            )
        for v in self.values:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _UINT256_MAX:
                raise GovernorError(f"action value {v!r} is not a uint256", "rebuild the bundle with `steward epoch`")

    @property
    def description_hash(self) -> bytes:
        return description_hash(self.description)

    @property
    def proposal_id(self) -> int:
        return proposal_id(self.targets, self.values, self.calldatas, self.description_hash)

    @property
    def timelock_operation_id(self) -> bytes | None:
        if self.timelock is None:
            return None
        salt = timelock_salt(self.governor, self.description_hash)
        return timelock_operation_id(self.targets, self.values, self.calldatas, salt)

    @property
    def args(self) -> tuple[list[str], list[int], list[bytes]]:
        """(targets, values, calldatas) as the governor's functions take them."""
        return list(self.targets), list(self.values), list(self.calldatas)


def describe(
    recommendation: Recommendation,
    calls: Sequence[Call],
    *,
    inputs: Mapping[str, str],
    bundle_path: str,
    version: str,
    block: int | None,
) -> str:
    """The proposal's description (Markdown), from the recommendation and the calls."""
    changes = [
        {"market": c.market, "label": LABELS[c.parameter], "current": value_text(c.current),
         "proposed": value_text(c.proposed), "delta": delta_text(c)}
        for c in recommendation.changes
    ]
    actions = [
        {"human": c.human, "signature": c.function.signature, "contract": c.contract_label or "contract", "to": c.to}
        for c in calls
    ]
    text: str = environment().get_template(TEMPLATE).render(
        venue=recommendation.venue, protocol=recommendation.protocol, chain_id=recommendation.chain_id,
        epoch=recommendation.epoch, as_of=recommendation.as_of, changes=changes, actions=actions,
        inputs=dict(inputs), bundle_path=bundle_path, version=version, block=block,
    )
    # A trailing "#proposer=0x…" would restrict who may propose (OpenZeppelin's front-running guard);
    # ours never ends that way, and a description must not be mistaken for one.
    if "#proposer=" in text[-60:]:
        raise GovernorError("the proposal description ends like a #proposer= restriction", "this is a bug in the template")
    return text


def build_proposal(policy: Policy, calls: Sequence[Call], description: str) -> GovernorProposal:
    """The proposal of `calls`, refused above the policy's action limit."""
    settings = policy.governor
    if settings is None:
        raise GovernorError(f"venue {policy.venue.name} has no governor", "add a `governor:` section to the policy")
    if len(calls) > settings.max_actions:
        raise GovernorError(
            f"{len(calls)} calls, but one proposal to governor {settings.address} may carry at most "
            f"{settings.max_actions} actions (governor.max_actions)",
            "split the update over several epochs (fewer markets per policy), or raise governor.max_actions "
            "if the governor accepts more",
        )
    return GovernorProposal(
        governor=to_checksum_address(settings.address),
        chain_id=policy.venue.chain_id,
        targets=tuple(to_checksum_address(c.to) for c in calls),
        values=tuple(c.value for c in calls),
        calldatas=tuple(bytes.fromhex(c.data[2:]) for c in calls),
        description=description,
        timelock=to_checksum_address(settings.timelock) if settings.timelock is not None else None,
    )


def governor_json(proposal: GovernorProposal, calls: Sequence[Call] = ()) -> dict[str, Any]:
    """The content of governor.json; every number a decimal string (uint256 exceeds JSON's safe integers)."""
    if calls and [(c.to, c.value, c.data) for c in calls] != [
        (t, v, "0x" + d.hex()) for t, v, d in zip(*proposal.args, strict=True)
    ]:
        raise GovernorError("the proposal's actions are not the calls given", "this is a bug in packaging")
    op = proposal.timelock_operation_id
    return {
        "actions": [
            {"contract": c.contract_label, "human": c.human, "signature": c.function.signature, "to": c.to}
            for c in calls
        ],
        "calldatas": ["0x" + d.hex() for d in proposal.calldatas],
        "chainId": str(proposal.chain_id),
        "description": proposal.description,
        "descriptionHash": "0x" + proposal.description_hash.hex(),
        "governor": proposal.governor,
        "proposalId": str(proposal.proposal_id),
        "targets": list(proposal.targets),
        "timelock": proposal.timelock,
        "timelockOperationId": None if op is None else "0x" + op.hex(),
        "values": [str(v) for v in proposal.values],
    }


def governor_files(
    policy: Policy,
    recommendation: Recommendation,
    calls: Sequence[Call],
    *,
    inputs: Mapping[str, str],
    bundle_path: str,
    version: str,
    block: int | None,
) -> dict[str, bytes]:
    """{"governor.json": bytes} for `build_files`, or nothing when the policy has no governor or no call."""
    if policy.governor is None or not calls:
        return {}
    text = describe(recommendation, calls, inputs=inputs, bundle_path=bundle_path, version=version, block=block)
    proposal = build_proposal(policy, calls, text)
    return {GOVERNOR_JSON: jsonio.dumps(governor_json(proposal, calls))}


def _decimal(doc: Mapping[str, Any], key: str, where: str) -> int:
    raw = doc.get(key)
    if not isinstance(raw, str) or not raw.isdigit():
        raise GovernorError(f"{where}: {key} must be a decimal string, got {raw!r}", "rebuild the bundle with `steward epoch`")
    return int(raw)


def proposal_from_json(doc: Any, where: str = GOVERNOR_JSON) -> GovernorProposal:
    """Read governor.json back, refusing a file whose stated ids do not follow from its actions."""
    if not isinstance(doc, dict):
        raise GovernorError(f"{where} is not a JSON object", "rebuild the bundle with `steward epoch`")
    try:
        targets, values, calldatas = doc["targets"], doc["values"], doc["calldatas"]
        description, governor, timelock = doc["description"], doc["governor"], doc.get("timelock")
    except KeyError as e:
        raise GovernorError(f"{where} has no {e.args[0]}", "rebuild the bundle with `steward epoch`") from None
    if not (isinstance(targets, list) and isinstance(values, list) and isinstance(calldatas, list)
            and isinstance(description, str)):
        raise GovernorError(f"{where}: targets, values, calldatas must be lists and description a string", "")
    for address in [governor, *targets, *([timelock] if timelock is not None else [])]:
        if not isinstance(address, str) or not is_address(address):
            raise GovernorError(f"{where}: {address!r} is not an address", "rebuild the bundle with `steward epoch`")
    try:
        raw_calldatas = tuple(bytes.fromhex(str(d).removeprefix("0x")) for d in calldatas)
    except ValueError:
        raise GovernorError(f"{where}: a calldata is not hex", "rebuild the bundle with `steward epoch`") from None
    proposal = GovernorProposal(
        governor=to_checksum_address(governor),
        chain_id=_decimal(doc, "chainId", where),
        targets=tuple(to_checksum_address(t) for t in targets),
        values=tuple(_decimal({"value": v}, "value", where) for v in values),
        calldatas=raw_calldatas,
        description=description,
        timelock=to_checksum_address(timelock) if timelock is not None else None,
    )
    stated = _decimal(doc, "proposalId", where)
    if stated != proposal.proposal_id:
        raise GovernorError(f"{where}: proposalId {stated} does not follow from its actions and description "
                            f"({proposal.proposal_id})", "the file was modified; rebuild the bundle")
    if doc.get("descriptionHash") != "0x" + proposal.description_hash.hex():
        raise GovernorError(f"{where}: descriptionHash does not follow from the description", "the file was modified")
    op = proposal.timelock_operation_id
    if doc.get("timelockOperationId") != (None if op is None else "0x" + op.hex()):
        raise GovernorError(f"{where}: timelockOperationId does not follow from its actions", "the file was modified")
    return proposal
