"""Invariants of the liquidation simulator on random books and paths.

* A safer parameter (lower LT, or a book generated under a lower LTV) never raises bad debt on the same
  paths — without cascade or gas, in markets where one close-factor liquidation restores health
  (``LT·(1+bonus) <= 0.9`` with Aave's close factors); keeper slippage is allowed. Outside those
  conditions it can, and the unit tests pin an example: the cascade (earlier, larger sales deepen
  later prices), a partial call that leaves the position thinner (eMode-like LT·(1+b) > 0.9), and
  Aave's deficit (bad debt plus the bonus paid out of the last collateral). With gas, an extra
  partial call can halve a position below the keeper's break-even and leave it to go underwater
  (about 1 random case in 2,000 in our search). Whole-position markets (Comet's absorb) have no partial
  call, so there it holds at any LT·(1+bonus) and with gas (still without cascade).
* Seized collateral never exceeds the collateral; collateral, debt and value are conserved between
  borrower, keeper and protocol on every path.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_lending import gbm_jump_paths

from risk.book import Book, HfLognormal
from risk.lending import DepthCurve, LendingMarket, run_ledger
from risk.lending_params import LiquidationStyle

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def markets(draw: st.DrawFn, restoring: bool = False) -> LendingMarket:
    """Random markets; `restoring` keeps LT·(1+bonus) <= 0.9 so a partial call restores health, and no gas."""
    k_max = 0.9 if restoring else 1.0
    lt = draw(st.floats(0.4, 0.88 if restoring else 0.93))
    return LendingMarket(
        "X",
        price_usd=100.0,
        ltv=lt / 2,
        liquidation_threshold=lt,
        liquidation_bonus=draw(st.floats(0.02, 1.0)) * min(0.15, k_max / lt - 1),
        protocol_fee=draw(st.floats(0.0, 0.5)),
        gas_usd=0.0 if restoring else draw(st.sampled_from([0.0, 5.0, 50.0])),
        depth=draw(st.one_of(st.just(DepthCurve()), st.builds(DepthCurve, st.sampled_from([1e4, 1e5, 1e6]), st.floats(0.01, 0.1)))),
        style=draw(st.sampled_from(list(LiquidationStyle))),
    )


@st.composite
def books_and_paths(draw: st.DrawFn, market: LendingMarket) -> tuple[Book, np.ndarray]:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    book = Book.generate(rng, draw(st.integers(1, 150)), 1e6, market="X", price_usd=market.price_usd,
                         liquidation_threshold=market.liquidation_threshold, hf=HfLognormal(1.15, 0.2), size_sigma=1.5)
    paths = gbm_jump_paths(rng, draw(st.integers(1, 40)), draw(st.integers(1, 48)), sigma=draw(st.sampled_from([0.01, 0.03])))
    return book, paths


def bad_debt(book: Book, market: LendingMarket, paths: np.ndarray, cascade: bool) -> np.ndarray:
    return run_ledger(book, market, paths, cascade=cascade).bad_debt_usd


@SETTINGS
@given(st.data())
def test_a_lower_liquidation_threshold_never_raises_bad_debt_without_cascade(data: st.DataObject) -> None:
    market = data.draw(markets(restoring=True))
    assert market.partial_liquidation_restores_health
    book, paths = data.draw(books_and_paths(market))
    lower = market.liquidation_threshold * data.draw(st.floats(0.7, 1.0))
    safer = dataclasses.replace(market, liquidation_threshold=lower, ltv=lower / 2)
    before, after = bad_debt(book, market, paths, False), bad_debt(book, safer, paths, False)
    assert np.all(after <= before + 1e-9 * book.total_debt_usd)


@SETTINGS
@given(st.data())
def test_with_whole_positions_a_lower_threshold_never_raises_bad_debt_even_with_gas(data: st.DataObject) -> None:
    """A position is liquidated at the first step its HF < 1 (if the keeper is paid), and closed: a lower LT acts at
    the same step, or later from a price at which the higher LT's call was still covered by the collateral."""
    market = dataclasses.replace(data.draw(markets()), style=LiquidationStyle.WHOLE_POSITION)
    book, paths = data.draw(books_and_paths(market))
    lower = market.liquidation_threshold * data.draw(st.floats(0.7, 1.0))
    safer = dataclasses.replace(market, liquidation_threshold=lower, ltv=lower / 2)
    before, after = bad_debt(book, market, paths, False), bad_debt(book, safer, paths, False)
    assert np.all(after <= before + 1e-9 * book.total_debt_usd)


def test_a_lower_ltv_book_can_have_more_bad_debt_on_a_gap_path() -> None:
    """Not an invariant: a lower LTV means more collateral per debt, hence a *later* liquidation.

    On a path that declines gradually and then gaps down, the riskier position is liquidated in the
    decline (no bad debt) while the safer one is still open when the gap comes, so "lower LTV never
    raises bad debt" cannot be asserted path by path (the same-book, lower-LT property above can, and
    is). Hypothesis found this; it is pinned here with Aave's close factors.
    """
    market = LendingMarket(name="X", price_usd=100.0, ltv=0.8, liquidation_threshold=0.8, liquidation_bonus=0.05,
                           protocol_fee=0.0)
    debt = 1000.0
    # HF = collateral * price * LT / debt: 1.05 (risky) and 1.30 (safer) at price 100
    books = {hf: Book(("X",), np.zeros(1, dtype=np.int64), np.array([debt * hf / (0.8 * 100.0)]), np.array([debt]),
                      np.arange(1, dtype=np.int64)) for hf in (1.05, 1.30)}
    path = np.array([[1.0, 0.89, 0.89, 0.30]])  # a 11% fall, then a gap to 30%
    risky_bad, safe_bad = (float(bad_debt(books[hf], market, path, False)[0]) for hf in (1.05, 1.30))
    assert risky_bad == 0.0  # at 0.89 its HF is 0.93 < 0.95: fully liquidated, collateral covers debt × 1.05
    # the safer position's HF is 1.16 at 0.89; after the gap its 16.25 tokens are worth $487.50
    assert safe_bad == pytest.approx(debt - debt * 1.30 / (0.8 * 100.0) * 30.0, rel=1e-12)


@SETTINGS
@given(st.data())
def test_collateral_debt_and_value_are_conserved(data: st.DataObject) -> None:
    market = data.draw(markets())
    book, paths = data.draw(books_and_paths(market))
    cascade = data.draw(st.booleans())
    led = run_ledger(book, market, paths, cascade=cascade)
    coll, debt = float(np.sum(book.collateral)), book.total_debt_usd
    b, f = market.liquidation_bonus, market.protocol_fee
    tol_c, tol_d = 1e-9 * coll + 1e-12, 1e-9 * debt
    # seized collateral never exceeds the collateral, and every token is somewhere
    assert np.all(led.seized_tokens <= coll + tol_c)
    assert np.all(led.open_collateral_tokens >= -tol_c) and np.all(led.returned_tokens >= -tol_c)
    np.testing.assert_allclose(led.seized_tokens + led.open_collateral_tokens + led.returned_tokens, coll, rtol=1e-9, atol=tol_c)
    # every dollar of debt is repaid, written off or still open
    np.testing.assert_allclose(led.repaid_usd + led.written_off_usd + led.open_debt_usd, debt, rtol=1e-9, atol=tol_d)
    # value: the borrower hands over repaid × (1 + bonus); the protocol keeps fee·b/(1+b) of it, the keeper the rest
    np.testing.assert_allclose(led.seized_usd, led.repaid_usd * (1 + b), rtol=1e-9, atol=tol_d)
    np.testing.assert_allclose(led.protocol_fee_usd, f * b / (1 + b) * led.seized_usd, rtol=1e-9, atol=tol_d)
    np.testing.assert_allclose(led.sold_usd, led.seized_usd - led.protocol_fee_usd, rtol=1e-9, atol=tol_d)
    # bad debt is part of the deficit, never negative
    assert np.all(led.bad_debt_usd >= 0) and np.all(led.bad_debt_usd <= led.deficit_usd + tol_d)


@SETTINGS
@given(st.data())
def test_the_cascade_only_ever_lowers_prices(data: st.DataObject) -> None:
    market = data.draw(markets())
    book, paths = data.draw(books_and_paths(market))
    calm = run_ledger(book, market, paths, cascade=False)
    stressed = run_ledger(book, market, paths, cascade=True)
    np.testing.assert_allclose(calm.final_price_usd, market.price_usd * paths[:, -1])
    assert np.all(stressed.final_price_usd <= calm.final_price_usd * (1 + 1e-12))
    if market.depth.is_infinite:
        np.testing.assert_array_equal(stressed.bad_debt_usd, calm.bad_debt_usd)
