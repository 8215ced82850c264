"""Protocol hedging: how much of its net delta a vault hedges, and how far the hedge may drift.

A venue that carries the other side of its traders — a perp LP vault, an options AMM — holds their
net exposure. It hedges a fraction ``h`` (the hedge ratio) of its delta on an external market and
trades the hedge back to target only when it has drifted more than the rebalance band ``b``: when
``|hedge - target| x price`` exceeds ``b`` times the book's notional (USD).

Units: USD for values, deltas and losses; moves are relative (0.05 = +5%); ratios, bands, losses and
costs in the recommendation are fractions of the book's notional (losses over the horizon, costs per
year). Delta in USD is ``delta_units x price``: the first-order P&L of a +100% move.

The model (`hedged_loss`): over the horizon the price moves to one of the two-sided quantile moves at
the coverage target (``(1 - c)/2`` and ``(1 + c)/2``), the volatility (options) up, unchanged or down
by its own quantile shocks; the book is revalued in full at each scenario and the hedge adds
``-hedge_units x price x move`` with ``hedge_units = -h x delta + d``, ``|d x price| <= b x notional``
taken at its worst. The loss at coverage is the worst scenario. Two-sided quantiles make it a bound
whichever side the residual delta is on (for a one-sided book it is conservative).

The cost (`expected_cost_per_year`): under a diffusion a full hedge's target moves by
``rehedge x sigma`` USD per step (``rehedge`` = ``|gamma| x price^2`` for options, ``|skew|`` for a perp
vault whose traders keep a constant USD skew). A driftless walk of per-step deviation ``s`` leaves a band
of half-width ``a`` after ``(a / s)^2`` steps on average, so there are ``steps_per_year x (h s / a)^2``
rebalances a year (at most one a step), each trading about ``a`` USD at the fee plus linear slippage.
Charm (delta decay with time), vol changes and the rolling of an options book also move delta; the
model leaves them out and the backtest on real prices (`risk.hedging_backtest`) measures them.

`choose_hedge` takes the cheapest (ratio, band) whose loss at coverage meets the policy's maximum
within the cost budget; when none does, the one with the smallest loss within the budget, flagged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from risk.errors import RiskInputError, UnitError
from risk.options import OptionBook, greeks
from risk.options_margin import ScenarioGrid, scenario_margin
from risk.units import Ratio, Usd

_MEAN_ABS_NORMAL = math.sqrt(2.0 / math.pi)  # E|Z| for a standard normal: the mean trade when rebalancing every step


def _ratio(value: Ratio, what: str) -> float:
    if not isinstance(value, Ratio):
        raise UnitError(f"{what}: {value!r} is not a Ratio", f"pass Ratio.parse(...) for {what}")
    return value.as_float()


@dataclass(frozen=True, slots=True)
class HedgeCosts:
    """What trading the hedge costs: ``traded x (fee + impact x traded / depth)`` USD for ``traded`` USD.

    ``fee`` is a fraction of the traded notional; ``depth_usd`` moves the hedge market's price by
    ``impact`` (linear order book, full impact charged, as `risk.perps_liquidation.slippage_at_size`); without a
    depth there is no slippage.
    """

    fee: float
    depth_usd: float | None = None
    impact: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fee) and 0.0 <= self.fee < 1.0):
            raise RiskInputError(f"hedge fee {self.fee!r} outside [0, 1)", "a fee is a fraction of the traded notional, e.g. 0.0005")
        if (self.depth_usd is None) != (self.impact is None):
            raise RiskInputError("hedge liquidity needs both depth and impact", "give both, or neither for no slippage")
        if self.depth_usd is not None and not (self.depth_usd > 0 and self.impact is not None and 0 < self.impact <= 1):
            raise RiskInputError(f"hedge depth {self.depth_usd!r} USD, impact {self.impact!r}", "depth > 0 and impact in (0, 1]")

    @classmethod
    def of(cls, fee: Ratio, depth: Usd | None = None, impact: Ratio | None = None) -> HedgeCosts:
        """From policy units: a fee ratio and the hedge market's depth (USD) and impact (ratio)."""
        if depth is not None and not isinstance(depth, Usd):
            raise UnitError(f"hedge depth {depth!r} is not a Usd amount", "pass Usd.parse('$50M')")
        return cls(_ratio(fee, "hedge fee"), None if depth is None else depth.as_float(),
                   None if impact is None else _ratio(impact, "hedge impact"))

    def of_trades(self, traded_usd: np.ndarray) -> np.ndarray:
        """Cost in USD of trades of ``traded_usd`` (absolute USD notional), elementwise."""
        x = np.abs(np.asarray(traded_usd, dtype=np.float64))
        slip = 0.0 if self.depth_usd is None else self.impact * x / self.depth_usd  # type: ignore[operator]
        return x * (self.fee + slip)


@dataclass(frozen=True, slots=True, eq=False)
class ScenarioLosses:
    """The book's losses over the horizon at a few scenarios, and what the hedge term needs.

    Shapes broadcast over leading axes (one row per backtest window, or none for "now").

    Attributes
    ----------
    spot_moves : (..., S) relative price moves, e.g. (-0.12, 0, 0.14)
    book_loss : (..., S, V) USD lost by the book at each spot move and vol shock (negative = gain)
    delta_usd : (...,) book delta in USD (``delta_units x price``) when the horizon starts
    notional_usd : (...,) the book's notional in USD, what bands and fractions refer to
    rehedge_usd : (...,) USD a full hedge's target moves per unit relative price move
    """

    spot_moves: np.ndarray
    book_loss: np.ndarray
    delta_usd: np.ndarray
    notional_usd: np.ndarray
    rehedge_usd: np.ndarray

    def __post_init__(self) -> None:
        for name in ("spot_moves", "book_loss", "delta_usd", "notional_usd", "rehedge_usd"):
            a = np.asarray(getattr(self, name), dtype=np.float64)
            if not np.all(np.isfinite(a)):
                raise RiskInputError(f"hedge scenarios: {name} is not finite", "check the book and the price data")
            a.setflags(write=False)
            object.__setattr__(self, name, a)
        if self.book_loss.shape[:-1] != self.spot_moves.shape:
            raise RiskInputError(f"book losses {self.book_loss.shape} do not match spot moves {self.spot_moves.shape}",
                                 "one row of vol shocks per spot move")
        if np.any(self.notional_usd <= 0):
            raise RiskInputError("the hedged book has no notional", "a vault with nothing to hedge needs no hedge")


def perp_scenarios(skew_usd: float, spot_moves: np.ndarray) -> ScenarioLosses:
    """A perp vault short its traders' net long of ``skew_usd`` (USD, kept constant by the traders).

    The vault loses ``skew x move`` over the horizon; it has no vega, so one vol column.
    """
    if not (math.isfinite(skew_usd) and skew_usd != 0):
        raise RiskInputError(f"perp vault skew {skew_usd!r} USD", "give the traders' net open interest in USD, non-zero")
    m = np.asarray(spot_moves, dtype=np.float64)
    lead = m.shape[:-1]
    return ScenarioLosses(
        spot_moves=m, book_loss=(skew_usd * m)[..., None], delta_usd=np.full(lead, -skew_usd),
        notional_usd=np.full(lead, abs(skew_usd)), rehedge_usd=np.full(lead, abs(skew_usd)),
    )


def option_scenarios(book: OptionBook, spot_moves: tuple[float, ...], vol_shocks: tuple[float, ...], horizon_years: float) -> ScenarioLosses:
    """The vault's option book (its own signed quantities) revalued at every (spot move, vol shock).

    Parameters
    ----------
    book : OptionBook
        The vault's positions on one underlying (negative quantity = the vault wrote it).
    spot_moves, vol_shocks : tuple of float
        Relative moves of the forward and of the implied volatility.
    horizon_years : float
        Look-ahead: options are revalued with this much less time to expiry (theta included).
    """
    grid = ScenarioGrid(name="hedge", spot_shocks=tuple(spot_moves), vol_shocks=tuple(vol_shocks), horizon_years=horizon_years)
    losses = scenario_margin(book, grid).loss_grid
    g = greeks(book)
    f = book.forward
    return ScenarioLosses(
        spot_moves=np.asarray(spot_moves, dtype=np.float64), book_loss=losses,
        delta_usd=np.asarray(float(book.quantity @ (g.delta * f))),
        notional_usd=np.asarray(float(np.abs(book.quantity) @ f)),
        rehedge_usd=np.asarray(abs(float(book.quantity @ (g.gamma * f * f)))),
    )


def _grid(ratios: np.ndarray, bands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(ratios, dtype=np.float64)
    b = np.asarray(bands, dtype=np.float64)
    if h.shape != b.shape or h.ndim != 1 or h.size == 0:
        raise RiskInputError(f"hedge ratios {h.shape} and bands {b.shape}", "pass one (ratio, band) pair per candidate")
    if np.any(~np.isfinite(h) | (h < 0) | (h > 1)):
        raise RiskInputError("a hedge ratio is outside [0, 1]", "hedge between none (0%) and all (100%) of the delta")
    if np.any(~np.isfinite(b) | (b <= 0)):
        raise RiskInputError("a rebalance band is not positive", "a band of 0 would trade at every step; use e.g. 5%")
    return h, b


def hedged_loss(scenarios: ScenarioLosses, ratios: np.ndarray, bands: np.ndarray) -> np.ndarray:
    """Loss at coverage of the hedged book for every (ratio, band) candidate, USD, >= 0.

    Parameters
    ----------
    scenarios : ScenarioLosses
        Book losses at the coverage moves (see module docstring), leading shape ``L``.
    ratios, bands : array, shape (G,)
        Hedge ratio and rebalance band (fraction of notional) of each candidate.

    Returns
    -------
    ndarray, shape ``L + (G,)``
        ``max(0, max over scenarios of book_loss + h delta m + b' notional |m|)``, with ``b' = 0`` when
        ``h = 0`` (an empty hedge never drifts).
    """
    h, b = _grid(ratios, bands)
    b_eff = np.where(h > 0, b, 0.0)
    m = scenarios.spot_moves[..., None, :, None]  # (..., 1, S, 1)
    hedge = (h[:, None, None] * scenarios.delta_usd[..., None, None, None] * m
             + b_eff[:, None, None] * scenarios.notional_usd[..., None, None, None] * np.abs(m))
    total = scenarios.book_loss[..., None, :, :] + hedge  # (..., G, S, V)
    return np.maximum(total.max(axis=(-2, -1)), 0.0)


def expected_cost_per_year(
    scenarios: ScenarioLosses, ratios: np.ndarray, bands: np.ndarray, *, sigma_per_step: float, steps_per_year: float, costs: HedgeCosts
) -> np.ndarray:
    """Expected hedging cost per year in USD for every (ratio, band) candidate (see module docstring).

    Parameters
    ----------
    scenarios : ScenarioLosses
        Exposure now (no leading axes): ``rehedge_usd`` and ``notional_usd`` are used.
    sigma_per_step : float
        Volatility of one step's return (0.01 = 1% per step).
    steps_per_year : float
        Steps in a year (8760 for hourly steps, 365-day years).
    """
    h, b = _grid(ratios, bands)
    if not (math.isfinite(sigma_per_step) and sigma_per_step >= 0 and steps_per_year > 0):
        raise RiskInputError(f"sigma {sigma_per_step!r} per step, {steps_per_year!r} steps a year", "pass the volatility model's figure")
    drift = h * float(scenarios.rehedge_usd) * sigma_per_step  # USD of target drift per step
    half_width = b * float(scenarios.notional_usd)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(drift > 0, np.minimum(1.0, (drift / half_width) ** 2), 0.0)
    traded = np.where(drift > half_width, drift * _MEAN_ABS_NORMAL, half_width)
    return steps_per_year * rate * costs.of_trades(traded)


@dataclass(frozen=True, slots=True)
class HedgeCandidate:
    """One (ratio, band) with the model's loss at coverage and cost per year, fractions of notional."""

    hedge_ratio: float
    band: float
    loss: float
    cost_per_year: float
    meets_loss_target: bool
    within_budget: bool


@dataclass(frozen=True, slots=True)
class HedgeChoice:
    """The recommended hedge and every candidate it was chosen from (fractions of notional)."""

    hedge_ratio: float
    band: float
    loss: float
    cost_per_year: float
    unhedged_loss: float
    max_loss: float
    cost_budget: float
    meets_loss_target: bool
    within_budget: bool
    reason: str
    candidates: tuple[HedgeCandidate, ...]


def candidate_grid(ratios: tuple[Ratio, ...], bands: tuple[Ratio, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Every (ratio, band) pair, ratios outer; a zero ratio once (its band does not matter: the widest)."""
    r = sorted({_ratio(x, "hedge ratio") for x in ratios})
    w = sorted({_ratio(x, "rebalance band") for x in bands})
    if not r or not w:
        raise RiskInputError("no hedge ratio or no band to choose from", "list candidates, e.g. ratios ['0%', '50%', '100%']")
    pairs = [(x, y) for x in r for y in w if x > 0] + ([(0.0, w[-1])] if 0.0 in r else [])
    pairs.sort()
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def choose_hedge(
    ratios: np.ndarray, bands: np.ndarray, loss: np.ndarray, cost_per_year: np.ndarray, *, unhedged_loss: float,
    max_loss: Ratio, cost_budget: Ratio,
) -> HedgeChoice:
    """Pick the cheapest candidate meeting ``max_loss`` within ``cost_budget`` (fractions of notional).

    Ties in cost go to the smaller ratio, then the wider band. When no candidate meets the loss target
    within the budget, the smallest loss within the budget is taken; when none is within the budget,
    the cheapest. ``reason`` says which case applied.
    """
    h, b = _grid(ratios, bands)
    lo, co = np.asarray(loss, dtype=np.float64), np.asarray(cost_per_year, dtype=np.float64)
    if lo.shape != h.shape or co.shape != h.shape or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(co))):
        raise RiskInputError("hedge losses and costs must be finite, one per candidate", "check the scenario inputs")
    target, budget = _ratio(max_loss, "max loss"), _ratio(cost_budget, "cost budget")
    meets, within = lo <= target, co <= budget
    order = np.lexsort((-b, h, co))  # by cost, then ratio, then widest band
    both = [int(i) for i in order if meets[i] and within[i]]
    if both:
        k, reason = both[0], "cheapest candidate whose loss at coverage meets the target within the cost budget"
    elif np.any(within):
        cands = np.flatnonzero(within)
        k = int(cands[np.lexsort((-b[cands], h[cands], co[cands], lo[cands]))[0]])
        reason = "no candidate meets the loss target within the cost budget: smallest loss within the budget"
    else:
        k, reason = int(order[0]), "no candidate is within the cost budget: the cheapest"
    candidates = tuple(HedgeCandidate(float(h[i]), float(b[i]), float(lo[i]), float(co[i]), bool(meets[i]), bool(within[i])) for i in range(h.size))
    return HedgeChoice(
        hedge_ratio=float(h[k]), band=float(b[k]), loss=float(lo[k]), cost_per_year=float(co[k]), unhedged_loss=unhedged_loss,
        max_loss=target, cost_budget=budget, meets_loss_target=bool(meets[k]), within_budget=bool(within[k]), reason=reason,
        candidates=candidates,
    )
