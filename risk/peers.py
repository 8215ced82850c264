"""Peers' methods on the same inputs: Risk DAO's collateral factor, Gauntlet's Morpho LLTV, Morpho's LIF.

Each is the published formula (DOMAIN.md) fed with this epoch's book, scenario paths, price history
and depth curve, so a voter can see where the recommendation sits among the industry's methods.

* **Risk DAO** — ``CF = 1 - mean(md) - LI``. `md` is Risk DAO's "max drop": the largest fall of the
  price from where a liquidation was opened to where its collateral is still waiting to be sold,
  liquidity selling at most the volume that moves the price by LI per step (their
  ``volume_for_slippage`` at ``1 - l_incentive``, refilled every step; their runs refill it every 30
  minutes); as in their loop, the drop is measured on what still waits before the step's sales. Here the liquidations are those
  of the book at today's parameters (each position's debt × (1 + LI), opened when its path first
  crosses its liquidation price, sold first in, first out) on the scenario paths; Risk DAO ran it on
  crash days, so `mean(md)` is taken over the paths whose drawdown lies in the worst (1 - coverage)
  of the scenario set.
* **Gauntlet (Morpho LLTV)** — the largest LLTV on 0.01..0.99 with zero bad debt when the price falls
  0.5% a step down to the 99th-percentile monthly (30-day) drawdown of the history, each liquidation
  repaying the size whose sale moves the price 0.5% (one per step: the step's fall is its impact).
  The position is the market's whole borrows at LTV = LLTV, incentive Morpho's LIF at that LLTV; a
  liquidation happens in a step while the position's LTV is above LLTV.
* **Morpho** — ``LIF = min(1.15, 1 / (0.3 · LLTV + 0.7))``, the incentive Morpho Blue would pay at
  our threshold (and at Gauntlet's LLTV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from risk.errors import RiskInputError
from risk.lending_params import DepthCurve
from risk.optimize import absorbable_usd

GAUNTLET_STEP = 0.005
LLTV_GRID = tuple(round(0.01 * k, 2) for k in range(1, 100))
MONTH_SECONDS = 30 * 86400
_MAX_STEPS = 1_000_000


def morpho_lif(lltv: float) -> float:
    """Morpho Blue's liquidation incentive factor at `lltv` (fraction of one): min(1.15, 1/(0.3·LLTV + 0.7))."""
    if not 0 <= lltv <= 1:
        raise RiskInputError(f"LLTV {lltv!r}", "a fraction of one in [0, 1]")
    return min(1.15, 1.0 / (0.3 * lltv + 0.7))


def max_drawdowns(paths: np.ndarray) -> np.ndarray:
    """Largest peak-to-trough fall of each path, fraction of the peak, shape (paths,)."""
    return 1.0 - np.min(paths / np.maximum.accumulate(paths, axis=1), axis=1)


def tail_paths(paths: np.ndarray, coverage: float) -> np.ndarray:
    """Indices of the ⌈(1 - coverage)·paths⌉ paths with the largest drawdowns (ties: lower index first)."""
    k = max(1, math.ceil(round((1.0 - coverage) * paths.shape[0], 9)))
    return np.argsort(-max_drawdowns(paths), kind="stable")[:k]


@dataclass(frozen=True, slots=True)
class RiskDao:
    collateral_factor: float
    mean_max_drop: float
    incentive: float
    paths: int
    absorbable_usd_per_step: float

    def to_json(self) -> dict[str, object]:
        return {"absorbable_usd_per_step": self.absorbable_usd_per_step, "collateral_factor": self.collateral_factor,
                "incentive": self.incentive, "mean_max_drop": self.mean_max_drop, "paths": self.paths}


def riskdao_max_drops(
    paths: np.ndarray, trigger: np.ndarray, volume_usd: np.ndarray, capacity_usd: float
) -> np.ndarray:
    """Risk DAO's max drop on each path (fraction of the opening price).

    Parameters
    ----------
    paths : numpy.ndarray
        Relative prices (paths, steps + 1).
    trigger : numpy.ndarray
        Relative price below which each position is liquidated, shape (positions,).
    volume_usd : numpy.ndarray
        USD of collateral each liquidation puts up for sale, shape (positions,).
    capacity_usd : float
        USD the market absorbs per step.
    """
    if not capacity_usd > 0:
        raise RiskInputError(f"liquidity of {capacity_usd!r} USD per step", "a positive depth is needed to sell liquidations")
    order = np.argsort(trigger)
    asc = trigger[order]
    cum = np.concatenate([[0.0], np.cumsum(volume_usd[order][::-1])])  # volume of the k highest triggers
    low = np.minimum.accumulate(paths, axis=1)
    opened = cum[asc.size - np.searchsorted(asc, low, side="right")]  # (P, S+1) cumulative volume opened
    queue = np.empty_like(opened)
    q = np.zeros(paths.shape[0])
    prev = np.zeros(paths.shape[0])
    for t in range(paths.shape[1]):
        q = np.maximum(q + (opened[:, t] - prev) - capacity_usd, 0.0)
        prev = opened[:, t]
        queue[:, t] = q
    sold = opened - queue
    drops = np.zeros(paths.shape[0])
    # As Risk DAO's loop: at each step the drop is measured on what is still waiting from earlier steps
    # (volume opened this step is at its own price, a drop of 0), then that step's liquidity sells.
    for t in range(1, paths.shape[1]):
        waiting = queue[:, t - 1] > 0
        if not waiting.any():
            continue
        # the oldest volume still waiting: the first step whose cumulative opened volume exceeds what was sold
        first = np.argmax(opened[waiting, :t] > sold[waiting, t - 1][:, None], axis=1)
        rows = np.flatnonzero(waiting)
        drop = 1.0 - paths[rows, t] / paths[rows, first]
        drops[rows] = np.maximum(drops[rows], drop)
    return drops


def riskdao_collateral_factor(
    paths: np.ndarray, trigger: np.ndarray, volume_usd: np.ndarray, depth: DepthCurve, incentive: float, coverage: float
) -> RiskDao:
    """Risk DAO's CF = 1 - mean(md) - LI over the tail paths (module docstring)."""
    if not 0 < incentive < 1:
        raise RiskInputError(f"liquidation incentive {incentive!r}", "a fraction in (0, 1)")
    capacity = absorbable_usd(depth, incentive)
    rows = tail_paths(paths, coverage)
    md = riskdao_max_drops(paths[rows], trigger, volume_usd, capacity)
    mean = float(md.mean())
    return RiskDao(1.0 - mean - incentive, mean, incentive, int(rows.size), capacity)


def monthly_drawdown_quantile(prices: np.ndarray, step_seconds: int, q: float = 0.99) -> tuple[float, int]:
    """`q` quantile of the largest drawdown inside every 30-day window of `prices` (T,), and the window count.

    A history shorter than a month counts as one window (its own largest drawdown).
    """
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1 or p.size < 2 or not np.all(np.isfinite(p) & (p > 0)):
        raise RiskInputError("price history for the monthly drawdown: need >= 2 finite positive prices", "check the market data")
    w = min(MONTH_SECONDS // step_seconds, p.size - 1)
    starts = p.size - w
    dd = np.empty(starts)
    for s in range(starts):
        sub = p[s : s + w + 1]
        dd[s] = 1.0 - float(np.min(sub / np.maximum.accumulate(sub)))
    return float(np.quantile(dd, q)), int(starts)


@dataclass(frozen=True, slots=True)
class Gauntlet:
    lltv: float  # 0 when no LLTV of the grid passes
    drawdown: float
    windows: int
    chunk_usd: float

    @property
    def lif(self) -> float | None:
        return morpho_lif(self.lltv) if self.lltv > 0 else None

    def to_json(self) -> dict[str, object]:
        return {"chunk_usd": self.chunk_usd, "drawdown_99_monthly": self.drawdown, "lif": self.lif,
                "lltv": self.lltv, "windows": self.windows}


def gauntlet_bad_debt(lltv: np.ndarray, debt_usd: float, drawdown: float, depth: DepthCurve) -> np.ndarray:
    """Bad debt (USD) of one position of `debt_usd` opened at LTV = `lltv` (one scenario per LLTV).

    Per step the price falls 0.5% until it is `drawdown` below its start, then stays there; in every
    step where the position's LTV is above LLTV one liquidation repays the debt whose seized collateral
    (at Morpho's LIF) is the sale that moves the price 0.5% — the step's fall itself, so sales add no
    further impact. Bad debt is the debt left when the collateral runs out.
    """
    lltv = np.asarray(lltv, dtype=np.float64)
    chunk = absorbable_usd(depth, GAUNTLET_STEP)
    lif = np.minimum(1.15, 1.0 / (0.3 * lltv + 0.7))
    debt = np.full(lltv.shape, float(debt_usd))
    collateral = debt / lltv  # value at the starting price; worth collateral · price later
    bad = np.zeros_like(debt)
    price, floor = 1.0, 1.0 - drawdown
    for _ in range(_MAX_STEPS):
        price = max(price * (1.0 - GAUNTLET_STEP), floor)
        act = (debt > 0) & (debt > lltv * collateral * price)
        if not act.any():
            if price <= floor:
                return bad
            continue
        repay = np.where(act, np.minimum(debt, chunk / lif), 0.0)
        seize = repay * lif / price
        short = act & (seize > collateral)
        repay = np.where(short, collateral * price / lif, repay)
        seize = np.where(short, collateral, seize)
        bad = np.where(short, debt - repay, bad)
        debt = np.where(short, 0.0, debt - repay)
        collateral = collateral - seize
    raise RiskInputError("Gauntlet LLTV: the stepped fall did not finish", "check the depth curve and the debt")


def gauntlet_lltv(debt_usd: float, drawdown: float, windows: int, depth: DepthCurve) -> Gauntlet:
    """Largest LLTV on 0.01..0.99 with zero bad debt (0 when none qualifies); see the module docstring."""
    if not (math.isfinite(debt_usd) and debt_usd > 0) or not 0 <= drawdown < 1:
        raise RiskInputError(f"Gauntlet LLTV: debt {debt_usd!r}, drawdown {drawdown!r}", "positive debt, a drawdown in [0, 1)")
    grid = np.array(LLTV_GRID)
    bad = gauntlet_bad_debt(grid, debt_usd, drawdown, depth)
    passing = grid[bad <= 1e-9 * debt_usd]
    return Gauntlet(float(passing.max()) if passing.size else 0.0, drawdown, windows, absorbable_usd(depth, GAUNTLET_STEP))
