"""risk.book: generated books follow their distributions; snapshots split by weighted collateral; bad input refused."""

from __future__ import annotations

import math

import numpy as np
import pytest

from risk.book import Book, HfLognormal, HfPoints, Position
from risk.errors import RiskInputError


def generate(seed: int = 0, **kwargs: object) -> Book:
    args: dict = {"market": "WETH", "price_usd": 2000.0, "liquidation_threshold": 0.83} | kwargs
    return Book.generate(np.random.default_rng(seed), args.pop("n", 2000), args.pop("total", 1e9), **args)


# -- generate ---------------------------------------------------------------------------------


def test_generated_book_has_the_requested_size_debt_and_health() -> None:
    book = generate(hf=HfLognormal(1.6, 0.35))
    assert len(book) == 2000 and book.markets == ("WETH",)
    assert book.total_debt_usd == pytest.approx(1e9)
    hf = book.health_factors(2000.0, 0.83)
    assert hf.min() >= 1.0
    # the median of a lognormal conditioned above 1 (median 1.6, sigma 0.35) is ~1.64
    assert float(np.median(hf)) == pytest.approx(1.64, abs=0.03)


def test_ltv_bounds_what_a_generated_position_can_have_borrowed() -> None:
    hf = generate(ltv=0.8, hf=HfLognormal(1.1, 0.3)).health_factors(2000.0, 0.83)
    assert hf.min() >= 0.83 / 0.8


def test_a_lower_ltv_gives_every_position_at_least_as_much_collateral() -> None:
    risky, safe = generate(seed=5, ltv=0.8), generate(seed=5, ltv=0.6)
    np.testing.assert_array_equal(risky.debt_usd, safe.debt_usd)
    assert np.all(safe.collateral >= risky.collateral) and np.any(safe.collateral > risky.collateral)


def test_whales_hold_their_share_of_the_debt() -> None:
    book = generate(n=1000, whales=5, whale_share=0.4)
    top5 = np.sort(book.debt_usd)[-5:]
    assert book.debt_usd[-5:].sum() == pytest.approx(0.4e9)
    np.testing.assert_allclose(np.sort(book.debt_usd[-5:]), top5)


def test_health_factor_points_are_drawn_by_weight_and_floored() -> None:
    book = generate(n=20_000, hf=HfPoints(((0.9, 1.0), (1.2, 1.0), (2.0, 2.0))))
    hf = np.round(book.health_factors(2000.0, 0.83), 9)
    values, counts = np.unique(hf, return_counts=True)
    np.testing.assert_allclose(values, [1.0, 1.2, 2.0])
    np.testing.assert_allclose(counts / counts.sum(), [0.25, 0.25, 0.5], atol=0.02)


def test_generation_is_deterministic_for_a_seed() -> None:
    a, b = generate(seed=9), generate(seed=9)
    np.testing.assert_array_equal(a.collateral, b.collateral)
    assert not np.array_equal(a.collateral, generate(seed=10).collateral)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n": 0}, "n=0"),
        ({"total": -1.0}, "total_debt_usd"),
        ({"total": math.nan}, "total_debt_usd"),
        ({"liquidation_threshold": 1.5}, "liquidation_threshold"),
        ({"ltv": 0.9}, "ltv"),
        ({"whales": 3}, "whale_share"),
        ({"whales": 3, "whale_share": 1.0}, "whale_share"),
        ({"price_usd": 0.0}, "price_usd"),
    ],
)
def test_generate_refuses_bad_parameters(kwargs: dict, fragment: str) -> None:
    with pytest.raises(RiskInputError, match="Book.generate") as err:
        generate(**kwargs)
    assert fragment in str(err.value)


def test_health_factor_distributions_refuse_bad_parameters() -> None:
    with pytest.raises(RiskInputError):
        HfLognormal(-1.0, 0.3)
    with pytest.raises(RiskInputError):
        HfPoints(())
    with pytest.raises(RiskInputError):
        HfPoints(((1.2, -1.0),))


# -- from_positions ---------------------------------------------------------------------------


PRICES = {"WETH": 2000.0, "WBTC": 30_000.0, "USDC": 1.0, "DAI": 1.0}
LTS = {"WETH": 0.8, "WBTC": 0.75, "USDC": 0.0}


def test_single_collateral_positions_become_one_row_each() -> None:
    book = Book.from_positions([Position({"WETH": 10.0}, {"USDC": 12_000.0})], PRICES, LTS)
    assert book.markets == ("WETH",)
    assert book.collateral.tolist() == [10.0] and book.debt_usd.tolist() == [12_000.0]


def test_multi_collateral_positions_split_by_weighted_collateral_keeping_their_health() -> None:
    pos = Position({"WETH": 10.0, "WBTC": 1.0, "USDC": 5_000.0}, {"USDC": 20_000.0, "DAI": 10_000.0})
    book = Book.from_positions([pos], PRICES, LTS)
    assert book.markets == ("WBTC", "WETH")  # USDC has LT 0: not collateral
    weights = {"WETH": 10 * 2000 * 0.8, "WBTC": 30_000 * 0.75}
    total = sum(weights.values())
    debt = dict(zip((book.markets[i] for i in book.market_index), book.debt_usd, strict=True))
    assert debt["WETH"] == pytest.approx(30_000 * weights["WETH"] / total)
    assert debt["WBTC"] == pytest.approx(30_000 * weights["WBTC"] / total)
    whole_hf = total / 30_000
    for name in book.markets:
        sub = book.for_market(name)
        assert sub.health_factors(PRICES[name], LTS[name])[0] == pytest.approx(whole_hf)
    assert set(book.owner.tolist()) == {0}


def test_positions_without_debt_are_left_out() -> None:
    book = Book.from_positions([Position({"WETH": 1.0}, {}), Position({"WETH": 2.0}, {"DAI": 100.0})], PRICES, LTS)
    assert len(book) == 1 and book.owner.tolist() == [1]


@pytest.mark.parametrize(
    ("positions", "fragment"),
    [
        ([], "no position"),
        ([Position({"WETH": 1.0}, {})], "no position has debt"),
        ([Position({"WETH": -1.0}, {"DAI": 1.0})], "position 0 collateral WETH is -1.0"),
        ([Position({"WETH": math.nan}, {"DAI": 1.0})], "nan"),
        ([Position({"WETH": 1.0}, {"GHO": 1.0})], "GHO, which has no price"),
        ([Position({"USDC": 1.0}, {"DAI": 1.0})], "no collateral that counts"),
        ([Position({"LINK": 1.0}, {"DAI": 1.0})], "LINK"),
    ],
)
def test_from_positions_refuses_bad_snapshots(positions: list[Position], fragment: str) -> None:
    with pytest.raises(RiskInputError) as err:
        Book.from_positions(positions, PRICES | {"LINK": 10.0}, LTS)
    assert fragment in str(err.value)


def test_from_positions_refuses_thresholds_above_one() -> None:
    with pytest.raises(RiskInputError, match="> 1"):
        Book.from_positions([Position({"WETH": 1.0}, {"DAI": 1.0})], PRICES, {"WETH": 1.2})


# -- the Book itself --------------------------------------------------------------------------


def rows(collateral: list[float], debt: list[float]) -> Book:
    n = len(collateral)
    return Book(("X",), np.zeros(n, dtype=np.int64), np.array(collateral, dtype=float), np.array(debt, dtype=float), np.arange(n))


@pytest.mark.parametrize(
    ("collateral", "debt", "fragment"),
    [
        ([], [], "no position"),
        ([1.0, math.nan], [1.0, 1.0], "collateral of position 1 is nan"),
        ([1.0, -2.0], [1.0, 1.0], "collateral of position 1 is -2.0"),
        ([1.0], [0.0], "debt of position 0 is 0.0"),
        ([1.0], [math.inf], "debt of position 0 is inf"),
        ([1.0, 2.0], [1.0], "different lengths"),
    ],
)
def test_book_refuses_bad_arrays(collateral: list[float], debt: list[float], fragment: str) -> None:
    with pytest.raises(RiskInputError) as err:
        rows(collateral, debt)
    assert fragment in str(err.value)


def test_book_arrays_are_read_only() -> None:
    book = rows([1.0], [1.0])
    with pytest.raises(ValueError):
        book.collateral[0] = 2.0


def test_for_market_and_concat_keep_rows_and_renumber_owners() -> None:
    rng = np.random.default_rng(1)
    a = Book.generate(rng, 5, 1e6, market="A", price_usd=1.0, liquidation_threshold=0.8)
    b = Book.generate(rng, 3, 2e6, market="B", price_usd=1.0, liquidation_threshold=0.8)
    both = Book.concat([b, a])
    assert both.markets == ("A", "B") and len(both) == 8
    np.testing.assert_array_equal(both.for_market("A").collateral, a.collateral)
    assert both.for_market("B").total_debt_usd == pytest.approx(2e6)
    assert len(set(both.owner.tolist())) == 8
    with pytest.raises(RiskInputError, match="no market 'C'"):
        both.for_market("C")
