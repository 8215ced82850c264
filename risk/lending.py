"""Liquidation simulator: a borrower book, Aave-style market rules and price paths in, losses out.

Per path and step, positions below health factor 1 are liquidated by Aave v3's rules (close factor 50%,
100% at or below HF 0.95, collateral seized = repaid × (1 + bonus), the protocol's fee share of the
bonus), or, for a `LiquidationStyle.WHOLE_POSITION` market (Compound v3's absorb), by the same rules
with all of the debt repaid at once and never part of it; keepers sell what they seize into a finite
depth curve, which lowers the price of every later step (the cascade); a liquidation whose gas and
slippage exceed the keeper's bonus is not executed.
Bad debt is the collateral shortfall (debt minus collateral value) of positions whose collateral ran
out, at that step's price, or that are underwater at the end; Aave's *deficit* also counts the bonus
a keeper took out of the last collateral, and is reported next to it. The model is spelled out position by position in
``tests/reference_lending.py``; `risk.lending_engine` computes the same numbers without visiting
every (path, step, position).

Paths are *relative*: ``paths[p, t]`` multiplies the market's reference price ``price_usd``, so one
scenario set serves every market (``paths[:, 0]`` is usually 1). Paths come from the scenario
generators; this module only checks them.

Model choices, each documented where it lives: the depth curve and the keeper's profitability test
(`risk.lending_params`), one liquidation call per position per step (a keeper re-checks the next
step), impact felt from the step after the sale and never recovered (conservative over a horizon of
hours to days), the split of multi-collateral positions (`risk.book`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from risk.book import Book
from risk.errors import RiskInputError
from risk.lending_engine import Ledger, run_market
from risk.lending_metrics import LossDistribution, VenueLoss
from risk.lending_params import DepthCurve, LendingMarket, LiquidationStyle

__all__ = [
    "DepthCurve",
    "Ledger",
    "LendingMarket",
    "LiquidationStyle",
    "LossDistribution",
    "VenueLoss",
    "check_paths",
    "run_ledger",
    "simulate_market",
    "simulate_venue",
]


def check_paths(paths: np.ndarray, what: str = "paths") -> np.ndarray:
    """Validate relative price paths: a finite, positive float array of shape (paths, steps + 1).

    Returns the array as contiguous float64; raises `RiskInputError` naming the first bad entry.
    """
    if not isinstance(paths, np.ndarray):
        raise RiskInputError(f"{what}: expected a numpy array, got {type(paths).__name__}", "build paths as np.ndarray (paths, steps + 1)")
    if paths.ndim != 2 or paths.shape[0] < 1 or paths.shape[1] < 1:
        raise RiskInputError(f"{what}: shape {paths.shape}", "paths are (paths, steps + 1) with at least one path and one step")
    if not np.issubdtype(paths.dtype, np.number) or np.issubdtype(paths.dtype, np.complexfloating):
        raise RiskInputError(f"{what}: dtype {paths.dtype} is not real", "paths are float price multipliers")
    values = np.ascontiguousarray(paths, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        p, t = np.argwhere(bad)[0]
        raise RiskInputError(f"{what}: path {p}, step {t} is {float(values[p, t])!r}", "NaN or inf in a scenario: check the generator or data")
    bad = values <= 0
    if bad.any():
        p, t = np.argwhere(bad)[0]
        raise RiskInputError(f"{what}: path {p}, step {t} is {float(values[p, t])!r}", "prices are positive multiples of the reference price")
    return values


def run_ledger(book: Book, market: LendingMarket, paths: np.ndarray, *, cascade: bool = True) -> Ledger:
    """Per-path flows of one market's liquidations (repaid, seized, fees, write-offs, what is left).

    Parameters
    ----------
    book : Book
        Borrower book; its rows for `market.name` are simulated.
    market : LendingMarket
        Market rules and depth (floats; see `risk.lending_params`).
    paths : numpy.ndarray
        Relative price paths, shape (paths, steps + 1): the price at step t is ``market.price_usd · paths[:, t]``.
    cascade : bool
        Whether keepers' sales lower the price of later steps through `market.depth`.

    Returns
    -------
    Ledger
        Per-path totals; USD at the prices of the steps they happened, tokens of the collateral asset.
    """
    if not isinstance(book, Book):
        raise RiskInputError(f"expected a Book, got {type(book).__name__}", "build it with Book.generate or Book.from_positions")
    if not isinstance(market, LendingMarket):
        raise RiskInputError(f"expected a LendingMarket, got {type(market).__name__}", "build it with LendingMarket(...)")
    rows = book.for_market(market.name)
    values = check_paths(paths, f"paths of {market.name}")
    return run_market(np.asarray(rows.collateral, dtype=np.float64), np.asarray(rows.debt_usd, dtype=np.float64),
                      market, values, bool(cascade))


def simulate_market(book: Book, market: LendingMarket, paths: np.ndarray, *, cascade: bool = True) -> LossDistribution:
    """Loss distribution of one market over the paths (arguments as `run_ledger`).

    Returns
    -------
    LossDistribution
        Per-path bad debt, deficit, liquidated collateral value, protocol fee and repaid debt (USD), with
        VaR95 / EVaR99 / expected shortfall / insolvency probability / liquidations at risk.
    """
    ledger = run_ledger(book, market, paths, cascade=cascade)
    return LossDistribution(
        name=market.name,
        total_debt_usd=book.for_market(market.name).total_debt_usd,
        bad_debt_usd=ledger.bad_debt_usd,
        deficit_usd=ledger.deficit_usd,
        liquidated_usd=ledger.seized_usd,
        protocol_fee_usd=ledger.protocol_fee_usd,
        repaid_usd=ledger.repaid_usd,
    )


def simulate_venue(
    book: Book,
    markets: Sequence[LendingMarket],
    paths: Mapping[str, np.ndarray],
    *,
    venue: str = "venue",
    cascade: bool = True,
) -> VenueLoss:
    """Every market of a venue on joint paths, and the venue's per-path sum.

    Parameters
    ----------
    book : Book
        The venue's borrower book; every market in it must be simulated.
    markets : Sequence[LendingMarket]
        One per market of the book.
    paths : Mapping[str, numpy.ndarray]
        Relative price paths per market symbol, all with the same number of paths (row p of every
        market is the same joint scenario).
    venue : str
        Name of the aggregate distribution.
    cascade : bool
        As in `run_ledger`; each market's sales move only its own price.
    """
    names = [m.name for m in markets]
    if len(set(names)) != len(names):
        raise RiskInputError(f"venue {venue!r}: a market appears twice in {names}", "give each market once")
    missing = sorted(set(book.markets) - set(names))
    if missing:
        raise RiskInputError(f"venue {venue!r}: the book has positions in {missing} but no market rules for them",
                             "pass a LendingMarket for every market of the book")
    no_paths = sorted(set(names) - set(paths))
    if no_paths:
        raise RiskInputError(f"venue {venue!r}: no paths for {no_paths}", "give paths for every market")
    counts = {name: np.shape(paths[name])[0] if np.ndim(paths[name]) else 0 for name in names}
    if len(set(counts.values())) != 1:
        raise RiskInputError(f"venue {venue!r}: path counts differ between markets {counts}",
                             "markets must share joint scenarios (row p is the same scenario everywhere)")
    dists = tuple(simulate_market(book, m, paths[m.name], cascade=cascade) for m in markets)
    return VenueLoss(markets=dists, venue=LossDistribution.aggregate(venue, dists))
