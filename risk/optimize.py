"""Lending optimiser: the policy's risk appetite as an objective and constraints, solved on simulations.

For one market (one collateral against stable debt), with the book, the scenario paths and the depth
curve fixed, the decision is the liquidation threshold LT; the rest follows from constraints:

* **bonus** — incentive compatibility: the keeper's share of the bonus, ``bonus · (1 - protocol fee)``,
  covers the average slippage of selling the stress liquidation size into the depth curve, the gas
  per USD of that size, and the policy's margin (`incentive_bonus`); rounded up to a basis point and
  kept within the policy's bounds;
* **LTV** — ``LT - buffer`` (the policy's `ltv_buffer`);
* **static limits on LT** — the policy's bounds on LT and on LTV (``LT <= LTV max + buffer``) and
  Aave's ``LT × (1 + bonus) < 100%``: together the highest admissible threshold, the *top*;
* **risk limits** — on the loss distribution simulated at (LT, LTV, bonus): VaR95 and EVaR99 of bad
  debt as shares of borrows, and the probability that a path ends with any bad debt.

Both objectives (`max_borrowing_power`: LTV; `max_leverage`: 1 / (1 - LTV)) increase with LT, so the
optimum is the highest LT that meets every risk limit. Bad debt is not monotone in LT in every regime
(cascades, a partial liquidation that leaves a position thinner), so the search does not bisect
blindly: it evaluates a grid of thresholds `lt_step` apart from the top down, keeps the highest
feasible one, and only then refines the bracket between it and the next (infeasible) grid point with
`scipy.optimize.bisect` on feasibility (a step function of the threshold, which interpolating root
finders only slow down) to one basis point. The binding constraint is the first one the next-looser
threshold (optimum + 1 bps) violates, or the static limit that set the top. Every simulation runs on
the same paths and the same seeded book draws (common random numbers), so two candidates differ only
by their parameters.

Caps are within what liquidity absorbs at the bonus: supply cap = 2 × the USD that moves the price by
the bonus along the depth curve / price, borrow cap = the policy's borrow share × supply cap
(LlamaRisk's rule of thumb, DOMAIN.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import bisect

from risk.book import Book, HfLognormal
from risk.errors import RiskInputError
from risk.lending import LendingMarket, LossDistribution, simulate_market
from risk.lending_params import DepthCurve, LiquidationStyle

BPS = 10_000


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The risk appetite on one market's loss distribution (shares of borrows, a probability)."""

    var95_share: float
    evar99_share: float
    insolvency_probability: float

    def texts(self) -> tuple[tuple[str, str], ...]:
        """(id, human text) of each limit, in the order they are checked."""
        return (
            ("var95", f"VaR95 <= {self.var95_share:.2%} of borrows"),
            ("evar99", f"EVaR99 <= {self.evar99_share:.2%} of borrows"),
            ("insolvency", f"insolvency probability <= {self.insolvency_probability:.2%}"),
        )


@dataclass(frozen=True, slots=True)
class BookModel:
    """A generated book, the same draws for every candidate (seeded by `entropy`).

    Health factors are lognormal (`hf_median`, `hf_sigma`) conditioned on HF >= max(1, LT / LTV);
    debt sizes lognormal (`size_sigma`), `whales` positions sharing `whale_share` of `total_debt_usd`.
    """

    positions: int
    total_debt_usd: float
    hf_median: float
    hf_sigma: float
    size_sigma: float
    whales: int
    whale_share: float
    entropy: tuple[int, ...]

    def build(self, name: str, price_usd: float, lt: float, ltv: float) -> Book:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(self.entropy))))
        return Book.generate(
            rng, self.positions, self.total_debt_usd, market=name, price_usd=price_usd, liquidation_threshold=lt,
            ltv=ltv if ltv > 0 else None, hf=HfLognormal(self.hf_median, self.hf_sigma), size_sigma=self.size_sigma,
            whales=self.whales, whale_share=self.whale_share,
        )


@dataclass(frozen=True, eq=False)
class MarketProblem:
    """Everything the optimiser needs for one market; ratios in basis points, money in USD.

    `paths` are relative prices (paths, steps + 1); `lt_bounds` and `ltv_bounds` are the policy's
    (min, max) in bps; `top_reason` is computed here. `style` is the venue's liquidation mechanism
    (Aave's close factor, or Comet's whole-position absorb).
    """

    name: str
    price_usd: float
    protocol_fee: float
    gas_usd: float
    depth: DepthCurve
    book: BookModel
    paths: np.ndarray
    limits: RiskLimits
    bonus_bps: int
    ltv_buffer_bps: int
    lt_bounds: tuple[int, int]
    ltv_bounds: tuple[int, int]
    cascade: bool = True
    style: LiquidationStyle = LiquidationStyle.AAVE

    def __post_init__(self) -> None:
        if not 0 < self.bonus_bps < BPS:
            raise RiskInputError(f"{self.name}: bonus of {self.bonus_bps} bps", "a liquidation bonus is above 0 and below 100%")
        if not 0 <= self.protocol_fee < 1:
            raise RiskInputError(f"{self.name}: protocol fee {self.protocol_fee!r}", "a share of the bonus in [0, 1)")
        object.__setattr__(self, "paths", np.ascontiguousarray(self.paths, dtype=np.float64))

    def top(self) -> tuple[int, str]:
        """Highest admissible LT (bps) and the static limit that sets it."""
        aave = (BPS * BPS - 1) // (BPS + self.bonus_bps)  # strict: LT × (1 + bonus) < 100%
        options = [
            (self.lt_bounds[1], f"bound: LT max {self.lt_bounds[1] / 100:.2f}%"),
            (self.ltv_bounds[1] + self.ltv_buffer_bps, f"bound: LTV max {self.ltv_bounds[1] / 100:.2f}% (+ {self.ltv_buffer_bps / 100:.2f}% buffer)"),
            (aave, f"aave: LT x (1 + bonus {self.bonus_bps / 100:.2f}%) < 100%"),
        ]
        return min(options, key=lambda o: o[0])

    def bottom(self) -> int:
        """Lowest admissible LT (bps): the bounds, LTV >= its minimum, and a positive LT."""
        return max(self.lt_bounds[0], self.ltv_bounds[0] + self.ltv_buffer_bps, self.ltv_buffer_bps, 1)


@dataclass(frozen=True, slots=True)
class Point:
    """One evaluated parameter set and its risk figures (shares of borrows, a probability)."""

    lt_bps: int
    ltv_bps: int
    bonus_bps: int
    var95_share: float
    evar99_share: float
    insolvency_probability: float
    violated: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        return not self.violated

    def to_json(self) -> dict[str, object]:
        return {
            "evar99_share": self.evar99_share,
            "feasible": self.feasible,
            "insolvency_probability": self.insolvency_probability,
            "liquidation_bonus_bps": self.bonus_bps,
            "liquidation_threshold_bps": self.lt_bps,
            "ltv_bps": self.ltv_bps,
            "var95_share": self.var95_share,
            "violated": list(self.violated),
        }


def violations(loss: LossDistribution, limits: RiskLimits) -> tuple[str, ...]:
    """Human texts of the risk limits `loss` breaks, in the order of `RiskLimits.texts`."""
    values = {"var95": loss.var95 / loss.total_debt_usd, "evar99": loss.evar99 / loss.total_debt_usd,
              "insolvency": loss.insolvency_probability}
    bounds = {"var95": limits.var95_share, "evar99": limits.evar99_share, "insolvency": limits.insolvency_probability}
    return tuple(text for key, text in limits.texts() if values[key] > bounds[key])


class Evaluator:
    """Simulates parameter sets of one problem, each once (results cached by their basis points)."""

    def __init__(self, problem: MarketProblem) -> None:
        self.problem = problem
        self._cache: dict[tuple[int, int, int], LossDistribution] = {}

    def loss(self, lt_bps: int, ltv_bps: int, bonus_bps: int) -> LossDistribution:
        """Loss distribution at (LT, LTV, bonus) in bps, on the problem's paths and book draws."""
        key = (int(lt_bps), int(ltv_bps), int(bonus_bps))
        if key not in self._cache:
            p = self.problem
            lt, ltv, bonus = key[0] / BPS, key[1] / BPS, key[2] / BPS
            market = LendingMarket(p.name, p.price_usd, ltv, lt, bonus, p.protocol_fee, gas_usd=p.gas_usd, depth=p.depth, style=p.style)
            book = p.book.build(p.name, p.price_usd, lt, ltv)
            self._cache[key] = simulate_market(book, market, p.paths, cascade=p.cascade)
        return self._cache[key]

    def point(self, lt_bps: int, ltv_bps: int | None = None, bonus_bps: int | None = None) -> Point:
        """Risk figures at LT; LTV defaults to LT - buffer and the bonus to the problem's."""
        p = self.problem
        ltv_bps = max(lt_bps - p.ltv_buffer_bps, 0) if ltv_bps is None else ltv_bps
        bonus_bps = p.bonus_bps if bonus_bps is None else bonus_bps
        loss = self.loss(lt_bps, ltv_bps, bonus_bps)
        return Point(lt_bps, ltv_bps, bonus_bps, loss.var95 / loss.total_debt_usd, loss.evar99 / loss.total_debt_usd,
                     loss.insolvency_probability, violations(loss, p.limits))

    @property
    def simulations(self) -> int:
        return len(self._cache)

    def curve(self) -> dict[int, LossDistribution]:
        """Every evaluated point on the optimisation curve (LTV = LT - buffer, the problem's bonus), by LT."""
        p = self.problem
        return {lt: loss for (lt, ltv, b), loss in sorted(self._cache.items())
                if b == p.bonus_bps and ltv == max(lt - p.ltv_buffer_bps, 0)}


@dataclass(frozen=True, eq=False)
class Optimum:
    """The optimiser's answer for one market.

    `target` is the chosen point; `binding` the constraint that stops a looser threshold; `looser`
    the next-looser point it was read from (None when a static limit binds); `grid` and `refined`
    every point evaluated, in order; `feasible` is False when even the lowest admissible threshold
    breaks the risk appetite (then `target` is that lowest threshold).
    """

    target: Point
    binding: str
    looser: Point | None
    top_bps: int
    bottom_bps: int
    grid: tuple[Point, ...]
    refined: tuple[Point, ...]
    feasible: bool
    evaluator: Evaluator = field(repr=False)


def optimise(problem: MarketProblem, *, step_bps: int, below_feasible: int = 4) -> Optimum:
    """The highest LT meeting every constraint (module docstring); see `Optimum`.

    The grid is every `step_bps` from the top down to the lowest admissible threshold (the lowest
    included). It is scanned from the top, so every point above the highest feasible one is
    simulated — where non-monotone bad debt could hide a feasible island — and the scan stops
    `below_feasible` points below it: lower points cannot be the optimum and only serve the bootstrap,
    whose resamples may reject the optimum.
    """
    if step_bps < 1 or below_feasible < 0:
        raise RiskInputError(f"grid step of {step_bps} bps, {below_feasible} points below", "use a step of 1 bps or more")
    top, top_reason = problem.top()
    bottom = problem.bottom()
    if bottom > top:
        raise RiskInputError(
            f"{problem.name}: no admissible liquidation threshold (lowest {bottom / 100:.2f}% > highest {top / 100:.2f}%, set by {top_reason})",
            "widen the policy's LT/LTV bounds or lower the ltv_buffer",
        )
    ev = Evaluator(problem)
    grid: list[Point] = []
    first: int | None = None
    lt = top
    while lt >= bottom and (first is None or len(grid) - 1 - first < below_feasible):
        grid.append(ev.point(lt))
        if first is None and grid[-1].feasible:
            first = len(grid) - 1
        lt = bottom if lt - step_bps < bottom < lt else lt - step_bps
    feasible = [p for p in grid if p.feasible]
    if not feasible:
        low = grid[-1]
        return Optimum(low, f"infeasible: even the lowest admissible LT {low.lt_bps / 100:.2f}% breaks {'; '.join(low.violated)}",
                       None, top, bottom, tuple(grid), (), False, ev)
    best = max(feasible, key=lambda p: p.lt_bps)
    if best.lt_bps == top:
        return Optimum(best, top_reason, None, top, bottom, tuple(grid), (), True, ev)
    above = min((p for p in grid if p.lt_bps > best.lt_bps), key=lambda p: p.lt_bps)
    target, refined = _refine(ev, best, above)
    looser = ev.point(target.lt_bps + 1)
    binding = looser.violated[0] if looser.violated else top_reason
    return Optimum(target, binding, looser, top, bottom, tuple(grid), refined, True, ev)


def _refine(ev: Evaluator, low: Point, high: Point) -> tuple[Point, tuple[Point, ...]]:
    """Largest feasible LT in [low, high) to one bps: bisection on feasibility, then a check around its root."""
    seen: list[Point] = []

    def at(lt: int) -> Point:
        point = ev.point(lt)
        if point.lt_bps not in (low.lt_bps, high.lt_bps) and all(p.lt_bps != lt for p in seen):
            seen.append(point)
        return point

    def g(x: float) -> float:
        # -1 feasible, +1 not, at the whole bps at or below x: a step function, hence bisection. (The
        # raw slack is exactly 0 at a feasible point sitting on a limit, which a root finder would
        # take for the root.)
        return -1.0 if at(min(max(math.floor(x), low.lt_bps), high.lt_bps)).feasible else 1.0

    if high.lt_bps - low.lt_bps <= 1:
        return low, ()
    root = bisect(g, low.lt_bps, high.lt_bps, xtol=1.0, maxiter=100)
    n = min(max(math.floor(root), low.lt_bps), high.lt_bps - 1)
    while n > low.lt_bps and not at(n).feasible:
        n -= 1
    while n + 1 < high.lt_bps and at(n + 1).feasible:
        n += 1
    return ev.point(n), tuple(sorted(seen, key=lambda p: -p.lt_bps))


# -------------------------------------------------------------------------------- bonus and caps


@dataclass(frozen=True, slots=True)
class Incentive:
    """The bonus from incentive compatibility: what a keeper needs, and what the bounds allowed."""

    bonus_bps: int
    needed: float
    slippage: float
    gas_share: float
    margin: float
    reason: str
    met: bool


def incentive_bonus(
    depth: DepthCurve, liquidation_size_usd: float, gas_usd: float, margin: float, protocol_fee: float, bounds: tuple[int, int]
) -> Incentive:
    """Smallest bonus (bps, rounded up) whose keeper share covers slippage + gas + margin.

    Parameters
    ----------
    depth : DepthCurve
        Liquidity keepers sell into.
    liquidation_size_usd : float
        Collateral sold in one go under stress, USD (> 0).
    gas_usd : float
        Keeper's gas per liquidation, USD.
    margin : float
        Keeper's minimum profit over slippage and gas, fraction of the size.
    protocol_fee : float
        Protocol's share of the bonus, in [0, 1).
    bounds : (int, int)
        The policy's (min, max) bonus, bps.
    """
    if not (math.isfinite(liquidation_size_usd) and liquidation_size_usd > 0):
        raise RiskInputError(f"liquidation size {liquidation_size_usd!r} USD", "give the stress liquidation size in the policy's liquidity block")
    if not 0 <= protocol_fee < 1:
        raise RiskInputError(f"protocol fee {protocol_fee!r}", "a share of the bonus in [0, 1)")
    slippage = float(depth.average_slippage(liquidation_size_usd))
    gas_share = gas_usd / liquidation_size_usd
    needed = (slippage + gas_share + margin) / (1.0 - protocol_fee)
    need_bps = math.ceil(round(needed * BPS, 9))
    lo, hi = bounds
    text = (f"incentive: bonus x (1 - fee {protocol_fee:.0%}) >= slippage {slippage:.2%} + gas (${gas_usd:,.2f} on a "
            f"${liquidation_size_usd:,.0f} sale) + margin {margin:.2%} = {needed:.2%}")
    if need_bps < lo:
        return Incentive(lo, needed, slippage, gas_share, margin, f"bound: min {lo / 100:.2f}% ({text})", True)
    if need_bps > hi:
        return Incentive(hi, needed, slippage, gas_share, margin, f"bound: max {hi / 100:.2f}% — below what keepers need ({text})", False)
    return Incentive(need_bps, needed, slippage, gas_share, margin, text, True)


def absorbable_usd(depth: DepthCurve, move: float) -> float:
    """USD of collateral whose sale moves the price down by `move` along the depth curve."""
    if not 0 < move < 1:
        raise RiskInputError(f"price move {move!r}", "a fraction in (0, 1)")
    if depth.is_infinite:
        return math.inf
    return depth.usd * (math.log1p(-move) / math.log1p(-depth.move)) ** (1.0 / depth.exponent)


def liquidity_caps(depth: DepthCurve, bonus: float, price_usd: float, borrow_share: float) -> tuple[float, float, float]:
    """(supply cap, borrow cap) in tokens and the USD absorbable within the bonus' price impact."""
    usd = absorbable_usd(depth, bonus)
    supply = 2.0 * usd / price_usd
    return supply, borrow_share * supply, usd


def objective_value(objective: str, ltv: float) -> float:
    """Borrowing power (the LTV) or maximum leverage 1 / (1 - LTV)."""
    return ltv if objective == "max_borrowing_power" else 1.0 / (1.0 - ltv)

