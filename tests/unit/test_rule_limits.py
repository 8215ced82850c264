"""The foundation's rule and the change limits: documented formulas, safe-side rounding, named bindings."""

from __future__ import annotations

import math
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from scipy.stats import norm

from risk.errors import RiskInputError
from risk.limits import changes_for_market, round_cap_down
from risk.policy import LendingParameter as P
from risk.policy_load import load_policy
from risk.rule import RuleTargets, adverse_move, targets_for_market
from risk.snapshot import parse_snapshot_json
from risk.units import Bps, TokenAmount

DEMO = Path(__file__).resolve().parents[2] / "risk" / "demo"


@pytest.fixture(scope="module")
def policy():
    return load_policy(DEMO / "policy.yaml").policy


@pytest.fixture(scope="module")
def snapshot():
    return parse_snapshot_json((DEMO / "snapshot.json").read_bytes(), "snapshot.json")


def test_adverse_move_is_the_lognormal_quantile() -> None:
    z = norm.ppf(0.99)
    assert adverse_move(0.01, 72, 0.99) == pytest.approx(1 - math.exp(-z * 0.01 * math.sqrt(72)), rel=1e-12)
    assert adverse_move(0.0, 72, 0.99) == 0.0
    with pytest.raises(RiskInputError):
        adverse_move(float("nan"), 1, 0.99)


def test_targets_follow_the_documented_formulas(policy) -> None:
    weth = policy.market("WETH")
    t = targets_for_market(policy, weth, 0.006, 1800.0)
    d = adverse_move(0.006, 72, 0.99)
    slippage = 0.02 * 100e6 / 600e6
    bonus = slippage + 0.015
    assert t.slippage == pytest.approx(slippage)
    assert t.liquidation_bonus == pytest.approx(bonus)
    assert t.liquidation_threshold == pytest.approx((1 - d) / (1 + bonus))
    assert t.ltv == pytest.approx(t.liquidation_threshold * (1 - d))
    assert t.supply_cap_tokens == pytest.approx(2 * 600e6 * bonus / 0.02 / 1800.0)
    assert t.borrow_cap_tokens == pytest.approx(0.8 * t.supply_cap_tokens)


def test_higher_volatility_never_loosens_ltv_or_threshold(policy) -> None:
    weth = policy.market("WETH")
    calm, wild = targets_for_market(policy, weth, 0.003, 1800.0), targets_for_market(policy, weth, 0.012, 1800.0)
    assert wild.ltv < calm.ltv and wild.liquidation_threshold < calm.liquidation_threshold


def test_bad_price_is_refused(policy) -> None:
    with pytest.raises(RiskInputError, match="not positive"):
        targets_for_market(policy, policy.market("WETH"), 0.01, 0.0)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [(0.4, 0), (1.0, 1), (999.9, 999), (1234.0, 1230), (604_999.0, 604_000), (6_237_000_000.0, 6_230_000_000)],
)
def test_caps_round_down_to_three_significant_figures(tokens: float, expected: int) -> None:
    assert round_cap_down(tokens) == expected


def _targets(**kw: float | None) -> RuleTargets:
    base = {"ltv": 0.80, "liquidation_threshold": 0.83, "liquidation_bonus": 0.05, "supply_cap_tokens": 1_800_000.0,
                "borrow_cap_tokens": 1_400_000.0, "adverse_move_horizon": 0.1, "adverse_move_ltv_buffer": 0.1, "slippage": 0.01}
    base.update(kw)
    return RuleTargets(**base)  # type: ignore[arg-type]


def _by_param(changes):
    return {c.parameter: c for c in changes}


def test_no_move_when_targets_equal_current(policy, snapshot) -> None:
    weth = snapshot.market("WETH")
    state = replace(weth, ltv=Bps(8000), liquidation_threshold=Bps(8300), liquidation_bonus=Bps(500))
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state, _targets()))
    assert not any(x.changed for x in c.values())
    assert all(x.binding == ("rule",) and x.updates_to_target == 0 for x in c.values())


def test_change_limit_binds_and_counts_the_glide_path(policy, snapshot) -> None:
    state = snapshot.market("WETH")  # LTV 80.50%
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state, _targets(ltv=0.7712)))
    ltv = c[P.LTV]
    assert ltv.target == Bps(7712) and ltv.proposed == Bps(8000)
    assert ltv.updates_to_target == math.ceil((8050 - 7712) / 50)
    assert ltv.binding == ("change limit: ±0.50 pp per update, every 3d",)


def test_rounding_is_on_the_safe_side(policy, snapshot) -> None:
    state = replace(snapshot.market("WETH"), ltv=Bps(8000), liquidation_threshold=Bps(8300), liquidation_bonus=Bps(500))
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state,
                                     _targets(ltv=0.800099, liquidation_threshold=0.830099, liquidation_bonus=0.050001)))
    assert c[P.LTV].target == Bps(8000)  # down
    assert c[P.LIQUIDATION_THRESHOLD].target == Bps(8300)  # down
    assert c[P.LIQUIDATION_BONUS].target == Bps(501)  # up


def test_bounds_bind_before_the_change_limit(policy, snapshot) -> None:
    state = replace(snapshot.market("WETH"), liquidation_threshold=Bps(8780))
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state, _targets(liquidation_threshold=0.95)))
    lt = c[P.LIQUIDATION_THRESHOLD]
    assert lt.target == Bps(8800) and lt.proposed == Bps(8800)
    assert lt.binding == ("bound: max 88.00%",)


def test_aave_rule_lt_times_bonus_binds_the_bonus(policy, snapshot) -> None:
    state = replace(snapshot.market("WETH"), ltv=Bps(8500), liquidation_threshold=Bps(8800), liquidation_bonus=Bps(1350))
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state,
                                     _targets(ltv=0.85, liquidation_threshold=0.88, liquidation_bonus=0.14)))
    lb = c[P.LIQUIDATION_BONUS]
    assert 8800 * (10_000 + lb.proposed.value) <= 10_000 * 10_000
    assert lb.binding[-1] == "aave: LT x (1 + bonus) <= 100%"


def test_aave_rule_ltv_never_above_lt(policy, snapshot) -> None:
    state = replace(snapshot.market("WETH"), ltv=Bps(8000), liquidation_threshold=Bps(8030))
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state, _targets(ltv=0.85, liquidation_threshold=0.79)))
    assert c[P.LTV].proposed <= c[P.LIQUIDATION_THRESHOLD].proposed
    assert "aave: LTV <= LT" in c[P.LTV].binding


def test_caps_relative_limit_and_no_cap(policy, snapshot) -> None:
    state = snapshot.market("WETH")
    c = _by_param(changes_for_market(policy, policy.market("WETH"), state, _targets(supply_cap_tokens=9_000_000.0)))
    assert c[P.SUPPLY_CAP].proposed == TokenAmount.whole(3_600_000, 18, "WETH")  # +100% at most
    assert c[P.SUPPLY_CAP].updates_to_target == 3  # 1.8M → 3.6M → 7.2M → 9M
    uncapped = replace(state, supply_cap=TokenAmount.whole(0, 18, "WETH"))
    c = _by_param(changes_for_market(policy, policy.market("WETH"), uncapped, _targets(supply_cap_tokens=5_000.0)))
    assert c[P.SUPPLY_CAP].proposed == TokenAmount.whole(5_000, 18, "WETH")


def test_a_cap_is_never_proposed_as_zero(policy, snapshot) -> None:
    c = _by_param(changes_for_market(policy, policy.market("WETH"), snapshot.market("WETH"), _targets(supply_cap_tokens=0.2)))
    assert c[P.SUPPLY_CAP].proposed.to_whole_tokens() >= 1
    assert c[P.SUPPLY_CAP].binding[0].startswith("cap floor")


def test_missing_liquidity_keeps_current_values(policy, snapshot) -> None:
    market = policy.market("WETH").model_copy(update={"liquidity": None})
    t = targets_for_market(policy, market, 0.005, 1800.0)
    c = _by_param(changes_for_market(policy, market, snapshot.market("WETH"), t))
    assert not any(x.changed for x in c.values())
    assert c[P.SUPPLY_CAP].binding == ("no liquidity data in the policy: kept",)


def test_snapshot_price_text_round_trip(snapshot) -> None:
    assert snapshot.market("WETH").price_usd == Decimal("1816.85499606")
