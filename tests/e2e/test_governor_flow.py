"""The bundle's proposal through the devnet's real OpenZeppelin Governor and TimelockController.

The same bundle (one recommendation, one set of calls) is executed once through the Safe and once
through propose → vote → queue → execute, each reconciled against recommendation.json; refusals
(an id-overriding governor, too many actions, a proposer below the threshold, a dead RPC) happen
before anything is sent.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account
from typer.testing import CliRunner

from governance import cli
from governance.artifacts import load_artifact
from governance.bundle import write_bundle
from governance.chain import CallReverted, connect
from governance.compile import load_built
from governance.demo_chain import devnet_policy_text
from governance.devnet_anvil import free_port
from governance.devnet_governor import (
    MAX_OPERATIONS,
    PROPOSAL_THRESHOLD,
    QUORUM_PERCENT,
    TIMELOCK_MIN_DELAY_S,
    VOTING_DELAY_BLOCKS,
    VOTING_PERIOD_BLOCKS,
    advance,
    deploy_governor_contract,
    with_governor,
)
from governance.epoch_inputs import gather_inputs
from governance.governor import GovernorError, timelock_salt
from governance.governor_chain import (
    HASH_OPERATION_BATCH,
    HASH_PROPOSAL,
    PROPOSE,
    GovernorBundle,
    ProposalState,
    execute,
    explain_governor_revert,
    load_governor_bundle,
    proposal_state,
    propose,
    queue,
    vote,
)
from governance.pipeline import bundle_dir
from governance.signing import execute_bundle, sign_bundle
from governance.venues.aave_v3_read import pool_state, read_snapshot, resolve_addresses
from risk.policy_governor import GovernorPolicy
from risk.policy_load import load_policy

pytestmark = pytest.mark.e2e

STRANGER_KEY = bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba")


APP = cli.app  # the real command line, with every extension registered


def _cli(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(APP, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def gov_bundle(session, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An epoch on the devnet whose policy names the devnet's governor and timelock."""
    devnet = session.devnet
    state, out = tmp_path_factory.mktemp("gov-state"), tmp_path_factory.mktemp("gov-out")
    from governance import pipeline

    policy_path = state / "policy.yaml"
    policy_path.write_bytes(with_governor(devnet_policy_text(devnet), devnet.addresses["governor"],
                                          devnet.addresses["timelock"], max_actions=MAX_OPERATIONS))
    policy = load_policy(policy_path, None).policy
    reader = connect(devnet.rpc_url, expected_chain_id=policy.venue.chain_id)
    snapshot = read_snapshot(reader, policy, block=None, safe=policy.venue.addresses.safe)
    snapshot_path = state / "snapshot.json"
    snapshot_path.write_bytes(snapshot.to_json_bytes())
    inputs = gather_inputs(policy_path, snapshot_path=snapshot_path)
    target = bundle_dir(out, inputs)
    write_bundle(pipeline.build_files(inputs), target)
    return target


@pytest.fixture(scope="module")
def loaded(gov_bundle: Path) -> GovernorBundle:
    """The bundle verified and loaded once, for the steps driven through the Python API."""
    return load_governor_bundle(gov_bundle)


def _key(devnet, i: int) -> bytes:
    return bytes.fromhex(devnet.owner_keys[i][2:])


@pytest.fixture
def bundle(gov_bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(gov_bundle, copy)
    return copy


@pytest.fixture
def keystores(devnet, make_keystores) -> dict[str, Path]:
    return make_keystores({"voter1": devnet.owner_keys[0], "voter2": devnet.owner_keys[1], "stranger": STRANGER_KEY})


def _step(step: str, bundle: Path, devnet, keystore: Path, *extra: object) -> tuple[int, str]:
    return _cli("governor", step, bundle, "--rpc", devnet.rpc_url, "--keystore", keystore,
                "--password-env", "STEWARD_TEST_PASSWORD", *extra)


def _propose(bundle: Path, rpc: str, keystore: Path) -> tuple[int, str]:
    return _cli("propose", bundle, "--governor", "--rpc", rpc, "--keystore", keystore,
                "--password-env", "STEWARD_TEST_PASSWORD")


def _acl(chain, devnet):
    return chain.contract(devnet.addresses["acl_manager"], load_artifact("@aave/core-v3", "ACLManager"))


def _recommended_state(devnet, gb) -> dict[str, dict[str, int]]:
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    block = reader.block_number()
    state = pool_state(reader, resolve_addresses(reader, gb.policy, block=block), gb.markets, block=block)
    return {symbol: {p: state[symbol][p] for p in values} for symbol, values in gb.expected.items()}


def _nothing_sent(chain, accounts: list[str], action):
    head = chain.block_number()
    sent = [chain.w3.eth.get_transaction_count(a) for a in accounts]
    result = action()
    assert chain.block_number() == head
    assert [chain.w3.eth.get_transaction_count(a) for a in accounts] == sent
    return result


def _refusal(action) -> GovernorError:
    with pytest.raises(GovernorError) as raised:
        action()
    return raised.value


def test_the_proposal_id_and_timelock_operation_are_the_chains(devnet, loaded):
    gb, bundle = loaded, loaded.path
    p = gb.proposal
    doc = json.loads((bundle / "governor.json").read_text())
    assert doc["proposalId"] == str(p.proposal_id) and len(doc["targets"]) == len(json.loads((bundle / "calls.json").read_text()))
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    block = reader.block_number()
    assert reader.read(p.governor, HASH_PROPOSAL, *p.args, p.description_hash, block=block) == (p.proposal_id,)
    salt = timelock_salt(p.governor, p.description_hash)
    (op,) = reader.read(p.timelock, HASH_OPERATION_BATCH, *p.args, bytes(32), salt, block=block)
    assert "0x" + op.hex() == doc["timelockOperationId"]
    # the same calls as the Safe batch, in the same order
    calls = json.loads((bundle / "calls.json").read_text())
    assert [(c["to"], c["data"]) for c in calls] == list(zip(doc["targets"], doc["calldatas"], strict=True))


def test_the_same_recommendation_runs_through_the_safe_and_through_the_governor(
    devnet, chain, bundle, loaded, keystores, tmp_path, restore_chain
):
    safe_copy = tmp_path / "safe-bundle"
    shutil.copytree(bundle, safe_copy)
    gb = loaded
    before = _recommended_state(devnet, gb)
    assert before != gb.expected  # the recommendation changes something

    # 1. through the Safe: two owners sign, one executes, reconciled
    snapshot = chain.rpc("evm_snapshot", [])
    for key in devnet.owner_keys[:2]:
        sign_bundle(safe_copy, bytes.fromhex(key[2:]), rpc_url=devnet.rpc_url)
    done = execute_bundle(safe_copy, devnet.rpc_url, bytes.fromhex(devnet.owner_keys[0][2:]))
    assert done.reconciliation.ok and done.reconciliation.changed
    after_safe = _recommended_state(devnet, gb)
    assert chain.rpc("evm_revert", [snapshot]) is True
    assert _recommended_state(devnet, gb) == before

    # 2. through the Governor: propose, vote, queue, wait out the timelock, execute, reconciled
    code, out = _propose(bundle, devnet.rpc_url, keystores["voter1"])
    assert code == 0, out
    assert f"proposed: proposal {gb.proposal.proposal_id} in tx 0x" in out
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    # (refusals go through the API on the bundle loaded once: each CLI step re-verifies the bundle)
    refused = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: vote(reader, gb, _key(devnet, 0), 1)))
    assert refused.cause.startswith(f"cannot vote: proposal {gb.proposal.proposal_id} is PENDING")
    assert refused.hint.startswith("voting opens after timepoint")
    advance(chain, blocks=VOTING_DELAY_BLOCKS + 1)
    code, out = _step("vote", bundle, devnet, keystores["voter1"])
    assert code == 0 and "voted: proposal" in out and "for with 400000000000000000000000 votes" in out, out
    assert vote(reader, gb, _key(devnet, 1), 1).detail == "for with 300000000000000000000000 votes"
    refused = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: vote(reader, gb, _key(devnet, 0), 1)))
    assert "has already voted" in refused.cause
    refused = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: queue(reader, gb, _key(devnet, 0))))
    assert refused.cause.startswith("cannot queue: proposal") and "is ACTIVE, queue needs SUCCEEDED" in refused.cause
    advance(chain, blocks=VOTING_PERIOD_BLOCKS + 1)
    code, out = _step("queue", bundle, devnet, keystores["voter2"])
    assert code == 0 and "queued: proposal" in out, out
    refused = _nothing_sent(chain, devnet.owners[:2], lambda: _refusal(lambda: execute(reader, gb, _key(devnet, 0))))
    assert refused.cause.startswith("cannot execute yet: the timelock's delay ends at timestamp")
    advance(chain, seconds=TIMELOCK_MIN_DELAY_S)
    code, out = _step("execute", bundle, devnet, keystores["voter1"])
    assert code == 0, out
    assert "executed: proposal" in out and ": OK;" in out and "nothing else changed" in out
    assert "signer packet (before → after, read on chain)" in out and (bundle / "signer-packet.md").is_file()

    doc = json.loads((bundle / "simulation.json").read_text())
    assert doc["mode"] == "reconcile-governor" and doc["ok"] is True and doc["proposal_id"] == str(gb.proposal.proposal_id)
    assert doc["changed"] and not doc["unexpected_changes"] and not doc["differences"]
    after_governor = _recommended_state(devnet, gb)
    assert after_governor == after_safe == gb.expected
    assert proposal_state(reader, gb.proposal, block=reader.block_number()) is ProposalState.EXECUTED

    # found again through the governor's ProposalExecuted log
    code, out = _cli("governor", "reconcile", bundle, "--rpc", devnet.rpc_url)
    assert code == 0 and ": OK;" in out and f"at block {doc['block']}" in out
    # and the proposal cannot be made a second time
    refused = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: propose(reader, gb, _key(devnet, 0))))
    assert f"proposal {gb.proposal.proposal_id} already exists on the governor (state EXECUTED)" in refused.problems


def test_a_governor_that_numbers_proposals_itself_is_refused_before_sending(devnet, chain, loaded, restore_chain):
    deployer = chain.w3.eth.accounts[0]
    sequential = chain.deploy("deploy a sequential-id governor", deployer, load_built("StewardSequentialGovernor"),
                              [devnet.addresses["votes"], VOTING_DELAY_BLOCKS, VOTING_PERIOD_BLOCKS,
                               PROPOSAL_THRESHOLD, QUORUM_PERCENT])
    # without a timelock it executes itself, so it would need the risk-admin role to be of any use
    chain.transact("the sequential governor is a risk admin", deployer, _acl(chain, devnet), "addRiskAdmin", sequential)
    gb = loaded
    # the same actions and description, proposed to the other governor (no timelock)
    other = replace(gb, proposal=replace(gb.proposal, governor=sequential, timelock=None),
                    policy=gb.policy.model_copy(update={"governor": GovernorPolicy(address=sequential, max_actions=20)}))
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    # its hashProposal agrees with ours: only the dry run of propose shows the override
    assert reader.read(sequential, HASH_PROPOSAL, *other.proposal.args, other.proposal.description_hash,
                       block=reader.block_number()) == (gb.proposal.proposal_id,)

    error = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: propose(reader, other, _key(devnet, 0))))
    assert error.hint == "nothing was sent"
    (problem,) = error.problems
    assert problem == (f"the governor would number this proposal 1, not {gb.proposal.proposal_id} (the hash of its "
                       "actions and description): it overrides proposal ids (e.g. sequential ids)")


def test_more_actions_than_the_governor_takes_are_refused_before_sending(devnet, chain, loaded, restore_chain):
    deployer = chain.w3.eth.accounts[0]
    gb = loaded
    n = len(gb.proposal.targets)
    capped = deploy_governor_contract(chain, deployer, devnet.addresses["votes"], devnet.addresses["timelock"],
                                      max_operations=n - 1)
    other = replace(gb, proposal=replace(gb.proposal, governor=capped),
                    policy=gb.policy.model_copy(update={"governor": GovernorPolicy(
                        address=capped, timelock=devnet.addresses["timelock"], max_actions=20)}))
    reader = connect(devnet.rpc_url, expected_chain_id=1337)

    error = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: propose(reader, other, _key(devnet, 0))))
    assert error.problems == (f"{n} actions, the governor's proposalMaxOperations() is {n - 1}",)
    # and the contract itself agrees: propose from the voter reverts with the cap
    with pytest.raises(CallReverted) as reverted:
        reader.call(capped, PROPOSE.encode(*other.proposal.args, other.proposal.description), block="latest",
                    sender=devnet.owners[0])
    assert explain_governor_revert(reverted.value) == f"GovernorTooManyOperations({n}, {n - 1})"


def test_a_proposer_below_the_threshold_is_refused_and_nothing_is_sent(
    devnet, chain, bundle, loaded, keystores, restore_chain
):
    stranger = Account.from_key(STRANGER_KEY).address
    chain.rpc("anvil_setBalance", [stranger, hex(10**20)])  # gas money: the votes are what is missing
    code, out = _nothing_sent(chain, [stranger], lambda: _propose(bundle, devnet.rpc_url, keystores["stranger"]))
    assert code == 2
    assert f"proposer {stranger} has 0 votes, the proposal threshold is {PROPOSAL_THRESHOLD}" in out
    assert "nothing was sent" in out
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    assert proposal_state(reader, loaded.proposal, block=reader.block_number()) is None


def test_a_timelock_without_the_risk_admin_role_is_found_before_the_vote(devnet, chain, loaded, restore_chain):
    chain.transact("take the timelock's risk admin role", chain.w3.eth.accounts[0], _acl(chain, devnet),
                   "removeRiskAdmin", devnet.addresses["timelock"])
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    error = _nothing_sent(chain, devnet.owners[:1], lambda: _refusal(lambda: propose(reader, loaded, _key(devnet, 0))))
    assert error.hint == "nothing was sent"
    assert len(error.problems) == len(loaded.proposal.targets)
    for i, problem in enumerate(error.problems):
        assert problem.startswith(f"action {i} (")
        assert problem.endswith(f"reverts when the executor {devnet.addresses['timelock']} runs it: "
                                "4 (CALLER_NOT_RISK_OR_POOL_ADMIN)")


def test_a_dead_rpc_sends_nothing(devnet, chain, bundle, loaded, keystores):
    dead = f"http://127.0.0.1:{free_port()}"
    code, out = _nothing_sent(chain, devnet.owners[:1], lambda: _propose(bundle, dead, keystores["voter1"]))
    assert code == 2 and "unreachable after 3 tries" in out
    assert not (bundle / "simulation.json").exists()
    reader = connect(devnet.rpc_url, expected_chain_id=1337)
    assert proposal_state(reader, loaded.proposal, block=reader.block_number()) is None


def test_a_tampered_governor_json_is_refused(devnet, chain, bundle, keystores):
    path = bundle / "governor.json"
    doc = json.loads(path.read_text())
    doc["description"] = doc["description"].replace("Risk parameter update", "Routine update")
    path.write_text(json.dumps(doc))
    code, out = _nothing_sent(chain, devnet.owners[:1], lambda: _propose(bundle, devnet.rpc_url, keystores["voter1"]))
    assert code == 2 and "governor.json" in out and "differs" in out
