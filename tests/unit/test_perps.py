"""risk.perps: margin formulas against Monte Carlo and dYdX's published tiers, the recommendation on a
synthetic market whose volatility is known, and refusal of bad input."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from risk.backtest import Side, Tail, TailKind
from risk.errors import RiskInputError, UnitError
from risk.perps import PerpLiquidity, margin_path, recommend_perp_margin
from risk.perps_liquidation import liquidation_fee, slippage_at_size
from risk.perps_margin import funding_cost, initial_margin, maintenance_margin
from risk.perps_oi import oi_caps_from_liquidity, oi_scaled_imf
from risk.units import Ratio, Usd

C99 = Ratio.parse("99%")


def test_maintenance_margin_covers_the_target_share_of_log_normal_moves() -> None:
    sigma, h = 0.01, 24
    long = float(maintenance_margin(sigma, h, C99, side=Side.LONG))
    short = float(maintenance_margin(sigma, h, C99, side=Side.SHORT))
    # Monte Carlo: the share of horizon moves that beat each side's margin is 1%.
    x = np.random.default_rng(11).normal(0.0, sigma * math.sqrt(h), 2_000_000)
    move = np.expm1(x)
    assert np.mean(-move > long) == pytest.approx(0.01, abs=3e-4)
    assert np.mean(move > short) == pytest.approx(0.01, abs=3e-4)
    assert short > long  # a log-normal rise at a quantile is larger than the fall
    assert float(maintenance_margin(sigma, h, C99)) == short


def test_maintenance_margin_is_vectorised_and_grows_with_vol_coverage_and_tails() -> None:
    sig = np.array([0.005, 0.01, 0.02])
    mm = maintenance_margin(sig, 24, C99)
    assert mm.shape == (3,) and np.all(np.diff(mm) > 0)
    assert np.all(maintenance_margin(sig, 24, Ratio.parse("99.5%")) > mm)
    assert np.all(maintenance_margin(sig, 24, C99, tail=Tail(TailKind.STUDENT_T, df=4.0)) > mm)


def test_initial_margin_reproduces_dydx_tiers() -> None:
    # dYdX: MMF = IMF x maintenance fraction; buffer = 1 / fraction - 1.
    for mmf, fraction, imf in ((0.03, 0.6, 0.05), (0.05, 0.5, 0.10), (0.10, 0.5, 0.20)):
        assert initial_margin(mmf, Ratio.from_float(1 / fraction - 1)) == pytest.approx(imf, abs=1e-11)
    assert initial_margin(0.6, Ratio.parse("100%")) == 1.0  # never above 100% of notional


def test_oi_scaled_imf_follows_the_dydx_mid_cap_ramp() -> None:
    oi = np.array([0.0, 40e6, 70e6, 100e6, 150e6])
    got = oi_scaled_imf(0.05, oi, 40e6, 100e6)
    assert got == pytest.approx([0.05, 0.05, 0.05 + 0.95 * 0.5, 1.0, 1.0])


def test_slippage_fee_and_oi_caps_are_consistent() -> None:
    depth, impact = Usd.parse("$40M"), Ratio.parse("2%")
    assert slippage_at_size(Usd.parse("$5M"), depth, impact) == pytest.approx(0.0025)
    caps = oi_caps_from_liquidity(depth, impact, Ratio.parse("1%"))
    assert (caps.lower_usd, caps.upper_usd) == pytest.approx((20e6, 50e6))
    # Liquidating the whole lower-cap OI costs exactly the allowed slippage.
    assert slippage_at_size(Usd(Decimal(round(caps.lower_usd))), depth, impact) == pytest.approx(0.01)
    assert liquidation_fee(0.005, 0.03, Ratio.parse("0.5%")) == pytest.approx(0.01)
    with pytest.raises(RiskInputError, match="uses all of the margin"):
        liquidation_fee(0.03, 0.03)


def test_funding_cost_matches_a_plain_loop() -> None:
    rates = np.random.default_rng(5).normal(1e-4, 3e-4, 500)
    k = 3
    sums = [sum(rates[i : i + k]) for i in range(len(rates) - k + 1)]
    long, short = funding_cost(rates, k, C99)
    assert long == pytest.approx(float(np.quantile(sums, 0.99)))
    assert short == pytest.approx(max(float(np.quantile([-s for s in sums], 0.99)), 0.0))
    assert funding_cost(np.full(10, 1e-4), 3, C99)[1] == 0.0  # shorts never pay when funding is positive


def gbm(sigma: float, steps: int, seed: int) -> np.ndarray:
    return 2000.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, sigma, steps)))


def test_recommendation_on_a_known_volatility_market() -> None:
    closes = gbm(0.01, 24 * 1500, seed=2)
    liq = PerpLiquidity(Usd.parse("$40M"), Ratio.parse("2%"), Usd.parse("$5M"), Ratio.parse("0.25%"))
    rates = np.full(200, 1e-4)
    rec = recommend_perp_margin(
        closes, step_seconds=3600, horizon_steps=24, coverage=C99, initial_buffer=Ratio.parse("50%"),
        liquidity=liq, funding_rates=rates, symbol="SYN",
    )
    assert rec.sigma_per_step == pytest.approx(0.01, rel=0.2)
    assert rec.funding_long == pytest.approx(3e-4) and rec.funding_short == 0.0
    assert rec.liquidation_fee == pytest.approx(0.0025 + 0.0025)
    assert rec.mmf == pytest.approx(max(rec.move_long + 3e-4, rec.move_short) + 0.005)
    assert rec.imf == pytest.approx(1.5 * rec.mmf)
    assert rec.oi_caps is not None and rec.oi_caps.lower_usd == pytest.approx(40e6 * 0.005 / 0.02)
    for bt in (rec.backtest_long, rec.backtest_short):
        assert bt.n == (closes.size - 1 - 720 - 24 + 23) // 24  # one non-overlapping period a day
        # Gaussian returns under a normal model: the count sits in the acceptance region.
        assert bt.kupiec.accept, (bt.side, bt.exceedances, bt.kupiec.test.p_value)


def test_a_liquidation_larger_than_the_book_can_absorb_is_refused() -> None:
    closes = gbm(0.01, 24 * 60, seed=3)
    huge = PerpLiquidity(Usd.parse("$1M"), Ratio.parse("2%"), Usd.parse("$100M"))  # 200% slippage
    with pytest.raises(RiskInputError, match="uses all of the margin"):
        recommend_perp_margin(closes, step_seconds=3600, horizon_steps=24, coverage=C99,
                              initial_buffer=Ratio.parse("50%"), liquidity=huge)
    free = PerpLiquidity(Usd.parse("$1M"), Ratio.parse("2%"), Usd.parse("$0"))
    rec = recommend_perp_margin(closes, step_seconds=3600, horizon_steps=24, coverage=C99,
                                initial_buffer=Ratio.parse("50%"), liquidity=free)
    assert rec.liquidation_fee == 0.0 and rec.oi_caps is None  # nothing to size the caps from


def test_margin_path_has_no_look_ahead() -> None:
    calm = gbm(0.01, 24 * 100, seed=4)
    brk = 24 * 60
    wild = calm.copy()
    wild[brk:] *= np.exp(np.random.default_rng(9).normal(0, 0.05, calm.size - brk)).cumprod()
    a, b = margin_path(calm, 24, C99), margin_path(wild, 24, C99)
    # Decisions are indexed from the second close: decision t sees closes up to t + 1.
    before = a.at + 1 < brk
    assert np.array_equal(a.move_short[before], b.move_short[before])
    assert np.array_equal(a.move_long[before], b.move_long[before])
    later = a.at + 1 >= brk + 24
    assert b.move_short[later].min() > a.move_short[later].max()
    assert b.realised == pytest.approx(wild[b.at + 25] / wild[b.at + 1] - 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: maintenance_margin(-0.01, 24, C99),
        lambda: maintenance_margin(float("nan"), 24, C99),
        lambda: maintenance_margin(np.array([]), 24, C99),
        lambda: maintenance_margin(0.01, 0, C99),
        lambda: maintenance_margin(0.01, 24, C99, tail=Tail(TailKind.FILTERED_HISTORICAL)),
        lambda: initial_margin(0.0, Ratio.parse("50%")),
        lambda: initial_margin(0.03, Ratio.parse("-10%")),
        lambda: oi_scaled_imf(0.05, 1e6, 100e6, 40e6),
        lambda: oi_scaled_imf(1.5, 1e6, 40e6, 100e6),
        lambda: oi_scaled_imf(0.05, -1.0, 40e6, 100e6),
        lambda: oi_caps_from_liquidity(Usd.parse("$0"), Ratio.parse("2%"), Ratio.parse("1%")),
        lambda: oi_caps_from_liquidity(Usd.parse("$1M"), Ratio.parse("2%"), Ratio.parse("1%"), upper_multiple=1.0),
        lambda: funding_cost(np.array([1e-4]), 1, C99),
        lambda: funding_cost(np.array([1e-4, np.nan]), 1, C99),
        lambda: margin_path(np.array([]), 24, C99),
        lambda: margin_path(np.array([100.0]), 24, C99),
        lambda: margin_path(np.array([100.0, -1.0, 100.0]), 1, C99),
        lambda: margin_path(gbm(0.01, 760, 1), 24, C99),  # too short for the burn-in
        lambda: margin_path(gbm(0.01, 5000, 1), 0, C99),
    ],
)
def test_bad_input_is_refused(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RiskInputError) as err:
        call()
    assert err.value.hint


def test_policy_values_must_carry_units() -> None:
    with pytest.raises(UnitError):
        maintenance_margin(0.01, 24, 0.99)  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        initial_margin(0.03, 0.5)  # type: ignore[arg-type]
    with pytest.raises(UnitError):
        oi_caps_from_liquidity(40e6, Ratio.parse("2%"), Ratio.parse("1%"))  # type: ignore[arg-type]
