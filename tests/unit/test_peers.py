"""Peers' methods: Morpho's LIF, Risk DAO's max drop and collateral factor, Gauntlet's Morpho LLTV."""

from __future__ import annotations

import numpy as np
import pytest

from risk.errors import RiskInputError
from risk.lending_params import DepthCurve
from risk.optimize import absorbable_usd
from risk.peers import (
    gauntlet_bad_debt,
    gauntlet_lltv,
    max_drawdowns,
    monthly_drawdown_quantile,
    morpho_lif,
    riskdao_collateral_factor,
    riskdao_max_drops,
    tail_paths,
)


@pytest.mark.parametrize(
    ("lltv", "lif"),
    # min(1.15, 1 / (0.3 LLTV + 0.7)) (DOMAIN.md): the cap binds below LLTV = 0.4347...; at 1 there is no incentive
    [(0.0, 1.15), (0.385, 1.15), (0.5, 1.15), (0.86, 1 / 0.958), (0.965, 1 / 0.9895), (0.98, 1 / 0.994), (1.0, 1.0)],
)
def test_morpho_lif_is_the_capped_formula(lltv: float, lif: float) -> None:
    assert morpho_lif(lltv) == pytest.approx(lif, rel=1e-12)


def test_morpho_lif_refuses_an_lltv_outside_zero_one() -> None:
    with pytest.raises(RiskInputError):
        morpho_lif(1.2)


def test_drawdowns_and_tail_paths() -> None:
    paths = np.array([[1.0, 1.2, 0.9, 1.0], [1.0, 0.95, 0.97, 0.96], [1.0, 0.5, 0.6, 0.7]])
    assert np.allclose(max_drawdowns(paths), [0.25, 0.05, 0.5])
    assert list(tail_paths(paths, 0.5)) == [2, 0]  # ⌈50% × 3⌉ = 2 worst
    assert list(tail_paths(paths, 0.99)) == [2]


def test_riskdao_max_drop_is_the_fall_while_a_liquidation_waits_to_be_sold() -> None:
    path = np.array([[1.0, 0.9, 0.8, 0.8]])
    trigger, capacity = np.array([0.95]), 1.0
    # one position triggers at step 1 (price 0.9); liquidity sells 1 unit a step
    assert riskdao_max_drops(path, trigger, np.array([1.0]), capacity)[0] == 0.0  # sold in its own step
    assert riskdao_max_drops(path, trigger, np.array([2.0]), capacity)[0] == pytest.approx(1 - 0.8 / 0.9)  # waits one step
    # two positions: the second opens at 0.8; the oldest waiting volume (opened at 0.9) sets the drop
    two = riskdao_max_drops(path, np.array([0.95, 0.85]), np.array([1.5, 1.0]), capacity)
    assert two[0] == pytest.approx(1 - 0.8 / 0.9)


def test_riskdao_collateral_factor_is_one_minus_mean_drop_minus_incentive() -> None:
    rng = np.random.default_rng(4)
    paths = np.exp(np.concatenate([np.zeros((200, 1)), np.cumsum(rng.normal(-0.01, 0.03, (200, 48)), axis=1)], axis=1))
    trigger = rng.uniform(0.6, 0.95, 500)
    volume = rng.lognormal(13, 1, 500)
    depth = DepthCurve(20e6, 0.02)
    out = riskdao_collateral_factor(paths, trigger, volume, depth, 0.05, 0.95)
    rows = tail_paths(paths, 0.95)
    md = riskdao_max_drops(paths[rows], trigger, volume, absorbable_usd(depth, 0.05))
    assert out.paths == rows.size == 10
    assert out.mean_max_drop == pytest.approx(md.mean()) and out.mean_max_drop > 0
    assert out.collateral_factor == pytest.approx(1 - md.mean() - 0.05)
    # thinner liquidity: liquidations wait longer, the drop is larger, the factor lower
    thin = riskdao_collateral_factor(paths, trigger, volume, DepthCurve(2e6, 0.02), 0.05, 0.95)
    assert thin.collateral_factor < out.collateral_factor


def test_monthly_drawdown_on_a_known_series() -> None:
    step = 3600
    month = 30 * 24
    # flat, then a 20% linear fall over 10 days, then flat: every window holding the whole fall reads 20%
    p = np.concatenate([np.full(month, 100.0), np.linspace(100.0, 80.0, 241), np.full(month, 80.0)])
    q, windows = monthly_drawdown_quantile(p, step, 0.99)
    assert windows == p.size - month and q == pytest.approx(0.2)
    short, one = monthly_drawdown_quantile(np.array([100.0, 90.0, 95.0]), step, 0.99)
    assert one == 1 and short == pytest.approx(0.1)


def test_gauntlet_small_position_is_repaid_in_one_chunk() -> None:
    depth = DepthCurve(600e6, 0.02)
    chunk = absorbable_usd(depth, 0.005)
    bad = gauntlet_bad_debt(np.array([0.5, 0.9, 0.99]), chunk / 2, 0.3, depth)
    assert np.all(bad == 0.0)


def test_gauntlet_lltv_falls_with_position_size_and_drawdown() -> None:
    depth = DepthCurve(50e6, 0.02)
    small, big = gauntlet_lltv(50e6, 0.3, 1, depth), gauntlet_lltv(2e9, 0.3, 1, depth)
    assert big.lltv < small.lltv
    assert gauntlet_lltv(2e9, 0.05, 1, depth).lltv >= gauntlet_lltv(2e9, 0.6, 1, depth).lltv
    # the answer is the largest LLTV of the grid with zero bad debt, and the next one up has bad debt
    grid = np.round(np.arange(1, 100) / 100, 2)
    bad = gauntlet_bad_debt(grid, 2e9, 0.3, depth)
    ok = grid[bad <= 1e-9 * 2e9]
    assert big.lltv == ok.max() and bad[np.searchsorted(grid, big.lltv) + 1] > 0
    assert big.lif == pytest.approx(morpho_lif(big.lltv)) and big.chunk_usd == pytest.approx(absorbable_usd(depth, 0.005))


def test_gauntlet_refuses_bad_inputs() -> None:
    with pytest.raises(RiskInputError):
        gauntlet_lltv(0.0, 0.3, 1, DepthCurve(1e6, 0.02))
    with pytest.raises(RiskInputError):
        gauntlet_lltv(1e6, 1.0, 1, DepthCurve(1e6, 0.02))
