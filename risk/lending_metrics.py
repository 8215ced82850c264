"""Loss distributions of a lending market or venue: per-path outcomes and the figures stewards publish.

Gauntlet and Chaos Labs' conventions (DOMAIN.md): VaR = 95th percentile of bad debt over the paths,
EVaR = 99th percentile, LaR (liquidations at risk) = 95th percentile of liquidated volume. Percentiles
use numpy's default linear interpolation between order statistics. The expected shortfall is the mean
bad debt of the worst ⌈5%·paths⌉ paths. A venue's figures are taken on the per-path *sum* over its
markets (paths are joint scenarios), never by adding the markets' percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from risk.errors import RiskInputError
from risk.units import Ratio


@dataclass(frozen=True, eq=False)
class LossDistribution:
    """Per-path outcomes of one market (or of a venue), all in USD, arrays of shape (paths,).

    Parameters
    ----------
    name : str
        Market symbol, or the venue's name for an aggregate.
    total_debt_usd : float
        Borrows at the start, USD: the denominator of every ``*_share``.
    bad_debt_usd : numpy.ndarray
        Collateral shortfall ``max(debt - collateral value, 0)`` of positions whose collateral was all
        seized, at that step's price, plus open positions underwater at the end, USD.
    deficit_usd : numpy.ndarray
        All debt Aave is left holding without collateral: `bad_debt_usd` plus the bonus paid out of the
        last collateral when a liquidation took all of it (>= `bad_debt_usd`), USD.
    liquidated_usd : numpy.ndarray
        Collateral seized by liquidations, valued at the price of its step, USD.
    protocol_fee_usd : numpy.ndarray
        Protocol's share of the liquidation bonus, USD.
    repaid_usd : numpy.ndarray
        Debt repaid by liquidators, USD.
    """

    name: str
    total_debt_usd: float
    bad_debt_usd: np.ndarray
    deficit_usd: np.ndarray
    liquidated_usd: np.ndarray
    protocol_fee_usd: np.ndarray
    repaid_usd: np.ndarray

    def __post_init__(self) -> None:
        arrays = (self.bad_debt_usd, self.deficit_usd, self.liquidated_usd, self.protocol_fee_usd, self.repaid_usd)
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 1 or arrays[0].size == 0:
            raise RiskInputError(f"loss distribution {self.name!r}: per-path arrays of shapes {sorted(shapes)}",
                                 "give one value per path, the same number of paths for every array")
        if not math.isfinite(self.total_debt_usd) or self.total_debt_usd <= 0:
            raise RiskInputError(f"loss distribution {self.name!r}: total debt {self.total_debt_usd!r}",
                                 "shares need positive total borrows")
        for a in arrays:
            if not np.all(np.isfinite(a)):
                raise RiskInputError(f"loss distribution {self.name!r}: non-finite per-path value", "check the inputs upstream")
            a.setflags(write=False)

    @property
    def paths(self) -> int:
        return int(self.bad_debt_usd.size)

    # -- figures in USD ---------------------------------------------------------------------
    @property
    def var95(self) -> float:
        """95th percentile of bad debt over the paths, USD."""
        return float(np.quantile(self.bad_debt_usd, 0.95))

    @property
    def evar99(self) -> float:
        """99th percentile of bad debt over the paths, USD."""
        return float(np.quantile(self.bad_debt_usd, 0.99))

    @property
    def expected_shortfall(self) -> float:
        """Mean bad debt of the worst ⌈5%·paths⌉ paths, USD."""
        k = max(1, math.ceil(0.05 * self.paths))
        return float(np.sort(self.bad_debt_usd)[-k:].mean())

    @property
    def mean_bad_debt(self) -> float:
        """Mean bad debt over the paths, USD."""
        return float(self.bad_debt_usd.mean())

    @property
    def mean_deficit(self) -> float:
        """Mean unbacked debt (bad debt plus bonus paid from the last collateral) over the paths, USD."""
        return float(self.deficit_usd.mean())

    @property
    def liquidations_at_risk(self) -> float:
        """95th percentile of liquidated collateral value over the paths, USD."""
        return float(np.quantile(self.liquidated_usd, 0.95))

    @property
    def insolvency_probability(self) -> float:
        """Share of paths that end with any bad debt, in [0, 1]."""
        return float(np.mean(self.bad_debt_usd > 0))

    # -- the same as Ratio, shares of total borrows -------------------------------------------
    def share(self, usd: float) -> Ratio:
        """`usd` as a share of this distribution's total borrows."""
        return Ratio.from_float(usd / self.total_debt_usd)

    @property
    def var95_share(self) -> Ratio:
        return self.share(self.var95)

    @property
    def evar99_share(self) -> Ratio:
        return self.share(self.evar99)

    @property
    def expected_shortfall_share(self) -> Ratio:
        return self.share(self.expected_shortfall)

    @property
    def liquidations_at_risk_share(self) -> Ratio:
        return self.share(self.liquidations_at_risk)

    @property
    def insolvency_probability_ratio(self) -> Ratio:
        return Ratio.from_float(self.insolvency_probability)

    @classmethod
    def aggregate(cls, name: str, parts: Sequence[LossDistribution]) -> LossDistribution:
        """Sum per path over `parts` (markets simulated on joint paths)."""
        if not parts:
            raise RiskInputError(f"aggregate {name!r}: no market to aggregate", "simulate at least one market")
        sizes = {p.paths for p in parts}
        if len(sizes) != 1:
            raise RiskInputError(f"aggregate {name!r}: markets have different path counts {sorted(sizes)}",
                                 "simulate every market on the same joint scenarios")
        return cls(
            name=name,
            total_debt_usd=sum(p.total_debt_usd for p in parts),
            bad_debt_usd=np.sum([p.bad_debt_usd for p in parts], axis=0),
            deficit_usd=np.sum([p.deficit_usd for p in parts], axis=0),
            liquidated_usd=np.sum([p.liquidated_usd for p in parts], axis=0),
            protocol_fee_usd=np.sum([p.protocol_fee_usd for p in parts], axis=0),
            repaid_usd=np.sum([p.repaid_usd for p in parts], axis=0),
        )


@dataclass(frozen=True, eq=False)
class VenueLoss:
    """Loss distributions of each market of a venue and of the venue as a whole (per-path sums)."""

    markets: tuple[LossDistribution, ...]
    venue: LossDistribution

    def market(self, name: str) -> LossDistribution:
        for dist in self.markets:
            if dist.name == name:
                return dist
        raise RiskInputError(f"no market {name!r} in this venue's losses", f"markets: {', '.join(d.name for d in self.markets)}")
