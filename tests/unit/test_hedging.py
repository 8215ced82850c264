"""risk.hedging and risk.hedging_backtest: the loss bound, the cost model against a simulated band, the
choice rule, the band simulation against a plain-Python reference, and the backtest on a synthetic market."""

from __future__ import annotations

import numpy as np
import pytest

from risk.errors import RiskInputError, UnitError
from risk.hedging import (
    HedgeCosts,
    candidate_grid,
    choose_hedge,
    expected_cost_per_year,
    hedged_loss,
    option_scenarios,
    perp_scenarios,
)
from risk.hedging_backtest import PerpVault, recommend_hedge, simulate_band, vault_path
from risk.options import OptionBook, black76_price, greeks
from risk.options_backtest import OptionTemplate
from risk.units import Ratio, Usd

R = Ratio.parse


def test_costs_are_fee_plus_linear_slippage() -> None:
    costs = HedgeCosts.of(R("0.05%"), Usd.parse("$10M"), R("1%"))
    # $1M traded: fee $500 plus slippage 1% x 1M / 10M = 0.1% → $1,000.
    assert costs.of_trades(np.array([1e6, -1e6]))[0] == pytest.approx(1_500.0)
    assert costs.of_trades(np.array([-1e6]))[0] == pytest.approx(1_500.0)  # the sign of the trade does not matter
    assert HedgeCosts.of(R("0.05%")).of_trades(np.array([1e6]))[0] == pytest.approx(500.0)
    with pytest.raises(RiskInputError, match="both depth and impact"):
        HedgeCosts(0.001, 1e6, None)
    with pytest.raises(UnitError, match="not a Ratio"):
        HedgeCosts.of(0.001)  # type: ignore[arg-type]


def test_perp_vault_loss_shrinks_with_the_ratio_and_grows_with_the_band() -> None:
    moves = np.array([-0.10, 0.0, 0.12])  # two-sided coverage moves over the horizon
    sc = perp_scenarios(20e6, moves)  # vault short a $20M net long
    loss = hedged_loss(sc, np.array([0.0, 0.5, 1.0, 1.0]), np.array([0.2, 1e-12, 1e-12, 0.05]))
    assert loss[0] == pytest.approx(20e6 * 0.12)  # unhedged: the rise hurts a short vault
    assert loss[1] == pytest.approx(10e6 * 0.12)  # half hedged: half the loss
    assert loss[2] == pytest.approx(0.0, abs=1e-3)  # fully hedged at a zero band: nothing left
    # A 5% band lets the hedge sit 5% of notional off target on either side: worst at the larger move.
    assert loss[3] == pytest.approx(0.05 * 20e6 * 0.12)


def test_option_scenarios_revalue_the_book_in_full() -> None:
    book = OptionBook(forward=2000.0, strike=np.array([2000.0, 2200.0]), expiry=np.array([30, 14]) / 365,
                      vol=0.8, is_call=np.array([True, True]), quantity=np.array([-10.0, 5.0]), rate=0.0)
    spot, vols, look = (-0.1, 0.0, 0.12), (0.3, 0.0, -0.2), 1 / 365
    sc = option_scenarios(book, spot, vols, look)
    assert sc.book_loss.shape == (3, 3)
    base = float(black76_price(book) @ book.quantity)
    for i, m in enumerate(spot):
        for j, v in enumerate(vols):
            shocked = OptionBook(forward=2000.0 * (1 + m), strike=book.strike, expiry=book.expiry - look, vol=0.8 * (1 + v),
                                 is_call=book.is_call, quantity=book.quantity, rate=0.0)
            assert sc.book_loss[i, j] == pytest.approx(base - float(black76_price(shocked) @ book.quantity), rel=1e-12)
    g = greeks(book)
    assert float(sc.delta_usd) == pytest.approx(float(book.quantity @ (g.delta * book.forward)))
    assert float(sc.notional_usd) == pytest.approx(15 * 2000.0)
    assert float(sc.rehedge_usd) == pytest.approx(abs(float(book.quantity @ (g.gamma * 2000.0**2))))


def test_a_delta_hedge_removes_the_first_order_loss_of_an_option_book() -> None:
    book = OptionBook(forward=2000.0, strike=2000.0, expiry=30 / 365, vol=0.6, is_call=True, quantity=-100.0, rate=0.0)
    sc = option_scenarios(book, (-0.02, 0.0, 0.02), (0.0,), 0.0)
    unhedged, hedged = hedged_loss(sc, np.array([0.0, 1.0]), np.array([1.0, 1e-12]))
    # A written call loses ~delta x move; hedged, only the gamma term (1/2 gamma S^2 m^2) is left.
    gamma_usd = float(book.quantity[0] * greeks(book).gamma[0] * 2000.0**2)
    assert hedged == pytest.approx(-0.5 * gamma_usd * 0.02**2, rel=0.05)
    assert unhedged > 10 * hedged


def test_expected_rebalances_match_a_simulated_band() -> None:
    # The cost model's rebalance rate, (h s / a)^2 per step, against a random walk leaving a band.
    s, a, steps = 1.0, 20.0, 400_000
    rng = np.random.default_rng(7)
    walk = rng.normal(0.0, s, steps)
    dev, exits = 0.0, 0
    for x in walk.tolist():  # the reference: a plain loop
        dev += x
        if abs(dev) > a:
            exits += 1
            dev = 0.0
    measured = exits / steps
    sc = perp_scenarios(100.0, np.array([-0.1, 0.0, 0.1]))  # rehedge = notional = 100 USD per unit move
    costs = HedgeCosts(fee=0.5)  # cost = half the traded USD: trades x band / 2
    cost = expected_cost_per_year(sc, np.array([1.0]), np.array([a / 100.0]), sigma_per_step=s / 100.0, steps_per_year=steps, costs=costs)
    modelled = float(cost[0]) / (0.5 * a) / steps
    # Discrete steps overshoot the band, so the walk takes a little longer to leave it than (a/s)^2.
    assert modelled == pytest.approx(measured, rel=0.12)
    assert modelled > measured


def test_candidate_grid_lists_a_zero_ratio_once() -> None:
    h, b = candidate_grid((R("100%"), R("0%"), R("50%")), (R("10%"), R("2%")))
    assert list(zip(h.tolist(), b.tolist())) == [(0.0, 0.1), (0.5, 0.02), (0.5, 0.1), (1.0, 0.02), (1.0, 0.1)]


def test_choose_hedge_takes_the_cheapest_that_meets_the_target_within_budget() -> None:
    h = np.array([0.0, 0.5, 1.0, 1.0])
    b = np.array([0.1, 0.05, 0.05, 0.1])
    loss = np.array([0.20, 0.10, 0.01, 0.02])
    cost = np.array([0.0, 0.004, 0.02, 0.008])
    c = choose_hedge(h, b, loss, cost, unhedged_loss=0.2, max_loss=R("3%"), cost_budget=R("1%"))
    assert (c.hedge_ratio, c.band, c.meets_loss_target, c.within_budget) == (1.0, 0.1, True, True)
    assert c.reason.startswith("cheapest candidate")
    # A tighter loss target no candidate within budget meets: the smallest loss within budget.
    c = choose_hedge(h, b, loss, cost, unhedged_loss=0.2, max_loss=R("0.5%"), cost_budget=R("1%"))
    assert (c.hedge_ratio, c.band, c.meets_loss_target) == (1.0, 0.1, False)
    assert c.reason.startswith("no candidate meets")
    # Nothing within budget at all (no zero ratio offered): the cheapest, flagged.
    c = choose_hedge(h[1:], b[1:], loss[1:], cost[1:], unhedged_loss=0.2, max_loss=R("3%"), cost_budget=R("0.1%"))
    assert (c.hedge_ratio, c.within_budget) == (0.5, False)
    assert c.reason.startswith("no candidate is within")


def _reference_band(prices: list[float], delta: list[float], notional: list[float], h: float, b: float, fee: float) -> tuple[float, float, int]:
    hedge, pnl, cost, trades = 0.0, 0.0, 0.0, 0
    for k in range(len(delta)):
        target = -h * delta[k]
        if abs(hedge - target) * prices[k] > b * notional[k]:
            cost += abs(target - hedge) * prices[k] * fee
            hedge, trades = target, trades + 1
        pnl += hedge * (prices[k + 1] - prices[k])
    return pnl, cost, trades


def test_band_simulation_equals_a_plain_python_reference() -> None:
    rng = np.random.default_rng(3)
    p = 2000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 2001)))
    path = vault_path(PerpVault(1e6), p, np.full(p.size, 0.5), np.arange(0, 2000, 24)[:-1], 24, 8760)
    h = np.array([0.0, 0.5, 1.0, 1.0])
    b = np.array([0.1, 0.02, 0.05, 0.2])
    pnl, cost, trades = simulate_band(path, h, b, HedgeCosts(0.0005))
    for g in range(h.size):
        ref = _reference_band(path.price.tolist(), path.delta_units.tolist(), path.notional.tolist(), float(h[g]), float(b[g]), 0.0005)
        assert pnl[:, g].sum() == pytest.approx(ref[0], rel=1e-12, abs=1e-9)
        assert cost[:, g].sum() == pytest.approx(ref[1], rel=1e-12, abs=1e-12)
        assert int(trades[g]) == ref[2]
    assert trades[0] == 0 and trades[1] > trades[2] > trades[3] > 0  # tighter bands trade more


def test_perp_vault_path_loses_the_skew_times_the_return() -> None:
    p = np.array([100.0, 110.0, 99.0, 99.0, 120.0])
    path = vault_path(PerpVault(1e6), p, np.full(5, 0.5), np.array([0, 2]), 2, 8760)
    assert path.pnl.tolist() == pytest.approx([-1e5, 1e5, 0.0, -1e6 * (120 / 99 - 1)])
    assert path.delta_units.tolist() == pytest.approx([-1e4, -1e6 / 110, -1e6 / 99, -1e6 / 99])


def test_option_vault_path_sums_to_the_book_revaluation() -> None:
    rng = np.random.default_rng(5)
    p = 2000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 100)))
    vol = np.full(p.size, 0.7)
    template = OptionTemplate("vault", (1.0, 1.1), (30 / 365, 14 / 365), (True, False), (-10.0, 4.0))
    at = np.array([10, 34])
    path = vault_path(template, p, vol, at, 24, 8760)
    for w, t0 in enumerate(at):
        book = template.book(float(p[t0]), 0.7)
        aged = OptionBook(forward=float(p[t0 + 24]), strike=book.strike, expiry=book.expiry - 24 / 8760, vol=0.7,
                          is_call=book.is_call, quantity=book.quantity, rate=0.0)
        expected = float((black76_price(aged) - black76_price(book)) @ book.quantity)
        assert path.pnl[w * 24 : (w + 1) * 24].sum() == pytest.approx(expected, rel=1e-9)
        assert path.delta_units[w * 24] == pytest.approx(float(greeks(book).delta @ book.quantity))


def test_recommend_hedge_on_a_synthetic_market_is_reproducible_and_helps() -> None:
    rng = np.random.default_rng(11)
    closes = 3000.0 * np.exp(np.cumsum(rng.standard_t(5, 6000) * 0.006))
    h, b = candidate_grid((R("0%"), R("50%"), R("100%")), (R("5%"), R("20%")))
    kw = {"vault": PerpVault(10e6), "step_seconds": 3600, "horizon_steps": 24, "coverage": R("99%"), "ratios": h, "bands": b,
          "max_loss": R("3%"), "cost_budget": R("2%"), "costs": HedgeCosts.of(R("0.04%"), Usd.parse("$20M"), R("1%")), "burn_in_steps": 720}
    first, second = recommend_hedge(closes, **kw), recommend_hedge(closes, **kw)
    assert first.choice == second.choice and first.backtest.candidates == second.backtest.candidates
    bt = first.backtest
    assert bt.windows == len(range(720, 5999 - 24, 24))
    unhedged = next(c for c in bt.candidates if c.hedge_ratio == 0)
    full = next(c for c in bt.candidates if (c.hedge_ratio, c.band) == (1.0, 0.05))
    assert unhedged.loss_at_coverage == pytest.approx(bt.unhedged_loss_at_coverage)
    assert full.loss_at_coverage < 0.2 * unhedged.loss_at_coverage  # a hedged perp vault keeps only the band's drift
    assert full.cost_per_year > 0 and unhedged.cost_per_year == 0
    assert first.choice.meets_loss_target and first.choice.hedge_ratio > 0
    assert bt.loss_avoided == pytest.approx(bt.unhedged_loss_at_coverage - bt.chosen.loss_at_coverage)


def test_recommend_hedge_refuses_options_that_expire_within_the_horizon() -> None:
    closes = np.linspace(100, 200, 3000)
    template = OptionTemplate("short", (1.0,), (12 / 8760,), (True,), (-1.0,))
    h, b = candidate_grid((R("100%"),), (R("5%"),))
    with pytest.raises(RiskInputError, match="expires within"):
        recommend_hedge(closes, vault=template, step_seconds=3600, horizon_steps=24, coverage=R("99%"), ratios=h, bands=b,
                        max_loss=R("5%"), cost_budget=R("1%"), costs=HedgeCosts(0.0))
