"""The devnet on a real anvil: market configuration, idempotence, the Safe as risk admin, the book."""

from __future__ import annotations

import json
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account
from eth_typing import URI
from safe_eth.eth import EthereumClient
from safe_eth.safe import Safe

from governance import devnet as devnet_mod
from governance import devnet_anvil
from governance.artifacts import load_artifact
from governance.devnet_chain import Chain, DevnetError
from risk.units import Bps

pytestmark = pytest.mark.e2e

AAVE = "@aave/core-v3"
SNAPSHOT = Path(__file__).resolve().parents[2] / "risk" / "demo" / "snapshot.json"
WAD = 10**18
UINT256_MAX = 2**256 - 1
# Aave v3.0 Errors.sol codes the tests expect
CALLER_NOT_RISK_OR_POOL_ADMIN = "4"
HEALTH_FACTOR_NOT_BELOW_THRESHOLD = "45"


def snapshot_markets() -> dict[str, dict]:
    return json.loads(SNAPSHOT.read_text())["markets"]


def contract(chain: Chain, address: str, name: str):
    return chain.contract(address, load_artifact(AAVE, name))


def weth_collateral(chain: Chain, devnet) -> tuple[int, int, int]:
    data_provider = contract(chain, devnet.addresses["data_provider"], "AaveProtocolDataProvider")
    cfg = data_provider.functions.getReserveConfigurationData(devnet.markets["WETH"]["asset"]).call()
    return cfg[1], cfg[2], cfg[3]  # ltv, liquidation threshold, 10000 + bonus


def accounts(chain: Chain) -> list[str]:
    return chain.w3.eth.accounts


def test_every_reserve_reads_back_as_the_snapshot(devnet, chain):
    data_provider = contract(chain, devnet.addresses["data_provider"], "AaveProtocolDataProvider")
    oracle = contract(chain, devnet.addresses["oracle"], "AaveOracle")
    markets = snapshot_markets()
    listed = {t[0]: t[1] for t in data_provider.functions.getAllReservesTokens().call()}
    assert sorted(listed) == sorted(markets)
    assert oracle.functions.BASE_CURRENCY_UNIT().call() == 10**8
    for symbol, row in markets.items():
        asset = devnet.markets[symbol]["asset"]
        assert listed[symbol] == asset
        (decimals, ltv, lt, bonus, reserve_factor, collateral_on, borrowing_on, stable_on, active, frozen) = (
            data_provider.functions.getReserveConfigurationData(asset).call()
        )
        assert decimals == row["decimals"] == devnet.markets[symbol]["decimals"]
        assert ltv == Bps.parse(row["ltv"]).value
        assert lt == Bps.parse(row["liquidation_threshold"]).value
        assert bonus == 10_000 + Bps.parse(row["liquidation_bonus"]).value
        assert reserve_factor == Bps.parse(row["reserve_factor"]).value
        assert (collateral_on, borrowing_on, stable_on, active, frozen) == (True, True, False, True, False)
        assert tuple(data_provider.functions.getReserveCaps(asset).call()) == (row["borrow_cap"], row["supply_cap"])
        assert data_provider.functions.getLiquidationProtocolFee(asset).call() == Bps.parse(
            row["liquidation_protocol_fee"]
        ).value
        assert oracle.functions.getAssetPrice(asset).call() == int(Decimal(row["price_usd"]).scaleb(8))
        assert oracle.functions.getSourceOfAsset(asset).call() == devnet.markets[symbol]["aggregator"]


def test_up_twice_returns_the_running_devnet_without_redeploying(session):
    block_before = session.chain.block_number()
    state_before = (session.state_dir / "devnet.json").read_bytes()
    again = devnet_mod.up(session.state_dir)
    assert again == session.devnet
    assert again.addresses == session.devnet.addresses
    assert session.chain.block_number() == block_before
    assert (session.state_dir / "devnet.json").read_bytes() == state_before
    assert devnet_mod.current(session.state_dir) == session.devnet


def test_devnet_json_holds_the_state_and_repr_hides_the_keys(session):
    devnet = session.devnet
    raw = json.loads((session.state_dir / "devnet.json").read_text())
    assert raw["addresses"] == devnet.addresses and raw["block"] == devnet.block
    assert raw["owners"] == list(devnet.owners)
    assert [Account.from_key(k).address for k in raw["owner_keys"]] == list(devnet.owners)
    assert (session.state_dir / "devnet.json").stat().st_mode & 0o077 == 0
    for key in devnet.owner_keys:
        assert key[2:] not in repr(devnet) and key[2:] not in str(devnet)


def test_safe_has_three_owners_threshold_two_and_is_risk_admin(devnet, chain):
    safe = Safe(devnet.addresses["safe"], EthereumClient(URI(devnet.rpc_url)))
    assert safe.retrieve_version() == "1.4.1"
    assert sorted(safe.retrieve_owners()) == sorted(devnet.owners) and len(devnet.owners) == 3
    assert safe.retrieve_threshold() == 2
    acl = contract(chain, devnet.addresses["acl_manager"], "ACLManager")
    assert acl.functions.isRiskAdmin(devnet.addresses["safe"]).call() is True
    assert acl.functions.isPoolAdmin(devnet.addresses["safe"]).call() is False
    assert chain.has_code(devnet.addresses["multisend_call_only"])


def _configure_weth_through_safe(devnet, chain, signers: tuple[str, ...], new_lt: int):
    client = EthereumClient(URI(devnet.rpc_url))
    safe = Safe(devnet.addresses["safe"], client)
    ltv, _lt, bonus = weth_collateral(chain, devnet)
    configurator = contract(chain, devnet.addresses["pool_configurator"], "PoolConfigurator")
    data = configurator.encode_abi(
        "configureReserveAsCollateral", args=[devnet.markets["WETH"]["asset"], ltv, new_lt, bonus]
    )
    safe_tx = safe.build_multisig_tx(configurator.address, 0, bytes.fromhex(data[2:]))
    for key in signers:
        safe_tx.sign(key)
    tx_hash, _ = safe_tx.execute(tx_sender_private_key=signers[0])
    return client.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=10)


def test_a_safe_transaction_signed_by_two_owners_changes_weth_lt(devnet, chain, restore_chain):
    ltv, lt, bonus = weth_collateral(chain, devnet)
    new_lt = lt - 50
    nonce_before = Safe(devnet.addresses["safe"], EthereumClient(URI(devnet.rpc_url))).retrieve_nonce()
    receipt = _configure_weth_through_safe(devnet, chain, devnet.owner_keys[:2], new_lt)
    assert receipt["status"] == 1
    assert weth_collateral(chain, devnet) == (ltv, new_lt, bonus)
    safe = Safe(devnet.addresses["safe"], EthereumClient(URI(devnet.rpc_url)))
    assert safe.retrieve_nonce() == nonce_before + 1


def test_one_owner_signature_is_not_enough(devnet, chain, restore_chain):
    before = weth_collateral(chain, devnet)
    with pytest.raises(Exception, match="GS020"):  # Safe: signatures data too short
        _configure_weth_through_safe(devnet, chain, devnet.owner_keys[:1], before[1] - 50)
    assert weth_collateral(chain, devnet) == before


def test_a_non_admin_cannot_configure_a_reserve(devnet, chain, restore_chain):
    ltv, lt, bonus = weth_collateral(chain, devnet)
    configurator = contract(chain, devnet.addresses["pool_configurator"], "PoolConfigurator")
    outsider = devnet.book["liquidator"]["address"]
    with pytest.raises(DevnetError, match=f"execution reverted: {CALLER_NOT_RISK_OR_POOL_ADMIN}\\b"):
        chain.transact(
            "outsider configures WETH", outsider, configurator, "configureReserveAsCollateral",
            devnet.markets["WETH"]["asset"], ltv, lt - 50, bonus,
        )  # fmt: skip
    assert weth_collateral(chain, devnet) == (ltv, lt, bonus)


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def health_factor(chain: Chain, devnet, user: str) -> Decimal:
    pool = contract(chain, devnet.addresses["pool"], "Pool")
    return Decimal(pool.functions.getUserAccountData(user).call()[5]) / WAD


def test_borrowers_sit_at_their_intended_health_factors(devnet, chain):
    borrowers = devnet.book["borrowers"]
    assert 10 <= len(borrowers) + len(devnet.book["suppliers"]) <= 20
    realised = []
    for b in borrowers:
        target = Decimal(b["target_health_factor"])
        hf = health_factor(chain, devnet, b["address"])
        # Aave averages LT in whole bps and accrues interest: a few parts in 10^4 at most.
        assert abs(hf - target) / target < Decimal("0.0005"), (b["address"], target, hf)
        realised.append(hf)
    assert min(realised) < Decimal("1.1") and max(realised) > Decimal("2.5")
    assert all(hf > 1 for hf in realised)
    pool = contract(chain, devnet.addresses["pool"], "Pool")
    for s in devnet.book["suppliers"]:
        collateral_base, debt_base = pool.functions.getUserAccountData(s["address"]).call()[:2]
        assert collateral_base > 0 and debt_base == 0


def test_a_price_drop_makes_a_borrower_liquidatable(devnet, chain, restore_chain):
    single = [b for b in devnet.book["borrowers"] if len(b["collateral"]) == 1]
    victim = min(single, key=lambda b: Decimal(b["target_health_factor"]))
    (collateral_symbol,) = victim["collateral"]
    (debt_symbol,) = victim["debt"]
    collateral, debt = devnet.markets[collateral_symbol], devnet.markets[debt_symbol]
    liquidator = devnet.book["liquidator"]["address"]
    pool = contract(chain, devnet.addresses["pool"], "Pool")
    erc20 = load_artifact(AAVE, "MintableERC20")
    debt_token, variable_debt = chain.contract(debt["asset"], erc20), chain.contract(debt["variable_debt_token"], erc20)
    collateral_token = chain.contract(collateral["asset"], erc20)
    chain.transact("liquidator approves", liquidator, debt_token, "approve", pool.address, UINT256_MAX)

    def liquidate():
        chain.transact(
            "liquidationCall", liquidator, pool, "liquidationCall",
            collateral["asset"], debt["asset"], victim["address"], UINT256_MAX, False,
        )  # fmt: skip

    with pytest.raises(DevnetError, match=f"execution reverted: {HEALTH_FACTOR_NOT_BELOW_THRESHOLD}\\b"):
        liquidate()

    hf = health_factor(chain, devnet, victim["address"])
    price = Decimal(snapshot_markets()[collateral_symbol]["price_usd"])
    new_price = (price * Decimal("0.9") / hf).quantize(Decimal("1e-8"))
    devnet_mod.set_price(devnet, collateral_symbol, new_price)
    oracle = contract(chain, devnet.addresses["oracle"], "AaveOracle")
    assert oracle.functions.getAssetPrice(collateral["asset"]).call() == int(new_price.scaleb(8))
    assert health_factor(chain, devnet, victim["address"]) < 1

    debt_before = variable_debt.functions.balanceOf(victim["address"]).call()
    seized_before = collateral_token.functions.balanceOf(liquidator).call()
    liquidate()
    # HF < 0.95 lifts the close factor to 100%, and the collateral covers debt × (1 + bonus).
    assert debt_before > 0 and variable_debt.functions.balanceOf(victim["address"]).call() == 0
    assert collateral_token.functions.balanceOf(liquidator).call() > seized_before


def test_set_price_refuses_unknown_markets_and_non_positive_prices(devnet):
    with pytest.raises(DevnetError, match="no market 'DOGE'"):
        devnet_mod.set_price(devnet, "DOGE", Decimal("0.1"))
    with pytest.raises(Exception, match="not a positive Decimal"):
        devnet_mod.set_price(devnet, "WETH", Decimal(0))


def test_a_busy_port_and_a_missing_anvil_are_explained(devnet, tmp_path, monkeypatch):
    port = int(devnet.rpc_url.rsplit(":", 1)[1])
    with pytest.raises(DevnetError, match=f"port {port} .* busy"):
        devnet_mod.up(tmp_path / "busy", port=port)
    monkeypatch.setenv("STEWARD_ANVIL", str(tmp_path / "no-such-anvil"))
    with pytest.raises(DevnetError, match="anvil not found") as raised:
        devnet_mod.up(tmp_path / "missing")
    assert "make install" in raised.value.hint


def test_a_second_devnet_is_identical_and_down_stops_it(session, tmp_path):
    devnet = session.devnet
    # Leave stale state behind as a crashed devnet would: a devnet.json whose anvil is gone (its
    # RPC URL even answers — it is the session's devnet — but the recorded pid is dead).
    state_dir = tmp_path / "second"
    state_dir.mkdir()
    stale = json.loads((session.state_dir / "devnet.json").read_text()) | {"pid": _exited_pid()}
    (state_dir / "devnet.json").write_text(json.dumps(stale))
    (state_dir / "anvil.pid").write_text(f"{stale['pid']}\n")

    second = devnet_mod.up(state_dir)
    try:
        assert second.rpc_url != devnet.rpc_url
        assert second.addresses == devnet.addresses  # deterministic deployment
        assert second.book == devnet.book
    finally:
        stopped = devnet_mod.down(state_dir)
    assert stopped is True
    assert not devnet_anvil.is_running_anvil(second.pid)
    assert not (state_dir / "devnet.json").exists()
    with pytest.raises(DevnetError, match="does not answer"):
        Chain(second.rpc_url, timeout_s=2).block_number()
    with pytest.raises(DevnetError, match="no running devnet"):
        devnet_mod.current(state_dir)
    assert devnet_mod.down(state_dir) is False
