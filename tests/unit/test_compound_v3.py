"""Compound v3 packaging: Configurator setters in 1e18, Comet's rules named, the upgrade appended once, last."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from eth_call_standin import EthCallStandin
from eth_utils import function_signature_to_4byte_selector

from governance.calls import decode_call
from governance.chain import ChainError, connect
from governance.venues.compound_v3 import (
    DEPLOY_AND_UPGRADE_TO,
    GET_ASSET_INFO_BY_ADDRESS,
    UPDATE_BORROW_CF,
    UPDATE_LIQUIDATE_CF,
    UPDATE_LIQUIDATION_FACTOR,
    UPDATE_SUPPLY_CAP,
    CometAssetState,
    CometChange,
    CometParameter,
    CometRuleError,
    batch_problems,
    comet_calls,
    comet_change,
    read_asset_state,
    stored_factor,
)
from risk.errors import UnitError
from risk.units import Ratio, TokenAmount, Wad

C = CometParameter
CONFIGURATOR = "0x316f9708bB98af7dA9c68C1C3b5e79039cD336E3"
COMET = "0xc3d688B66703497DAA19211EEdff47f25384cdc3"
PROXY_ADMIN = "0x1EC63B5883C3481134FD50D5DAebc83Ecd2E8779"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
WBTC = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
FEED = "0x0000000000000000000000000000000000000FEE"


def wad(percent: str) -> Wad:
    return Ratio.parse(percent).to_wad()


def state(asset: str = WETH, bcf: str = "82.5%", lcf: str = "89.5%", lf: str = "95%", cap: int = 350_000,
          decimals: int = 18, symbol: str = "WETH") -> CometAssetState:
    return CometAssetState(asset=asset, offset=0, price_feed=FEED, decimals=decimals,
                           borrow_collateral_factor=wad(bcf), liquidate_collateral_factor=wad(lcf), liquidation_factor=wad(lf),
                           supply_cap=TokenAmount.whole(cap, decimals, symbol))


def package(changes: list[CometChange], states: dict[str, CometAssetState] | None = None):  # type: ignore[no-untyped-def]
    return comet_calls(changes, configurator=CONFIGURATOR, comet=COMET, proxy_admin=PROXY_ADMIN, states=states)


def test_signatures_are_the_configurator_s_and_the_proxy_admin_s() -> None:
    # compound-finance/comet: Configurator.sol (cometProxy-first setters), CometProxyAdmin.sol.
    assert UPDATE_BORROW_CF.signature == "updateAssetBorrowCollateralFactor(address,address,uint64)"
    assert UPDATE_LIQUIDATE_CF.signature == "updateAssetLiquidateCollateralFactor(address,address,uint64)"
    assert UPDATE_LIQUIDATION_FACTOR.signature == "updateAssetLiquidationFactor(address,address,uint64)"
    assert UPDATE_SUPPLY_CAP.signature == "updateAssetSupplyCap(address,address,uint128)"
    assert DEPLOY_AND_UPGRADE_TO.signature == "deployAndUpgradeTo(address,address)"
    assert DEPLOY_AND_UPGRADE_TO.selector == function_signature_to_4byte_selector("deployAndUpgradeTo(address,address)")


def test_setters_encode_1e18_factors_and_decode_back_with_the_upgrade_last() -> None:
    s = state()
    changes = [comet_change("WETH", s, C.LIQUIDATE_COLLATERAL_FACTOR, Ratio.parse("90%")),
               comet_change("WETH", s, C.BORROW_COLLATERAL_FACTOR, Ratio.parse("83%")),
               comet_change("WETH", s, C.SUPPLY_CAP, TokenAmount.whole(400_000, 18, "WETH"))]
    pkg = package(changes, {WETH: s})
    assert pkg.warnings == ()
    assert [c.function for c in pkg.calls] == [UPDATE_BORROW_CF, UPDATE_LIQUIDATE_CF, UPDATE_SUPPLY_CAP, DEPLOY_AND_UPGRADE_TO]
    assert decode_call(UPDATE_BORROW_CF, pkg.calls[0].data) == (COMET, WETH, 830_000_000_000_000_000)
    assert decode_call(UPDATE_LIQUIDATE_CF, pkg.calls[1].data) == (COMET, WETH, 9 * 10**17)
    assert decode_call(UPDATE_SUPPLY_CAP, pkg.calls[2].data) == (COMET, WETH, 400_000 * 10**18)
    assert decode_call(DEPLOY_AND_UPGRADE_TO, pkg.calls[3].data) == (CONFIGURATOR, COMET)
    assert {c.to for c in pkg.calls[:3]} == {CONFIGURATOR} and pkg.calls[3].to == PROXY_ADMIN
    assert pkg.calls[0].human == "WETH borrow collateral factor 82.5% → 83%"
    assert batch_problems([(c.to, c.data) for c in pkg.calls], configurator=CONFIGURATOR, comet=COMET, proxy_admin=PROXY_ADMIN) == []


def test_the_upgrade_is_appended_exactly_once_for_several_assets_and_never_without_changes() -> None:
    a, b = state(), state(asset=WBTC, bcf="70%", lcf="77%", cap=18_000, decimals=8, symbol="WBTC")
    changes = [comet_change("WETH", a, C.LIQUIDATION_FACTOR, Ratio.parse("96%")),
               comet_change("WBTC", b, C.BORROW_COLLATERAL_FACTOR, Ratio.parse("71%")),
               comet_change("WETH", a, C.BORROW_COLLATERAL_FACTOR, Ratio.parse("82%"))]
    calls = package(changes, {WETH: a, WBTC: b}).calls
    upgrades = [i for i, c in enumerate(calls) if c.function == DEPLOY_AND_UPGRADE_TO]
    assert upgrades == [len(calls) - 1] == [3]
    assert [decode_call(c.function, c.data)[1] for c in calls[:3]] == [WETH, WETH, WBTC]  # assets in first-seen order
    unchanged = [comet_change("WETH", a, C.BORROW_COLLATERAL_FACTOR, Ratio.parse("82.5%"))]
    assert package(unchanged, {WETH: a}).calls == ()
    # The independent check catches a batch without, with two, or with a misplaced upgrade.
    pairs = [(c.to, c.data) for c in calls]
    for tampered in (pairs[:-1], pairs + pairs[-1:], [pairs[-1], *pairs[:-1]]):
        assert any("exactly once, last" in p for p in batch_problems(tampered, configurator=CONFIGURATOR, comet=COMET,
                                                                      proxy_admin=PROXY_ADMIN))
    wrong_comet = package(changes, {WETH: a, WBTC: b}).calls
    problems = batch_problems([(c.to, c.data) for c in wrong_comet], configurator=CONFIGURATOR, comet=WETH, proxy_admin=PROXY_ADMIN)
    assert len(problems) == 4


def test_finer_than_four_decimals_is_stored_truncated_and_said() -> None:
    s = state()
    pkg = package([comet_change("WETH", s, C.BORROW_COLLATERAL_FACTOR, Ratio.parse("82.555%"))], {WETH: s})
    (warning,) = pkg.warnings
    assert "82.555% has more precision than Comet keeps; it will be stored as 82.55% (4 decimals)" in warning
    assert decode_call(UPDATE_BORROW_CF, pkg.calls[0].data)[2] == 825_550_000_000_000_000  # sent as recommended
    assert stored_factor(Wad(825_559_999_999_999_999)) == Wad(825_500_000_000_000_000)
    cap = package([comet_change("WETH", s, C.SUPPLY_CAP, TokenAmount.from_units("400000.5", 18, "WETH"))], {WETH: s})
    assert cap.warnings == (("WETH supply cap: 400000.5 WETH is not whole tokens; Comet keeps whole units, so it will be "
                             "stored as 400000 WETH"),)
    exact = package([comet_change("WETH", s, C.LIQUIDATION_FACTOR, Ratio.parse("93.25%"))], {WETH: s})
    assert exact.warnings == ()


@pytest.mark.parametrize(("changes", "rule"), [
    ({C.BORROW_COLLATERAL_FACTOR: "89.5%"}, "borrowCF < liquidateCF (BorrowCFTooLarge)"),
    ({C.LIQUIDATE_COLLATERAL_FACTOR: "80%"}, "borrowCF < liquidateCF (BorrowCFTooLarge)"),
    ({C.BORROW_COLLATERAL_FACTOR: "99%", C.LIQUIDATE_COLLATERAL_FACTOR: "100.01%"}, "liquidateCF <= 1e18 (LiquidateCFTooLarge)"),
    ({C.BORROW_COLLATERAL_FACTOR: "89.4901%", C.LIQUIDATE_COLLATERAL_FACTOR: "89.4999%"}, "after truncation to 4 decimals"),
    ({C.LIQUIDATION_FACTOR: "101%"}, "Steward rule: absorb would credit more"),
    ({C.LIQUIDATION_FACTOR: "655.36%"}, "overflows Comet's 16-bit packing"),
])
def test_each_broken_rule_is_named(changes: dict[CometParameter, str], rule: str) -> None:
    s = state()
    with pytest.raises(CometRuleError) as raised:
        package([comet_change("WETH", s, p, Ratio.parse(v)) for p, v in changes.items()], {WETH: s})
    assert rule in raised.value.hint or rule in raised.value.cause


def test_the_rule_is_checked_on_the_state_after_the_upgrade_so_the_current_values_are_needed() -> None:
    s = state()
    lone = CometChange("WETH", WETH, C.BORROW_COLLATERAL_FACTOR, s.borrow_collateral_factor, wad("83%"))
    with pytest.raises(CometRuleError, match="current liquidate_collateral_factor is unknown"):
        package([lone])
    assert len(package([lone], {WETH: s}).calls) == 2
    # Moving both factors up together is fine even though the new borrow CF is above the old liquidate CF.
    both = [comet_change("WETH", s, C.BORROW_COLLATERAL_FACTOR, Ratio.parse("90%")),
            comet_change("WETH", s, C.LIQUIDATE_COLLATERAL_FACTOR, Ratio.parse("92%"))]
    assert len(package(both, {WETH: s}).calls) == 3


def test_units_are_exact_or_refused() -> None:
    s = state()
    with pytest.raises(UnitError, match="not an integer"):
        comet_change("WETH", s, C.BORROW_COLLATERAL_FACTOR, Ratio.parse({"ratio": "0.8250000000000000001"}))
    with pytest.raises(CometRuleError, match="TokenAmount"):
        comet_change("WETH", s, C.SUPPLY_CAP, Ratio.parse("5%"))
    with pytest.raises(CometRuleError, match="Ratio or a Wad"):
        comet_change("WETH", s, C.BORROW_COLLATERAL_FACTOR, TokenAmount.whole(1, 18))


def test_current_values_are_read_from_comet_at_a_pinned_block() -> None:
    scale = 10**8
    info = (2, WBTC, FEED, scale, 700_000_000_000_000_000,
            770_000_000_000_000_000, 950_000_000_000_000_000, 18_000 * scale)
    answers = {(COMET, "0x" + GET_ASSET_INFO_BY_ADDRESS.encode(WBTC).hex()):
               abi_encode(list(GET_ASSET_INFO_BY_ADDRESS.outputs), [info])}
    with EthCallStandin(1, answers) as node:
        reader = connect(node.url, expected_chain_id=1)
        s = read_asset_state(reader, COMET, WBTC, block=21_000_000, symbol="WBTC")
        with pytest.raises(ChainError, match="returned nothing"):
            read_asset_state(reader, COMET, WETH, block=21_000_000)
    assert s == CometAssetState(asset=WBTC, offset=2, price_feed=FEED, decimals=8,
                                borrow_collateral_factor=wad("70%"), liquidate_collateral_factor=wad("77%"),
                                liquidation_factor=wad("95%"), supply_cap=TokenAmount.whole(18_000, 8, "WBTC"))
    assert node.calls[0][2] == hex(21_000_000)
