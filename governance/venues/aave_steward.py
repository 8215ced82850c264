"""Aave v3 RiskSteward: the council Safe's calls `updateCollateralSide`, `updateCaps`, `updateRates`, and its reads.

Encoded from the published interface (aave-dao/aave-v3-risk-stewards `IRiskSteward`, whose ABI
@aave-dao/aave-address-book ships as `IRiskSteward_ABI`): each call takes an array of the config
engine's structs (aave-v3-origin `IAaveV3ConfigEngine`):

    CapsUpdate         {address asset; uint256 supplyCap; uint256 borrowCap}                 whole tokens
    CollateralUpdate   {address asset; uint256 ltv; uint256 liqThreshold; uint256 liqBonus;
                        uint256 debtCeiling; uint256 liqProtocolFee}                          bps, bonus only
    RateStrategyUpdate {address asset; InterestRateInputData {uint256 optimalUsageRatio;
                        uint256 baseVariableBorrowRate; uint256 variableRateSlope1;
                        uint256 variableRateSlope2}}                                          bps

A field left alone is `EngineFlags.KEEP_CURRENT` (type(uint256).max - 42): the steward refuses a
field equal to the current value (NoSameUpdates), any 0 for caps/LTV/LT/bonus (InvalidUpdateToZero),
and any liqProtocolFee other than KEEP_CURRENT (ParamChangeNotAllowed).

Every call is checked again here against the steward's limits before it is encoded: a change above
the limit is never sent to the steward, whatever the routing said.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from governance.calls import AbiInput, Call, FunctionAbi, decode_call, encode_call
from governance.chain import ChainError, ChainReader, ViewFn
from risk.errors import StewardError
from risk.policy import LendingParameter
from risk.policy_routing import StewardLimits, StewardParameter, StewardParamLimit
from risk.recommendation import value_text
from risk.routing import (
    Route,
    RouteKind,
    on_chain_value,
    steward_move_problem,
    steward_ready_at,
)
from risk.units import Bps, Duration, Ratio

KEEP_CURRENT = 2**256 - 1 - 42
P = LendingParameter
S = StewardParameter

CAPS_UPDATE = "(address,uint256,uint256)"
COLLATERAL_UPDATE = "(address,uint256,uint256,uint256,uint256,uint256)"
RATE_STRATEGY_UPDATE = "(address,(uint256,uint256,uint256,uint256))"

UPDATE_CAPS = FunctionAbi(
    "updateCaps", (AbiInput("capsUpdate", CAPS_UPDATE + "[]", "struct IAaveV3ConfigEngine.CapsUpdate[]"),)
)
UPDATE_COLLATERAL_SIDE = FunctionAbi(
    "updateCollateralSide",
    (AbiInput("collateralUpdates", COLLATERAL_UPDATE + "[]", "struct IAaveV3ConfigEngine.CollateralUpdate[]"),),
)
UPDATE_RATES = FunctionAbi(
    "updateRates",
    (AbiInput("ratesUpdate", RATE_STRATEGY_UPDATE + "[]", "struct IAaveV3ConfigEngine.RateStrategyUpdate[]"),),
)
FUNCTIONS = (UPDATE_CAPS, UPDATE_COLLATERAL_SIDE, UPDATE_RATES)

# Reads. Config has 12 RiskParamConfig {uint40 minDelay; uint256 maxPercentChange}; Debounce 11 uint40.
_CONFIG_FIELDS = (
    "ltv", "liquidation_threshold", "liquidation_bonus", "supply_cap", "borrow_cap", "debt_ceiling",
    "base_variable_borrow_rate", "variable_rate_slope1", "variable_rate_slope2", "optimal_usage_ratio",
    "price_cap_lst", "price_cap_stable",
)
_DEBOUNCE_FIELDS = (
    "supply_cap", "borrow_cap", "ltv", "liquidation_bonus", "liquidation_threshold", "debt_ceiling",
    "base_variable_borrow_rate", "variable_rate_slope1", "variable_rate_slope2", "optimal_usage_ratio", "price_cap",
)
GET_RISK_CONFIG = ViewFn("getRiskConfig()", ("(" + ",".join(["(uint40,uint256)"] * len(_CONFIG_FIELDS)) + ")",))
GET_TIMELOCK = ViewFn("getTimelock(address)", ("(" + ",".join(["uint40"] * len(_DEBOUNCE_FIELDS)) + ")",))
IS_ADDRESS_RESTRICTED = ViewFn("isAddressRestricted(address)", ("bool",))
RISK_COUNCIL = ViewFn("RISK_COUNCIL()", ("address",))


class StewardCallError(StewardError):
    """A steward call that would revert or exceed the steward's limits; nothing is encoded."""


@dataclass(frozen=True, slots=True)
class CapsUpdate:
    """Whole tokens; None = KEEP_CURRENT."""

    asset: str
    supply_cap: int | None = None
    borrow_cap: int | None = None


@dataclass(frozen=True, slots=True)
class CollateralUpdate:
    """Basis points, the bonus as the bonus only (the engine adds 10000); None = KEEP_CURRENT."""

    asset: str
    ltv: int | None = None
    liq_threshold: int | None = None
    liq_bonus: int | None = None
    debt_ceiling: int | None = None
    liq_protocol_fee: int | None = None


@dataclass(frozen=True, slots=True)
class RateParams:
    """InterestRateInputData in basis points (aave-v3-origin's rate strategy is bps); None = KEEP_CURRENT."""

    optimal_usage_ratio: Bps | None = None
    base_variable_borrow_rate: Bps | None = None
    variable_rate_slope1: Bps | None = None
    variable_rate_slope2: Bps | None = None


@dataclass(frozen=True, slots=True)
class RateStrategyUpdate:
    asset: str
    params: RateParams


@dataclass(frozen=True, slots=True)
class RateChange:
    """One market's rate move: every current value known, the proposed ones that change."""

    market: str
    asset: str
    current: RateParams
    proposed: RateParams


def _flag(value: int | None, what: str) -> int:
    if value is None:
        return KEEP_CURRENT
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < KEEP_CURRENT:
        raise StewardCallError(f"{what}: {value!r} is not an on-chain value below KEEP_CURRENT", "pass bps or whole tokens")
    return value


def _unflag(value: int) -> int | None:
    return None if value == KEEP_CURRENT else value


def _bps(value: Bps | None) -> int | None:
    return None if value is None else value.value


# --- encoding ---------------------------------------------------------------------------------


def encode_collateral_updates(steward: str, updates: Sequence[CollateralUpdate], human: str) -> Call:
    for u in updates:
        if u.liq_protocol_fee is not None:
            raise StewardCallError(f"{u.asset}: the steward refuses a liqProtocolFee change (ParamChangeNotAllowed)",
                                   "leave the protocol fee to governance")
        if all(v is None for v in (u.ltv, u.liq_threshold, u.liq_bonus, u.debt_ceiling)):
            raise StewardCallError(f"{u.asset}: every field is KEEP_CURRENT (NoAllKeepCurrent)", "drop the asset from the call")
    rows = tuple(
        (u.asset, _flag(u.ltv, "ltv"), _flag(u.liq_threshold, "liqThreshold"), _flag(u.liq_bonus, "liqBonus"),
         _flag(u.debt_ceiling, "debtCeiling"), _flag(u.liq_protocol_fee, "liqProtocolFee"))
        for u in updates
    )
    return _encode(steward, UPDATE_COLLATERAL_SIDE, rows, human)


def encode_caps_updates(steward: str, updates: Sequence[CapsUpdate], human: str) -> Call:
    for u in updates:
        if u.supply_cap is None and u.borrow_cap is None:
            raise StewardCallError(f"{u.asset}: both caps are KEEP_CURRENT (NoAllKeepCurrent)", "drop the asset from the call")
    rows = tuple((u.asset, _flag(u.supply_cap, "supplyCap"), _flag(u.borrow_cap, "borrowCap")) for u in updates)
    return _encode(steward, UPDATE_CAPS, rows, human)


def encode_rate_updates(steward: str, updates: Sequence[RateStrategyUpdate], human: str) -> Call:
    rows = []
    for u in updates:
        p = u.params
        values = (p.optimal_usage_ratio, p.base_variable_borrow_rate, p.variable_rate_slope1, p.variable_rate_slope2)
        if all(v is None for v in values):
            raise StewardCallError(f"{u.asset}: every rate is KEEP_CURRENT (NoAllKeepCurrent)", "drop the asset from the call")
        rows.append((u.asset, tuple(_flag(_bps(v), "rate") for v in values)))
    return _encode(steward, UPDATE_RATES, tuple(rows), human)


def _encode(steward: str, function: FunctionAbi, rows: tuple[Any, ...], human: str) -> Call:
    if not rows:
        raise StewardCallError(f"{function.name} with no update (NoZeroUpdates)", "the steward needs at least one asset")
    assets = [to_checksum_address(r[0]) for r in rows]
    if len(set(assets)) != len(assets):
        raise StewardCallError(f"{function.name}: an asset appears twice", "merge its updates into one entry")
    return encode_call(steward, function, (rows,), human, contract_label="RiskSteward")


# --- decoding ---------------------------------------------------------------------------------

StewardUpdate = CapsUpdate | CollateralUpdate | RateStrategyUpdate


def decode_steward_call(data: str) -> tuple[FunctionAbi, tuple[StewardUpdate, ...]]:
    """Which steward function a calldata calls and its updates, KEEP_CURRENT read back as None."""
    raw = bytes.fromhex(data[2:10]) if data.startswith("0x") else b""
    function = next((f for f in FUNCTIONS if f.selector == raw), None)
    if function is None:
        raise StewardCallError(f"selector 0x{raw.hex()} is not updateCaps, updateCollateralSide or updateRates",
                               "this is not a RiskSteward call Steward makes")
    (rows,) = decode_call(function, data)
    out: list[StewardUpdate] = []
    for row in rows:
        if function is UPDATE_CAPS:
            out.append(CapsUpdate(row[0], _unflag(row[1]), _unflag(row[2])))
        elif function is UPDATE_COLLATERAL_SIDE:
            out.append(CollateralUpdate(row[0], *(_unflag(v) for v in row[1:])))
        else:
            values = [None if (v := _unflag(x)) is None else Bps(v) for x in row[1]]
            out.append(RateStrategyUpdate(row[0], RateParams(*values)))
    return function, tuple(out)


_FIELD_NAMES = {
    "ltv": "ltv", "liq_threshold": "liquidation_threshold", "liq_bonus": "liquidation_bonus", "debt_ceiling": "debt_ceiling",
    "liq_protocol_fee": "liquidation_protocol_fee", "supply_cap": "supply_cap", "borrow_cap": "borrow_cap",
}


def values_set(data: str) -> dict[str, dict[str, int]]:
    """asset → {parameter: on-chain value} that a steward calldata sets; KEEP_CURRENT fields are left out.

    Parameter names are Steward's (ltv, liquidation_threshold, liquidation_bonus as the bonus only,
    supply_cap, borrow_cap in whole tokens, rates in bps), for comparing with recommendation.json.
    """
    _, updates = decode_steward_call(data)
    out: dict[str, dict[str, int]] = {}
    for u in updates:
        entry = out.setdefault(to_checksum_address(u.asset), {})
        if isinstance(u, RateStrategyUpdate):
            for name, value in _vars_of(u.params).items():
                if value is not None:
                    entry[name] = value.value
            continue
        for name, value in _vars_of(u).items():
            if name != "asset" and value is not None:
                entry[_FIELD_NAMES[name]] = value
    return out


def _vars_of(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}


# --- from routes to calls, with the limits checked again ----------------------------------------


def _recheck(route: Route, limits: StewardLimits) -> None:
    if route.kind is not RouteKind.RISK_STEWARD:
        raise StewardCallError(f"{route.market} {route.parameter.value} is routed to {route.kind.value}, not the steward",
                               "pass only steward routes (risk.routing.steward_changes)")
    parameter = S(route.parameter.value)
    problem = steward_move_problem(parameter, on_chain_value(route.current), on_chain_value(route.proposed),
                                   limits.for_parameter(parameter))
    if problem is not None:
        raise StewardCallError(f"{route.market}: {problem}", "a change above the steward's limit is never sent to it")


def steward_calls(steward: str, routes: Sequence[Route], limits: StewardLimits) -> list[Call]:
    """One updateCollateralSide (if any collateral change) then one updateCaps (if any cap change), assets in route order."""
    collateral: dict[str, dict[str, int]] = {}
    caps: dict[str, dict[str, int]] = {}
    lines: dict[str, list[str]] = {"collateral": [], "caps": []}
    for r in routes:
        _recheck(r, limits)
        group, book = ("caps", caps) if r.parameter in (P.SUPPLY_CAP, P.BORROW_CAP) else ("collateral", collateral)
        entry = book.setdefault(to_checksum_address(r.asset), {})
        if r.parameter.value in entry:
            raise StewardCallError(f"{r.market} {r.parameter.value} appears twice", "route each parameter once")
        entry[r.parameter.value] = on_chain_value(r.proposed)
        lines[group].append(f"{r.market} {r.parameter.value.replace('_', ' ')} {value_text(r.current)} → {value_text(r.proposed)}")
    calls: list[Call] = []
    if collateral:
        updates = [CollateralUpdate(a, v.get("ltv"), v.get("liquidation_threshold"), v.get("liquidation_bonus")) for a, v in collateral.items()]
        calls.append(encode_collateral_updates(steward, updates, "RiskSteward collateral: " + "; ".join(lines["collateral"])))
    if caps:
        updates_caps = [CapsUpdate(a, v.get("supply_cap"), v.get("borrow_cap")) for a, v in caps.items()]
        calls.append(encode_caps_updates(steward, updates_caps, "RiskSteward caps: " + "; ".join(lines["caps"])))
    return calls


_RATE_PARAMS = (
    ("optimal_usage_ratio", S.OPTIMAL_USAGE_RATIO),
    ("base_variable_borrow_rate", S.BASE_VARIABLE_BORROW_RATE),
    ("variable_rate_slope1", S.VARIABLE_RATE_SLOPE1),
    ("variable_rate_slope2", S.VARIABLE_RATE_SLOPE2),
)


def rates_call(
    steward: str,
    changes: Sequence[RateChange],
    limits: StewardLimits,
    *,
    now: dt.datetime,
    last_updates: Mapping[tuple[str, str], dt.datetime] | None = None,
) -> Call:
    """updateRates for rate moves within the steward's limits and delays; anything else is refused, naming it."""
    updates, lines = [], []
    for c in changes:
        moved: dict[str, Bps | None] = {}
        for name, parameter in _RATE_PARAMS:
            current, proposed = getattr(c.current, name), getattr(c.proposed, name)
            if current is None:
                raise StewardCallError(f"{c.market}: current {name} unknown", "read the rate strategy's current values first")
            if proposed is None or proposed == current:
                moved[name] = None  # KEEP_CURRENT: a same-value field would revert (NoSameUpdates)
                continue
            limit: StewardParamLimit = limits.for_parameter(parameter)
            problem = steward_move_problem(parameter, current.value, proposed.value, limit)
            if problem is not None:
                raise StewardCallError(f"{c.market}: {problem}", "a rate move above the steward's limit needs governance")
            ready = steward_ready_at((last_updates or {}).get((c.market, parameter.value)), limit)
            if ready is not None and now < ready:
                raise StewardCallError(
                    f"{c.market}: {name} was updated by the steward less than {limit.min_delay} ago; "
                    f"allowed from {ready.strftime('%Y-%m-%dT%H:%M:%SZ')} (DebounceNotRespected)",
                    "wait for the delay or take the change to governance",
                )
            moved[name] = proposed
            lines.append(f"{c.market} {name.replace('_', ' ')} {current.to_ratio()} → {proposed.to_ratio()}")
        updates.append(RateStrategyUpdate(c.asset, RateParams(**moved)))
    human = "RiskSteward rates: " + "; ".join(lines)
    return encode_rate_updates(steward, updates, human)


# --- reads ---------------------------------------------------------------------------------------


def _check_lengths(raw: tuple[Any, ...], want: int, what: str) -> None:
    if len(raw) != want:
        raise ChainError(f"{what} returned {len(raw)} fields, the published IRiskSteward has {want}",
                         "this steward is another version; read its limits by hand and put them in the policy")


def limits_from_config(config: tuple[tuple[int, int], ...]) -> StewardLimits:
    """StewardLimits from getRiskConfig()'s decoded tuple (maxPercentChange in bps, minDelay in seconds)."""
    _check_lengths(config, len(_CONFIG_FIELDS), "getRiskConfig()")
    by_name = dict(zip(_CONFIG_FIELDS, config, strict=True))
    values = {
        f: {"max_change": Ratio.parse({"bps": by_name[f][1]}), "min_delay": Duration(int(by_name[f][0]))}
        for f in StewardLimits.model_fields
    }
    return StewardLimits.model_validate(values)


def read_risk_config(reader: ChainReader, steward: str, *, block: int) -> StewardLimits:
    (config,) = reader.read(to_checksum_address(steward), GET_RISK_CONFIG, block=block)
    return limits_from_config(tuple(tuple(c) for c in config))


def last_updates_from_timelock(market: str, debounce: tuple[int, ...]) -> dict[tuple[str, str], dt.datetime]:
    """(market, parameter) → last steward update time, from getTimelock's Debounce; 0 (never) is left out."""
    _check_lengths(debounce, len(_DEBOUNCE_FIELDS), "getTimelock()")
    known = {p.value for p in S}
    return {
        (market, name): dt.datetime.fromtimestamp(int(t), dt.UTC)
        for name, t in zip(_DEBOUNCE_FIELDS, debounce, strict=True)
        if t and name in known
    }


def read_last_updates(
    reader: ChainReader, steward: str, markets: Mapping[str, str], *, block: int
) -> dict[tuple[str, str], dt.datetime]:
    """Every market's (symbol → asset) steward timelock at `block`."""
    out: dict[tuple[str, str], dt.datetime] = {}
    for symbol, asset in markets.items():
        (debounce,) = reader.read(to_checksum_address(steward), GET_TIMELOCK, to_checksum_address(asset), block=block)
        out.update(last_updates_from_timelock(symbol, tuple(debounce)))
    return out


def read_restricted(reader: ChainReader, steward: str, markets: Mapping[str, str], *, block: int) -> frozenset[str]:
    """Symbols of the markets the steward refuses (isAddressRestricted)."""
    return frozenset(
        symbol for symbol, asset in markets.items()
        if reader.read(to_checksum_address(steward), IS_ADDRESS_RESTRICTED, to_checksum_address(asset), block=block)[0]
    )


def read_council(reader: ChainReader, steward: str, *, block: int) -> str:
    """The Safe allowed to call the steward (RISK_COUNCIL): the bundle's Safe must be it."""
    (council,) = reader.read(to_checksum_address(steward), RISK_COUNCIL, block=block)
    return to_checksum_address(council)
