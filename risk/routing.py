"""Routing: for each parameter change, the RiskSteward, a Safe batch, or a full DAO proposal, and why.

The steward's own checks are mirrored exactly (aave-dao/aave-v3-risk-stewards, `RiskSteward.sol`):

* `_updateWithinAllowedRange`: |new − current| ≤ maxDiff, where maxDiff = maxPercentChange for
  absolute parameters and maxPercentChange × current / 10000 (integer division) for caps — so a cap of
  0 ("no cap") can never be moved by the steward;
* `InvalidUpdateToZero`: no cap, LTV, LT or bonus set to 0;
* `DebounceNotRespected`: now − lastUpdated ≥ minDelay for each parameter changed;
* `AssetIsRestricted`: restricted assets are refused.

A change above the steward's limit is never routed to it. A change the steward cannot take goes to the
fallback: the Safe batch when the policy says the Safe is the pool's risk admin, else governance; a
change to 0 always goes to governance (DOMAIN.md: stewards cannot set caps, LTV, LT or LB to 0).
LTV, LT and bonus are written together: a market's collateral changes always take one route, the
slowest of its members. The PoolConfigurator's configureReserveAsCollateral writes all three, so a
Safe or DAO call holding the others at their current values would set a faster route's change back;
and a faster part applied alone may break Aave's rules (LTV ≤ LT, LT × (1 + bonus) ≤ 100%), which the
reason then names.

Pure: the caller passes `now` (the epoch's as-of time, not the clock) and any last-update times read
from the chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from risk.errors import RiskInputError
from risk.policy import LendingParameter
from risk.policy_routing import RELATIVE, Routing, StewardParameter, StewardParamLimit
from risk.recommendation import ParameterChange, ParameterValue, value_json, value_text
from risk.units import BPS_PER_ONE, Bps

P = LendingParameter
_COLLATERAL = (P.LTV, P.LIQUIDATION_THRESHOLD, P.LIQUIDATION_BONUS)
_LABELS = {
    P.LTV: "LTV",
    P.LIQUIDATION_THRESHOLD: "liquidation threshold",
    P.LIQUIDATION_BONUS: "liquidation bonus",
    P.SUPPLY_CAP: "supply cap",
    P.BORROW_CAP: "borrow cap",
}


class RouteKind(StrEnum):
    RISK_STEWARD = "risk_steward"
    SAFE = "safe"
    GOVERNANCE = "governance"


# Slower routes can carry anything a faster one can; a group moves to the slowest of its members.
_SPEED = {RouteKind.RISK_STEWARD: 0, RouteKind.SAFE: 1, RouteKind.GOVERNANCE: 2}


@dataclass(frozen=True, slots=True)
class Route:
    """Where one changed parameter goes. `rule` is a stable code, `reason` one line for people.

    `steward_ready_at` is set when only the steward's delay kept the change from it: from that time the
    steward could take it.
    """

    market: str
    asset: str
    parameter: LendingParameter
    current: ParameterValue
    proposed: ParameterValue
    kind: RouteKind
    rule: str
    reason: str
    steward_ready_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "current": value_json(self.current),
            "proposed": value_json(self.proposed),
            "reason": self.reason,
            "route": self.kind.value,
            "rule": self.rule,
            "steward_ready_at": None if self.steward_ready_at is None else _iso(self.steward_ready_at),
        }


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def on_chain_value(value: ParameterValue) -> int:
    """The integer the steward compares: basis points (bonus only, as the engine takes it) or whole tokens."""
    if isinstance(value, Bps):
        return value.value
    return value.to_whole_tokens()


def _amount_text(parameter: StewardParameter, amount: int) -> str:
    if parameter in RELATIVE:
        return f"{amount:,} tokens"
    return f"{amount / 100:.2f} pp"


def steward_move_problem(parameter: StewardParameter | str, current: int, new: int, limit: StewardParamLimit) -> str | None:
    """Why the steward would refuse moving `current` → `new` (on-chain integers), or None if within its range.

    Mirrors `RiskSteward._updateWithinAllowedRange` and `InvalidUpdateToZero`; the delay is checked apart.
    """
    parameter = StewardParameter(parameter)
    for name, v in (("current", current), ("new", new)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise RiskInputError(f"{parameter.value}: {name} value {v!r} is not a non-negative integer", "pass on-chain units")
    if new == 0 and parameter in _NO_ZERO:
        return f"{parameter.value} to 0: the steward refuses updates to 0 (InvalidUpdateToZero)"
    if new == current:
        return f"{parameter.value} unchanged: the steward refuses same-value updates (NoSameUpdates)"
    diff = abs(new - current)
    if parameter in RELATIVE:
        max_diff = limit.max_change_bps * current // BPS_PER_ONE
        allowed = f"{limit.max_change} of the current {current:,} = {max_diff:,} tokens"
        if current == 0:
            allowed = "nothing: the current cap is 0 (no cap), and the steward's relative limit is a share of it"
    else:
        max_diff = limit.max_change_bps
        allowed = _amount_text(parameter, max_diff)
    if diff > max_diff:
        return f"{parameter.value} moves {_amount_text(parameter, diff)}; the steward allows {allowed} per update (UpdateNotInRange)"
    return None


# RiskSteward refuses 0 for caps, LTV, LT, bonus (and debt ceiling); rates may be 0.
_NO_ZERO = frozenset({
    StewardParameter.LTV, StewardParameter.LIQUIDATION_THRESHOLD, StewardParameter.LIQUIDATION_BONUS,
    StewardParameter.SUPPLY_CAP, StewardParameter.BORROW_CAP,
})


def steward_ready_at(last_update: dt.datetime | None, limit: StewardParamLimit) -> dt.datetime | None:
    """The first time the steward accepts another update (DebounceNotRespected), or None if never updated."""
    if last_update is None:
        return None
    return last_update + dt.timedelta(seconds=limit.min_delay.seconds)


def _check_now(now: dt.datetime) -> None:
    if not isinstance(now, dt.datetime) or now.tzinfo is None:
        raise RiskInputError(f"routing time {now!r} is not a timezone-aware datetime", "pass the epoch's as-of time in UTC")


def _last_updates(
    routing: Routing, chain: Mapping[tuple[str, str], dt.datetime] | None
) -> dict[tuple[str, str], dt.datetime]:
    """The policy's map and the chain's reads together; where both know a time, the later one counts."""
    out: dict[tuple[str, str], dt.datetime] = {}
    for market, params in routing.last_updates.items():
        for param, t in params.items():
            out[(market, StewardParameter(param).value)] = t
    for (market, param), t in (chain or {}).items():
        key = (market, StewardParameter(param).value)
        out[key] = max(out[key], t) if key in out else t
    return out


def _route(change: ParameterChange, kind: RouteKind, rule: str, reason: str, ready: dt.datetime | None = None) -> Route:
    return Route(
        market=change.market, asset=change.asset, parameter=change.parameter, current=change.current,
        proposed=change.proposed, kind=kind, rule=rule, reason=reason, steward_ready_at=ready,
    )


def _what(change: ParameterChange | Route) -> str:
    return f"{change.market} {_LABELS[change.parameter]} {value_text(change.current)} → {value_text(change.proposed)}"


def _one(
    change: ParameterChange,
    routing: Routing | None,
    *,
    now: dt.datetime,
    has_safe: bool,
    last: Mapping[tuple[str, str], dt.datetime],
    restricted: Collection[str],
) -> Route:
    zero = on_chain_value(change.proposed) == 0
    if routing is None or routing.steward is None:
        if zero or change.needs_governance:
            return _route(change, RouteKind.GOVERNANCE, "zero_needs_governance",
                          f"{_what(change)}: setting it to 0 is reserved to a DAO vote")
        if has_safe:
            return _route(change, RouteKind.SAFE, "no_steward",
                          f"{_what(change)}: no RiskSteward in the policy; the venue's Safe calls the configurator")
        return _route(change, RouteKind.GOVERNANCE, "no_steward_no_safe",
                      f"{_what(change)}: no RiskSteward and no Safe in the policy; only a DAO vote can make it")
    fallback = RouteKind.SAFE if routing.safe_is_risk_admin and has_safe else RouteKind.GOVERNANCE
    where = "a Safe batch (the Safe is the pool's risk admin)" if fallback is RouteKind.SAFE else "a DAO proposal"
    parameter = StewardParameter(change.parameter.value)
    limit = routing.limits.for_parameter(parameter)
    if zero or change.needs_governance:
        return _route(change, RouteKind.GOVERNANCE, "steward_cannot_set_zero",
                      f"{_what(change)}: the steward cannot set it to 0 (InvalidUpdateToZero); a DAO vote is needed")
    if change.market in restricted:
        return _route(change, fallback, "steward_restricted_asset",
                      f"{_what(change)}: the steward refuses {change.market} (AssetIsRestricted); sent as {where}")
    problem = steward_move_problem(parameter, on_chain_value(change.current), on_chain_value(change.proposed), limit)
    if problem is not None:
        return _route(change, fallback, "above_steward_limit", f"{_what(change)}: {problem}; sent as {where}")
    ready = steward_ready_at(last.get((change.market, parameter.value)), limit)
    if ready is not None and now < ready:
        return _route(
            change, fallback, "steward_delay",
            f"{_what(change)}: the steward's {limit.min_delay} delay since its last {parameter.value} update runs until "
            f"{_iso(ready)} (DebounceNotRespected); wait until then for the steward, or send it as {where}",
            ready,
        )
    return _route(
        change, RouteKind.RISK_STEWARD, "within_steward_limit",
        f"{_what(change)}: within the steward's limit ({_allowed_text(parameter, limit)} per update, every {limit.min_delay})",
    )


def _allowed_text(parameter: StewardParameter, limit: StewardParamLimit) -> str:
    if parameter in RELATIVE:
        return f"±{limit.max_change} of the current value"
    return f"±{_amount_text(parameter, limit.max_change_bps)}"


def collateral_problem(ltv: int, lt: int, bonus: int) -> str | None:
    """Aave's checks on one configureReserveAsCollateral (bps, bonus only), or None when they pass."""
    if ltv > lt:
        return "LTV above LT"
    if lt and lt * (BPS_PER_ONE + bonus) > BPS_PER_ONE * BPS_PER_ONE:
        return "LT × (1 + bonus) above 100%"
    return None


def _group_consistently(routes: list[Route], changes: Sequence[ParameterChange]) -> list[Route]:
    """Move a market's collateral routes to the slowest route among them (see the module's docstring)."""
    current: dict[tuple[str, LendingParameter], int] = {(c.market, c.parameter): on_chain_value(c.current) for c in changes}
    by_market: dict[str, list[int]] = {}
    for i, r in enumerate(routes):
        if r.parameter in _COLLATERAL:
            by_market.setdefault(r.market, []).append(i)
    for market, idx in by_market.items():
        while len({routes[i].kind for i in idx}) > 1:
            kinds = sorted({routes[i].kind for i in idx}, key=_SPEED.__getitem__)
            fast = kinds[0]
            state = {p: current.get((market, p)) for p in _COLLATERAL}
            for i in idx:
                if routes[i].kind is fast:
                    state[routes[i].parameter] = on_chain_value(routes[i].proposed)
            problem = None
            if all(v is not None for v in state.values()):  # else the snapshot lacks part of the group
                problem = collateral_problem(state[P.LTV], state[P.LIQUIDATION_THRESHOLD], state[P.LIQUIDATION_BONUS])  # type: ignore[arg-type]
            slower = kinds[1]
            others = ", ".join(sorted(_LABELS[routes[i].parameter] for i in idx if routes[i].kind is not fast))
            why = (f"applied alone it would leave {problem} (Aave checks LTV, LT and bonus together)" if problem else
                   "configureReserveAsCollateral writes LTV, LT and bonus in one call, so a call of it made apart "
                   "would set this change back")
            for i in idx:
                if routes[i].kind is fast:
                    r = routes[i]
                    routes[i] = replace(
                        r, kind=slower, rule="kept_with_collateral_group", steward_ready_at=None,
                        reason=f"{_what(r)}: sent with {others} ({slower.value}): {why}",
                    )
    return routes


def route_changes(
    changes: Sequence[ParameterChange],
    routing: Routing | None,
    *,
    now: dt.datetime,
    has_safe: bool,
    last_updates: Mapping[tuple[str, str], dt.datetime] | None = None,
    restricted: Collection[str] = (),
) -> tuple[Route, ...]:
    """Route every changed parameter of `changes` (unchanged ones are not sent anywhere).

    Parameters
    ----------
    changes : the recommendation's ParameterChanges (any order; routes keep it).
    routing : the policy's `routing:` section, or None (no steward: Safe batch if `has_safe`).
    now : the time the routes are decided for (timezone-aware), e.g. the epoch's as-of time.
    has_safe : whether the venue has a Safe (policy.venue.addresses.safe).
    last_updates : (market symbol, StewardParameter value) → the steward's last update, e.g. from
        `getTimelock`; merged with the policy's `routing.last_updates` (the later time counts).
    restricted : market symbols the steward refuses, e.g. from `isAddressRestricted`; merged with the policy's.
    """
    _check_now(now)
    last = _last_updates(routing, last_updates) if routing is not None else {}
    refused = set(restricted) | (set(routing.restricted_markets) if routing is not None else set())
    changed = [c for c in changes if c.changed]
    routes = [_one(c, routing, now=now, has_safe=has_safe, last=last, restricted=refused) for c in changed]
    return tuple(_group_consistently(routes, changes))


def routes_json(routes: Sequence[Route], routing: Routing | None) -> dict[str, Any]:
    """The `routing` section of recommendation.json: per market and parameter, the route and its reason."""
    markets: dict[str, dict[str, Any]] = {}
    for r in routes:
        markets.setdefault(r.market, {})[r.parameter.value] = r.to_json()
    counts = {k.value: sum(1 for r in routes if r.kind is k) for k in RouteKind}
    return {
        "counts": counts,
        "markets": markets,
        "safe_is_risk_admin": bool(routing and routing.safe_is_risk_admin),
        "steward": None if routing is None else routing.steward,
    }


def routes_table(routes: Sequence[Route]) -> list[dict[str, str]]:
    """Rows for the report: market, parameter, change, route, reason (all text)."""
    return [
        {
            "change": f"{value_text(r.current)} → {value_text(r.proposed)}",
            "market": r.market,
            "parameter": _LABELS[r.parameter],
            "reason": r.reason.split(": ", 1)[1] if ": " in r.reason else r.reason,
            "route": {"risk_steward": "RiskSteward", "safe": "Safe batch", "governance": "DAO proposal"}[r.kind.value],
        }
        for r in routes
    ]


def changes_for_route(changes: Sequence[ParameterChange], routes: Sequence[Route], kind: RouteKind) -> tuple[ParameterChange, ...]:
    """The changes with every parameter not routed to `kind` held at its current value.

    What a venue adapter needs to package one route: e.g. the Safe batch's configureReserveAsCollateral
    writes LTV, LT and bonus together, and must not carry a value that goes through the steward or a vote.
    """
    routed = {(r.market, r.parameter) for r in routes if r.kind is kind}
    return tuple(c if (c.market, c.parameter) in routed else replace(c, proposed=c.current) for c in changes)


def steward_changes(routes: Sequence[Route]) -> tuple[Route, ...]:
    """The routes the steward takes (what `governance.venues.aave_steward.steward_calls` encodes)."""
    return tuple(r for r in routes if r.kind is RouteKind.RISK_STEWARD)


__all__ = [
    "Route",
    "RouteKind",
    "changes_for_route",
    "collateral_problem",
    "on_chain_value",
    "route_changes",
    "routes_json",
    "routes_table",
    "steward_changes",
    "steward_move_problem",
    "steward_ready_at",
]
