"""risk.lending: the vectorised engine equals the scalar reference; liquidations checked by hand; errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_lending import FIELDS, gbm_jump_paths, reference_ledger
from scipy import integrate

from risk.book import Book
from risk.errors import RiskInputError
from risk.lending import (
    DepthCurve,
    LendingMarket,
    LossDistribution,
    check_paths,
    run_ledger,
    simulate_market,
    simulate_venue,
)
from risk.lending_cohorts import CohortArena
from risk.lending_engine import run_market
from risk.lending_params import LiquidationStyle
from risk.units import Ratio, Usd

ETH = LendingMarket("ETH", price_usd=100.0, ltv=0.75, liquidation_threshold=0.8, liquidation_bonus=0.05, protocol_fee=0.1)
COMET_ETH = dataclasses.replace(ETH, style=LiquidationStyle.WHOLE_POSITION)


def one_position(collateral: float = 1.0, debt: float = 79.0, market: str = "ETH") -> Book:
    return Book((market,), np.zeros(1, dtype=np.int64), np.array([collateral]), np.array([debt]), np.zeros(1, dtype=np.int64))


def ledger(book: Book, market: LendingMarket, path: list[float], cascade: bool = False):
    return run_ledger(book, market, np.array([path]), cascade=cascade)


# -- the engine against the reference ---------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, LendingMarket, np.ndarray]:
    """Small random markets; amounts and paths come from a seeded Generator so no two values tie."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 30))
    lt = draw(st.floats(0.3, 0.95))
    bonus = draw(st.floats(0.02, 1.0)) * min(0.15, 1 / lt - 1)
    depth = draw(st.one_of(
        st.just(DepthCurve()),
        st.builds(DepthCurve, st.sampled_from([1e3, 1e4, 1e5, 1e6]), st.floats(0.005, 0.2), st.sampled_from([0.5, 1.0, 1.5])),
    ))
    market = LendingMarket(
        "X",
        price_usd=draw(st.sampled_from([1.0, 100.0, 30_000.0])),
        ltv=lt / 2,
        liquidation_threshold=lt,
        liquidation_bonus=bonus,
        protocol_fee=draw(st.floats(0.0, 0.5)),
        close_factor=draw(st.sampled_from([0.5, 0.5, 0.3, 0.8])),
        close_factor_full_hf=draw(st.sampled_from([0.95, 0.95, 0.9])),
        gas_usd=draw(st.sampled_from([0.0, 0.0, 1.0, 20.0, 200.0])),
        depth=depth,
        style=draw(st.sampled_from(list(LiquidationStyle))),
    )
    debt = np.exp(rng.normal(7.0, 2.0, n))
    hf = np.exp(rng.normal(0.15, draw(st.sampled_from([0.05, 0.2, 0.4])), n))
    collateral = debt * hf / (lt * market.price_usd)
    collateral[rng.random(n) < 0.05] = 0.0  # already insolvent positions
    paths = gbm_jump_paths(rng, draw(st.integers(1, 20)), draw(st.integers(1, 30)), sigma=draw(st.sampled_from([0.01, 0.03, 0.06])))
    return collateral, debt, market, paths


def assert_ledgers_equal(
    collateral: np.ndarray, debt: np.ndarray, market: LendingMarket, paths: np.ndarray, cascade: bool, segment_slots: int = 32
) -> None:
    """Engine vs reference on every ledger field; tiny `segment_slots` make paths outgrow their cohort segments."""
    got = run_market(collateral, debt, market, paths, cascade, segment_slots=segment_slots)
    want = reference_ledger(collateral, debt, market, paths, cascade)
    for name in FIELDS:
        scale = collateral.sum() if "tokens" in name else debt.sum()
        atol = 0.0 if name in ("liquidations", "final_price_usd") else 1e-9 * scale
        np.testing.assert_allclose(getattr(got, name), want[name], rtol=1e-9, atol=atol, err_msg=name)


SEGMENTS = st.sampled_from([1, 2, 32])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), SEGMENTS)
def test_engine_equals_reference_without_cascade(case: tuple, segment_slots: int) -> None:
    assert_ledgers_equal(*case, cascade=False, segment_slots=segment_slots)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), SEGMENTS)
def test_engine_equals_reference_with_cascade(case: tuple, segment_slots: int) -> None:
    assert_ledgers_equal(*case, cascade=True, segment_slots=segment_slots)


@pytest.mark.parametrize("style", list(LiquidationStyle))
def test_engine_equals_reference_on_a_larger_book_with_whales_gas_and_cascade(style: LiquidationStyle) -> None:
    rng = np.random.default_rng(11)
    book = Book.generate(rng, 300, 5e7, market="X", price_usd=2000.0, liquidation_threshold=0.83, ltv=0.8,
                         whales=3, whale_share=0.3)
    market = LendingMarket("X", 2000.0, 0.8, 0.83, 0.05, 0.1, gas_usd=30.0, depth=DepthCurve(5e6, 0.02), style=style)
    paths = gbm_jump_paths(rng, 40, 48, sigma=0.02)
    got = run_ledger(book, market, paths, cascade=True)
    # the case exercises the rules (whole positions: one call per position at most, a few hundred on 40 paths)
    assert got.liquidations.sum() > (1000 if style is LiquidationStyle.AAVE else 300) and got.written_off_usd.max() > 0
    assert_ledgers_equal(np.array(book.collateral), np.array(book.debt_usd), market, paths, cascade=True, segment_slots=2)


def test_cohort_arena_keeps_every_paths_live_cohorts_through_relocation_and_packing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random appends and emptied cohorts against a plain model; half the paths shed cohorts, half keep them."""
    packs = []
    original = CohortArena._collect
    monkeypatch.setattr(CohortArena, "_collect", lambda self: (packs.append(1), original(self)))
    rng = np.random.default_rng(0)
    n_paths = 4
    shed = np.where(np.arange(n_paths) % 2 == 0, 0.5, 0.0)
    arena = CohortArena(n_paths=n_paths, per_path=1)
    model: dict[int, set[int]] = {p: set() for p in range(n_paths)}
    next_id = 0
    for _ in range(150):
        path = rng.integers(0, n_paths, int(rng.integers(1, 6)))
        ids = np.arange(next_id, next_id + path.size)
        next_id += path.size
        arena.append(path, lo=ids, kind=np.ones(path.size, dtype=np.int8))
        for p, i in zip(path.tolist(), ids.tolist(), strict=True):
            model[p].add(i)
        idx, owner = arena.segments(np.arange(n_paths))
        kill = (arena.kind[idx] != 0) & (rng.random(idx.size) < shed[owner])  # cohorts emptied by liquidations
        for i, p in zip(arena.lo[idx[kill]].tolist(), owner[kill].tolist(), strict=True):
            model[p].discard(i)
        arena.kind[idx[kill]] = 0
        idx, owner = arena.segments(np.arange(n_paths))
        for p in range(n_paths):
            mine = idx[(owner == p) & (arena.kind[idx] != 0)]
            assert set(arena.lo[mine].tolist()) == model[p]
    assert packs, "the arena was never packed: the test does not reach CohortArena._collect"


# -- single positions, checked by hand (LT 80%, bonus 5%, fee 10%, price $100, 1 ETH against $79) --


def test_hf_between_095_and_1_repays_the_close_factor_and_restores_health() -> None:
    led = ledger(one_position(), ETH, [1.0, 0.98])  # HF = 98·0.8/79 = 0.9924
    seized = 39.5 * 1.05 / 98
    assert led.repaid_usd[0] == pytest.approx(39.5)
    assert led.seized_tokens[0] == pytest.approx(seized)
    assert led.protocol_fee_usd[0] == pytest.approx(0.1 * 39.5 * 0.05)
    assert led.open_debt_usd[0] == pytest.approx(39.5)
    assert led.open_collateral_tokens[0] == pytest.approx(1 - seized)
    assert (1 - seized) * 98 * 0.8 / 39.5 > 1  # the position is healthy again
    assert led.liquidations[0] == 1 and led.bad_debt_usd[0] == 0


def test_hf_at_or_below_095_repays_everything_and_returns_the_rest() -> None:
    led = ledger(one_position(), ETH, [1.0, 0.9])  # HF = 0.911
    assert led.repaid_usd[0] == pytest.approx(79.0)
    assert led.seized_usd[0] == pytest.approx(79 * 1.05)
    assert led.returned_tokens[0] == pytest.approx(1 - 79 * 1.05 / 90)
    assert led.open_debt_usd[0] == 0 and led.bad_debt_usd[0] == 0


def test_collateral_short_of_the_bonus_leaves_a_deficit_but_no_bad_debt() -> None:
    led = ledger(one_position(), ETH, [1.0, 0.8])  # $80 of collateral: covers the debt, not debt × 1.05
    assert led.seized_tokens[0] == pytest.approx(1.0)
    assert led.repaid_usd[0] == pytest.approx(80 / 1.05)
    assert led.written_off_usd[0] == pytest.approx(79 - 80 / 1.05)
    assert led.bad_debt_usd[0] == 0
    assert led.deficit_usd[0] == pytest.approx(79 - 80 / 1.05)


def test_underwater_liquidation_books_the_collateral_shortfall_as_bad_debt() -> None:
    led = ledger(one_position(), ETH, [1.0, 0.7])  # $70 of collateral against $79
    assert led.bad_debt_usd[0] == pytest.approx(9.0)
    assert led.deficit_usd[0] == pytest.approx(79 - 70 / 1.05)


def test_a_position_below_hf_1_at_the_start_is_liquidated_at_step_0() -> None:
    led = ledger(one_position(debt=85.0), ETH, [1.0])  # HF 0.941 on a path of no step
    assert led.repaid_usd[0] == pytest.approx(85.0) and led.liquidations[0] == 1


def test_a_liquidation_whose_gas_exceeds_the_bonus_is_not_executed() -> None:
    market = dataclasses.replace(ETH, gas_usd=5.0)  # full call earns 79·0.05·0.9 = 3.555 < 5
    led = ledger(one_position(), market, [1.0, 0.9, 0.7])
    assert led.liquidations[0] == 0
    assert led.shortfall_usd[0] == pytest.approx(79 - 70)  # still open and underwater at the end


def test_when_slippage_makes_the_full_call_unprofitable_the_keeper_repays_the_close_factor() -> None:
    market = dataclasses.replace(ETH, depth=DepthCurve(usd=14.0, move=0.02))
    assert not market.is_profitable(79.0) and market.is_profitable(39.5)
    led = ledger(one_position(), market, [1.0, 0.9])
    assert led.repaid_usd[0] == pytest.approx(39.5) and led.open_debt_usd[0] == pytest.approx(39.5)


def test_whole_position_market_repays_everything_as_soon_as_hf_is_below_1() -> None:
    led = ledger(one_position(), COMET_ETH, [1.0, 0.98])  # HF 0.9924: Aave would repay half (test above)
    assert led.repaid_usd[0] == pytest.approx(79.0) and led.liquidations[0] == 1
    assert led.seized_tokens[0] == pytest.approx(79 * 1.05 / 98)
    assert led.returned_tokens[0] == pytest.approx(1 - 79 * 1.05 / 98)
    assert led.open_debt_usd[0] == 0 and led.open_collateral_tokens[0] == 0 and led.bad_debt_usd[0] == 0


def test_whole_position_market_leaves_a_healthy_position_alone() -> None:
    led = ledger(one_position(debt=78.0), COMET_ETH, [1.0, 0.98])  # HF 1.005
    assert led.liquidations[0] == 0 and led.open_debt_usd[0] == 78.0


def test_whole_position_market_has_no_partial_fallback_when_the_full_call_does_not_pay() -> None:
    market = dataclasses.replace(COMET_ETH, depth=DepthCurve(usd=14.0, move=0.02))
    assert not market.is_profitable(79.0) and market.is_profitable(39.5)  # Aave's keeper would repay half
    led = ledger(one_position(), market, [1.0, 0.9, 0.7])
    assert led.liquidations[0] == 0 and led.repaid_usd[0] == 0
    assert led.bad_debt_usd[0] == pytest.approx(79 - 70)  # open and underwater at the end


def test_whole_position_market_books_collateral_shortfall_like_aave() -> None:
    led = ledger(one_position(), COMET_ETH, [1.0, 0.7])  # $70 of collateral against $79
    assert led.bad_debt_usd[0] == pytest.approx(9.0)
    assert led.deficit_usd[0] == pytest.approx(79 - 70 / 1.05)


def test_a_position_too_large_for_the_depth_is_never_liquidated() -> None:
    market = dataclasses.replace(ETH, depth=DepthCurve(usd=1.0, move=0.02))
    led = ledger(one_position(), market, [1.0, 0.9, 0.7])
    assert led.liquidations[0] == 0 and led.bad_debt_usd[0] == pytest.approx(9.0)


def test_keepers_sales_lower_the_price_of_later_steps_only_with_cascade() -> None:
    market = dataclasses.replace(ETH, depth=DepthCurve(usd=1000.0, move=0.02))
    sold = 79 * 1.05 - 0.1 * 79 * 0.05
    with_cascade = ledger(one_position(), market, [1.0, 0.9, 0.9], cascade=True)
    without = ledger(one_position(), market, [1.0, 0.9, 0.9], cascade=False)
    assert with_cascade.sold_usd[0] == pytest.approx(sold)
    assert with_cascade.final_price_usd[0] == pytest.approx(90 * 0.98 ** (sold / 1000))
    assert without.final_price_usd[0] == pytest.approx(90.0)


def test_healthy_book_is_untouched() -> None:
    led = ledger(one_position(debt=50.0), ETH, [1.0, 0.9, 0.8])
    assert led.liquidations[0] == 0 and led.open_debt_usd[0] == 50.0 and led.bad_debt_usd[0] == 0


# -- documented behaviours that are not monotone in the parameters ------------------------------


def test_cascade_can_make_a_lower_threshold_raise_bad_debt() -> None:
    """Lower LT liquidates earlier and fully; the larger sale deepens the next step's price."""
    debt = np.array([93_000.0, 71_000.0])
    book = Book(("ETH",), np.zeros(2, dtype=np.int64), debt * np.array([1.08, 1.12]) / (0.8 * 100.0), debt, np.arange(2))
    market = LendingMarket("ETH", 100.0, 0.7, 0.8, 0.05, 0.0, depth=DepthCurve(1e5, 0.1))
    safer = dataclasses.replace(market, liquidation_threshold=0.75)
    path = np.array([[1.0, 0.85, 0.7395]])
    bad = {m.liquidation_threshold: run_ledger(book, m, path, cascade=True).bad_debt_usd[0] for m in (market, safer)}
    assert bad[0.75] > bad[0.8] + 1000
    calm = {m.liquidation_threshold: run_ledger(book, m, path, cascade=False).bad_debt_usd[0] for m in (market, safer)}
    assert calm[0.75] <= calm[0.8]


def test_aave_deficit_can_grow_with_a_lower_threshold_when_lt_times_bonus_is_near_one() -> None:
    """At LT·(1+b) ≈ 1 a gap to HF <= 0.95 makes the full call short of the bonus; the partial one is not."""
    market = LendingMarket("ETH", 100.0, 0.8, 0.89, 0.12, 0.0)
    safer = dataclasses.replace(market, liquidation_threshold=0.84)
    book = one_position(collateral=1.1 / (0.89 * 100.0), debt=1.0)  # HF 1.1 at LT 0.89
    risky_led, safer_led = (ledger(book, m, [1.0, 0.87]) for m in (market, safer))
    assert risky_led.deficit_usd[0] == 0 and risky_led.repaid_usd[0] == pytest.approx(0.5)
    assert safer_led.deficit_usd[0] == pytest.approx(1 - 1.1 * 0.87 / 0.89 / 1.12)
    assert safer_led.bad_debt_usd[0] == 0 == risky_led.bad_debt_usd[0]


def test_when_a_partial_call_cannot_restore_health_a_safer_position_can_lose_more() -> None:
    """eMode-like LT 95%, bonus 1%: a call at HF 0.955 leaves HF 0.9505, and the next gap finds it thinner."""
    market = LendingMarket("ETH", 100.0, 0.9, 0.95, 0.01, 0.0)
    assert not market.partial_liquidation_restores_health
    assert ETH.partial_liquidation_restores_health
    path = [1.0, 0.955 / 1.05, 0.955 / 1.05 * 0.8]
    riskier, safer = (ledger(one_position(1000 * hf / 95, 1000.0), market, path) for hf in (1.04, 1.05))
    assert riskier.liquidations[0] == 1 and safer.liquidations[0] == 2
    assert riskier.bad_debt_usd[0] == pytest.approx(1000 * (1 - 1.04 * 0.955 / 1.05 / 0.95))
    assert safer.bad_debt_usd[0] == pytest.approx(500 * (1 - (2 * 0.955 - 0.9595) * 0.8 / 0.95))
    assert safer.bad_debt_usd[0] > 20 * riskier.bad_debt_usd[0]
    # whole positions (Comet) have no partial call to leave a position thinner: the safer one loses nothing
    whole = dataclasses.replace(market, style=LiquidationStyle.WHOLE_POSITION)
    assert whole.partial_liquidation_restores_health
    riskier, safer = (ledger(one_position(1000 * hf / 95, 1000.0), whole, path) for hf in (1.04, 1.05))
    assert riskier.liquidations[0] == 1 == safer.liquidations[0]
    assert riskier.bad_debt_usd[0] == pytest.approx(1000 * (1 - 1.04 * 0.955 / 1.05 / 0.95))
    assert safer.bad_debt_usd[0] == 0 and safer.deficit_usd[0] > 0  # collateral covers the debt, not the 1% penalty


# -- depth curve and keeper -----------------------------------------------------------------------


def test_depth_curve_moves_the_price_by_move_at_its_calibration_point() -> None:
    depth = DepthCurve(usd=2e7, move=0.02, exponent=0.5)
    assert depth.price_factor(2e7) == pytest.approx(0.98)
    assert depth.price_factor(0.0) == 1.0
    assert depth.price_factor(8e7) == pytest.approx(0.98**2)  # square root: 4× the size, 2× the log-move


@pytest.mark.parametrize("exponent", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("sold", [1e3, 3e6, 5e7])
def test_average_slippage_is_the_mean_discount_along_the_curve(exponent: float, sold: float) -> None:
    depth = DepthCurve(usd=1e7, move=0.03, exponent=exponent)
    mean_factor, _ = integrate.quad(lambda v: float(depth.price_factor(v)), 0.0, sold, epsabs=0, epsrel=1e-12)
    assert depth.average_slippage(sold) == pytest.approx(1 - mean_factor / sold, rel=1e-7, abs=1e-13)  # 1 − (≈1) leaves ~1e-16 of rounding


def test_infinite_depth_has_no_impact_and_keeper_break_even_is_gas_over_its_bonus() -> None:
    assert DepthCurve().price_factor(1e12) == 1.0 and DepthCurve().average_slippage(1e12) == 0.0
    market = dataclasses.replace(ETH, gas_usd=9.0)
    break_even = 9.0 / (0.05 * 0.9)
    assert market.is_profitable(break_even * 1.000001) and not market.is_profitable(break_even * 0.999999)


def test_market_from_units_matches_the_float_constructor() -> None:
    built = LendingMarket.from_units(
        "ETH", price=Usd.parse("$100"), ltv=Ratio.parse("75%"), liquidation_threshold=Ratio.parse("8000bps"),
        liquidation_bonus=Ratio.parse("5%"), protocol_fee=Ratio.parse("10%"),
        depth=DepthCurve.from_units(Usd.parse("$20M"), Ratio.parse("2%")),
    )
    assert built == dataclasses.replace(ETH, depth=DepthCurve(2e7, 0.02))
    whole = LendingMarket.from_units("ETH", price=Usd.parse("$100"), ltv=Ratio.parse("75%"), liquidation_threshold=Ratio.parse("80%"),
                                     liquidation_bonus=Ratio.parse("5%"), protocol_fee=Ratio.parse("10%"),
                                     style=LiquidationStyle.WHOLE_POSITION)
    assert whole == COMET_ETH and whole.full_call_hf == 1.0 and not whole.partial_calls
    assert ETH.full_call_hf == 0.95 and ETH.partial_calls


# -- loss distribution figures ----------------------------------------------------------------------


def test_loss_distribution_figures() -> None:
    bad = np.arange(100, dtype=float)  # 0..99
    dist = LossDistribution("X", 1000.0, bad, bad * 2, bad * 3, np.zeros(100), np.ones(100))
    assert dist.var95 == pytest.approx(np.quantile(bad, 0.95)) == pytest.approx(94.05)
    assert dist.evar99 == pytest.approx(98.01)
    assert dist.expected_shortfall == pytest.approx(np.mean([95, 96, 97, 98, 99]))
    assert dist.insolvency_probability == pytest.approx(0.99)
    assert dist.liquidations_at_risk == pytest.approx(np.quantile(bad * 3, 0.95))
    assert dist.var95_share == Ratio.from_float(0.09405)
    assert dist.insolvency_probability_ratio == Ratio.parse("99%")


def test_venue_figures_come_from_per_path_sums_not_from_summing_quantiles() -> None:
    a = np.array([0.0] * 19 + [100.0])
    b = a[::-1].copy()
    parts = [LossDistribution(n, 1e3, x, x, np.zeros(20), np.zeros(20), np.zeros(20)) for n, x in (("A", a), ("B", b))]
    venue = LossDistribution.aggregate("venue", parts)
    np.testing.assert_array_equal(venue.bad_debt_usd, a + b)
    assert venue.evar99 == pytest.approx(np.quantile(a + b, 0.99))
    assert venue.evar99 < parts[0].evar99 + parts[1].evar99


def test_simulate_venue_sums_markets_per_path() -> None:
    rng = np.random.default_rng(3)
    books = [Book.generate(rng, 200, 1e7, market=name, price_usd=p, liquidation_threshold=0.8) for name, p in (("ETH", 2e3), ("BTC", 3e4))]
    book = Book.concat(books)
    markets = [LendingMarket(name, p, 0.7, 0.8, 0.05, 0.1, depth=DepthCurve(3e6, 0.02)) for name, p in (("ETH", 2e3), ("BTC", 3e4))]
    paths = {"ETH": gbm_jump_paths(rng, 50, 24), "BTC": gbm_jump_paths(rng, 50, 24)}
    losses = simulate_venue(book, markets, paths, venue="demo")
    eth, btc = losses.market("ETH"), losses.market("BTC")
    np.testing.assert_allclose(losses.venue.bad_debt_usd, eth.bad_debt_usd + btc.bad_debt_usd)
    np.testing.assert_allclose(losses.venue.liquidated_usd, eth.liquidated_usd + btc.liquidated_usd)
    assert losses.venue.total_debt_usd == pytest.approx(2e7)
    assert eth.liquidated_usd.max() > 0
    single = simulate_market(book, markets[0], paths["ETH"])
    np.testing.assert_array_equal(single.bad_debt_usd, eth.bad_debt_usd)


# -- bad inputs get a clear error -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"liquidation_threshold": 1.2, "ltv": 0.5}, "outside (0, 1]"),
        ({"liquidation_threshold": 0.0, "ltv": 0.0}, "outside (0, 1]"),
        ({"liquidation_bonus": 0.0}, "must be positive"),
        ({"liquidation_bonus": -0.05}, "must be positive"),
        ({"liquidation_bonus": 0.3}, "exceeds 1"),
        ({"ltv": 0.85}, "ltv"),
        ({"price_usd": math.nan}, "price_usd is nan"),
        ({"protocol_fee": 1.5}, "protocol_fee"),
        ({"close_factor": 1.0}, "close_factor"),
        ({"style": "whole-position"}, "style must be a LiquidationStyle"),
        ({"gas_usd": -1.0}, "gas_usd"),
    ],
)
def test_bad_market_parameters_are_refused(change: dict, fragment: str) -> None:
    with pytest.raises(RiskInputError, match=None) as err:
        dataclasses.replace(ETH, **change)
    assert fragment in str(err.value) and "market 'ETH'" in str(err.value)


@pytest.mark.parametrize(
    "kwargs", [{"usd": 0.0}, {"usd": math.nan}, {"usd": 1e6, "move": 1.0}, {"usd": 1e6, "move": 0.0}, {"usd": 1e6, "exponent": 0.0}]
)
def test_bad_depth_curves_are_refused(kwargs: dict) -> None:
    with pytest.raises(RiskInputError, match="depth curve"):
        DepthCurve(**kwargs)


@pytest.mark.parametrize(
    ("paths", "fragment"),
    [
        (np.array([[1.0, np.nan, 0.9]]), "path 0, step 1 is nan"),
        (np.array([[1.0, 0.9], [1.0, np.inf]]), "path 1, step 1 is inf"),
        (np.array([[1.0, -0.5]]), "path 0, step 1 is -0.5"),
        (np.array([1.0, 0.9]), "shape"),
        (np.zeros((0, 3)), "shape"),
        ([[1.0, 0.9]], "numpy array"),
    ],
)
def test_bad_paths_are_refused_with_their_position(paths: object, fragment: str) -> None:
    with pytest.raises(RiskInputError) as err:
        simulate_market(one_position(), ETH, paths)  # type: ignore[arg-type]
    assert fragment in str(err.value)


def test_check_paths_returns_contiguous_floats() -> None:
    out = check_paths(np.asfortranarray(np.ones((3, 4), dtype=np.float32)))
    assert out.dtype == np.float64 and out.flags.c_contiguous


def test_simulating_a_market_the_book_does_not_hold_is_refused() -> None:
    with pytest.raises(RiskInputError, match="no market 'BTC'"):
        simulate_market(one_position(), dataclasses.replace(ETH, name="BTC"), np.ones((1, 2)))


def test_venue_inputs_must_cover_every_market_with_joint_paths() -> None:
    rng = np.random.default_rng(0)
    book = Book.concat([Book.generate(rng, 10, 1e6, market=m, price_usd=100.0, liquidation_threshold=0.8) for m in ("A", "B")])
    a, b = (dataclasses.replace(ETH, name=n) for n in ("A", "B"))
    with pytest.raises(RiskInputError, match="no market rules"):
        simulate_venue(book, [a], {"A": np.ones((2, 3))})
    with pytest.raises(RiskInputError, match="no paths"):
        simulate_venue(book, [a, b], {"A": np.ones((2, 3))})
    with pytest.raises(RiskInputError, match="path counts differ"):
        simulate_venue(book, [a, b], {"A": np.ones((2, 3)), "B": np.ones((3, 3))})


def test_loss_distribution_refuses_ragged_arrays() -> None:
    with pytest.raises(RiskInputError, match="per-path arrays"):
        LossDistribution("X", 1.0, np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3), np.zeros(3))
