"""The borrower book: positions as collateral tokens against stable debt, one market per row.

A row is a *sub-position*: the part of a borrower's position backed by one collateral asset. The
liquidation simulator works per market (one collateral asset against stable debt, as Aave risk
analyses do per collateral), so a multi-collateral position is split by its share of *weighted*
collateral: asset ``a`` carries ``debt × c_a·P_a·LT_a / Σ_j c_j·P_j·LT_j``. Every sub-position then
starts with the health factor of the whole position.

The approximation (documented): each sub-position then lives on its own market's path. In Aave a fall
of asset A lowers the health factor of the whole position and a liquidator may seize A or B; here it
only lowers A's sub-position, so cross-collateral contagion inside one borrower is not modelled (the
venue aggregate still sees both markets falling on joint paths). Debt is valued at the snapshot's
prices and treated as stable from then on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from risk.errors import RiskInputError


@dataclass(frozen=True)
class HfLognormal:
    """Health factors distributed lognormally: ``median·exp(sigma·Z)``."""

    median: float
    sigma: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median) and self.median > 0 and math.isfinite(self.sigma) and self.sigma >= 0):
            raise RiskInputError(f"health-factor lognormal median={self.median!r} sigma={self.sigma!r}",
                                 "median must be positive and sigma non-negative, e.g. median 1.6, sigma 0.35")

    def draw(self, rng: np.random.Generator, n: int, floor: float) -> np.ndarray:
        """`n` draws conditioned on HF >= `floor` (inverse-CDF sampling of the upper tail)."""
        if self.sigma == 0:
            return np.full(n, max(self.median, floor))
        lower = special.ndtr(math.log(floor / self.median) / self.sigma)
        if lower >= 1.0:
            raise RiskInputError(f"health-factor floor {floor} is beyond the lognormal's range (median {self.median})",
                                 "lower the floor or raise the median")
        u = lower + (1.0 - lower) * rng.random(n)
        return self.median * np.exp(self.sigma * special.ndtri(u))


@dataclass(frozen=True)
class HfPoints:
    """Health factors from a list of ``(hf, weight)``; values below the floor are raised to it."""

    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise RiskInputError("health-factor points: empty list", "give at least one (hf, weight) pair")
        for hf, weight in self.points:
            if not (math.isfinite(hf) and hf > 0 and math.isfinite(weight) and weight >= 0):
                raise RiskInputError(f"health-factor point ({hf!r}, {weight!r})", "hf must be positive, weight non-negative")
        if sum(w for _, w in self.points) <= 0:
            raise RiskInputError("health-factor points: weights sum to zero", "give at least one positive weight")

    def draw(self, rng: np.random.Generator, n: int, floor: float) -> np.ndarray:
        hf = np.array([p[0] for p in self.points])
        weight = np.array([p[1] for p in self.points])
        return np.maximum(rng.choice(hf, size=n, p=weight / weight.sum()), floor)


@dataclass(frozen=True)
class Position:
    """A borrower's position as read from a snapshot: token amounts per asset symbol."""

    collateral: Mapping[str, float]
    debt: Mapping[str, float]


def _check_amounts(name: str, values: np.ndarray, *, positive: bool) -> None:
    bad = ~np.isfinite(values) | ((values <= 0) if positive else (values < 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        rule = "positive" if positive else "non-negative"
        raise RiskInputError(f"book: {name} of position {i} is {float(values[i])!r}", f"every {name} must be finite and {rule}")


@dataclass(frozen=True, eq=False)
class Book:
    """Sub-positions of a venue's borrowers; arrays of shape (n,).

    Parameters
    ----------
    markets : tuple[str, ...]
        Market (collateral asset) symbols, indexed by `market_index`.
    market_index : numpy.ndarray
        Market of each sub-position (int).
    collateral : numpy.ndarray
        Collateral of each sub-position, tokens of its market's asset, >= 0.
    debt_usd : numpy.ndarray
        Stable debt of each sub-position, USD, > 0.
    owner : numpy.ndarray
        Source position of each row (int); the sub-positions of a split position share it.
    """

    markets: tuple[str, ...]
    market_index: np.ndarray
    collateral: np.ndarray
    debt_usd: np.ndarray
    owner: np.ndarray

    def __post_init__(self) -> None:
        if not self.markets or len(set(self.markets)) != len(self.markets) or not all(isinstance(m, str) and m for m in self.markets):
            raise RiskInputError(f"book: market names {self.markets!r}", "give distinct, non-empty symbols")
        arrays = {"market_index": self.market_index, "collateral": self.collateral, "debt": self.debt_usd, "owner": self.owner}
        for name, a in arrays.items():
            if not isinstance(a, np.ndarray) or a.ndim != 1:
                raise RiskInputError(f"book: {name} must be a 1-D numpy array", "build the book with Book.generate or Book.from_positions")
        sizes = {a.size for a in arrays.values()}
        if len(sizes) != 1:
            raise RiskInputError(f"book: arrays of different lengths {sorted(sizes)}", "give one value per position in every array")
        if self.collateral.size == 0:
            raise RiskInputError("book: no position", "an empty book has no liquidation risk to simulate; check the snapshot")
        if not (np.issubdtype(self.market_index.dtype, np.integer) and np.issubdtype(self.owner.dtype, np.integer)):
            raise RiskInputError("book: market_index and owner must be integer arrays", "use numpy int64")
        if self.market_index.min() < 0 or self.market_index.max() >= len(self.markets):
            raise RiskInputError("book: a market_index points outside `markets`", f"indices run 0..{len(self.markets) - 1}")
        for name, a in (("collateral", self.collateral), ("debt", self.debt_usd)):
            if not np.issubdtype(a.dtype, np.floating):
                raise RiskInputError(f"book: {name} must be a float array, got {a.dtype}", "use numpy float64")
        _check_amounts("collateral", self.collateral, positive=False)
        _check_amounts("debt", self.debt_usd, positive=True)
        for a in arrays.values():
            a.setflags(write=False)

    def __len__(self) -> int:
        return int(self.collateral.size)

    @property
    def total_debt_usd(self) -> float:
        return float(self.debt_usd.sum())

    def for_market(self, name: str) -> Book:
        """The sub-positions of market `name` as a single-market book."""
        if name not in self.markets:
            raise RiskInputError(f"book has no market {name!r}", f"its markets are: {', '.join(self.markets)}")
        rows = self.market_index == self.markets.index(name)
        if not rows.any():
            raise RiskInputError(f"book has no position in market {name!r}", "there is nothing to liquidate there")
        return Book((name,), np.zeros(int(rows.sum()), dtype=np.int64), self.collateral[rows].copy(),
                    self.debt_usd[rows].copy(), self.owner[rows].copy())

    def health_factors(self, price_usd: float, liquidation_threshold: float) -> np.ndarray:
        """Health factor of each row of a single-market book at `price_usd`."""
        if len(self.markets) != 1:
            raise RiskInputError("health_factors needs a single-market book", "call book.for_market(name) first")
        return self.collateral * price_usd * liquidation_threshold / self.debt_usd

    @classmethod
    def concat(cls, books: Sequence[Book]) -> Book:
        """One book from several (e.g. one generated per market); owners are renumbered per part."""
        if not books:
            raise RiskInputError("book: nothing to concatenate", "give at least one book")
        markets = tuple(sorted({m for b in books for m in b.markets}))
        index, offset, owners = [], 0, []
        for b in books:
            remap = np.array([markets.index(m) for m in b.markets], dtype=np.int64)
            index.append(remap[b.market_index])
            owners.append(b.owner + offset)
            offset += int(b.owner.max()) + 1
        return cls(markets, np.concatenate(index), np.concatenate([b.collateral for b in books]),
                   np.concatenate([b.debt_usd for b in books]), np.concatenate(owners))

    @classmethod
    def generate(
        cls,
        rng: np.random.Generator,
        n: int,
        total_debt_usd: float,
        *,
        market: str,
        price_usd: float,
        liquidation_threshold: float,
        ltv: float | None = None,
        hf: HfLognormal | HfPoints = HfLognormal(1.6, 0.35),
        size_sigma: float = 1.5,
        whales: int = 0,
        whale_share: float = 0.0,
        hf_min: float = 1.0,
    ) -> Book:
        """A synthetic single-market book from a health-factor and a size distribution.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness (seeded by the caller).
        n : int
            Number of positions, whales included.
        total_debt_usd : float
            Sum of the positions' debt, USD.
        market : str
            Collateral asset symbol.
        price_usd : float
            Collateral price the health factors are measured at, USD.
        liquidation_threshold : float
            LT the health factors are measured with, fraction of one.
        ltv : float, optional
            If given, no position starts above it: HF >= LT/LTV (what it could have borrowed).
        hf : HfLognormal or HfPoints
            Distribution of the starting health factors, conditioned on HF >= max(hf_min, LT/LTV).
        size_sigma : float
            Debt of ordinary positions is lognormal with this log-sd, scaled to their share of the total.
        whales : int
            Number of whale positions (the last rows), sharing `whale_share` of the debt equally.
        whale_share : float
            Share of `total_debt_usd` held by the whales, in [0, 1).
        hf_min : float
            Floor of the starting health factor (positions below 1 would already be liquidated).
        """
        checks = [
            (isinstance(n, int) and not isinstance(n, bool) and n >= 1, f"n={n!r} positions", "generate at least one position"),
            (math.isfinite(total_debt_usd) and total_debt_usd > 0, f"total_debt_usd={total_debt_usd!r}", "give positive USD"),
            (math.isfinite(price_usd) and price_usd > 0, f"price_usd={price_usd!r}", "give the collateral's USD price"),
            (math.isfinite(liquidation_threshold) and 0 < liquidation_threshold <= 1, f"liquidation_threshold={liquidation_threshold!r}",
             "a fraction of one in (0, 1]"),
            (ltv is None or (math.isfinite(ltv) and 0 < ltv <= liquidation_threshold), f"ltv={ltv!r}", "0 < ltv <= liquidation_threshold"),
            (math.isfinite(size_sigma) and size_sigma >= 0, f"size_sigma={size_sigma!r}", "a non-negative log-sd"),
            (isinstance(whales, int) and 0 <= whales < n, f"whales={whales!r} of n={n}", "fewer whales than positions"),
            (math.isfinite(whale_share) and 0 <= whale_share < 1 and (whale_share > 0) == (whales > 0),
             f"whale_share={whale_share!r} with {whales} whales", "a share in (0, 1) when there are whales, 0 otherwise"),
            (math.isfinite(hf_min) and hf_min > 0, f"hf_min={hf_min!r}", "a positive health factor"),
        ]
        for ok, cause, hint in checks:
            if not ok:
                raise RiskInputError(f"Book.generate: {cause}", hint)
        floor = max(hf_min, liquidation_threshold / ltv if ltv else 0.0)
        size = np.exp(size_sigma * rng.standard_normal(n))
        debt = np.empty(n)
        regular = n - whales
        debt[:regular] = size[:regular] / size[:regular].sum() * total_debt_usd * (1 - whale_share)
        if whales:
            debt[regular:] = total_debt_usd * whale_share / whales
        health = hf.draw(rng, n, floor)
        collateral = debt * health / (liquidation_threshold * price_usd)
        return cls((market,), np.zeros(n, dtype=np.int64), collateral, debt, np.arange(n, dtype=np.int64))

    @classmethod
    def from_positions(
        cls,
        positions: Sequence[Position],
        prices_usd: Mapping[str, float],
        liquidation_thresholds: Mapping[str, float],
    ) -> Book:
        """A book from snapshot positions; multi-collateral positions are split (see module doc).

        Parameters
        ----------
        positions : Sequence[Position]
            Token amounts of collateral and debt per asset symbol.
        prices_usd : Mapping[str, float]
            USD price of every asset that appears.
        liquidation_thresholds : Mapping[str, float]
            LT of every collateral asset, fraction of one; assets with LT 0 are not collateral.

        Positions without debt carry no liquidation risk and are left out. A position with debt but no
        collateral with LT > 0 is already bad debt and is refused, so that it is not silently dropped.
        """
        if not positions:
            raise RiskInputError("book: no position in the snapshot", "an empty book has no liquidation risk to simulate")
        for table, what in ((prices_usd, "price"), (liquidation_thresholds, "liquidation threshold")):
            for asset, value in table.items():
                if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (what == "price" and value == 0):
                    raise RiskInputError(f"book: {what} of {asset} is {value!r}", f"give a finite {what} for every asset")
                if what == "liquidation threshold" and value > 1:
                    raise RiskInputError(f"book: liquidation threshold of {asset} is {value!r} > 1", "LT is a fraction of one")
        rows: list[tuple[str, float, float, int]] = []
        for i, pos in enumerate(positions):
            debt_usd = 0.0
            for asset, amount in pos.debt.items():
                _check_token(i, "debt", asset, amount, prices_usd)
                debt_usd += amount * prices_usd[asset]
            weights = {}
            for asset, amount in pos.collateral.items():
                _check_token(i, "collateral", asset, amount, prices_usd)
                if asset not in liquidation_thresholds:
                    raise RiskInputError(f"book: position {i} holds {asset} with no liquidation threshold", "give its LT (0 if not collateral)")
                weights[asset] = amount * prices_usd[asset] * liquidation_thresholds[asset]
            if debt_usd == 0:
                continue
            total = sum(weights.values())
            if total <= 0:
                raise RiskInputError(f"book: position {i} owes ${debt_usd:,.2f} with no collateral that counts (LT > 0)",
                                     "it is bad debt already: account for it separately and leave it out of the book")
            for asset in sorted(weights):
                if weights[asset] > 0:
                    rows.append((asset, float(pos.collateral[asset]), debt_usd * weights[asset] / total, i))
        if not rows:
            raise RiskInputError("book: no position has debt", "an empty book has no liquidation risk to simulate")
        markets = tuple(sorted({r[0] for r in rows}))
        return cls(
            markets,
            np.array([markets.index(r[0]) for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows]),
            np.array([r[2] for r in rows]),
            np.array([r[3] for r in rows], dtype=np.int64),
        )


def _check_token(i: int, what: str, asset: str, amount: float, prices_usd: Mapping[str, float]) -> None:
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not math.isfinite(amount) or amount < 0:
        raise RiskInputError(f"book: position {i} {what} {asset} is {amount!r}", "amounts are finite, non-negative token counts")
    if asset not in prices_usd:
        raise RiskInputError(f"book: position {i} has {what} in {asset}, which has no price", f"add a USD price for {asset}")
