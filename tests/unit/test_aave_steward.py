"""The RiskSteward path: encoded from its published interface, decoded back, and never above its limits."""

from __future__ import annotations

import datetime as dt

import pytest
from eth_abi import encode as abi_encode
from eth_call_standin import EthCallStandin
from web3 import Web3

from governance.calls import decode_call
from governance.chain import ChainError, connect
from governance.venues.aave_steward import (
    GET_RISK_CONFIG,
    GET_TIMELOCK,
    IS_ADDRESS_RESTRICTED,
    KEEP_CURRENT,
    UPDATE_CAPS,
    UPDATE_COLLATERAL_SIDE,
    UPDATE_RATES,
    CapsUpdate,
    CollateralUpdate,
    RateChange,
    RateParams,
    RateStrategyUpdate,
    StewardCallError,
    decode_steward_call,
    encode_caps_updates,
    encode_collateral_updates,
    limits_from_config,
    rates_call,
    read_last_updates,
    read_restricted,
    read_risk_config,
    steward_calls,
    values_set,
)
from risk.policy import LendingParameter as P
from risk.policy_routing import StewardLimits
from risk.routing import Route, RouteKind
from risk.units import Bps, TokenAmount

STEWARD = "0x00000000000000000000000000000000000000A1"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
WBTC = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"
NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)

# As published in @aave-dao/aave-address-book 4.68.1, dist/abis/IRiskSteward (IRiskSteward_ABI), with the
# struct components of aave-v3-origin's IAaveV3ConfigEngine.
_CAPS = [{"name": "asset", "type": "address"}, {"name": "supplyCap", "type": "uint256"}, {"name": "borrowCap", "type": "uint256"}]
_COLLATERAL = [{"name": n, "type": t} for n, t in (("asset", "address"), ("ltv", "uint256"), ("liqThreshold", "uint256"),
               ("liqBonus", "uint256"), ("debtCeiling", "uint256"), ("liqProtocolFee", "uint256"))]
_RATES = [{"name": "asset", "type": "address"}, {"name": "params", "type": "tuple", "components": [
    {"name": n, "type": "uint256"} for n in ("optimalUsageRatio", "baseVariableBorrowRate", "variableRateSlope1", "variableRateSlope2")]}]
PUBLISHED_ABI = [
    {"type": "function", "name": name, "stateMutability": "nonpayable", "outputs": [],
     "inputs": [{"name": arg, "type": "tuple[]", "components": comps}]}
    for name, arg, comps in (("updateCaps", "capsUpdate", _CAPS), ("updateCollateralSide", "collateralUpdates", _COLLATERAL),
                             ("updateRates", "ratesUpdate", _RATES))
]
PUBLISHED_SIGNATURES = {
    "updateCaps((address,uint256,uint256)[])",
    "updateCollateralSide((address,uint256,uint256,uint256,uint256,uint256)[])",
    "updateRates((address,(uint256,uint256,uint256,uint256))[])",
}


def route(parameter: P, current: object, proposed: object, market: str = "WETH", asset: str = WETH,
          kind: RouteKind = RouteKind.RISK_STEWARD) -> Route:
    return Route(market=market, asset=asset, parameter=parameter, current=current, proposed=proposed,  # type: ignore[arg-type]
                 kind=kind, rule="within_steward_limit", reason="")


def tokens(n: int, symbol: str = "WETH") -> TokenAmount:
    return TokenAmount.whole(n, 18, symbol)


# --- interface --------------------------------------------------------------------------------------


def test_signatures_and_keep_current_match_the_published_interface() -> None:
    assert {f.signature for f in (UPDATE_CAPS, UPDATE_COLLATERAL_SIDE, UPDATE_RATES)} == PUBLISHED_SIGNATURES
    assert KEEP_CURRENT == 115792089237316195423570985008687907853269984665640564039457584007913129639893
    assert KEEP_CURRENT == 2**256 - 1 - 42


def test_calldata_is_byte_identical_to_web3_encoding_of_the_published_abi() -> None:
    contract = Web3().eth.contract(abi=PUBLISHED_ABI)
    caps = encode_caps_updates(STEWARD, [CapsUpdate(WETH, 1_800_000, None), CapsUpdate(WBTC, None, 2_500)], "caps")
    assert caps.data == contract.encode_abi("updateCaps", args=[[
        {"asset": WETH, "supplyCap": 1_800_000, "borrowCap": KEEP_CURRENT},
        {"asset": WBTC, "supplyCap": KEEP_CURRENT, "borrowCap": 2_500}]])
    coll = encode_collateral_updates(STEWARD, [CollateralUpdate(WETH, ltv=8050, liq_bonus=550)], "coll")
    assert coll.data == contract.encode_abi("updateCollateralSide", args=[[
        {"asset": WETH, "ltv": 8050, "liqThreshold": KEEP_CURRENT, "liqBonus": 550, "debtCeiling": KEEP_CURRENT,
         "liqProtocolFee": KEEP_CURRENT}]])
    from governance.venues.aave_steward import encode_rate_updates

    rates = encode_rate_updates(STEWARD, [RateStrategyUpdate(WETH, RateParams(variable_rate_slope2=Bps(7000)))], "rates")
    assert rates.data == contract.encode_abi("updateRates", args=[[
        {"asset": WETH, "params": {"optimalUsageRatio": KEEP_CURRENT, "baseVariableBorrowRate": KEEP_CURRENT,
                                   "variableRateSlope1": KEEP_CURRENT, "variableRateSlope2": 7000}}]])


def test_encode_decode_round_trip_reads_keep_current_as_none() -> None:
    call = encode_collateral_updates(STEWARD, [CollateralUpdate(WETH, 8000, 8300, None), CollateralUpdate(WBTC, None, None, 600)], "x")
    fn, updates = decode_steward_call(call.data)
    assert fn is UPDATE_COLLATERAL_SIDE
    assert updates == (CollateralUpdate(WETH, 8000, 8300), CollateralUpdate(WBTC, liq_bonus=600))
    (rows,) = decode_call(UPDATE_COLLATERAL_SIDE, call.data)
    assert rows[0][3:] == (KEEP_CURRENT, KEEP_CURRENT, KEEP_CURRENT)
    with pytest.raises(StewardCallError, match="not updateCaps"):
        decode_steward_call("0xdeadbeef")


def test_the_steward_s_own_refusals_are_refused_before_encoding() -> None:
    with pytest.raises(StewardCallError, match="ParamChangeNotAllowed"):
        encode_collateral_updates(STEWARD, [CollateralUpdate(WETH, ltv=8000, liq_protocol_fee=1000)], "x")
    with pytest.raises(StewardCallError, match="NoAllKeepCurrent"):
        encode_collateral_updates(STEWARD, [CollateralUpdate(WETH)], "x")
    with pytest.raises(StewardCallError, match="NoAllKeepCurrent"):
        encode_caps_updates(STEWARD, [CapsUpdate(WETH)], "x")
    with pytest.raises(StewardCallError, match="NoZeroUpdates"):
        encode_caps_updates(STEWARD, [], "x")
    with pytest.raises(StewardCallError, match="appears twice"):
        encode_caps_updates(STEWARD, [CapsUpdate(WETH, 1), CapsUpdate(WETH.lower(), None, 2)], "x")
    with pytest.raises(StewardCallError, match="below KEEP_CURRENT"):
        encode_caps_updates(STEWARD, [CapsUpdate(WETH, KEEP_CURRENT)], "x")


# --- from routes -------------------------------------------------------------------------------------


def test_steward_calls_group_collateral_and_caps_and_keep_the_rest() -> None:
    routes = [
        route(P.LTV, Bps(8000), Bps(8050)),
        route(P.SUPPLY_CAP, tokens(1000), tokens(1500)),
        route(P.LIQUIDATION_BONUS, Bps(600), Bps(550), market="WBTC", asset=WBTC),
        route(P.BORROW_CAP, tokens(10, "WBTC"), tokens(15, "WBTC"), market="WBTC", asset=WBTC),
    ]
    collateral, caps = steward_calls(STEWARD, routes, StewardLimits())
    assert (collateral.function, caps.function) == (UPDATE_COLLATERAL_SIDE, UPDATE_CAPS)
    assert decode_steward_call(collateral.data)[1] == (CollateralUpdate(WETH, ltv=8050), CollateralUpdate(WBTC, liq_bonus=550))
    assert decode_steward_call(caps.data)[1] == (CapsUpdate(WETH, supply_cap=1500), CapsUpdate(WBTC, borrow_cap=15))
    assert collateral.to == STEWARD and collateral.contract_label == "RiskSteward"
    assert "WETH ltv 80.00% → 80.50%" in collateral.human and "WBTC borrow cap 10 WBTC → 15 WBTC" in caps.human
    assert values_set(collateral.data) == {WETH: {"ltv": 8050}, WBTC: {"liquidation_bonus": 550}}
    assert values_set(caps.data) == {WETH: {"supply_cap": 1500}, WBTC: {"borrow_cap": 15}}
    only_caps = steward_calls(STEWARD, routes[1:2], StewardLimits())
    assert [c.function for c in only_caps] == [UPDATE_CAPS]


def test_a_change_above_the_limit_is_never_encoded_whatever_the_route_says() -> None:
    forged = route(P.LIQUIDATION_THRESHOLD, Bps(8000), Bps(8051))  # marked for the steward, 51 bps > 50
    with pytest.raises(StewardCallError, match="never sent to it") as raised:
        steward_calls(STEWARD, [forged], StewardLimits())
    assert "moves 0.51 pp" in raised.value.cause
    with pytest.raises(StewardCallError, match="UpdateNotInRange"):
        steward_calls(STEWARD, [route(P.SUPPLY_CAP, tokens(1000), tokens(2001))], StewardLimits())
    with pytest.raises(StewardCallError, match="InvalidUpdateToZero"):
        steward_calls(STEWARD, [route(P.SUPPLY_CAP, tokens(1000), tokens(0))], StewardLimits())
    with pytest.raises(StewardCallError, match="routed to governance"):
        steward_calls(STEWARD, [route(P.LTV, Bps(8000), Bps(8010), kind=RouteKind.GOVERNANCE)], StewardLimits())
    tighter = StewardLimits.model_validate({"ltv": {"max_change": "0.1%"}})
    with pytest.raises(StewardCallError, match="allows 0.10 pp"):
        steward_calls(STEWARD, [route(P.LTV, Bps(8000), Bps(8011))], tighter)
    assert steward_calls(STEWARD, [route(P.LTV, Bps(8000), Bps(8010))], tighter)


def _rates(**kw: int) -> RateParams:
    return RateParams(**{k: Bps(v) for k, v in kw.items()})


CURRENT = _rates(optimal_usage_ratio=8000, base_variable_borrow_rate=0, variable_rate_slope1=350, variable_rate_slope2=6000)


def test_rates_within_limits_encode_only_what_moves() -> None:
    change = RateChange("WETH", WETH, CURRENT, _rates(optimal_usage_ratio=8300, base_variable_borrow_rate=0,
                                                     variable_rate_slope1=450, variable_rate_slope2=8000))
    call = rates_call(STEWARD, [change], StewardLimits(), now=NOW)
    (update,) = decode_steward_call(call.data)[1]
    assert update == RateStrategyUpdate(WETH, _rates(optimal_usage_ratio=8300, variable_rate_slope1=450, variable_rate_slope2=8000))
    assert "optimal usage ratio 80% → 83%" in call.human


@pytest.mark.parametrize(("field", "value", "message"), [
    ("optimal_usage_ratio", 8301, "moves 3.01 pp"),
    ("variable_rate_slope1", 451, "moves 1.01 pp"),
    ("variable_rate_slope2", 8001, "moves 20.01 pp"),
    ("base_variable_borrow_rate", 101, "moves 1.01 pp"),
])
def test_rates_above_their_limit_are_refused(field: str, value: int, message: str) -> None:
    proposed = RateParams(**{**{f: getattr(CURRENT, f) for f in ("optimal_usage_ratio", "base_variable_borrow_rate",
                                                                    "variable_rate_slope1", "variable_rate_slope2")},
                             field: Bps(value)})
    with pytest.raises(StewardCallError, match=message):
        rates_call(STEWARD, [RateChange("WETH", WETH, CURRENT, proposed)], StewardLimits(), now=NOW)


def test_rates_respect_the_delay_and_need_every_current_value() -> None:
    change = RateChange("WETH", WETH, CURRENT, _rates(variable_rate_slope2=6100))
    recent = {("WETH", "variable_rate_slope2"): NOW - dt.timedelta(days=2)}
    with pytest.raises(StewardCallError, match="DebounceNotRespected"):
        rates_call(STEWARD, [change], StewardLimits(), now=NOW, last_updates=recent)
    other = {("WETH", "variable_rate_slope1"): NOW}
    assert rates_call(STEWARD, [change], StewardLimits(), now=NOW, last_updates=other)
    with pytest.raises(StewardCallError, match="current optimal_usage_ratio unknown"):
        rates_call(STEWARD, [RateChange("WETH", WETH, RateParams(), change.proposed)], StewardLimits(), now=NOW)
    with pytest.raises(StewardCallError, match="NoAllKeepCurrent"):
        rates_call(STEWARD, [RateChange("WETH", WETH, CURRENT, CURRENT)], StewardLimits(), now=NOW)


# --- reads ----------------------------------------------------------------------------------------


def _config(pairs: list[tuple[int, int]]) -> bytes:
    return abi_encode(list(GET_RISK_CONFIG.outputs), [tuple(pairs)])


def test_risk_config_timelock_and_restriction_are_read_at_a_pinned_block() -> None:
    day = 86400
    pairs = [(3 * day, 50), (3 * day, 50), (3 * day, 50), (3 * day, 10_000), (3 * day, 10_000), (3 * day, 2_000),
             (3 * day, 100), (3 * day, 100), (3 * day, 2_000), (3 * day, 300), (day, 500), (day, 500)]
    pairs[3] = (2 * day, 3_000)  # a tighter supply-cap config, to see it read
    t_ltv, t_supply = 1_709_000_000, 1_709_100_000
    debounce = [t_supply, 0, t_ltv, 0, 0, 0, 0, 0, 0, 0, 0]
    answers = {
        (STEWARD, "0x" + GET_RISK_CONFIG.encode().hex()): _config(pairs),
        (STEWARD, "0x" + GET_TIMELOCK.encode(WETH).hex()): abi_encode(list(GET_TIMELOCK.outputs), [tuple(debounce)]),
        (STEWARD, "0x" + GET_TIMELOCK.encode(WBTC).hex()): abi_encode(list(GET_TIMELOCK.outputs), [(0,) * 11]),
        (STEWARD, "0x" + IS_ADDRESS_RESTRICTED.encode(WETH).hex()): abi_encode(["bool"], [False]),
        (STEWARD, "0x" + IS_ADDRESS_RESTRICTED.encode(WBTC).hex()): abi_encode(["bool"], [True]),
    }
    with EthCallStandin(1, answers) as node:
        reader = connect(node.url, expected_chain_id=1)
        limits = read_risk_config(reader, STEWARD, block=19_000_000)
        last = read_last_updates(reader, STEWARD, {"WETH": WETH, "WBTC": WBTC}, block=19_000_000)
        restricted = read_restricted(reader, STEWARD, {"WETH": WETH, "WBTC": WBTC}, block=19_000_000)
    assert limits.supply_cap.max_change_bps == 3000 and limits.supply_cap.min_delay.seconds == 2 * day
    assert limits.ltv.max_change_bps == 50 and limits.variable_rate_slope2.max_change_bps == 2000
    assert limits.optimal_usage_ratio.max_change_bps == 300
    assert last == {("WETH", "supply_cap"): dt.datetime.fromtimestamp(t_supply, dt.UTC),
                    ("WETH", "ltv"): dt.datetime.fromtimestamp(t_ltv, dt.UTC)}
    assert restricted == frozenset({"WBTC"})
    assert {block for _, _, block in node.calls} == {hex(19_000_000)}


def test_a_steward_of_another_layout_is_named() -> None:
    with pytest.raises(ChainError, match="returned 10 fields, the published IRiskSteward has 12"):
        limits_from_config(tuple((1, 1) for _ in range(10)))
