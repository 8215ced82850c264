"""The RiskSteward's own state at one block, and routing on it instead of the policy's copy.

The policy's `routing:` section states the steward's limits, last-update times and restricted markets
as someone wrote them down; the steward accepts or refuses a call by what its storage says. When the
epoch reads from a chain, that storage (pinned in the bundle) is the truth: its values replace the
policy's, and every value the policy states differently is listed so the report can say so.

Pure: the caller reads the chain (governance.venues.aave_steward_state) and passes the values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from risk.data_text import iso_utc
from risk.policy_routing import Routing, StewardLimits, StewardParameter


@dataclass(frozen=True)
class StewardState:
    """What the steward's storage says at `block`: getRiskConfig, getTimelock and isAddressRestricted.

    `last_updates` maps (market symbol, StewardParameter value) to the steward's last update (absent = never);
    `restricted` holds the symbols of the policy's markets the steward refuses.
    """

    steward: str
    chain_id: int
    block: int
    block_time: dt.datetime
    limits: StewardLimits
    last_updates: Mapping[tuple[str, str], dt.datetime] = field(default_factory=dict)
    restricted: frozenset[str] = frozenset()


def chain_routing(routing: Routing, state: StewardState) -> Routing:
    """The policy's routing with the chain's limits and none of its own last updates or restrictions.

    The chain's last updates and restrictions are passed to `risk.routing.route_changes` apart; the
    policy's are dropped here so that routing merges nothing of them with the chain's.
    """
    return routing.model_copy(update={"limits": state.limits, "last_updates": {}, "restricted_markets": ()})


def limits_for(routing: Routing, state: StewardState | None) -> StewardLimits:
    """The limits the steward applies: the chain's when read, else the policy's."""
    return routing.limits if state is None else state.limits


def routing_time(as_of: dt.datetime, state: StewardState | None) -> dt.datetime:
    """When routes are decided for: the data's as-of time, or the pinned block's time when that is later.

    The steward compares its delays with the time of the block that executes the call, which is no
    earlier than the block its state was read at; an earlier `now` would keep changes from a steward
    whose delay has already run out.
    """
    if state is None:
        return as_of
    return max(as_of, state.block_time)


def _limit_text(limits: StewardLimits, parameter: StewardParameter) -> str:
    limit = limits.for_parameter(parameter)
    return f"±{limit.max_change} every {limit.min_delay}"


def _time_text(t: dt.datetime | None) -> str:
    return "never" if t is None else iso_utc(int(t.timestamp()))


def disagreements(routing: Routing, state: StewardState) -> tuple[str, ...]:
    """One line per value the policy states differently from the steward's storage (the chain's is used)."""
    lines: list[str] = []
    stated = routing.limits.model_fields_set if "limits" in routing.model_fields_set else set()
    for parameter in StewardParameter:
        mine, chain = routing.limits.for_parameter(parameter), state.limits.for_parameter(parameter)
        if (mine.max_change, mine.min_delay) != (chain.max_change, chain.min_delay):
            default = "" if parameter.value in stated else " (its default)"
            lines.append(
                f"{parameter.value} limit: the policy says {_limit_text(routing.limits, parameter)}{default}, "
                f"getRiskConfig() says {_limit_text(state.limits, parameter)}"
            )
    policy_times = {
        (market, StewardParameter(p).value): t for market, params in routing.last_updates.items() for p, t in params.items()
    }
    for market, parameter in sorted(set(policy_times) | set(state.last_updates)):
        mine_t, chain_t = policy_times.get((market, parameter)), state.last_updates.get((market, parameter))
        if mine_t != chain_t:
            lines.append(
                f"{market} {parameter} last update: the policy says {_time_text(mine_t)}, getTimelock() says {_time_text(chain_t)}"
            )
    policy_restricted = set(routing.restricted_markets)
    for market in sorted(policy_restricted - state.restricted):
        lines.append(f"{market}: the policy lists it as restricted, isAddressRestricted() says the steward accepts it")
    for market in sorted(state.restricted - policy_restricted):
        lines.append(f"{market}: the policy does not list it as restricted, isAddressRestricted() says the steward refuses it")
    return tuple(lines)


__all__ = ["StewardState", "chain_routing", "disagreements", "limits_for", "routing_time"]
