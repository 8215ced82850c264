"""Reads from the devnet at a pinned block: the snapshot equals what was deployed, old blocks stay old."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from governance.artifacts import load_artifact
from governance.chain import ChainError, connect
from governance.demo_chain import devnet_policy_text
from governance.venues.aave_v3_read import pool_state, read_snapshot, resolve_addresses
from risk.policy import Policy
from risk.policy_load import check_policy_text
from risk.units import Bps

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "risk" / "demo" / "snapshot.json"


def _policy(devnet, edit=lambda text: text) -> Policy:
    policy, problems = check_policy_text(edit(devnet_policy_text(devnet).decode()).encode(), "devnet-policy.yaml")
    assert policy is not None, problems
    return policy


@pytest.fixture
def reader(devnet):
    return connect(devnet.rpc_url, expected_chain_id=devnet.chain_id, timeout_s=5)


def test_the_snapshot_at_a_pinned_block_is_what_the_devnet_deployed(devnet, reader):
    policy = _policy(devnet)
    block = reader.block_number()
    snap = read_snapshot(reader, policy, block=None, safe=devnet.addresses["safe"])
    spec = json.loads(SPEC.read_text())["markets"]
    assert snap.block == block and snap.chain_id == 1337 and snap.venue == "steward-devnet-aave-v3"
    assert snap.source == f"rpc chain 1337 block {block}" and "127.0.0.1" not in snap.source
    assert snap.safe_nonce == 0
    assert sorted(snap.markets) == sorted(spec)
    for symbol, row in spec.items():
        m = snap.markets[symbol]
        assert m.asset == devnet.markets[symbol]["asset"] and m.decimals == row["decimals"]
        for field in ("ltv", "liquidation_threshold", "liquidation_bonus", "reserve_factor", "liquidation_protocol_fee"):
            assert getattr(m, field) == Bps.parse(row[field]), (symbol, field)
        assert m.supply_cap.to_whole_tokens() == row["supply_cap"]
        assert m.borrow_cap.to_whole_tokens() == row["borrow_cap"]
        assert m.price_usd == Decimal(row["price_usd"])  # the spec's prices have Chainlink's 8 decimals


def test_a_read_at_an_older_block_returns_the_old_value(devnet, reader, chain, restore_chain):
    policy = _policy(devnet)
    before = reader.block_number()
    old = read_snapshot(reader, policy, block=before, safe=None).markets["WETH"]
    configurator = chain.contract(devnet.addresses["pool_configurator"], load_artifact("@aave/core-v3", "PoolConfigurator"))
    chain.transact("set WETH supply cap", chain.w3.eth.accounts[0], configurator, "setSupplyCap",
                   devnet.markets["WETH"]["asset"], 123_456)
    assert reader.block_number() == before + 1
    assert read_snapshot(reader, policy, block=before, safe=None).markets["WETH"] == old
    new = read_snapshot(reader, policy, block=None, safe=None).markets["WETH"]
    assert new.supply_cap.to_whole_tokens() == 123_456 != old.supply_cap.to_whole_tokens()
    addresses = resolve_addresses(reader, policy, block=before)
    markets = {m.symbol: m.asset for m in policy.markets}
    was, now = pool_state(reader, addresses, markets, block=before), pool_state(reader, addresses, markets, block=before + 1)
    assert {k for k in was["WETH"] if was["WETH"][k] != now["WETH"][k]} == {"supply_cap"}
    assert {s: v for s, v in was.items() if s != "WETH"} == {s: v for s, v in now.items() if s != "WETH"}


def test_addresses_the_policy_omits_come_from_the_markets_addresses_provider(devnet, reader):
    with_oracle = _policy(devnet)
    without = _policy(devnet, lambda t: "\n".join(line for line in t.splitlines() if "oracle:" not in line) + "\n")
    assert without.venue.addresses.oracle is None
    block = reader.block_number()
    assert read_snapshot(reader, without, block=block, safe=None) == read_snapshot(reader, with_oracle, block=block, safe=None)
    assert resolve_addresses(reader, without, block=block).oracle == devnet.addresses["oracle"]
    pool_only = _policy(devnet, lambda t: "\n".join(line for line in t.splitlines()
                                                    if "oracle:" not in line and "data_provider:" not in line) + "\n")
    assert resolve_addresses(reader, pool_only, block=block) == resolve_addresses(reader, with_oracle, block=block)


def test_wrong_addresses_decimals_blocks_and_chains_are_refused(devnet, reader):
    head = reader.block_number()
    with pytest.raises(ChainError, match=f"block {head + 100} is beyond the head"):
        read_snapshot(reader, _policy(devnet), block=head + 100, safe=None)
    wrong_decimals = _policy(devnet, lambda t: t.replace("decimals: 8", "decimals: 18"))
    with pytest.raises(ChainError, match="WBTC .* the chain says 8 decimals, the policy 18"):
        read_snapshot(reader, wrong_decimals, block=head, safe=None)
    wrong_pool = _policy(devnet, lambda t: t.replace(devnet.addresses["pool"], devnet.addresses["oracle"]))
    with pytest.raises(ChainError, match="the policy's pool .* is not the one of the market's addresses provider"):
        read_snapshot(reader, wrong_pool, block=head, safe=None)
    not_a_reserve = _policy(devnet, lambda t: t.replace(devnet.markets["USDC"]["asset"], devnet.addresses["safe"]))
    with pytest.raises(ChainError, match="USDC .* not a reserve"):
        read_snapshot(reader, not_a_reserve, block=head, safe=None)
    with pytest.raises(ChainError, match="no contract at"):
        read_snapshot(reader, _policy(devnet), block=1, safe=None)  # before the market was deployed
    with pytest.raises(ChainError, match="serves chain 1337, but the policy's venue is on chain 1"):
        connect(devnet.rpc_url, expected_chain_id=1)
