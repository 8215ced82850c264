"""The devnet's DAO: an ERC20Votes token, a TimelockController and an OpenZeppelin Governor.

Compiled from @openzeppelin/contracts with the npm solc package (`governance.compile`, on demand),
deployed by the devnet's deployer:

* `StewardVotes` — the whole supply minted to the deployer, who hands 40% / 30% / 20% to the
  voters (the Safe's owners, whose test keys devnet.json holds) and keeps 10% undelegated; each
  voter delegates to itself, so votes count from the next block;
* `TimelockController` — `TIMELOCK_MIN_DELAY_S`, the governor its only proposer and canceller,
  anyone may execute a ready operation, and the deployer renounces its admin role: from then on only
  a passed proposal changes the timelock;
* `StewardGovernor` — votes from the token, a proposal threshold, quorum as a share of supply,
  short voting delay and period in blocks (the token's clock), at most `MAX_OPERATIONS` actions.

The timelock, the governor's executor, is given the pool's RISK_ADMIN role in Aave's ACLManager,
so a passed proposal can call the PoolConfigurator as the Safe does.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

from governance.artifacts import load_artifact
from governance.compile import load_built
from governance.devnet_chain import Chain

AAVE = "@aave/core-v3"
TOKEN_UNIT = 10**18
VOTES_SUPPLY = 1_000_000 * TOKEN_UNIT
VOTER_SHARES = (400_000 * TOKEN_UNIT, 300_000 * TOKEN_UNIT, 200_000 * TOKEN_UNIT)
PROPOSAL_THRESHOLD = 10_000 * TOKEN_UNIT  # 1% of supply: a voter can propose, an outsider cannot
QUORUM_PERCENT = 4
VOTING_DELAY_BLOCKS = 1
VOTING_PERIOD_BLOCKS = 20
TIMELOCK_MIN_DELAY_S = 60  # tests move anvil's clock forward (evm_increaseTime) instead of waiting
MAX_OPERATIONS = 20  # a cap like GovernorBravo's proposalMaxOperations (10), above the devnet epoch's 12 calls

PROPOSER_ROLE = "0x" + keccak(text="PROPOSER_ROLE").hex()
CANCELLER_ROLE = "0x" + keccak(text="CANCELLER_ROLE").hex()
DEFAULT_ADMIN_ROLE = "0x" + "00" * 32
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True)
class GovernorDeployment:
    votes: str
    timelock: str
    governor: str

    def addresses(self) -> dict[str, str]:
        return {"governor": self.governor, "timelock": self.timelock, "votes": self.votes}


def deploy_governor_contract(chain: Chain, deployer: str, votes: str, timelock: str, *,
                             max_operations: int = MAX_OPERATIONS) -> str:
    """One StewardGovernor over `votes` and `timelock` with the devnet's settings."""
    return chain.deploy(
        "deploy the governor", deployer, load_built("StewardGovernor"),
        [votes, timelock, VOTING_DELAY_BLOCKS, VOTING_PERIOD_BLOCKS, PROPOSAL_THRESHOLD, QUORUM_PERCENT, max_operations],
    )


def deploy_governor(chain: Chain, *, deployer: str, voters: Sequence[str], acl_manager: str) -> GovernorDeployment:
    """Deploy token, timelock and governor, hand out and delegate votes, make the timelock a risk admin."""
    if len(voters) != len(VOTER_SHARES):
        raise ValueError(f"the devnet DAO has {len(VOTER_SHARES)} voters, got {len(voters)}")
    votes_artifact = load_built("StewardVotes")
    timelock_artifact = load_built("TimelockController")
    votes = chain.deploy("deploy the voting token", deployer, votes_artifact, [VOTES_SUPPLY])
    # proposers are added once the governor exists; executors [0x0]: anyone may execute a ready operation
    timelock = chain.deploy("deploy the timelock", deployer, timelock_artifact,
                            [TIMELOCK_MIN_DELAY_S, [], [ZERO_ADDRESS], deployer])
    governor = deploy_governor_contract(chain, deployer, votes, timelock)

    token = chain.contract(votes, votes_artifact)
    for voter, share in zip(voters, VOTER_SHARES, strict=True):
        chain.transact(f"give {voter} votes", deployer, token, "transfer", voter, share)
        chain.transact(f"{voter} delegates to itself", voter, token, "delegate", voter)
    lock = chain.contract(timelock, timelock_artifact)
    chain.transact("timelock: governor proposes", deployer, lock, "grantRole", bytes.fromhex(PROPOSER_ROLE[2:]), governor)
    chain.transact("timelock: governor cancels", deployer, lock, "grantRole", bytes.fromhex(CANCELLER_ROLE[2:]), governor)
    chain.transact("timelock: deployer renounces admin", deployer, lock, "renounceRole",
                   bytes.fromhex(DEFAULT_ADMIN_ROLE[2:]), deployer)
    acl = chain.contract(acl_manager, load_artifact(AAVE, "ACLManager"))
    chain.transact("ACLManager.addRiskAdmin(Timelock)", deployer, acl, "addRiskAdmin", timelock)
    return GovernorDeployment(votes=votes, timelock=timelock, governor=governor)


def advance(chain: Chain, *, blocks: int = 0, seconds: int = 0) -> None:
    """Move anvil's clock: `seconds` forward (the timelock's delay), then mine `blocks` (voting delay/period)."""
    if seconds:
        chain.rpc("evm_increaseTime", [seconds], step=f"advance the clock {seconds} s")
    if blocks or seconds:
        chain.rpc("anvil_mine", [hex(max(blocks, 1))], step=f"mine {max(blocks, 1)} block(s)")


def with_governor(policy_text: bytes, governor: str, timelock: str | None, *, max_actions: int | None = None) -> bytes:
    """A policy's YAML with a `governor:` section naming `governor` (and its timelock)."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    doc = yaml.load(policy_text.decode())
    section = {"address": Quoted(governor)}
    if timelock is not None:
        section["timelock"] = Quoted(timelock)
    if max_actions is not None:
        section["max_actions"] = max_actions
    doc["governor"] = section
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    return buffer.getvalue().encode()
