"""The book's health at the current price, updated in O(log n) when one market's price moves.

A row of a `Book` is a sub-position: collateral `c` tokens of one market against stable debt `d` USD
(book.py splits multi-collateral positions by weighted collateral). Its health factor at price `P` is
``c·P·LT / d``, so it is below 1 exactly when ``P`` is under its *liquidation price* ``d / (c·LT)``
(infinite for a row without collateral). Sorting a market's rows by liquidation price once, with
suffix sums of collateral and debt, turns every health figure at a new price into two binary
searches:

* below 1: the rows whose liquidation price is above ``P``;
* near (1 <= HF < `near`): the rows whose liquidation price is in ``(P / near, P]``;
* collateral at risk: ``P`` × the collateral of the rows below 1 (USD); debt at risk: their debt.

`MarketHealth.at` answers for one price (the monitor, per update) and `MarketHealth.at_many` for an
array of prices (the replay): both take the same indices and multiply the same numbers, so they agree
bit for bit. A row sitting exactly on its liquidation price within rounding (|HF - 1| below ~1e-15)
may be classed differently from a direct ``c·P·LT/d < 1``; tests compare away from that edge.

Multi-collateral positions (the approximation, documented): a price move in one market moves only
that market's sub-positions, as in the liquidation simulator. A borrower's true health factor is the
debt-weighted mean of its sub-positions' (`owner_health_factors` recomputes it exactly), so a borrower
whose true HF is below 1 always has a sub-position below 1 — the monitor never misses a liquidatable
borrower — while a sub-position may show below 1 for a borrower whose other collateral keeps it
healthy (the monitor over-counts; tests/property/test_watch_health_props.py checks both).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from risk.book import Book, HfLognormal
from risk.errors import RiskInputError

DEFAULT_HF = HfLognormal(1.6, 0.35)  # the generated book's health factors: Book.generate's default


@dataclass(frozen=True, slots=True)
class HealthPoint:
    """One market's book at one price.

    Attributes
    ----------
    below : int
        Sub-positions with HF < 1 (liquidatable).
    near : int
        Sub-positions with 1 <= HF < the `near` health factor.
    collateral_at_risk_usd : float
        Collateral value of the rows below 1, at the price (USD).
    debt_at_risk_usd : float
        Debt of the rows below 1 (USD).
    debt_share_at_risk : float
        ``debt_at_risk_usd`` over the market's debt (fraction of one).
    """

    below: int
    near: int
    collateral_at_risk_usd: float
    debt_at_risk_usd: float
    debt_share_at_risk: float

    def to_json(self) -> dict[str, float | int]:
        return {
            "below": self.below,
            "collateral_at_risk_usd": self.collateral_at_risk_usd,
            "debt_at_risk_usd": self.debt_at_risk_usd,
            "debt_share_at_risk": self.debt_share_at_risk,
            "near": self.near,
        }


@dataclass(frozen=True, slots=True)
class HealthSeries:
    """`HealthPoint` fields at many prices, arrays of shape (E,)."""

    below: np.ndarray
    near: np.ndarray
    collateral_at_risk_usd: np.ndarray
    debt_at_risk_usd: np.ndarray
    debt_share_at_risk: np.ndarray

    def point(self, i: int) -> HealthPoint:
        return HealthPoint(int(self.below[i]), int(self.near[i]), float(self.collateral_at_risk_usd[i]), float(self.debt_at_risk_usd[i]),
                           float(self.debt_share_at_risk[i]))


class MarketHealth:
    """One market's sub-positions sorted by liquidation price, with suffix sums (built once, then read-only).

    Parameters
    ----------
    symbol : str
        The market, for messages.
    collateral : (n,) float64
        Collateral of each row, tokens (>= 0).
    debt_usd : (n,) float64
        Debt of each row, USD (> 0).
    liquidation_threshold : float
        The market's LT, fraction of one in (0, 1].
    near : float
        Health factor (> 1) below which a row counts as near liquidation.
    """

    def __init__(self, symbol: str, collateral: np.ndarray, debt_usd: np.ndarray, liquidation_threshold: float, near: float) -> None:
        if not (0 < liquidation_threshold <= 1):
            raise RiskInputError(f"{symbol}: liquidation threshold {liquidation_threshold!r}", "a fraction of one in (0, 1]")
        if not (math.isfinite(near) and near > 1):
            raise RiskInputError(f"{symbol}: near-liquidation health factor {near!r}", "use a health factor above 1, e.g. 1.05")
        c, d = np.asarray(collateral, np.float64), np.asarray(debt_usd, np.float64)
        if c.ndim != 1 or c.shape != d.shape or len(c) == 0:
            raise RiskInputError(f"{symbol}: collateral {c.shape} and debt {d.shape}", "give one collateral and one debt per row, at least one row")
        if not (np.all(np.isfinite(c)) and np.all(c >= 0) and np.all(np.isfinite(d)) and np.all(d > 0)):
            raise RiskInputError(f"{symbol}: collateral must be finite and >= 0, debt finite and > 0", "check the book")
        self.symbol, self.liquidation_threshold, self.near = symbol, float(liquidation_threshold), float(near)
        with np.errstate(divide="ignore"):
            liq = np.where(c > 0, d / (c * self.liquidation_threshold), np.inf)
        order = np.argsort(liq, kind="stable")
        self.liquidation_price = liq[order]
        # suffix[k] = sum over rows k..n-1 (rows below 1 are a suffix); suffix[n] = 0
        self.suffix_collateral = np.r_[np.cumsum(c[order][::-1])[::-1], 0.0]
        self.suffix_debt = np.r_[np.cumsum(d[order][::-1])[::-1], 0.0]
        self.total_debt_usd = float(self.suffix_debt[0])
        self.rows = len(c)
        # Python lists for the per-update path: bisect on a list is several times faster than numpy on a scalar.
        self._liq = self.liquidation_price.tolist()
        self._suf_c = self.suffix_collateral.tolist()
        self._suf_d = self.suffix_debt.tolist()

    def at(self, price: float) -> HealthPoint:
        """Health at one price (USD per token); O(log n)."""
        k = bisect.bisect_right(self._liq, price)
        kn = bisect.bisect_right(self._liq, price / self.near)
        debt = self._suf_d[k]
        return HealthPoint(self.rows - k, k - kn, price * self._suf_c[k], debt, debt / self.total_debt_usd)

    def at_many(self, prices: np.ndarray) -> HealthSeries:
        """Health at each of `prices` (E,), vectorised; equal to `at` element by element."""
        p = np.asarray(prices, np.float64)
        k = np.searchsorted(self.liquidation_price, p, side="right")
        kn = np.searchsorted(self.liquidation_price, p / self.near, side="right")
        debt = self.suffix_debt[k]
        return HealthSeries(self.rows - k, k - kn, p * self.suffix_collateral[k], debt, debt / self.total_debt_usd)


def market_health(book: Book, market: str, liquidation_threshold: float, near: float) -> MarketHealth | None:
    """The health index of `market`'s rows of `book`, or None when the book holds none."""
    if market not in book.markets:
        return None
    rows = book.market_index == book.markets.index(market)
    if not rows.any():
        return None
    return MarketHealth(market, book.collateral[rows], book.debt_usd[rows], liquidation_threshold, near)


def full_recompute(book: Book, market: str, price: float, liquidation_threshold: float, near: float) -> tuple[int, int, float, float]:
    """Reference: (below, near, collateral at risk USD, debt at risk USD) from every row's HF, no index."""
    rows = book.market_index == book.markets.index(market)
    c, d = book.collateral[rows], book.debt_usd[rows]
    hf = c * price * liquidation_threshold / d
    below = hf < 1.0
    return int(below.sum()), int(((hf >= 1.0) & (hf < near)).sum()), float(price * c[below].sum()), float(d[below].sum())


def owner_health_factors(book: Book, prices: Mapping[str, float], liquidation_thresholds: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Exact health factor of every borrower (owner), all its collateral together: (owners, HF).

    ``HF = Σ c·P·LT / Σ d`` over the owner's rows; with book.py's split this is the debt-weighted mean of
    its rows' health factors.
    """
    price = np.array([prices[m] for m in book.markets])[book.market_index]
    lt = np.array([liquidation_thresholds[m] for m in book.markets])[book.market_index]
    owners, inverse = np.unique(book.owner, return_inverse=True)
    weighted = np.bincount(inverse, weights=book.collateral * price * lt)
    debt = np.bincount(inverse, weights=book.debt_usd)
    return owners, weighted / debt


def book_factory(book: Book, liquidation_thresholds: Mapping[str, float], near: float) -> Callable[[str, int, float], MarketHealth | None]:
    """Health indices of a fixed book (positions in tokens, so the first price does not matter)."""
    unknown = sorted(set(book.markets) - set(liquidation_thresholds))
    if unknown:
        raise RiskInputError(f"book markets {', '.join(unknown)} have no liquidation threshold",
                             "set watch.liquidation_thresholds (or watch.default_liquidation_threshold) in the policy")

    def build(symbol: str, index: int, price: float) -> MarketHealth | None:
        return market_health(book, symbol, liquidation_thresholds[symbol], near) if symbol in liquidation_thresholds else None

    return build


def generated_factory(seed: int, positions: int, markets: Sequence[str], liquidation_thresholds: Mapping[str, float], near: float, *,
                      debt_per_market_usd: float = 100e6, hf: HfLognormal = DEFAULT_HF) -> Callable[[str, int, float], MarketHealth | None]:
    """A synthetic book opened at each market's first price: `positions` rows spread evenly over `markets`.

    Market `i` draws from ``default_rng([seed, i])``, so its rows do not depend on which market's first
    price came first.
    """
    if isinstance(positions, bool) or not isinstance(positions, int) or positions < len(markets) or not markets:
        raise RiskInputError(f"a generated book of {positions!r} positions over {len(markets)} markets", "give at least one position per market")
    share, extra = divmod(positions, len(markets))
    count = {m: share + (i < extra) for i, m in enumerate(markets)}
    missing = [m for m in markets if m not in liquidation_thresholds]
    if missing:
        raise RiskInputError(f"markets {', '.join(missing)} have no liquidation threshold for the generated book",
                             "set watch.liquidation_thresholds (or watch.default_liquidation_threshold) in the policy")

    def build(symbol: str, index: int, price: float) -> MarketHealth | None:
        if symbol not in count:
            return None
        rng = np.random.default_rng([seed, index])
        lt = liquidation_thresholds[symbol]
        rows = Book.generate(rng, count[symbol], debt_per_market_usd, market=symbol, price_usd=price, liquidation_threshold=lt, hf=hf)
        return MarketHealth(symbol, rows.collateral, rows.debt_usd, lt, near)

    return build
