"""Push feeds on the devnet: a Chainlink-style aggregator the devnet can push prices into.

The devnet prices its reserves with Aave's `MockAggregator`, which emits `AnswerUpdated` once, in
its constructor, and has no rounds. `governance/contracts/PushAggregator.sol` is the smallest feed
a monitor can follow the way it follows Chainlink: every push is a new round (id + 1) that emits
`NewRound` and `AnswerUpdated(current, roundId, updatedAt)` and stays readable through
`getRoundData` / `latestRoundData`.

It is compiled with the project's other contracts by governance/compile.py (npm `solc`, same
settings, build/contracts/PushAggregator.json; `make` compiles, the devnet compiles on demand). `point_oracle` makes the devnet's AaveOracle read a
reserve's price from a push feed (the deployer is pool admin), so a push moves the market's price
exactly as Chainlink does on mainnet; `grant_guardian` gives a Safe the EMERGENCY_ADMIN role a
reserve pause needs.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from governance.artifacts import (
    Artifact,
    load_artifact,
)
from governance.compile import load_built
from governance.devnet import Devnet
from governance.devnet_aave import AAVE, ORACLE_DECIMALS, price_answer
from governance.devnet_chain import Chain, DevnetError

NAME = "PushAggregator"


@cache
def push_aggregator() -> Artifact:
    """The feed's artifact, compiled with the project's contracts (governance/compile.py) on demand."""
    return load_built(NAME)


def _deployer(devnet: Devnet) -> str:
    return devnet.addresses["pool_admin"]  # anvil account 0: deployer, pool admin, unlocked


def deploy_push_feed(devnet: Devnet, symbol: str, price_usd: Decimal) -> str:
    """Deploy a push feed for `symbol` opened at `price_usd` (8 decimals, like Chainlink USD feeds)."""
    chain = Chain(devnet.rpc_url)
    return chain.deploy(f"deploy push feed {symbol}", _deployer(devnet), push_aggregator(), (ORACLE_DECIMALS, f"{symbol} / USD", price_answer(price_usd)))


def push_price(devnet: Devnet, feed: str, price_usd: Decimal) -> int:
    """Push one price into `feed`; returns the block it was mined in."""
    chain = Chain(devnet.rpc_url)
    receipt = chain.transact(f"push {price_usd} to {feed}", _deployer(devnet), chain.contract(feed, push_aggregator()), "push", price_answer(price_usd))
    return int(receipt["blockNumber"], 16)


def point_oracle(devnet: Devnet, symbol: str, feed: str) -> None:
    """Make the devnet's AaveOracle price `symbol` from `feed` (AaveOracle.setAssetSources, as pool admin)."""
    market = devnet.markets.get(symbol)
    if market is None:
        raise DevnetError(f"the devnet has no market {symbol!r}", f"markets: {', '.join(sorted(devnet.markets))}")
    chain = Chain(devnet.rpc_url)
    oracle = chain.contract(devnet.addresses["oracle"], load_artifact(AAVE, "AaveOracle"))
    chain.transact(f"AaveOracle.setAssetSources({symbol})", _deployer(devnet), oracle, "setAssetSources", [market["asset"]], [feed])
    if oracle.functions.getSourceOfAsset(market["asset"]).call() != feed:
        raise DevnetError(f"AaveOracle does not read {symbol} from {feed} after setAssetSources", "")


def grant_guardian(devnet: Devnet, guardian: str) -> None:
    """Give `guardian` (a Safe) the pool's EMERGENCY_ADMIN role, which `setReservePause` requires."""
    chain = Chain(devnet.rpc_url)
    acl = chain.contract(devnet.addresses["acl_manager"], load_artifact(AAVE, "ACLManager"))
    if not acl.functions.isEmergencyAdmin(guardian).call():
        chain.transact("ACLManager.addEmergencyAdmin(guardian)", _deployer(devnet), acl, "addEmergencyAdmin", guardian)
