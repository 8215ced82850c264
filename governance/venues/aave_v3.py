"""Aave v3: ParameterChange → PoolConfigurator calls, with Aave's own rules checked first.

Units on chain (DOMAIN.md): LTV, threshold and bonus in basis points with the bonus written as
10000 + bonus; caps in whole tokens, at most 68,719,476,735 (36 bits), 0 meaning no cap.
"""

from __future__ import annotations

from collections.abc import Sequence

from governance.calls import AbiInput, Call, FunctionAbi, encode_call
from risk.errors import StewardError
from risk.policy import LendingParameter, Policy
from risk.recommendation import ParameterChange, Recommendation, value_text
from risk.units import BPS_PER_ONE, Bps, TokenAmount

P = LendingParameter
MAX_CAP = 68_719_476_735

CONFIGURE_RESERVE_AS_COLLATERAL = FunctionAbi(
    "configureReserveAsCollateral",
    (
        AbiInput("asset", "address", "address"),
        AbiInput("ltv", "uint256", "uint256"),
        AbiInput("liquidationThreshold", "uint256", "uint256"),
        AbiInput("liquidationBonus", "uint256", "uint256"),
    ),
)
SET_SUPPLY_CAP = FunctionAbi(
    "setSupplyCap", (AbiInput("asset", "address", "address"), AbiInput("newSupplyCap", "uint256", "uint256"))
)
SET_BORROW_CAP = FunctionAbi(
    "setBorrowCap", (AbiInput("asset", "address", "address"), AbiInput("newBorrowCap", "uint256", "uint256"))
)
FUNCTIONS = (CONFIGURE_RESERVE_AS_COLLATERAL, SET_SUPPLY_CAP, SET_BORROW_CAP)

_LABELS = {
    P.LTV: "LTV",
    P.LIQUIDATION_THRESHOLD: "liquidation threshold",
    P.LIQUIDATION_BONUS: "liquidation bonus",
    P.SUPPLY_CAP: "supply cap",
    P.BORROW_CAP: "borrow cap",
}


class AaveRuleError(StewardError):
    """A combination of values the PoolConfigurator would revert on (the rule is named)."""


def check_collateral_rules(market: str, ltv: Bps, lt: Bps, bonus: Bps) -> None:
    """PoolConfigurator.configureReserveAsCollateral's checks, with the bonus as the bonus only."""
    on_chain_bonus = BPS_PER_ONE + bonus.value if lt.value else bonus.value
    if ltv > lt:
        raise AaveRuleError(f"{market}: LTV {ltv} above liquidation threshold {lt}", "Aave rule: ltv <= liquidationThreshold")
    if lt.value != 0:
        if on_chain_bonus <= BPS_PER_ONE:
            raise AaveRuleError(f"{market}: bonus {bonus} must be positive when LT is set", "Aave rule: liquidationBonus > 10000")
        if lt.value * on_chain_bonus > BPS_PER_ONE * BPS_PER_ONE:
            raise AaveRuleError(
                f"{market}: LT {lt} x (1 + bonus {bonus}) exceeds 100%",
                "Aave rule: liquidationThreshold x liquidationBonus / 10000 <= 10000",
            )
    elif bonus.value != 0:
        raise AaveRuleError(f"{market}: LT 0 needs bonus 0", "Aave rule: LT = 0 disables collateral; bonus must be 0")
    if lt.value > BPS_PER_ONE:
        raise AaveRuleError(f"{market}: LT {lt} above 100%", "Aave rule: liquidationThreshold <= 10000")


def check_cap(market: str, what: str, cap: TokenAmount) -> int:
    tokens = cap.to_whole_tokens()
    if tokens > MAX_CAP:
        raise AaveRuleError(f"{market}: {what} {tokens:,} above Aave's maximum {MAX_CAP:,}", "caps are 36-bit whole tokens")
    return tokens


def _arrow(change: ParameterChange) -> str:
    if not change.changed:
        return f"{_LABELS[change.parameter]} {value_text(change.current)} (unchanged)"
    return f"{_LABELS[change.parameter]} {value_text(change.current)} → {value_text(change.proposed)}"


def calls_for_market(configurator: str, changes: Sequence[ParameterChange]) -> list[Call]:
    by = {c.parameter: c for c in changes}
    market = changes[0].market
    asset = changes[0].asset
    calls: list[Call] = []
    collateral = [by[p] for p in (P.LTV, P.LIQUIDATION_THRESHOLD, P.LIQUIDATION_BONUS)]
    if any(c.changed for c in collateral):
        ltv, lt, bonus = (c.proposed for c in collateral)
        assert isinstance(ltv, Bps) and isinstance(lt, Bps) and isinstance(bonus, Bps)
        check_collateral_rules(market, ltv, lt, bonus)
        calls.append(
            encode_call(
                configurator,
                CONFIGURE_RESERVE_AS_COLLATERAL,
                (asset, ltv.value, lt.value, BPS_PER_ONE + bonus.value if lt.value else 0),
                f"{market} collateral: " + "; ".join(_arrow(c) for c in collateral),
                contract_label="PoolConfigurator",
            )
        )
    for parameter, function in ((P.SUPPLY_CAP, SET_SUPPLY_CAP), (P.BORROW_CAP, SET_BORROW_CAP)):
        change = by[parameter]
        if change.changed:
            assert isinstance(change.proposed, TokenAmount)
            tokens = check_cap(market, _LABELS[parameter], change.proposed)
            calls.append(
                encode_call(configurator, function, (asset, tokens), f"{market} {_arrow(change)}", contract_label="PoolConfigurator")
            )
    return calls


def calls_for(policy: Policy, recommendation: Recommendation) -> list[Call]:
    """All calls of the recommendation, market by market in the policy's order."""
    configurator = policy.venue.addresses.pool_configurator
    if configurator is None:
        raise StewardError(
            f"venue {policy.venue.name} has no pool_configurator address",
            "add venue.addresses.pool_configurator to the policy",
        )
    calls: list[Call] = []
    for market in recommendation.markets:
        calls.extend(calls_for_market(configurator, market.changes))
    return calls


def intended_args(call: Call, recommendation: Recommendation) -> tuple[object, ...]:
    """What a call's arguments must be according to recommendation values (for independent checks)."""
    by_asset = {m.asset: m for m in recommendation.markets}
    market = by_asset[call.args[0]]
    if call.function == CONFIGURE_RESERVE_AS_COLLATERAL:
        ltv, lt, lb = (market.change(p).proposed for p in (P.LTV, P.LIQUIDATION_THRESHOLD, P.LIQUIDATION_BONUS))
        assert isinstance(ltv, Bps) and isinstance(lt, Bps) and isinstance(lb, Bps)
        return (market.asset, ltv.value, lt.value, BPS_PER_ONE + lb.value if lt.value else 0)
    parameter = P.SUPPLY_CAP if call.function == SET_SUPPLY_CAP else P.BORROW_CAP
    cap = market.change(parameter).proposed
    assert isinstance(cap, TokenAmount)
    return (market.asset, cap.to_whole_tokens())
