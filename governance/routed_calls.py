"""A routed epoch's calls: RiskSteward and Safe routes in the Safe batch, the governance route in governor.json.

Only used when the policy has a `routing:` section (risk.routing decides each change's route). The
Safe batch carries the steward's calls first — the policy's Safe is then the risk council calling
the steward — and then the PoolConfigurator calls of the Safe route; the governance route's
PoolConfigurator calls go to the Governor proposal only. Each route's configurator calls hold every
parameter routed elsewhere at its current value (`changes_for_route`); a market's LTV, LT and bonus
always share one route, so no call writes back another route's change.

Every steward call is decoded back and compared with the routes and, independently, with the
recommendation and the steward's limits: a change above the limit is never sent to the steward.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from eth_utils import to_checksum_address

from governance.calls import Call
from governance.venues import aave_steward, aave_v3
from risk.errors import StewardError
from risk.policy import Policy
from risk.policy_routing import StewardParameter
from risk.recommendation import Recommendation
from risk.routing import (
    Route,
    RouteKind,
    changes_for_route,
    on_chain_value,
    route_changes,
    routes_json,
    steward_changes,
    steward_move_problem,
)
from risk.routing_chain import StewardState, chain_routing, disagreements, limits_for, routing_time


@dataclass(frozen=True)
class RoutedCalls:
    routes: tuple[Route, ...]
    steward_calls: list[Call]  # RiskSteward calls, first in the Safe batch
    safe_calls: list[Call]  # the Safe route's PoolConfigurator calls
    governor_calls: list[Call]  # the governance route's PoolConfigurator calls

    @property
    def safe_batch(self) -> list[Call]:
        return [*self.steward_calls, *self.safe_calls]

    @property
    def all_calls(self) -> list[Call]:
        return [*self.safe_batch, *self.governor_calls]


def for_route(recommendation: Recommendation, routes: tuple[Route, ...], kind: RouteKind) -> Recommendation:
    """The recommendation as one route carries it: every parameter routed elsewhere held at its current value."""
    markets = tuple(replace(m, changes=changes_for_route(m.changes, routes, kind)) for m in recommendation.markets)
    return replace(recommendation, markets=markets)


def route_calls(
    policy: Policy, recommendation: Recommendation, *, as_of_seconds: int, steward: StewardState | None = None
) -> RoutedCalls:
    """Route the recommendation (at the data's as-of time, never the clock) and encode each route's calls.

    `steward` is the steward's state read from the chain at the snapshot's block: its limits, last
    updates and restrictions then replace the policy's (risk.routing_chain).
    """
    routing = policy.routing
    assert routing is not None
    has_safe = policy.venue.addresses.safe is not None
    every = tuple(c for m in recommendation.markets for c in m.changes)  # unchanged too: a group's current values
    now = routing_time(dt.datetime.fromtimestamp(as_of_seconds, dt.UTC), steward)
    if steward is None:
        routes = route_changes(every, routing, now=now, has_safe=has_safe)
    else:
        routes = route_changes(
            every, chain_routing(routing, steward), now=now, has_safe=has_safe,
            last_updates=steward.last_updates, restricted=steward.restricted,
        )
    by_kind = {k: [r for r in routes if r.kind is k] for k in RouteKind}
    if by_kind[RouteKind.RISK_STEWARD] and not has_safe:
        raise StewardError(
            f"{len(by_kind[RouteKind.RISK_STEWARD])} change(s) are routed to the RiskSteward, but the policy has no Safe "
            "to call it", "set venue.addresses.safe to the steward's risk council Safe",
        )
    if by_kind[RouteKind.GOVERNANCE] and policy.governor is None:
        names = ", ".join(f"{r.market} {r.parameter.value}" for r in by_kind[RouteKind.GOVERNANCE])
        raise StewardError(
            f"{names}: routed to a DAO proposal, but the policy has no `governor:` section to package it",
            "add a `governor:` section, or routing.safe_is_risk_admin: true if the Safe holds the risk-admin role",
        )
    to_steward = [] if routing.steward is None else aave_steward.steward_calls(
        routing.steward, steward_changes(routes), limits_for(routing, steward)
    )
    safe_view = for_route(recommendation, routes, RouteKind.SAFE)
    governance_view = for_route(recommendation, routes, RouteKind.GOVERNANCE)
    safe_calls = aave_v3.calls_for(policy, safe_view) if by_kind[RouteKind.SAFE] else []
    governor_calls = aave_v3.calls_for(policy, governance_view) if by_kind[RouteKind.GOVERNANCE] else []
    return RoutedCalls(routes=routes, steward_calls=to_steward, safe_calls=safe_calls, governor_calls=governor_calls)


def prove_steward_calls(
    calls: list[Call], policy: Policy, recommendation: Recommendation, routes: tuple[Route, ...],
    steward: StewardState | None = None,
) -> None:
    """Decode every steward call; it must set exactly the steward routes' values, each within the steward's limit
    (the chain's when `steward` was read from it)."""
    routing = policy.routing
    assert routing is not None
    limits = limits_for(routing, steward)
    changes = {(to_checksum_address(c.asset), c.parameter.value): c for c in recommendation.changes}
    wanted = {(to_checksum_address(r.asset), r.parameter.value): on_chain_value(r.proposed) for r in steward_changes(routes)}
    got: dict[tuple[str, str], int] = {}
    for call in calls:
        if routing.steward is None or to_checksum_address(call.to) != to_checksum_address(routing.steward):
            raise StewardError(f"call '{call.human}' goes to {call.to}, not the policy's steward", "do not sign: a packaging bug")
        for asset, values in aave_steward.values_set(call.data).items():
            for param, value in values.items():
                change = changes.get((asset, param))
                if change is None or (asset, param) in got:
                    raise StewardError(f"call '{call.human}' sets {param} of {asset}, which the recommendation does not "
                                       "change or another call sets", "do not sign: a packaging bug")
                problem = steward_move_problem(StewardParameter(param), on_chain_value(change.current), value,
                                               limits.for_parameter(param))
                if problem is not None:
                    raise StewardError(f"call '{call.human}': {problem}", "a change above the steward's limit is never sent to it")
                got[(asset, param)] = value
    if got != wanted:
        raise StewardError(f"the steward calls set {sorted(got.items())}, the routes say {sorted(wanted.items())}",
                           "do not sign: a packaging bug")


def routed_recommendation_json(
    recommendation: Recommendation, routed: RoutedCalls, policy: Policy, steward: StewardState | None = None
) -> dict[str, Any]:
    """recommendation.json with its `routing` section (a routed policy's only difference).

    Routed on the chain's steward state, the section also says where that state was read and lists
    each value the policy states differently (offline bundles have no `chain` key).
    """
    section = routes_json(routed.routes, policy.routing)
    if steward is not None and policy.routing is not None:
        section["chain"] = {
            "block": steward.block,
            "disagreements": list(disagreements(policy.routing, steward)),
            "pinned": "inputs/steward.json",
        }
    return {**recommendation.to_json(), "routing": section}


def steward_matches(policy: Policy, steward: StewardState | None, *, chain_id: int, block: int | None) -> None:
    """A pinned steward state must be the policy's steward, on the venue's chain, at the snapshot's block."""
    if steward is None:
        return
    named = None if policy.routing is None or policy.routing.steward is None else to_checksum_address(policy.routing.steward)
    if named != to_checksum_address(steward.steward) or steward.chain_id != chain_id or steward.block != block:
        raise StewardError(
            f"the pinned steward state is of {steward.steward} on chain {steward.chain_id} at block {steward.block}; "
            f"the policy's steward is {named} on chain {chain_id}, the snapshot is at block {block}",
            "read the steward and the pool together with `steward epoch --rpc`",
        )
