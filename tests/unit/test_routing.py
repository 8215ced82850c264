"""Routing: steward within its limits and delays, the Safe or governance otherwise, always with a reason."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance import jsonio
from governance.epoch_inputs import DEMO_POLICY
from risk.errors import RiskInputError
from risk.policy import LendingParameter as P
from risk.policy_load import check_policy_text
from risk.policy_routing import Routing, StewardLimits, StewardParamLimit
from risk.recommendation import ParameterChange
from risk.routing import (
    RouteKind,
    changes_for_route,
    collateral_problem,
    route_changes,
    routes_json,
    routes_table,
    steward_changes,
    steward_move_problem,
)
from risk.units import Bps, Duration, Ratio, TokenAmount

STEWARD = "0x00000000000000000000000000000000000000A1"
WETH = "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
NOW = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
K = RouteKind


def change(parameter: P, current: object, proposed: object, market: str = "WETH") -> ParameterChange:
    zero = (proposed.value if isinstance(proposed, Bps) else proposed.raw) == 0  # type: ignore[union-attr]
    return ParameterChange(
        market=market, asset=WETH, parameter=parameter, current=current, proposed=proposed, target=proposed,  # type: ignore[arg-type]
        limit_text="", binding=("rule",), updates_to_target=1, min_delay=Duration.parse("3d"),
        needs_governance=zero and proposed != current,
    )


def tokens(n: int) -> TokenAmount:
    return TokenAmount.whole(n, 18, "WETH")


def steward(**extra: object) -> Routing:
    return Routing.model_validate_json(json.dumps({"steward": STEWARD, **extra}))


def one(c: ParameterChange, routing: Routing | None, *, has_safe: bool = True, **kw: object):  # type: ignore[no-untyped-def]
    (route,) = route_changes([c], routing, now=NOW, has_safe=has_safe, **kw)  # type: ignore[arg-type]
    return route


# --- the steward's own checks ------------------------------------------------------------------------


def test_absolute_limit_is_inclusive_and_one_bps_more_goes_to_governance() -> None:
    at = one(change(P.LTV, Bps(8000), Bps(8050)), steward())
    assert (at.kind, at.rule) == (K.RISK_STEWARD, "within_steward_limit")
    assert "±0.50 pp per update, every 3d" in at.reason
    over = one(change(P.LTV, Bps(8000), Bps(8051)), steward())
    assert (over.kind, over.rule) == (K.GOVERNANCE, "above_steward_limit")
    assert "moves 0.51 pp; the steward allows 0.50 pp per update (UpdateNotInRange)" in over.reason
    down = one(change(P.LIQUIDATION_BONUS, Bps(750), Bps(700)), steward())
    assert down.kind is K.RISK_STEWARD


def test_caps_are_relative_to_the_current_cap_with_integer_division() -> None:
    limits = StewardLimits(supply_cap=StewardParamLimit(max_change=Ratio.parse("30%")))
    r = Routing(steward=STEWARD, limits=limits)
    assert one(change(P.SUPPLY_CAP, tokens(1001), tokens(1301)), r).kind is K.RISK_STEWARD  # 30% of 1001 = 300.3 → 300
    refused = one(change(P.SUPPLY_CAP, tokens(1001), tokens(1302)), r)
    assert refused.kind is K.GOVERNANCE and "30% of the current 1,001 = 300 tokens" in refused.reason
    # The default 100%: doubling passes, a cap of 0 ("no cap") can never be moved by the steward.
    assert one(change(P.BORROW_CAP, tokens(1000), tokens(2000)), steward()).kind is K.RISK_STEWARD
    from_none = one(change(P.BORROW_CAP, tokens(0), tokens(10)), steward())
    assert from_none.rule == "above_steward_limit" and "current cap is 0 (no cap)" in from_none.reason


def test_a_change_to_zero_always_goes_to_governance_even_when_the_safe_is_admin() -> None:
    for routing in (steward(), steward(safe_is_risk_admin=True), None):
        r = one(change(P.SUPPLY_CAP, tokens(1000), tokens(0)), routing)
        assert r.kind is K.GOVERNANCE
        assert "0" in r.reason and ("InvalidUpdateToZero" in r.reason or "DAO vote" in r.reason)


def test_above_the_limit_goes_to_the_safe_only_when_it_is_the_risk_admin() -> None:
    big = change(P.LIQUIDATION_THRESHOLD, Bps(8000), Bps(8200))
    assert one(big, steward(safe_is_risk_admin=True)).kind is K.SAFE
    assert one(big, steward(safe_is_risk_admin=True), has_safe=False).kind is K.GOVERNANCE
    assert "a Safe batch (the Safe is the pool's risk admin)" in one(big, steward(safe_is_risk_admin=True)).reason


def test_the_delay_blocks_until_exactly_min_delay_and_says_when() -> None:
    # 2024 is a leap year: 27 Feb 00:00:01 + 3 days = 1 Mar 00:00:01, one second after NOW.
    blocked = one(change(P.LTV, Bps(8000), Bps(8020)), steward(last_updates={"WETH": {"ltv": "2024-02-27T00:00:01Z"}}))
    assert (blocked.kind, blocked.rule) == (K.GOVERNANCE, "steward_delay")
    assert blocked.steward_ready_at == dt.datetime(2024, 3, 1, 0, 0, 1, tzinfo=dt.UTC)
    assert "runs until 2024-03-01T00:00:01Z (DebounceNotRespected)" in blocked.reason
    assert "wait until then for the steward, or send it as a DAO proposal" in blocked.reason
    # At exactly min_delay the steward accepts (its check is `now - last < minDelay`).
    exactly = one(change(P.LTV, Bps(8000), Bps(8020)), steward(last_updates={"WETH": {"ltv": "2024-02-27T00:00:00Z"}}))
    assert exactly.kind is K.RISK_STEWARD and exactly.steward_ready_at is None
    as_admin = one(change(P.LTV, Bps(8000), Bps(8020)),
                   steward(safe_is_risk_admin=True, last_updates={"WETH": {"ltv": "2024-02-29T12:00:00Z"}}))
    assert as_admin.kind is K.SAFE and as_admin.rule == "steward_delay"


def test_delay_boundary_and_chain_reads_merge_with_the_policy_map() -> None:
    c = change(P.SUPPLY_CAP, tokens(1000), tokens(1200))
    three_days_ago = NOW - dt.timedelta(days=3)
    assert one(c, steward(), last_updates={("WETH", "supply_cap"): three_days_ago}).kind is K.RISK_STEWARD
    one_second_short = three_days_ago + dt.timedelta(seconds=1)
    blocked = one(c, steward(), last_updates={("WETH", "supply_cap"): one_second_short})
    assert blocked.rule == "steward_delay" and blocked.steward_ready_at == NOW + dt.timedelta(seconds=1)
    # The later of the policy's time and the chain's counts.
    r = steward(last_updates={"WETH": {"supply_cap": "2024-02-01T00:00:00Z"}})
    assert one(c, r, last_updates={("WETH", "supply_cap"): one_second_short}).rule == "steward_delay"
    r2 = steward(last_updates={"WETH": {"supply_cap": one_second_short.strftime("%Y-%m-%dT%H:%M:%SZ")}})
    assert one(c, r2, last_updates={("WETH", "supply_cap"): dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}).rule == "steward_delay"
    # Another parameter's update does not block this one.
    assert one(c, steward(), last_updates={("WETH", "borrow_cap"): NOW}).kind is K.RISK_STEWARD


def test_restricted_markets_and_no_steward() -> None:
    c = change(P.LTV, Bps(8000), Bps(8010))
    assert one(c, steward(restricted_markets=["WETH"])).rule == "steward_restricted_asset"
    assert one(c, steward(), restricted={"WETH"}).kind is K.GOVERNANCE
    assert (one(c, None).kind, one(c, None).rule) == (K.SAFE, "no_steward")
    assert (one(c, None, has_safe=False).kind, one(c, None, has_safe=False).rule) == (K.GOVERNANCE, "no_steward_no_safe")
    assert (one(c, Routing()).kind) is K.SAFE


def test_unchanged_parameters_are_not_routed_and_now_must_be_aware() -> None:
    assert route_changes([change(P.LTV, Bps(8000), Bps(8000))], steward(), now=NOW, has_safe=True) == ()
    with pytest.raises(RiskInputError, match="timezone-aware"):
        route_changes([], steward(), now=dt.datetime(2024, 1, 1), has_safe=True)


def test_a_collateral_group_split_that_breaks_aave_rules_moves_together() -> None:
    # LTV +50 bps fits the steward; LT +180 bps does not. Alone, LTV 80.50% > LT 80.20% would revert.
    group = [change(P.LTV, Bps(8000), Bps(8050)), change(P.LIQUIDATION_THRESHOLD, Bps(8020), Bps(8200)),
             change(P.LIQUIDATION_BONUS, Bps(500), Bps(500))]
    routes = route_changes(group, steward(), now=NOW, has_safe=True)
    assert [(r.parameter, r.kind, r.rule) for r in routes] == [
        (P.LTV, K.GOVERNANCE, "kept_with_collateral_group"),
        (P.LIQUIDATION_THRESHOLD, K.GOVERNANCE, "above_steward_limit"),
    ]
    assert "LTV above LT" in routes[0].reason and "liquidation threshold" in routes[0].reason
    # A split that stays valid moves too: the DAO's configureReserveAsCollateral, holding LTV at its
    # current value, would set the steward's LTV change back.
    ok = [change(P.LTV, Bps(8000), Bps(7950)), change(P.LIQUIDATION_THRESHOLD, Bps(8250), Bps(8500)),
          change(P.LIQUIDATION_BONUS, Bps(500), Bps(500))]
    moved = route_changes(ok, steward(), now=NOW, has_safe=True)
    assert [(r.kind, r.rule) for r in moved] == [(K.GOVERNANCE, "kept_with_collateral_group"), (K.GOVERNANCE, "above_steward_limit")]
    assert "set this change back" in moved[0].reason
    assert collateral_problem(8000, 8000, 2501) == "LT × (1 + bonus) above 100%"
    assert collateral_problem(8000, 8000, 2500) is None  # exactly 100% is allowed
    assert collateral_problem(8001, 8000, 0) == "LTV above LT"


@settings(max_examples=200, deadline=None)
@given(
    current=st.integers(1, 10_000), delta=st.integers(-300, 300), cap_now=st.integers(0, 10**9),
    cap_new=st.integers(0, 10**9), rel_bps=st.integers(0, 20_000),
)
def test_property_nothing_above_the_limit_ever_reaches_the_steward(
    current: int, delta: int, cap_now: int, cap_new: int, rel_bps: int
) -> None:
    limits = StewardLimits(supply_cap=StewardParamLimit(max_change=Ratio.parse({"bps": rel_bps})))
    r = Routing(steward=STEWARD, limits=limits)
    new = max(0, current + delta)
    ltv_route = route_changes([change(P.LTV, Bps(current), Bps(new))], r, now=NOW, has_safe=True)
    for route in ltv_route:
        if route.kind is K.RISK_STEWARD:
            assert 0 < new and abs(new - current) <= 50
    cap_route = route_changes([change(P.SUPPLY_CAP, tokens(cap_now), tokens(cap_new))], r, now=NOW, has_safe=True)
    for route in cap_route:
        if route.kind is K.RISK_STEWARD:
            assert cap_new > 0 and abs(cap_new - cap_now) <= rel_bps * cap_now // 10_000
        assert route.reason


def test_steward_move_problem_mirrors_the_contract_for_rates() -> None:
    slope2 = StewardLimits().variable_rate_slope2
    assert steward_move_problem("variable_rate_slope2", 6000, 8000, slope2) is None  # 20 pp allowed
    assert "moves 20.01 pp" in str(steward_move_problem("variable_rate_slope2", 6000, 8001, slope2))
    assert steward_move_problem("base_variable_borrow_rate", 50, 0, StewardLimits().base_variable_borrow_rate) is None
    assert "NoSameUpdates" in str(steward_move_problem("ltv", 10, 10, StewardLimits().ltv))
    with pytest.raises(RiskInputError):
        steward_move_problem("ltv", -1, 10, StewardLimits().ltv)


def test_routes_json_is_deterministic_and_names_every_route() -> None:
    r = steward()
    changes = [change(P.LTV, Bps(8000), Bps(8050)), change(P.SUPPLY_CAP, tokens(1000), tokens(0)),
               change(P.BORROW_CAP, tokens(1000), tokens(1500), market="WBTC")]
    routes = route_changes(changes, r, now=NOW, has_safe=True)
    doc = routes_json(routes, r)
    assert doc["counts"] == {"governance": 1, "risk_steward": 2, "safe": 0}
    assert doc["steward"] == STEWARD
    assert doc["markets"]["WETH"]["supply_cap"]["rule"] == "steward_cannot_set_zero"
    assert doc["markets"]["WBTC"]["borrow_cap"]["proposed"] == {"symbol": "WETH", "tokens": 1500}
    assert jsonio.dumps(doc) == jsonio.dumps(routes_json(route_changes(changes, r, now=NOW, has_safe=True), r))
    rows = routes_table(routes)
    assert [row["route"] for row in rows] == ["RiskSteward", "DAO proposal", "RiskSteward"]
    assert rows[0]["change"] == "80.00% → 80.50%" and not rows[0]["reason"].startswith("WETH")
    assert [s.parameter for s in steward_changes(routes)] == [P.LTV, P.BORROW_CAP]


def test_routing_section_in_a_policy_file() -> None:
    text = DEMO_POLICY.read_text()
    section = (
        "routing:\n"
        f"  steward: \"{STEWARD.lower()}\"\n"
        "  safe_is_risk_admin: true\n"
        "  limits:\n"
        "    supply_cap: {max_change: \"30%\", min_delay: \"3d\"}\n"
        "  last_updates:\n"
        "    WETH: {ltv: \"2024-02-27T00:00:00Z\"}\n"
    )
    policy, problems = check_policy_text((text + section).encode(), "p.yaml")
    assert problems == [] and policy is not None and policy.routing is not None
    assert policy.routing.steward == STEWARD and policy.routing.limits.supply_cap.max_change_bps == 3000
    assert policy.routing.limits.ltv.max_change_bps == 50  # DOMAIN.md default
    bad = text + "routing:\n  limits:\n    ltv: {max_change: \"0.125%\"}\n"
    policy, problems = check_policy_text(bad.encode(), "p.yaml")
    assert policy is None and any("whole number of basis points" in str(p) for p in problems)
    assert any("routing.limits.ltv.max_change" in str(p) for p in problems)
    typo = text + "routing:\n  stewart: \"0x00000000000000000000000000000000000000a1\"\n"
    assert check_policy_text(typo.encode(), "p.yaml")[0] is None


def test_changes_for_one_route_hold_the_other_parameters_at_their_current_value() -> None:
    changes = [change(P.LTV, Bps(8000), Bps(8050)), change(P.LIQUIDATION_THRESHOLD, Bps(8300), Bps(8350)),
               change(P.LIQUIDATION_BONUS, Bps(500), Bps(500)), change(P.SUPPLY_CAP, tokens(1000), tokens(2500))]
    routes = route_changes(changes, steward(safe_is_risk_admin=True), now=NOW, has_safe=True)
    assert [r.kind for r in routes] == [K.RISK_STEWARD, K.RISK_STEWARD, K.SAFE]
    for_safe = changes_for_route(changes, routes, K.SAFE)
    assert [(c.parameter, c.proposed) for c in for_safe if c.changed] == [(P.SUPPLY_CAP, tokens(2500))]
    assert for_safe[0].proposed == Bps(8000) and for_safe[0].target == Bps(8050)  # the target is still reported
    assert [c.parameter for c in changes_for_route(changes, routes, K.RISK_STEWARD) if c.changed] == [P.LTV, P.LIQUIDATION_THRESHOLD]
    assert not any(c.changed for c in changes_for_route(changes, routes, K.GOVERNANCE))
