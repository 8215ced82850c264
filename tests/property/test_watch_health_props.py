"""risk.watch_health: the O(log n) health index equals a full recompute from every row's health factor at
any price (hypothesis), the scalar and vectorised paths agree bit for bit, and the multi-collateral
approximation errs on the safe side: a borrower whose true health factor is below 1 always shows a
sub-position below 1 (the monitor never misses one), while some healthy borrowers do (it over-counts)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from risk.book import Book, Position
from risk.errors import RiskInputError
from risk.watch_health import (
    MarketHealth,
    book_factory,
    full_recompute,
    market_health,
    owner_health_factors,
)

EDGE = 1e-9  # rows this close to HF 1 (or to `near`) may round either way; compared away from the edge


@st.composite
def books(draw: st.DrawFn) -> tuple[Book, float, float]:
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    collateral = rng.lognormal(2.0, 1.5, n) * (rng.random(n) > draw(st.sampled_from([0.0, 0.05])))  # some rows with no collateral
    debt = rng.lognormal(8.0, 1.5, n)
    book = Book(("X", "Y"), rng.integers(0, 2, n).astype(np.int64), collateral, debt, np.arange(n, dtype=np.int64))
    return book, draw(st.floats(0.05, 1.0)), draw(st.floats(1.001, 2.0))


@settings(max_examples=200, deadline=None)
@given(case=books(), prices=st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=20))
def test_incremental_health_equals_a_full_recompute(case: tuple[Book, float, float], prices: list[float]) -> None:
    book, lt, near = case
    for market in book.markets:
        health = market_health(book, market, lt, near)
        if health is None:
            continue
        rows = book.market_index == book.markets.index(market)
        for price in prices:
            hf = book.collateral[rows] * price * lt / book.debt_usd[rows]
            if np.any(np.abs(hf - 1) < EDGE) or np.any(np.abs(hf / near - 1) < EDGE):
                continue
            point = health.at(price)
            below, near_count, collateral, debt = full_recompute(book, market, price, lt, near)
            assert (point.below, point.near) == (below, near_count)
            assert point.collateral_at_risk_usd == pytest.approx(collateral, rel=1e-9, abs=1e-9)
            assert point.debt_at_risk_usd == pytest.approx(debt, rel=1e-9, abs=1e-9)
            assert point.debt_share_at_risk == pytest.approx(debt / book.debt_usd[rows].sum(), rel=1e-9, abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(case=books(), prices=st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=50))
def test_scalar_and_vectorised_health_agree_bit_for_bit(case: tuple[Book, float, float], prices: list[float]) -> None:
    book, lt, near = case
    health = market_health(book, "X", lt, near) or market_health(book, "Y", lt, near)
    assert health is not None
    series = health.at_many(np.array(prices))
    assert [health.at(p) for p in prices] == [series.point(i) for i in range(len(prices))]


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), drop=st.floats(0.0, 0.9), market=st.sampled_from(["A", "B", "C"]))
def test_no_liquidatable_borrower_is_missed_by_the_split(seed: int, drop: float, market: str) -> None:
    rng = np.random.default_rng(seed)
    prices = {"A": 2000.0, "B": 30000.0, "C": 1.0, "USD": 1.0}
    lts = {"A": 0.83, "B": 0.78, "C": 0.75}
    positions = []
    for _ in range(60):
        held = rng.choice(["A", "B", "C"], size=int(rng.integers(1, 4)), replace=False)
        collateral = {a: float(rng.lognormal(0, 1) * 10_000 / prices[a]) for a in held}
        weighted = sum(c * prices[a] * lts[a] for a, c in collateral.items())
        positions.append(Position(collateral, {"USD": weighted / float(rng.uniform(1.0, 2.5))}))  # HF 1.0-2.5 at the start
    book = Book.from_positions(positions, prices, {**lts, "USD": 0.0})
    moved = {**prices, market: prices[market] * (1 - drop)}  # one market falls, the others hold
    owners, hf = owner_health_factors(book, moved, lts)
    liquidatable = set(owners[hf < 1 - EDGE].tolist())
    flagged = set()
    for m in book.markets:
        health = market_health(book, m, lts[m], 1.05)
        assert health is not None
        rows = np.flatnonzero(book.market_index == book.markets.index(m))
        k = np.searchsorted(health.liquidation_price, moved[m], side="right")
        below = set(book.owner[rows][np.argsort(book.debt_usd[rows] / (book.collateral[rows] * lts[m]), kind="stable")][k:].tolist())
        assert len(below) == health.at(moved[m]).below  # the index counts exactly these rows
        flagged |= below
    assert liquidatable <= flagged  # never misses a borrower the exact computation finds liquidatable


def test_the_split_over_counts_a_borrower_saved_by_other_collateral() -> None:
    # one borrower, half A and half B by weighted collateral, HF 1.2; A falls 30%: its row drops to
    # 0.84 but the borrower's true HF is (0.84 + 1.2) / 2 = 1.02
    prices, lts = {"A": 100.0, "B": 100.0, "USD": 1.0}, {"A": 0.8, "B": 0.8}
    book = Book.from_positions([Position({"A": 75.0, "B": 75.0}, {"USD": 10_000.0})], prices, {**lts, "USD": 0.0})
    _, hf = owner_health_factors(book, {**prices, "A": 70.0}, lts)
    assert hf[0] == pytest.approx(1.02)
    health = market_health(book, "A", 0.8, 1.05)
    assert health is not None and health.at(70.0).below == 1


def test_bad_inputs_are_named() -> None:
    with pytest.raises(RiskInputError, match="liquidation threshold"):
        MarketHealth("X", np.ones(2), np.ones(2), 1.5, 1.05)
    with pytest.raises(RiskInputError, match="near"):
        MarketHealth("X", np.ones(2), np.ones(2), 0.8, 1.0)
    with pytest.raises(RiskInputError, match="debt"):
        MarketHealth("X", np.ones(2), np.array([1.0, 0.0]), 0.8, 1.05)
    book = Book(("X",), np.zeros(2, np.int64), np.ones(2), np.ones(2), np.arange(2, dtype=np.int64))
    with pytest.raises(RiskInputError, match="no liquidation threshold"):
        book_factory(book, {}, 1.05)
