"""How sure: bootstrap confidence intervals of the optimiser's answer, and sensitivities of VaR / EVaR.

Bootstrap (sampling error of the scenario set). The paths are resampled with replacement, seeded;
on each resample the optimiser's choice is made again from the per-path bad debt *already simulated*
at every threshold it evaluated (grid and refinement: no new simulation), so the interval is over the
evaluated thresholds — one basis point apart near the optimum, `lt_step` apart elsewhere. The LTV
interval is the threshold's minus the buffer. The bonus and the caps follow from the liquidity inputs
alone, not from the paths: their interval is the point itself, and says so. The interval does not
cover model error (a wrong volatility, book or depth curve): the sensitivities and the peers speak to
that.

Sensitivity. VaR95 and EVaR99 at the recommendation with one parameter moved by ±h (the policy's
`sensitivity_step`), the others held, on the same paths and book draws (common random numbers); the
slope per +1 bps is the central difference ``(f(+h) - f(-h)) / 2h``, or one-sided when one side is not
admissible (LTV above LT, LT × (1 + bonus) >= 100%, a bonus <= 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from risk.errors import RiskInputError
from risk.lending import LossDistribution
from risk.optimize import BPS, Evaluator, Point, RiskLimits


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence interval of one recommended value, in bps (caps: whole tokens)."""

    parameter: str
    point: int
    low: int
    high: int
    level: float
    resamples: int
    note: str

    def to_json(self) -> dict[str, object]:
        return {"high": self.high, "level": self.level, "low": self.low, "note": self.note,
                "parameter": self.parameter, "point": self.point, "resamples": self.resamples}


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Intervals of LT and LTV, and of VaR95 at the recommended LT (share of borrows)."""

    threshold: Interval
    ltv: Interval
    var95_low: float
    var95_high: float
    agreement: float  # share of resamples that choose the recommended threshold itself


def _order_stats(x: np.ndarray, qs: tuple[float, ...]) -> np.ndarray:
    """np.quantile(x, qs, axis=1) with linear interpolation, from one partition per row set."""
    n = x.shape[1]
    pos = np.array(qs) * (n - 1)
    lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
    part = np.partition(x, sorted(set(lo.tolist()) | set(hi.tolist())), axis=1)
    return part[:, lo] + (pos - lo) * (part[:, hi] - part[:, lo])  # (rows, len(qs))


def bootstrap(
    curve: dict[int, LossDistribution],
    limits: RiskLimits,
    target: Point,
    *,
    ltv_buffer_bps: int,
    resamples: int,
    level: float,
    rng: np.random.Generator,
) -> Bootstrap:
    """Re-choose the threshold on `resamples` path resamples (see the module docstring).

    Parameters
    ----------
    curve : dict of int to LossDistribution
        Loss distribution at each evaluated threshold (bps) with LTV = LT - buffer and the target bonus.
    limits : RiskLimits
        The risk appetite.
    target : Point
        The optimiser's choice (its threshold must be in `curve`).
    ltv_buffer_bps : int
        LTV = LT - buffer.
    resamples : int
        Number of resamples (>= 1).
    level : float
        Confidence level in (0, 1), e.g. 0.9.
    rng : numpy.random.Generator
        Seeded by the caller.
    """
    if resamples < 1 or not 0 < level < 1:
        raise RiskInputError(f"bootstrap: {resamples} resamples at level {level!r}", "at least one resample, a level in (0, 1)")
    if target.lt_bps not in curve:
        raise RiskInputError(f"bootstrap: the target threshold {target.lt_bps} bps was not simulated", "pass the optimiser's evaluated curve")
    lts = np.array(sorted(curve))
    debt = curve[int(lts[0])].total_debt_usd
    bad = np.stack([curve[int(lt)].bad_debt_usd for lt in lts]) / debt  # (K, N) shares of borrows
    n = bad.shape[1]
    at = int(np.flatnonzero(lts == target.lt_bps)[0])
    chosen = np.empty(resamples, dtype=np.int64)
    var_at = np.empty(resamples)
    for b in range(resamples):
        x = bad[:, rng.integers(0, n, size=n)]
        q = _order_stats(x, (0.95, 0.99))
        insolvency = np.count_nonzero(x > 0, axis=1) / n
        ok = (q[:, 0] <= limits.var95_share) & (q[:, 1] <= limits.evar99_share) & (insolvency <= limits.insolvency_probability)
        chosen[b] = lts[ok].max() if ok.any() else lts[0]
        var_at[b] = q[at, 0]
    tail = (1 - level) / 2
    lo = int(np.quantile(chosen, tail, method="lower"))
    hi = int(np.quantile(chosen, 1 - tail, method="higher"))
    note = f"paths resampled {resamples} times; thresholds simulated at {len(lts)} values"
    threshold = Interval("liquidation_threshold", target.lt_bps, lo, hi, level, resamples, note)
    ltv = Interval("ltv", target.ltv_bps, max(lo - ltv_buffer_bps, 0), max(hi - ltv_buffer_bps, 0), level, resamples,
                   "the threshold's interval minus the LTV buffer")
    return Bootstrap(threshold, ltv, float(np.quantile(var_at, tail)), float(np.quantile(var_at, 1 - tail)),
                     float(np.mean(chosen == target.lt_bps)))


def fixed_interval(parameter: str, value: int, level: float, why: str) -> Interval:
    """The interval of a value that does not depend on the paths: the point itself, with the reason."""
    return Interval(parameter, value, value, value, level, 0, why)


@dataclass(frozen=True, slots=True)
class Sensitivity:
    """Risk figures with one parameter at low, base, high; slopes per +1 bps.

    VaR95, EVaR99 and the expected shortfall (mean of the worst 5% of paths) in USD, the insolvency
    probability as a probability. Far in the tail VaR95 and EVaR99 are often 0 on both sides (fewer
    than 5% / 1% of paths have any bad debt); the shortfall and the insolvency probability still move.
    """

    parameter: str
    step_bps: int
    low_bps: int
    high_bps: int
    var95: tuple[float, float, float]
    evar99: tuple[float, float, float]
    shortfall: tuple[float, float, float]
    insolvency: tuple[float, float, float]
    total_debt_usd: float
    kind: str  # "central", "forward", "backward"

    def _slope(self, values: tuple[float, float, float]) -> float:
        return (values[2] - values[0]) / (self.high_bps - self.low_bps)

    @property
    def var95_per_bps(self) -> float:
        return self._slope(self.var95)

    @property
    def evar99_per_bps(self) -> float:
        return self._slope(self.evar99)

    @property
    def shortfall_per_bps(self) -> float:
        return self._slope(self.shortfall)

    @property
    def insolvency_per_bps(self) -> float:
        return self._slope(self.insolvency)

    def to_json(self) -> dict[str, object]:
        def triple(v: tuple[float, float, float]) -> dict[str, float]:
            return {"base": v[1], "high": v[2], "low": v[0]}

        return {
            "difference": self.kind,
            "evar99_per_bps_share": self.evar99_per_bps / self.total_debt_usd,
            "evar99_per_bps_usd": self.evar99_per_bps,
            "evar99_usd": triple(self.evar99),
            "expected_shortfall_per_bps_usd": self.shortfall_per_bps,
            "expected_shortfall_usd": triple(self.shortfall),
            "high_bps": self.high_bps,
            "insolvency_probability": triple(self.insolvency),
            "insolvency_probability_per_bps": self.insolvency_per_bps,
            "low_bps": self.low_bps,
            "parameter": self.parameter,
            "step_bps": self.step_bps,
            "var95_per_bps_share": self.var95_per_bps / self.total_debt_usd,
            "var95_per_bps_usd": self.var95_per_bps,
            "var95_usd": triple(self.var95),
        }


def _admissible(lt: int, ltv: int, bonus: int) -> bool:
    return 0 < lt <= BPS and 0 <= ltv <= lt and bonus > 0 and lt * (BPS + bonus) < BPS * BPS


def sensitivities(ev: Evaluator, target: Point, step_bps: int) -> tuple[Sensitivity, ...]:
    """Slopes of VaR95 and EVaR99 in each of LT, LTV and the bonus around `target` (module docstring)."""
    if step_bps < 1:
        raise RiskInputError(f"sensitivity step of {step_bps} bps", "use at least 1 bps")
    base = (target.lt_bps, target.ltv_bps, target.bonus_bps)
    out = []
    for i, name in enumerate(("liquidation_threshold", "ltv", "liquidation_bonus")):
        def moved(d: int, i: int = i) -> tuple[int, int, int]:
            return tuple(v + d if j == i else v for j, v in enumerate(base))  # type: ignore[return-value]

        down, up = moved(-step_bps), moved(step_bps)
        lo_ok, hi_ok = _admissible(*down), _admissible(*up)
        if not (lo_ok or hi_ok):
            continue
        lo, hi = (down if lo_ok else base), (up if hi_ok else base)
        kind = "central" if lo_ok and hi_ok else ("forward" if hi_ok else "backward")
        losses = [ev.loss(*lo), ev.loss(*base), ev.loss(*hi)]
        out.append(Sensitivity(
            name, step_bps, lo[i], hi[i], tuple(x.var95 for x in losses), tuple(x.evar99 for x in losses),  # type: ignore[arg-type]
            tuple(x.expected_shortfall for x in losses), tuple(x.insolvency_probability for x in losses),  # type: ignore[arg-type]
            losses[1].total_debt_usd, kind,
        ))
    return tuple(out)
