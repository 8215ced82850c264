"""Coverage backtests of margin levels, and the tail quantiles that calibrate them.

A margin at coverage ``c`` should be exceeded by the realised loss on a share ``1 - c`` of independent
periods. Clearing houses check it three ways, all here:

* Kupiec's proportion-of-failures likelihood ratio: is the exceedance rate ``1 - c``?
* Christoffersen's independence likelihood ratio: do exceedances cluster (a hit today makes a hit
  tomorrow more likely)? Together they give the conditional-coverage test.
* The Basel traffic light: the binomial cumulative probability of seeing this many exceedances or fewer
  when the model is right; green below 95%, yellow below 99.99%, red from there.

Calibration: the standardised quantile of a horizon move under a tail model (normal, unit-variance
Student-t, or filtered historical simulation: the empirical quantile of past horizon log returns divided
by the volatility forecast made at their start, using only data known at the time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy.special import xlogy
from scipy.stats import binom, chi2, norm
from scipy.stats import t as student_t

from risk.errors import RiskInputError, UnitError
from risk.units import Ratio

ACCEPT_P_VALUE = 0.05
GREEN_BELOW = 0.95
YELLOW_BELOW = 0.9999


def coverage_float(coverage: Ratio, what: str = "coverage") -> float:
    """A policy coverage target as a float in (0, 1); bare floats are refused (their unit is unclear)."""
    if not isinstance(coverage, Ratio):
        raise UnitError(f"{what}: {coverage!r} is not a Ratio", "pass Ratio.parse('99%')")
    c = coverage.as_float()
    if not 0.0 < c < 1.0:
        raise RiskInputError(f"{what} {coverage} is not strictly between 0% and 100%", "use e.g. '99%' or '99.5%'")
    return c


class Zone(StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


class Side(StrEnum):
    """Which position the margin protects: a long loses when the price falls, a short when it rises."""

    LONG = "long"
    SHORT = "short"


@dataclass(frozen=True, slots=True)
class LikelihoodRatio:
    """A likelihood-ratio test: statistic, degrees of freedom, p-value, and acceptance at 95%."""

    statistic: float
    dof: int
    p_value: float

    @property
    def accept(self) -> bool:
        return self.p_value > ACCEPT_P_VALUE


@dataclass(frozen=True, slots=True)
class Kupiec:
    """Kupiec's proportion-of-failures test of ``exceedances`` out of ``n`` against rate ``1 - coverage``."""

    n: int
    exceedances: int
    expected_rate: float
    observed_rate: float
    test: LikelihoodRatio

    @property
    def accept(self) -> bool:
        return self.test.accept


@dataclass(frozen=True, slots=True)
class TrafficLight:
    zone: Zone
    cumulative_probability: float


def _check_count(n: int, exceedances: int) -> None:
    for name, v in (("n", n), ("exceedances", exceedances)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise RiskInputError(f"{name} {v!r} is not an integer", "count observations and exceedances as integers")
    if n < 1:
        raise RiskInputError(f"backtest over {n} observations", "a backtest needs at least one observation")
    if not 0 <= exceedances <= n:
        raise RiskInputError(f"{exceedances} exceedances out of {n} observations", "exceedances must lie in 0..n")


def kupiec_pof(n: int, exceedances: int, coverage: Ratio) -> Kupiec:
    """Kupiec (1995) proportion-of-failures test.

    Parameters
    ----------
    n : int
        Number of independent backtest periods.
    exceedances : int
        Periods in which the realised loss exceeded the margin.
    coverage : Ratio
        Coverage target of the margin (e.g. 99%); the expected exceedance rate is ``1 - coverage``.

    Returns
    -------
    Kupiec
        ``LR = -2 ln[(1-p)^(n-x) p^x / ((1-x/n)^(n-x) (x/n)^x)]``, chi-squared with 1 degree of freedom;
        accepted at the 95% level when its p-value exceeds 0.05. Too few exceedances are rejected too:
        an over-conservative margin wastes collateral.
    """
    _check_count(n, exceedances)
    p = 1.0 - coverage_float(coverage)
    x, n_ = float(exceedances), float(n)
    pi = x / n_
    # xlogy makes 0 * log(0) = 0, so zero or all exceedances need no special case.
    lr = -2.0 * (xlogy(n_ - x, 1.0 - p) + xlogy(x, p) - xlogy(n_ - x, 1.0 - pi) - xlogy(x, pi))
    lr = max(float(lr), 0.0)
    return Kupiec(int(n), int(exceedances), p, pi, LikelihoodRatio(lr, 1, float(chi2.sf(lr, 1))))


def _hits(hits: np.ndarray) -> np.ndarray:
    h = np.asarray(hits)
    if h.ndim != 1 or h.size < 2:
        raise RiskInputError(f"hit sequence of shape {h.shape}", "the independence test needs at least two periods")
    if h.dtype != bool:
        if not np.all(np.isin(h, (0, 1))):
            raise RiskInputError("hit sequence holds values other than 0/1", "pass booleans: loss > margin")
        h = h.astype(bool)
    return h


def christoffersen_independence(hits: np.ndarray) -> LikelihoodRatio:
    """Christoffersen (1998) test that exceedances are independent over time (first-order Markov).

    Parameters
    ----------
    hits : array of bool, shape (T,)
        Whether the loss exceeded the margin in each period, in time order.

    Returns
    -------
    LikelihoodRatio
        Statistic of the first-order Markov chain against independence, chi-squared with 1 degree of
        freedom. With no exceedances (or no non-exceedances) the statistic is 0: nothing can cluster.
    """
    h = _hits(hits)
    prev, cur = h[:-1], h[1:]
    n00 = float(np.sum(~prev & ~cur))
    n01 = float(np.sum(~prev & cur))
    n10 = float(np.sum(prev & ~cur))
    n11 = float(np.sum(prev & cur))
    pi01 = n01 / (n00 + n01) if n00 + n01 > 0 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 > 0 else 0.0
    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    log_l0 = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    log_l1 = xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01) + xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr = max(float(-2.0 * (log_l0 - log_l1)), 0.0)
    return LikelihoodRatio(lr, 1, float(chi2.sf(lr, 1)))


def conditional_coverage(kupiec: Kupiec, independence: LikelihoodRatio) -> LikelihoodRatio:
    """Christoffersen's joint test: LR_pof + LR_ind, chi-squared with 2 degrees of freedom."""
    lr = kupiec.test.statistic + independence.statistic
    return LikelihoodRatio(lr, 2, float(chi2.sf(lr, 2)))


def traffic_light(n: int, exceedances: int, coverage: Ratio) -> TrafficLight:
    """Basel traffic-light zone of an exceedance count.

    Parameters
    ----------
    n, exceedances : int
        Backtest periods and exceedances.
    coverage : Ratio
        Coverage target; exceedances are Binomial(n, 1 - coverage) when the model is right.

    Returns
    -------
    TrafficLight
        Green when ``P(X <= exceedances) < 95%``, yellow when below 99.99%, red otherwise. For n = 250
        at 99% this gives the Basel table: green 0-4, yellow 5-9, red 10 or more.
    """
    _check_count(n, exceedances)
    p = 1.0 - coverage_float(coverage)
    cum = float(binom.cdf(exceedances, n, p))
    zone = Zone.GREEN if cum < GREEN_BELOW else Zone.YELLOW if cum < YELLOW_BELOW else Zone.RED
    return TrafficLight(zone, cum)


@dataclass(frozen=True, slots=True, eq=False)
class MarginBacktest:
    """Exceedances of a margin series against realised moves, with the three verdicts.

    ``hits`` is read-only; ``hit_indices`` are positions in the input series, for the report.
    """

    side: Side | None
    coverage: float
    n: int
    exceedances: int
    hits: np.ndarray
    kupiec: Kupiec
    independence: LikelihoodRatio
    conditional: LikelihoodRatio
    traffic_light: TrafficLight

    @property
    def hit_indices(self) -> tuple[int, ...]:
        return tuple(int(i) for i in np.flatnonzero(self.hits))

    @property
    def accept(self) -> bool:
        """Kupiec and independence both accepted at 95%."""
        return self.kupiec.accept and self.independence.accept


def backtest_losses(
    losses: np.ndarray, margins: np.ndarray, coverage: Ratio, side: Side | None = None
) -> MarginBacktest:
    """Count the periods in which a realised loss exceeded the margin set before it, and test the count.

    Parameters
    ----------
    losses : array, shape (T,)
        Realised loss of each period (positive = loss), in the same unit as ``margins`` (USD or a
        fraction of notional). Periods should not overlap: overlapping windows make hits dependent
        and void both tests.
    margins : array, shape (T,)
        Margin set at the start of each period, >= 0.
    coverage : Ratio
        The margin's coverage target.
    side : Side, optional
        Recorded in the result when the losses are one side's.
    """
    c = coverage_float(coverage)
    loss = np.asarray(losses, dtype=np.float64)
    m = np.asarray(margins, dtype=np.float64)
    if loss.ndim != 1 or loss.shape != m.shape:
        raise RiskInputError(f"losses {loss.shape} and margins {m.shape} differ in shape", "pass one margin per period")
    if loss.size < 2:
        raise RiskInputError(f"backtest over {loss.size} period(s)", "a backtest needs at least two periods")
    for name, a in (("loss", loss), ("margin", m)):
        if not np.all(np.isfinite(a)):
            bad = int(np.flatnonzero(~np.isfinite(a))[0])
            raise RiskInputError(f"{name} {bad} is not finite", "drop or repair the period before backtesting")
    if np.any(m < 0):
        raise RiskInputError(f"margin {int(np.flatnonzero(m < 0)[0])} is negative", "margins are >= 0")
    hits = loss > m
    hits.setflags(write=False)
    n, x = int(loss.size), int(hits.sum())
    kup = kupiec_pof(n, x, coverage)
    ind = christoffersen_independence(hits)
    return MarginBacktest(
        side=side, coverage=c, n=n, exceedances=x, hits=hits, kupiec=kup, independence=ind,
        conditional=conditional_coverage(kup, ind), traffic_light=traffic_light(n, x, coverage),
    )


def backtest_margin(returns: np.ndarray, margin_series: np.ndarray, side: Side, coverage: Ratio) -> MarginBacktest:
    """Backtest a margin set as a fraction of notional against realised price returns.

    Parameters
    ----------
    returns : array, shape (T,)
        Realised simple return of the price over each period (0.05 = +5%), one per margin decision,
        non-overlapping.
    margin_series : array, shape (T,)
        Margin set at the start of each period, fraction of notional (0.03 = 3%), >= 0.
    side : Side
        LONG loses ``-return`` per unit notional, SHORT loses ``+return``.
    coverage : Ratio
        The margin's coverage target.
    """
    if not isinstance(side, Side):
        raise RiskInputError(f"side {side!r} is not a Side", "use Side.LONG or Side.SHORT")
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 1 and r.size and np.all(np.isfinite(r)) and np.any(r <= -1.0):
        bad = int(np.flatnonzero(r <= -1.0)[0])
        raise RiskInputError(f"return {bad} is {r[bad]:.4f}, a price at or below zero", "check the price data")
    return backtest_losses(-r if side is Side.LONG else r, margin_series, coverage, side)


# -- calibration: standardised quantiles of horizon moves ----------------------------------------


class TailKind(StrEnum):
    NORMAL = "normal"
    STUDENT_T = "student-t"
    FILTERED_HISTORICAL = "filtered-historical"


@dataclass(frozen=True, slots=True)
class Tail:
    """How a horizon move's quantile is read from the volatility forecast.

    * NORMAL: ``z = Phi^-1(prob)``.
    * STUDENT_T: the quantile of a Student-t with ``df`` degrees of freedom scaled to unit variance.
    * FILTERED_HISTORICAL: the empirical quantile of past standardised horizon log returns
      (``log(P[s+h]/P[s]) / (sigma_s sqrt(h))``), only those completed by the decision time, with at
      least ``min_history`` of them. It also absorbs any bias of square-root-of-time scaling.
    """

    kind: TailKind = TailKind.NORMAL
    df: float | None = None
    min_history: int = 500

    def __post_init__(self) -> None:
        if self.kind is TailKind.STUDENT_T and not (self.df is not None and self.df > 2):
            raise RiskInputError(f"Student-t tail with df={self.df!r}", "unit variance needs df > 2, e.g. df=4")
        if self.min_history < 10:
            raise RiskInputError(f"min_history {self.min_history} is under 10", "use a few hundred past moves")

    def describe(self) -> str:
        if self.kind is TailKind.STUDENT_T:
            return f"Student-t (df {self.df:g}, unit variance)"
        if self.kind is TailKind.FILTERED_HISTORICAL:
            return f"filtered historical (expanding window, at least {self.min_history} past moves)"
        return "normal"

    def parametric_quantile(self, prob: float) -> float:
        """Standardised quantile for the parametric kinds (raises for filtered historical)."""
        if self.kind is TailKind.NORMAL:
            return float(norm.ppf(prob))
        if self.kind is TailKind.STUDENT_T:
            df = float(self.df)  # type: ignore[arg-type]  # df > 2 is checked in __post_init__
            return float(student_t.ppf(prob, df) * math.sqrt((df - 2.0) / df))
        raise RiskInputError("a filtered historical tail has no closed-form quantile", "use horizon_quantiles with a history")


NORMAL = Tail()


def standardised_moves(log_prices: np.ndarray, sigma_per_step: np.ndarray, horizon_steps: int) -> np.ndarray:
    """``(log P[s+h] - log P[s]) / (sigma[s] sqrt(h))`` for every start ``s`` with a complete window.

    ``sigma[s]`` must be the forecast known at time ``s`` (after the return ending at ``s``).
    """
    lp = np.asarray(log_prices, dtype=np.float64)
    sig = np.asarray(sigma_per_step, dtype=np.float64)
    if lp.shape != sig.shape or lp.ndim != 1:
        raise RiskInputError(f"log prices {lp.shape} and sigma {sig.shape} differ", "pass one forecast per price")
    if horizon_steps < 1 or lp.size <= horizon_steps:
        raise RiskInputError(f"{lp.size} prices for a {horizon_steps}-step horizon", "use a longer history")
    if np.any(sig[:-horizon_steps] <= 0):
        raise RiskInputError("a volatility forecast is zero or negative", "check the price series for flat stretches")
    return (lp[horizon_steps:] - lp[:-horizon_steps]) / (sig[:-horizon_steps] * math.sqrt(horizon_steps))


def horizon_quantiles(
    tail: Tail, probs: tuple[float, float], standardised: np.ndarray, at: np.ndarray, horizon_steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper standardised quantiles in force at each decision index ``at``.

    Parameters
    ----------
    tail : Tail
        Tail model.
    probs : (float, float)
        Probabilities of the lower and upper quantile, e.g. (0.01, 0.99).
    standardised : array
        Output of `standardised_moves`; element ``s`` completes at index ``s + horizon_steps``.
    at : array of int
        Decision indices (into the price series).
    horizon_steps : int
        Horizon the moves span.
    """
    at = np.asarray(at, dtype=np.int64)
    lo_p, hi_p = probs
    if tail.kind is not TailKind.FILTERED_HISTORICAL:
        lo, hi = tail.parametric_quantile(lo_p), tail.parametric_quantile(hi_p)
        return np.full(at.shape, lo), np.full(at.shape, hi)
    known = at - horizon_steps + 1  # moves starting at s <= t - h are complete at t
    if np.any(known < tail.min_history):
        first = int(at[np.argmax(known < tail.min_history)])
        raise RiskInputError(
            f"decision at index {first} has fewer than {tail.min_history} completed past moves",
            "start the backtest later or lower Tail.min_history",
        )
    lo = np.empty(at.shape)
    hi = np.empty(at.shape)
    # One quantile per decision time (about one a day), not per option or step: the loop is short.
    for i, k in enumerate(known):
        lo[i], hi[i] = np.quantile(standardised[:k], (lo_p, hi_p))
    return lo, hi
