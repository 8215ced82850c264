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


def route_calls(policy: Policy, recommendation: Recommendation, *, as_of_seconds: int) -> RoutedCalls:
    """Route the recommendation (at the data's as-of time, never the clock) and encode each route's calls."""
    routing = policy.routing
    assert routing is not None
    has_safe = policy.venue.addresses.safe is not None
    every = tuple(c for m in recommendation.markets for c in m.changes)  # unchanged too: a group's current values
    routes = route_changes(
        every, routing, now=dt.datetime.fromtimestamp(as_of_seconds, dt.UTC), has_safe=has_safe,
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
    steward = [] if routing.steward is None else aave_steward.steward_calls(routing.steward, steward_changes(routes), routing.limits)
    safe_view = for_route(recommendation, routes, RouteKind.SAFE)
    governance_view = for_route(recommendation, routes, RouteKind.GOVERNANCE)
    safe_calls = aave_v3.calls_for(policy, safe_view) if by_kind[RouteKind.SAFE] else []
    governor_calls = aave_v3.calls_for(policy, governance_view) if by_kind[RouteKind.GOVERNANCE] else []
    return RoutedCalls(routes=routes, steward_calls=steward, safe_calls=safe_calls, governor_calls=governor_calls)


def prove_steward_calls(calls: list[Call], policy: Policy, recommendation: Recommendation, routes: tuple[Route, ...]) -> None:
    """Decode every steward call; it must set exactly the steward routes' values, each within the steward's limit."""
    routing = policy.routing
    assert routing is not None
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
                                               routing.limits.for_parameter(param))
                if problem is not None:
                    raise StewardError(f"call '{call.human}': {problem}", "a change above the steward's limit is never sent to it")
                got[(asset, param)] = value
    if got != wanted:
        raise StewardError(f"the steward calls set {sorted(got.items())}, the routes say {sorted(wanted.items())}",
                           "do not sign: a packaging bug")


def routed_recommendation_json(recommendation: Recommendation, routed: RoutedCalls, policy: Policy) -> dict[str, Any]:
    """recommendation.json with its `routing` section (a routed policy's only difference)."""
    return {**recommendation.to_json(), "routing": routes_json(routed.routes, policy.routing)}
