"""The lending optimiser: incentive and caps formulas, the admissible range, and the search itself.

The search is tested twice: against a synthetic feasibility map (a stand-in for the simulator, so
islands and exact boundaries are known) and on the real simulator with a book and jumpy paths, where
the answer must be feasible, the next basis point not, and nothing simulated above it feasible.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from risk.errors import RiskInputError
from risk.lending_params import DepthCurve, LiquidationStyle
from risk.optimize import (
    BookModel,
    Evaluator,
    MarketProblem,
    Point,
    RiskLimits,
    absorbable_usd,
    incentive_bonus,
    liquidity_caps,
    objective_value,
    optimise,
)

LIMITS = RiskLimits(var95_share=0.005, evar99_share=0.02, insolvency_probability=0.01)
DEPTH = DepthCurve(usd=50e6, move=0.02)


def _paths(seed: int, n: int = 400, steps: int = 24, sigma: float = 0.01, jump: float = 0.02) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = sigma * rng.standard_t(4, (n, steps)) / math.sqrt(2)
    r += (rng.random((n, steps)) < jump) * rng.normal(-0.12, 0.05, (n, steps))
    return np.exp(np.concatenate([np.zeros((n, 1)), np.cumsum(r, axis=1)], axis=1))


def _problem(**kw: object) -> MarketProblem:
    base: dict[str, object] = {
        "name": "ETH", "price_usd": 2000.0, "protocol_fee": 0.1, "gas_usd": 10.0, "depth": DEPTH,
        "book": BookModel(300, 100e6, 1.3, 0.25, 1.0, 3, 0.2, (7, 2, 0)), "paths": _paths(1), "limits": LIMITS,
        "bonus_bps": 500, "ltv_buffer_bps": 250, "lt_bounds": (0, 9300), "ltv_bounds": (0, 9000),
    }
    base.update(kw)
    return MarketProblem(**base)  # type: ignore[arg-type]


# --- formulas -----------------------------------------------------------------------------------------


def test_bonus_covers_slippage_gas_and_margin_for_the_keepers_share() -> None:
    inc = incentive_bonus(DEPTH, 10e6, 50.0, 0.015, 0.1, (100, 1500))
    slip = float(DEPTH.average_slippage(10e6))
    needed = (slip + 50.0 / 10e6 + 0.015) / 0.9
    assert inc.slippage == pytest.approx(slip) and inc.needed == pytest.approx(needed)
    assert inc.bonus_bps == math.ceil(needed * 10_000) and inc.met
    assert inc.bonus_bps * (1 - 0.1) / 10_000 >= slip + 50.0 / 10e6 + 0.015  # the keeper's share covers it
    assert inc.reason.startswith("incentive:")


def test_bonus_bounds_bind_and_say_so() -> None:
    low = incentive_bonus(DEPTH, 1e6, 0.0, 0.001, 0.0, (400, 1500))
    assert low.bonus_bps == 400 and low.reason.startswith("bound: min 4.00%") and low.met
    high = incentive_bonus(DepthCurve(5e6, 0.05), 50e6, 0.0, 0.015, 0.1, (100, 800))
    assert high.bonus_bps == 800 and not high.met and "below what keepers need" in high.reason


@pytest.mark.parametrize(("size", "fee"), [(0.0, 0.1), (math.nan, 0.1), (1e6, 1.0), (1e6, -0.1)])
def test_bonus_refuses_bad_inputs(size: float, fee: float) -> None:
    with pytest.raises(RiskInputError):
        incentive_bonus(DEPTH, size, 0.0, 0.01, fee, (100, 1500))


@pytest.mark.parametrize("exponent", [1.0, 0.5])
def test_absorbable_usd_inverts_the_depth_curve(exponent: float) -> None:
    depth = DepthCurve(usd=40e6, move=0.02, exponent=exponent)
    for move in (0.005, 0.02, 0.05, 0.3):
        assert float(depth.price_factor(absorbable_usd(depth, move))) == pytest.approx(1 - move, rel=1e-12)
    assert absorbable_usd(DepthCurve(), 0.05) == math.inf
    with pytest.raises(RiskInputError):
        absorbable_usd(depth, 0.0)


def test_caps_are_twice_the_absorbable_volume_and_the_borrow_share() -> None:
    supply, borrow, usd = liquidity_caps(DEPTH, 0.05, 2000.0, 0.8)
    assert usd == pytest.approx(absorbable_usd(DEPTH, 0.05))
    assert supply == pytest.approx(2 * usd / 2000.0) and borrow == pytest.approx(0.8 * supply)


def test_objectives() -> None:
    assert objective_value("max_borrowing_power", 0.8) == 0.8
    assert objective_value("max_leverage", 0.8) == pytest.approx(5.0)


def test_top_is_the_tightest_static_limit_and_aave_rule_is_strict() -> None:
    # 9523 x 10500 = 99,991,500 < 10^8; 9524 x 10500 = 100,002,000 is refused
    assert _problem(lt_bounds=(0, 10_000), ltv_bounds=(0, 10_000)).top() == (9523, "aave: LT x (1 + bonus 5.00%) < 100%")
    top, why = _problem(lt_bounds=(0, 8800), ltv_bounds=(0, 9000)).top()
    assert (top, why) == (8800, "bound: LT max 88.00%")
    top, why = _problem(lt_bounds=(0, 9300), ltv_bounds=(0, 8500)).top()
    assert top == 8750 and why.startswith("bound: LTV max 85.00%")
    assert _problem(lt_bounds=(5000, 9300), ltv_bounds=(6000, 9000)).bottom() == 6250


def test_no_admissible_threshold_is_an_error() -> None:
    with pytest.raises(RiskInputError, match="no admissible liquidation threshold"):
        optimise(_problem(lt_bounds=(9000, 9300), ltv_bounds=(0, 8000)), step_bps=100)


@pytest.mark.parametrize(("bonus", "fee"), [(0, 0.1), (10_000, 0.1), (500, 1.0)])
def test_problem_refuses_a_bonus_or_fee_out_of_range(bonus: int, fee: float) -> None:
    with pytest.raises(RiskInputError):
        _problem(bonus_bps=bonus, protocol_fee=fee)


# --- the search, on a synthetic feasibility map ----------------------------------------------------------


def _fake(monkeypatch: pytest.MonkeyPatch, feasible: object) -> list[int]:
    """Replace the simulator: `feasible(lt)` decides; returns the thresholds asked for, in order."""
    asked: list[int] = []

    def point(self: Evaluator, lt_bps: int, ltv_bps: int | None = None, bonus_bps: int | None = None) -> Point:
        asked.append(lt_bps)
        ok = feasible(lt_bps)  # type: ignore[operator]
        p = self.problem
        return Point(lt_bps, lt_bps - p.ltv_buffer_bps, p.bonus_bps, 0.0, 0.0, 0.0 if ok else 0.02,
                     () if ok else (LIMITS.texts()[2][1],))

    monkeypatch.setattr(Evaluator, "point", point)
    return asked


def test_search_finds_the_highest_feasible_island_to_the_basis_point(monkeypatch: pytest.MonkeyPatch) -> None:
    # feasible below 80.00% and on an island 84.00%..84.37%: non-monotone, the island wins
    asked = _fake(monkeypatch, lambda lt: lt <= 8000 or 8400 <= lt <= 8437)
    best = optimise(_problem(lt_bounds=(0, 9000), ltv_bounds=(0, 9000)), step_bps=100)
    assert best.feasible and best.target.lt_bps == 8437
    assert best.looser is not None and best.looser.lt_bps == 8438 and not best.looser.feasible
    assert best.binding == LIMITS.texts()[2][1]
    grid = [p.lt_bps for p in best.grid]
    assert grid == [9000, 8900, 8800, 8700, 8600, 8500, 8400, 8300, 8200, 8100, 8000]  # stops 4 below the island
    assert all(8400 < lt < 8500 for lt in {a for a in asked} - set(grid) - {8438})  # refinement stays in the bracket


def test_search_stops_at_the_top_when_it_is_feasible(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, lambda lt: True)
    best = optimise(_problem(lt_bounds=(0, 8800), ltv_bounds=(0, 9000)), step_bps=100, below_feasible=2)
    assert best.target.lt_bps == 8800 and best.binding == "bound: LT max 88.00%" and best.looser is None
    assert [p.lt_bps for p in best.grid] == [8800, 8700, 8600]


def test_search_reports_infeasibility_at_the_lowest_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, lambda lt: False)
    best = optimise(_problem(lt_bounds=(7050, 8800), ltv_bounds=(0, 9000)), step_bps=100)
    assert not best.feasible and best.target.lt_bps == 7050 and best.binding.startswith("infeasible")
    assert [p.lt_bps for p in best.grid][-2:] == [7100, 7050]  # the lowest admissible threshold is always tried


# --- the search, on the simulator ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated():
    problem = _problem(book=BookModel(300, 400e6, 1.2, 0.2, 1.0, 3, 0.3, (7, 2, 0)), depth=DepthCurve(20e6, 0.02))
    return problem, optimise(problem, step_bps=200)


def test_simulated_optimum_is_feasible_and_the_next_basis_point_is_not(simulated) -> None:
    problem, best = simulated
    assert best.feasible and best.target.feasible
    looser = Evaluator(problem).point(best.target.lt_bps + 1)
    assert not looser.feasible and best.binding == looser.violated[0]
    evaluated = (*best.grid, *best.refined)
    assert all(not p.feasible for p in evaluated if p.lt_bps > best.target.lt_bps)
    assert best.top_bps > best.target.lt_bps >= best.bottom_bps  # a risk limit binds, inside the bounds
    assert best.target.ltv_bps == best.target.lt_bps - problem.ltv_buffer_bps
    assert best.target.lt_bps * (10_000 + problem.bonus_bps) < 10**8


def test_simulations_use_common_random_numbers(simulated) -> None:
    problem, best = simulated
    again = Evaluator(problem).loss(best.target.lt_bps, best.target.ltv_bps, best.target.bonus_bps)
    first = best.evaluator.loss(best.target.lt_bps, best.target.ltv_bps, best.target.bonus_bps)
    assert np.array_equal(first.bad_debt_usd, again.bad_debt_usd)
    a, b = problem.book.build("ETH", 2000.0, 0.8, 0.775), problem.book.build("ETH", 2000.0, 0.8, 0.775)
    assert np.array_equal(a.collateral, b.collateral) and np.array_equal(a.debt_usd, b.debt_usd)
    # the debt sizes are the same draws at every threshold; only the collateral backing them moves
    c = problem.book.build("ETH", 2000.0, 0.7, 0.675)
    assert np.array_equal(a.debt_usd, c.debt_usd) and not np.array_equal(a.collateral, c.collateral)
    assert best.evaluator.simulations == len(best.evaluator._cache)


def test_the_problems_liquidation_style_reaches_the_simulated_market(monkeypatch: pytest.MonkeyPatch) -> None:
    """Comet venues simulate whole positions: same book and paths, all of a liquidatable debt repaid at once."""
    import risk.optimize

    seen: list[LiquidationStyle] = []
    real = risk.optimize.simulate_market
    monkeypatch.setattr(risk.optimize, "simulate_market", lambda book, market, paths, **kw: (seen.append(market.style), real(book, market, paths, **kw))[1])
    aave = Evaluator(_problem()).loss(8300, 8050, 500)
    whole = Evaluator(_problem(style=LiquidationStyle.WHOLE_POSITION)).loss(8300, 8050, 500)
    assert seen == [LiquidationStyle.AAVE, LiquidationStyle.WHOLE_POSITION]
    assert _problem().style is LiquidationStyle.AAVE  # the default: every venue but Compound v3
    assert not np.array_equal(aave.repaid_usd, whole.repaid_usd)  # whole positions repay more per liquidation
    assert float(whole.repaid_usd.sum()) > float(aave.repaid_usd.sum())


# --- the change-limit stage with the optimiser's targets (risk.limits, generalised) ---------------------


@pytest.fixture(scope="module")
def demo():
    from pathlib import Path

    from risk.policy_load import load_policy
    from risk.snapshot import parse_snapshot_json

    folder = Path(__file__).resolve().parents[2] / "risk" / "demo"
    return load_policy(folder / "policy.yaml").policy, parse_snapshot_json((folder / "snapshot.json").read_bytes(), "snapshot.json")


def _targets(**kw: object):
    from risk.rule import RuleTargets

    base: dict[str, object] = {
        "ltv": 0.85, "liquidation_threshold": 0.875, "liquidation_bonus": 0.04, "supply_cap_tokens": 1_330_000.0,
        "borrow_cap_tokens": 1_060_000.0, "adverse_move_horizon": math.nan, "adverse_move_ltv_buffer": math.nan, "slippage": 0.002,
        "reasons": (("liquidation_threshold", ("insolvency probability <= 1.00%",)), ("ltv", ("buffer: LTV = LT - 2.50%",))),
    }
    base.update(kw)
    return RuleTargets(**base)  # type: ignore[arg-type]


def test_the_optimisers_reason_heads_the_binding_list(demo) -> None:
    from risk.limits import changes_for_market
    from risk.policy import LendingParameter as P

    policy, snapshot = demo
    changes = {c.parameter: c for c in changes_for_market(policy, policy.market("WETH"), snapshot.market("WETH"), _targets())}
    lt = changes[P.LIQUIDATION_THRESHOLD]
    assert lt.binding == ("insolvency probability <= 1.00%", "change limit: ±0.50 pp per update, every 3d")
    assert (lt.current.value, lt.proposed.value, lt.target.value, lt.updates_to_target) == (8300, 8350, 8750, 9)
    assert changes[P.LTV].binding[0] == "buffer: LTV = LT - 2.50%"
    assert changes[P.SUPPLY_CAP].binding == ("rule",)  # no reason given and nothing else binds it


def test_a_target_only_a_dao_vote_reaches_is_flagged(demo) -> None:
    from risk.limits import changes_for_market
    from risk.policy import LendingParameter as P

    policy, snapshot = demo
    assert policy.lending_core.optimiser.max_steward_updates == 20
    wbtc = {c.parameter: c for c in changes_for_market(policy, policy.market("WBTC"), snapshot.market("WBTC"), _targets())}
    ltv = wbtc[P.LTV]  # 73.00% → 85.00% is 24 updates of 0.5 pp
    assert ltv.updates_to_target == 24 and ltv.target_needs_governance and not ltv.needs_governance
    assert ltv.governance_reason == "24 steward updates exceed the policy's max_steward_updates (20)"
    assert abs(ltv.proposed.value - ltv.current.value) == 50  # this update stays within the steward's limit
    lt = wbtc[P.LIQUIDATION_THRESHOLD]  # 19 updates: within
    assert lt.updates_to_target == 19 and not lt.target_needs_governance and lt.governance_reason == ""
    zero = {c.parameter: c for c in changes_for_market(policy, policy.market("WBTC"), snapshot.market("WBTC"), _targets(supply_cap_tokens=0.4))}
    assert zero[P.SUPPLY_CAP].target.to_whole_tokens() == 1  # 0 would mean "no cap": floored at one token
    assert not zero[P.SUPPLY_CAP].target_needs_governance
