"""The hedge recommendation on a price history, and its backtest: cost paid against loss avoided.

The vault's book follows the real prices hour by hour:

* a perp vault (`PerpVault`) is short its traders' net long of ``skew_usd``, which the traders keep
  constant in USD: over each step it loses ``skew x return`` and its delta is ``-skew / price`` units;
* an options AMM holds a rolling book (`risk.options_backtest.OptionTemplate` with the vault's own signed
  quantities), struck at the price of each horizon's start and held over the horizon, revalued every
  step with Black-76 at the then-current EWMA volatility. No implied-volatility history exists in the
  data: realised (EWMA) volatility stands in for implied volatility.

A hedge of ``hedge_units`` is held over each step; after each price it is traded back to the target
``-h x delta`` when ``|hedge - target| x price > b x notional``, paying `HedgeCosts` on the trade. Every
(ratio, band) candidate runs on the same path at once (arrays over candidates, one loop over steps).
The history is cut into non-overlapping horizons after a burn-in; at each horizon's start the model of
`risk.hedging` gives the loss bound at the coverage target from the information then available (EWMA
volatility, the tail model's quantiles from completed past moves, past volatility changes), and the
horizon's realised loss (book + hedge - costs, a fraction of the notional at the start) is compared
with it: Kupiec, Christoffersen and the traffic light, as for margins.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from risk.backtest import (
    NORMAL,
    MarginBacktest,
    Tail,
    TailKind,
    backtest_losses,
    coverage_float,
    horizon_quantiles,
    standardised_moves,
)
from risk.errors import RiskInputError
from risk.hedging import (
    HedgeChoice,
    HedgeCosts,
    ScenarioLosses,
    choose_hedge,
    expected_cost_per_year,
    hedged_loss,
    option_scenarios,
    perp_scenarios,
)
from risk.options import DAYS_PER_YEAR, OptionBook, black76_price, greeks
from risk.options_backtest import OptionTemplate
from risk.units import Ratio
from risk.vol import EWMA

IMPLIED_VOL_NOTE = "realised volatility (EWMA) stands in for implied volatility: the data has no implied-volatility history"


@dataclass(frozen=True, slots=True)
class PerpVault:
    """A perp LP vault short its traders' net long of ``skew_usd`` USD (negative: traders net short)."""

    skew_usd: float


Vault = PerpVault | OptionTemplate


@dataclass(frozen=True, slots=True, eq=False)
class VaultPath:
    """The vault's book step by step from index ``start`` (into the price series): K steps.

    ``price`` has K + 1 entries (USD); ``delta_units`` (units of underlying), ``pnl`` (USD over the step)
    and ``notional`` (USD) have K, each known at the step's start.
    """

    start: int
    price: np.ndarray
    delta_units: np.ndarray
    pnl: np.ndarray
    notional: np.ndarray


def _rolling_book(template: OptionTemplate, strike_at: np.ndarray, age_years: np.ndarray, forward: np.ndarray, vol: np.ndarray) -> OptionBook:
    """One option per (step, leg), flattened: legs struck at ``strike_at``, aged ``age_years``."""
    legs = len(template.moneyness)
    return OptionBook(
        forward=np.repeat(forward, legs), strike=np.outer(strike_at, np.asarray(template.moneyness)).ravel(),
        expiry=(np.asarray(template.expiry_years)[None, :] - age_years[:, None]).ravel(), vol=np.repeat(vol, legs),
        is_call=np.tile(np.asarray(template.is_call), forward.size), quantity=np.tile(np.asarray(template.quantity), forward.size),
        rate=0.0,
    )


def vault_path(vault: Vault, prices: np.ndarray, sigma_annual: np.ndarray, at: np.ndarray, horizon_steps: int, steps_per_year: float) -> VaultPath:
    """The vault over the horizons starting at ``at`` (contiguous, ``horizon_steps`` apart).

    Parameters
    ----------
    prices, sigma_annual : array, shape (n,)
        Price (USD) and annualised EWMA volatility known at each index.
    at : array of int
        Horizon starts; the path covers ``at[0] .. at[-1] + horizon_steps``.
    """
    k0, k1 = int(at[0]), int(at[-1]) + horizon_steps
    p = prices[k0 : k1 + 1]
    steps = k1 - k0
    if isinstance(vault, PerpVault):
        skew = vault.skew_usd
        return VaultPath(k0, p, -skew / p[:-1], -skew * (p[1:] / p[:-1] - 1.0), np.full(steps, abs(skew)))
    q = np.asarray(vault.quantity, dtype=np.float64)
    k = np.arange(steps)
    window_start = k0 + (k // horizon_steps) * horizon_steps
    age = (k % horizon_steps) / steps_per_year
    strike_at = prices[window_start]
    vol = sigma_annual[k0:k1 + 1]
    now = _rolling_book(vault, strike_at, age, p[:-1], vol[:-1])
    later = _rolling_book(vault, strike_at, age + 1.0 / steps_per_year, p[1:], vol[1:])
    legs = q.size
    g = greeks(now)
    value_now = (g.price.reshape(steps, legs) @ q)
    value_later = (black76_price(later).reshape(steps, legs) @ q)
    delta = g.delta.reshape(steps, legs) @ q
    return VaultPath(k0, p, delta, value_later - value_now, np.full(steps, float(np.abs(q).sum())) * p[:-1])


def simulate_band(path: VaultPath, ratios: np.ndarray, bands: np.ndarray, costs: HedgeCosts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hedge P&L and costs (USD) of every candidate at every step, and each candidate's trade count.

    Returns
    -------
    (hedge_pnl, cost, trades) : arrays of shape (K, G), (K, G), (G,)
    """
    h = np.asarray(ratios, dtype=np.float64)
    b = np.asarray(bands, dtype=np.float64)
    steps = path.delta_units.size
    hedge = np.zeros(h.size)
    pnl = np.empty((steps, h.size))
    cost = np.empty((steps, h.size))
    trades = np.zeros(h.size, dtype=np.int64)
    move = np.diff(path.price)
    # Sequential by nature (each rebalance depends on the last); the candidates move together.
    for k in range(steps):
        s = path.price[k]
        target = -h * path.delta_units[k]
        trade = np.where(np.abs(hedge - target) * s > b * path.notional[k], target - hedge, 0.0)
        trades += trade != 0.0
        cost[k] = costs.of_trades(trade * s)
        hedge = hedge + trade
        pnl[k] = hedge * move[k]
    return pnl, cost, trades


def _stack(rows: list[ScenarioLosses]) -> ScenarioLosses:
    return ScenarioLosses(*(np.stack([getattr(r, n) for r in rows]) for n in ("spot_moves", "book_loss", "delta_usd", "notional_usd", "rehedge_usd")))


def _scenarios(vault: Vault, price: float, vol_annual: float, moves: tuple[float, float], vol_moves: tuple[float, float], look_ahead: float) -> ScenarioLosses:
    spot = (moves[0], 0.0, moves[1])
    if isinstance(vault, PerpVault):
        return perp_scenarios(vault.skew_usd, np.asarray(spot))
    return option_scenarios(vault.book(price, vol_annual), spot, (vol_moves[1], 0.0, -vol_moves[0]), look_ahead)


@dataclass(frozen=True, slots=True)
class CandidateBacktest:
    """One candidate on the history: realised loss per horizon against the model's bound.

    Losses are fractions of the notional at each horizon's start; ``loss_at_coverage`` is the
    empirical quantile of the realised losses at the coverage target; costs are per year of history.
    """

    hedge_ratio: float
    band: float
    windows: int
    exceedances: int
    kupiec_p: float
    christoffersen_p: float
    zone: str
    loss_at_coverage: float
    worst_loss: float
    cost_per_year: float
    rebalances_per_year: float


@dataclass(frozen=True, slots=True, eq=False)
class HedgeSeries:
    """The chosen candidate step by step over the backtest, for the report's chart (recommendation.json
    keeps the figures only).

    ``start`` indexes the market's closes: the close at which the first horizon starts; step k runs from
    close ``start + k`` to ``start + k + 1``, and every ``horizon_steps`` steps make one backtest horizon.
    All arrays have one entry per step, in USD: ``book_pnl`` (the unhedged vault's P&L), ``hedge_pnl``
    (the hedge's, before costs), ``cost`` (fees and slippage paid) and ``notional`` (known at the step's start).
    """

    start: int
    horizon_steps: int
    book_pnl: np.ndarray
    hedge_pnl: np.ndarray
    cost: np.ndarray
    notional: np.ndarray

    @property
    def hedged_pnl(self) -> np.ndarray:
        """The hedged vault's P&L per step, net of costs (USD)."""
        return self.book_pnl + self.hedge_pnl - self.cost

    def window_losses(self, pnl: np.ndarray) -> np.ndarray:
        """Loss per horizon as a fraction of the notional at its start (as the backtest counts it)."""
        per_window = np.asarray(pnl).reshape(-1, self.horizon_steps).sum(axis=1)
        return -per_window / self.notional[:: self.horizon_steps]


@dataclass(frozen=True, slots=True, eq=False)
class HedgeBacktest:
    """Every candidate on the real history, the unhedged book beside them, and the chosen one in full
    (``series``: its steps, for the chart; not part of recommendation.json)."""

    coverage: float
    horizon_steps: int
    windows: int
    years: float
    unhedged_loss_at_coverage: float
    unhedged_worst_loss: float
    candidates: tuple[CandidateBacktest, ...]
    chosen: CandidateBacktest
    chosen_backtest: MarginBacktest
    series: HedgeSeries | None = field(default=None, repr=False)

    @property
    def loss_avoided(self) -> float:
        """Unhedged minus hedged loss at the coverage target, fraction of notional (> 0: the hedge helped)."""
        return self.unhedged_loss_at_coverage - self.chosen.loss_at_coverage


@dataclass(frozen=True, slots=True, eq=False)
class HedgeResult:
    """The hedge for "now" (the last price) and its backtest; USD figures at the last price."""

    choice: HedgeChoice
    backtest: HedgeBacktest
    notional_usd: float
    delta_usd: float
    sigma_per_step: float
    tail: str
    volatility_source: str


def _sigma(closes: np.ndarray, half_life_steps: float) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(closes, dtype=np.float64)
    if p.ndim != 1 or p.size < 3 or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise RiskInputError(f"price series of shape {p.shape} is too short or not positive", "need at least three finite closes > 0")
    # Index k is close k+1: sig[k] is the EWMA forecast known there (as in risk.perps).
    return p[1:], np.sqrt(EWMA(half_life_steps).variance_path(np.diff(np.log(p)))[:, 0])


def recommend_hedge(
    closes: np.ndarray, *, vault: Vault, step_seconds: int, horizon_steps: int, coverage: Ratio, ratios: np.ndarray, bands: np.ndarray,
    max_loss: Ratio, cost_budget: Ratio, costs: HedgeCosts, half_life_steps: float = 72.0, tail: Tail = NORMAL, burn_in_steps: int = 720,
) -> HedgeResult:
    """Hedge ratio and rebalance band for the vault now, and the backtest of every candidate on ``closes``.

    Parameters
    ----------
    closes : array
        Prices in USD on a fixed step of ``step_seconds``; the last one is "now".
    vault : PerpVault or OptionTemplate
        The vault's book (an options template carries the vault's own signed quantities).
    horizon_steps : int
        Horizon over which the loss is measured (and the backtest's period), in steps.
    coverage : Ratio
        Coverage target of the loss bound (two-sided quantile moves, see `risk.hedging`).
    ratios, bands : array, shape (G,)
        Candidates (see `risk.hedging.candidate_grid`).
    max_loss, cost_budget : Ratio
        Loss at coverage over the horizon and hedging cost per year the policy accepts, fractions of notional.
    costs : HedgeCosts
        Fee and slippage of the hedge market.
    half_life_steps, tail, burn_in_steps
        EWMA half-life, the tail model of standardised horizon moves, and the history before the first backtest horizon.
    """
    c = coverage_float(coverage)
    if isinstance(horizon_steps, bool) or not isinstance(horizon_steps, int) or horizon_steps < 1:
        raise RiskInputError(f"hedging horizon of {horizon_steps!r} steps", "use a whole number of steps >= 1")
    steps_per_year = DAYS_PER_YEAR * 86400 / step_seconds
    look_ahead = horizon_steps / steps_per_year
    if isinstance(vault, OptionTemplate) and min(vault.expiry_years) <= look_ahead:
        raise RiskInputError(f"vault book {vault.name!r} expires within the {horizon_steps}-step horizon", "use options that outlive the horizon")
    price, sig = _sigma(closes, half_life_steps)
    ann = sig * math.sqrt(steps_per_year)
    lp = np.log(price)
    probs = ((1.0 - c) / 2.0, (1.0 + c) / 2.0)
    history = Tail(TailKind.FILTERED_HISTORICAL, min_history=tail.min_history)
    start = max(burn_in_steps, tail.min_history + horizon_steps - 1)
    at = np.arange(start, lp.size - horizon_steps, horizon_steps)
    if at.size < 2:
        raise RiskInputError(f"{lp.size + 1} prices leave {at.size} backtest horizon(s)", "use a longer history")
    decisions = np.append(at, lp.size - 1)  # the backtest's horizon starts, then "now"
    q_lo, q_hi = horizon_quantiles(tail, probs, standardised_moves(lp, sig, horizon_steps), decisions, horizon_steps)
    v_lo, v_hi = horizon_quantiles(history, probs, np.log(sig[horizon_steps:] / sig[:-horizon_steps]), decisions, horizon_steps)
    s = sig[decisions] * math.sqrt(horizon_steps)
    moves = np.column_stack([np.expm1(q_lo * s), np.expm1(q_hi * s)])
    vol_moves = np.column_stack([np.maximum(-np.expm1(v_lo), 0.0), np.maximum(np.expm1(v_hi), 0.0)])  # (down, up)
    rows = [_scenarios(vault, float(price[t]), float(ann[t]), tuple(moves[i]), tuple(vol_moves[i]), look_ahead) for i, t in enumerate(decisions)]

    # Now: the model's loss and cost of every candidate, and the choice.
    now = rows[-1]
    n_now = float(now.notional_usd)
    loss_now = hedged_loss(now, ratios, bands) / n_now
    cost_now = expected_cost_per_year(now, ratios, bands, sigma_per_step=float(sig[-1]), steps_per_year=steps_per_year, costs=costs) / n_now
    unhedged_now = float(hedged_loss(now, np.zeros(1), np.ones(1))[0]) / n_now
    choice = choose_hedge(ratios, bands, loss_now, cost_now, unhedged_loss=unhedged_now, max_loss=max_loss, cost_budget=cost_budget)

    # History: bounds set at each horizon's start against what the hedged book then lost.
    windows = _stack(rows[:-1])
    bound = hedged_loss(windows, ratios, bands) / windows.notional_usd[:, None]
    path = vault_path(vault, price, ann, at, horizon_steps, steps_per_year)
    hedge_pnl, cost, trades = simulate_band(path, ratios, bands, costs)
    per_window = (path.pnl[:, None] + hedge_pnl - cost).reshape(at.size, horizon_steps, -1).sum(axis=1)
    start_notional = path.notional[:: horizon_steps][:, None]
    realised = -per_window / start_notional
    unhedged = -path.pnl.reshape(at.size, horizon_steps).sum(axis=1) / start_notional[:, 0]
    years = path.pnl.size / steps_per_year
    cost_share = (cost / path.notional[:, None]).sum(axis=0) / years
    h, b = np.asarray(ratios, dtype=np.float64), np.asarray(bands, dtype=np.float64)
    summaries, tests = [], []
    for g in range(h.size):
        bt = backtest_losses(realised[:, g], bound[:, g], coverage)
        tests.append(bt)
        summaries.append(CandidateBacktest(
            hedge_ratio=float(h[g]), band=float(b[g]), windows=bt.n, exceedances=bt.exceedances, kupiec_p=bt.kupiec.test.p_value,
            christoffersen_p=bt.independence.p_value, zone=bt.traffic_light.zone.value,
            loss_at_coverage=float(np.quantile(realised[:, g], c)), worst_loss=float(realised[:, g].max()),
            cost_per_year=float(cost_share[g]), rebalances_per_year=float(trades[g] / years),
        ))
    k = next(i for i in range(h.size) if (h[i], b[i]) == (choice.hedge_ratio, choice.band))
    backtest = HedgeBacktest(
        coverage=c, horizon_steps=horizon_steps, windows=at.size, years=years,
        unhedged_loss_at_coverage=float(np.quantile(unhedged, c)), unhedged_worst_loss=float(unhedged.max()),
        candidates=tuple(summaries), chosen=summaries[k], chosen_backtest=tests[k],
        # `price` is closes[1:]: the path's first price is close path.start + 1.
        series=HedgeSeries(path.start + 1, horizon_steps, path.pnl, hedge_pnl[:, k].copy(), cost[:, k].copy(), path.notional),
    )
    source = IMPLIED_VOL_NOTE if isinstance(vault, OptionTemplate) else f"EWMA, half-life {half_life_steps:g} steps"
    return HedgeResult(choice=choice, backtest=backtest, notional_usd=n_now, delta_usd=float(now.delta_usd),
                       sigma_per_step=float(sig[-1]), tail=tail.describe(), volatility_source=source)
