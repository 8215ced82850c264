"""Policy + prices + current parameters → Recommendation (the risk core's single entry for lending).

Pure: arrays and frozen models in, a frozen Recommendation out. A policy with a `lending_core`
section is recommended by the lending risk core (scenarios → simulated loss distributions →
`risk.optimize`, with `risk.uncertainty` and `risk.peers`); one without it by the foundation's rule
(`risk.rule`). Both end in the same change-limit stage (`risk.limits`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from risk.errors import PolicyError, RiskInputError
from risk.lending_params import DepthCurve, LiquidationStyle
from risk.limits import changes_for_market, round_cap_down
from risk.market import MarketData
from risk.optimize import (
    BPS,
    BookModel,
    Evaluator,
    Incentive,
    MarketProblem,
    RiskLimits,
    incentive_bonus,
    liquidity_caps,
    objective_value,
    optimise,
)
from risk.parallel import TaskMap, serial_map
from risk.parallel_lending import PathSource, column_paths
from risk.peers import (
    gauntlet_lltv,
    monthly_drawdown_quantile,
    morpho_lif,
    riskdao_collateral_factor,
)
from risk.policy import Market, Policy, Protocol, VenueKind, VolatilityModel
from risk.recommend_scenarios import EpochScenarios, build_scenarios, history_span
from risk.recommendation import (
    LendingAnalysis,
    MarketMetrics,
    MarketRecommendation,
    Peers,
    Recommendation,
    RiskFigures,
)
from risk.rule import METHOD, RuleTargets, adverse_move, targets_for_market
from risk.snapshot import MarketState, VenueSnapshot
from risk.uncertainty import bootstrap, fixed_interval, sensitivities
from risk.vol import EWMA, VolEstimate

__all__ = ["estimate_volatility", "history_span", "liquidation_style", "recommend"]

# SeedSequence spawn keys under the policy's seed (Monte Carlo and filtered historical draw in
# risk.recommend_scenarios): one stream per purpose and market, so adding a market changes nothing else.
_BOOK_KEY, _BOOTSTRAP_KEY = 2, 3

# Comet's absorb takes every liquidatable account whole; the other lending venues are simulated the Aave way.
_LIQUIDATION_STYLE = {Protocol.COMPOUND_V3: LiquidationStyle.WHOLE_POSITION}
_SIMULATED_LIQUIDATIONS = {
    LiquidationStyle.AAVE: "Aave v3 liquidations (close factor 50%, 100% at HF <= 0.95)",
    LiquidationStyle.WHOLE_POSITION: "whole-position liquidations as Comet's absorb (all of the debt as soon as HF < 1, never part of it)",
}

CORE_METHOD = (
    "Volatility: {vol}; correlation: Pearson on the same returns (rounded to 1e-9).",
    "Scenarios: {scenarios}; {paths:,} joint paths of {steps} steps of {step}, pooled with equal weight.",
    ("Books: per market, the policy's borrows over generated positions (lognormal health factors and sizes, whales), seeded; "
     "the health-factor distribution is held when parameters move (borrowers re-lever to the health they hold today)."),
    ("Simulation: {liquidations}, keepers act when bonus covers gas and slippage, "
     "sales move the price through the policy's depth curve{cascade}."),
    ("Objective: {objective}; constraints: VaR95 <= {var95} and EVaR99 <= {evar99} of borrows, insolvency probability <= {insolvency}, "
     "bonus x (1 - protocol fee) >= slippage at the stress liquidation size + gas ({gas}) + margin ({margin}), "
     "LT x (1 + bonus) < 100%, LTV = LT - {buffer}, the policy's bounds."),
    ("Search: thresholds {step_lt} apart from the highest admissible one down until the highest feasible one (and {below} more), "
     "its bracket refined to 1 bps (scipy bisect); the binding constraint is the first one LT + 1 bps breaks."),
    "Caps: supply = 2 x USD whose sale moves the price by the bonus (depth curve) / price; borrow = borrow share x supply.",
    "Confidence: {resamples} path resamples (bootstrap, {level} intervals); sensitivities: central differences of {h} on the same paths.",
    ("Peers on the same inputs: Risk DAO CF = 1 - mean max drop - LI; Gauntlet's Morpho LLTV (0.5% steps to the 99th-percentile "
     "monthly drawdown); Morpho LIF = min(1.15, 1 / (0.3 LLTV + 0.7))."),
    "Then: the per-update change limits (glide path) and Aave's rules (LTV <= LT, LT x (1 + bonus) <= 100%).",
)


def estimate_volatility(policy: Policy, log_returns: np.ndarray, step_seconds: int) -> VolEstimate:
    vol = policy.scenarios.volatility
    if vol.model is VolatilityModel.EWMA:
        return EWMA(half_life_steps=vol.half_life.seconds / step_seconds).estimate(log_returns, step_seconds)
    raise RiskInputError(f"volatility model {vol.model} is not available", "use model: ewma")  # pragma: no cover


def recommend(
    policy: Policy,
    symbols: tuple[str, ...],
    prices: np.ndarray,
    step_seconds: int,
    snapshot: VenueSnapshot,
    *,
    epoch: str,
    as_of: str,
    history: MarketData | None = None,
    task_map: TaskMap = serial_map,
) -> Recommendation:
    """Recommend every market's parameters.

    Parameters
    ----------
    policy : Policy
        The venue's policy.
    symbols : tuple[str, ...]
        Column order of `prices`.
    prices : numpy.ndarray
        USD prices, shape (T, N), one row per step of `step_seconds`, oldest first.
    step_seconds : int
        Length of one step in seconds.
    snapshot : VenueSnapshot
        Current on-chain parameters and oracle prices.
    epoch, as_of : str
        Labels written into the recommendation (no clock is read).
    history : MarketData, optional
        Prices covering `history_span(policy)` (the crash windows and their lead-in), same step and
        markets; needed only when the lending core replays crash windows.
    task_map : TaskMap
        Runs the lending core's markets (`risk.parallel`): serial by default; a process or Ray
        executor gives the same bytes, each market being seeded by its own policy index.
    """
    if policy.venue.kind is not VenueKind.LENDING:
        raise RiskInputError(
            f"venue kind {policy.venue.kind} has no recommendation rule yet",
            "lending venues are supported; perps and options margin are being built (issue 9)",
        )
    if prices.ndim != 2 or prices.shape[1] != len(symbols) or prices.shape[0] < 3:
        raise RiskInputError(f"prices of shape {prices.shape} for {len(symbols)} markets", "need (steps, markets), at least 3 steps")
    if not np.all(np.isfinite(prices)) or np.any(prices <= 0):
        raise RiskInputError("prices contain NaN, infinite or non-positive values", "validate the market data")
    vol = estimate_volatility(policy, np.diff(np.log(prices), axis=0), step_seconds)
    if policy.lending_core is not None:
        return _core_recommendation(policy, symbols, prices, step_seconds, snapshot, vol, epoch=epoch, as_of=as_of, history=history,
                                    task_map=task_map)
    annual = vol.annualised()
    markets = []
    for j, symbol in enumerate(symbols):
        market, state = policy.market(symbol), _priced(snapshot, symbol)
        sigma = vol.sigma_per_step[j]
        targets = targets_for_market(policy, market, sigma, float(state.price_usd))  # type: ignore[arg-type]
        metrics = _metrics(policy, state, vol, j, float(annual[j]), step_seconds, targets.slippage or 0.0)
        markets.append(MarketRecommendation(symbol, market.asset, metrics, changes_for_market(policy, market, state, targets)))
    sc, ra = policy.scenarios, _appetite(policy)
    method = tuple(
        line.format(vol=vol.model, coverage=ra.coverage, incentive=ra.min_incentive_over_slippage, horizon=sc.horizon, buffer=sc.ltv_buffer_horizon)
        for line in METHOD
    )
    return _recommendation(policy, epoch, as_of, method, tuple(markets))


def _recommendation(policy: Policy, epoch: str, as_of: str, method: tuple[str, ...], markets: tuple[MarketRecommendation, ...],
                    scenarios: EpochScenarios | None = None) -> Recommendation:
    return Recommendation(
        venue=policy.venue.name, protocol=policy.venue.protocol.value, chain_id=policy.venue.chain_id, epoch=epoch, as_of=as_of,
        method=method, markets=markets, scenarios=() if scenarios is None else scenarios.parts,
        horizon_steps=None if scenarios is None else scenarios.steps,
    )


def _appetite(policy: Policy):
    if policy.risk_appetite is None:
        raise PolicyError(f"venue {policy.venue.name} has no risk_appetite", "a lending venue needs one")
    return policy.risk_appetite


def _priced(snapshot: VenueSnapshot, symbol: str) -> MarketState:
    state = snapshot.market(symbol)
    if state.price_usd is None:
        raise RiskInputError(f"{symbol}: the snapshot has no price", "the pipeline fills it from market data; pass a priced snapshot")
    return state


def _metrics(policy: Policy, state: MarketState, vol: VolEstimate, j: int, annual: float, step_seconds: int, slippage: float) -> MarketMetrics:
    sc, ra = policy.scenarios, _appetite(policy)
    sigma = vol.sigma_per_step[j]
    coverage = ra.coverage.as_float()
    return MarketMetrics(
        price_usd=float(state.price_usd),  # type: ignore[arg-type]
        sigma_hourly=sigma * (3600 / step_seconds) ** 0.5,
        sigma_annualised=annual,
        adverse_move_horizon=adverse_move(sigma, sc.horizon.seconds / step_seconds, coverage),
        adverse_move_ltv_buffer=adverse_move(sigma, sc.ltv_buffer_horizon.seconds / step_seconds, coverage),
        slippage_at_liquidation_size=slippage,
        observations=vol.observations,
    )


# ------------------------------------------------------------------------------------- lending core


def _core_recommendation(
    policy: Policy, symbols: tuple[str, ...], prices: np.ndarray, step_seconds: int, snapshot: VenueSnapshot, vol: VolEstimate,
    *, epoch: str, as_of: str, history: MarketData | None, task_map: TaskMap,
) -> Recommendation:
    core = policy.lending_core
    assert core is not None
    unknown = sorted(set(core.symbols) - {m.symbol for m in policy.markets})
    missing = [s for s in symbols if s not in core.symbols]
    if unknown or missing:
        raise PolicyError(
            f"lending_core.markets: {'no policy market ' + ', '.join(unknown) if unknown else 'no book for ' + ', '.join(missing)}",
            "give one entry per policy market: lending_core.markets: [{symbol: WETH, total_debt: '$500M'}, ...]",
        )
    scenarios = build_scenarios(policy, symbols, prices, step_seconds, vol, history)
    annual = vol.annualised()
    order = [m.symbol for m in policy.markets]
    tasks = [
        _MarketTask(policy, _priced(snapshot, symbol), scenarios.sources, np.ascontiguousarray(prices[:, j]),
                    step_seconds, order.index(symbol), vol.sigma_per_step[j], float(annual[j]), vol.observations)
        for j, symbol in enumerate(symbols)
    ]
    markets = task_map(_market_recommendation, tasks)
    return _recommendation(policy, epoch, as_of, _core_method(policy, vol, scenarios, step_seconds), tuple(markets), scenarios)


@dataclass(frozen=True, eq=False)
class _MarketTask:
    """One market's share of the epoch: picklable, so a `TaskMap` may run it in another process."""

    policy: Policy
    state: MarketState
    sources: tuple[PathSource, ...]  # the paths are drawn in the task: only this market's column is kept
    prices: np.ndarray
    step_seconds: int
    index: int  # position in the policy's markets: the key of its book and bootstrap seeds
    sigma_per_step: float
    sigma_annualised: float
    observations: int


def _market_recommendation(task: _MarketTask) -> MarketRecommendation:
    """Optimise, bound and limit one market (module-level, for a `TaskMap`); seeded by its policy index only."""
    policy, state = task.policy, task.state
    market = policy.market(state.symbol)
    paths = column_paths(task.sources, state.symbol)
    analysis, targets, ev = _analyse(policy, market, state, paths, task.prices, task.step_seconds, task.index)
    vol = VolEstimate((task.sigma_per_step,), task.step_seconds, "", task.observations)
    metrics = _metrics(policy, state, vol, 0, task.sigma_annualised, task.step_seconds, analysis.incentive.slippage)
    changes = changes_for_market(policy, market, state, targets)
    return MarketRecommendation(state.symbol, market.asset, metrics, changes, _with_figures(analysis, ev, changes, state))


def _core_method(policy: Policy, vol: VolEstimate, scenarios: EpochScenarios, step_seconds: int) -> tuple[str, ...]:
    core, ra = policy.lending_core, _appetite(policy)
    assert core is not None
    opt = core.optimiser
    text = {
        "vol": vol.model, "scenarios": "; ".join(f"{p.name} ({p.paths:,} paths)" for p in scenarios.parts),
        "paths": scenarios.paths, "steps": scenarios.steps, "step": f"{step_seconds // 60} min",
        "cascade": "" if opt.cascade else " (cascade off)", "liquidations": _SIMULATED_LIQUIDATIONS[liquidation_style(policy)],
        "objective": ra.objective.value, "var95": ra.var95_max,
        "evar99": ra.evar99_max, "insolvency": ra.insolvency_probability_max, "gas": opt.gas,
        "margin": ra.min_incentive_over_slippage, "buffer": opt.ltv_buffer, "below": opt.below_feasible, "step_lt": opt.lt_step,
        "resamples": opt.bootstrap_resamples, "level": opt.confidence, "h": opt.sensitivity_step,
    }
    return tuple(line.format(**text) for line in CORE_METHOD)


def liquidation_style(policy: Policy) -> LiquidationStyle:
    """How the simulator liquidates this venue's positions: whole for Compound v3 (absorb), Aave's close factor otherwise."""
    return _LIQUIDATION_STYLE.get(policy.venue.protocol, LiquidationStyle.AAVE)


def _bps(ratio: object, rounding: str) -> int:
    return ratio.to_bps(rounding).value  # type: ignore[attr-defined]


def _problem(policy: Policy, market: Market, state: MarketState, paths: np.ndarray, index: int) -> tuple[MarketProblem, Incentive]:
    core, ra = policy.lending_core, _appetite(policy)
    assert core is not None
    if market.liquidity is None:
        raise PolicyError(f"markets.{market.symbol}: no liquidity block", "the lending core needs depth, impact and liquidation_size")
    depth = DepthCurve.from_units(market.liquidity.depth, market.liquidity.impact)
    fee = state.liquidation_protocol_fee.as_float()
    bounds = policy.bounds_for(market)
    gas = core.optimiser.gas.as_float()
    incentive = incentive_bonus(depth, market.liquidity.liquidation_size.as_float(), gas, ra.min_incentive_over_slippage.as_float(), fee,
                                (_bps(bounds.liquidation_bonus.min, "up"), _bps(bounds.liquidation_bonus.max, "down")))
    shape, entry = core.shape(market.symbol), core.market(market.symbol)
    assert entry is not None  # checked for every market before the run
    book = BookModel(shape.positions, entry.total_debt.as_float(), shape.health_factor.median,
                     shape.health_factor.sigma, shape.size_sigma, shape.whales, shape.whale_share.as_float(),
                     (policy.scenarios.seed, _BOOK_KEY, index))
    problem = MarketProblem(
        name=market.symbol, price_usd=float(state.price_usd), protocol_fee=fee, gas_usd=gas, depth=depth, book=book,  # type: ignore[arg-type]
        paths=paths, limits=RiskLimits(ra.var95_max.as_float(), ra.evar99_max.as_float(), ra.insolvency_probability_max.as_float()),
        bonus_bps=incentive.bonus_bps, ltv_buffer_bps=_bps(core.optimiser.ltv_buffer, "up"),
        lt_bounds=(_bps(bounds.liquidation_threshold.min, "up"), _bps(bounds.liquidation_threshold.max, "down")),
        ltv_bounds=(_bps(bounds.ltv.min, "up"), _bps(bounds.ltv.max, "down")), cascade=core.optimiser.cascade,
        style=liquidation_style(policy),
    )
    return problem, incentive


def _analyse(policy: Policy, market: Market, state: MarketState, paths: np.ndarray, history: np.ndarray, step_seconds: int,
             index: int) -> tuple[LendingAnalysis, RuleTargets, Evaluator]:
    """Optimise one market, then its intervals, sensitivities, caps and peers; `history` is its lookback prices (T,)."""
    core, ra = policy.lending_core, _appetite(policy)
    assert core is not None and market.liquidity is not None
    opt = core.optimiser
    problem, incentive = _problem(policy, market, state, np.ascontiguousarray(paths), index)
    best = optimise(problem, step_bps=_bps(opt.lt_step, "down"), below_feasible=opt.below_feasible)
    ev, target = best.evaluator, best.target
    level = opt.confidence.as_float()
    intervals, var_interval, agreement = [], None, None
    if opt.bootstrap_resamples > 0:
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([policy.scenarios.seed, _BOOTSTRAP_KEY, index])))
        boot = bootstrap(ev.curve(), problem.limits, target, ltv_buffer_bps=problem.ltv_buffer_bps,
                         resamples=opt.bootstrap_resamples, level=level, rng=rng)
        intervals += [boot.threshold, boot.ltv]
        var_interval, agreement = (boot.var95_low, boot.var95_high), boot.agreement
    intervals.append(fixed_interval("liquidation_bonus", target.bonus_bps, level, "set by the liquidity inputs (incentive), not by the paths"))
    price = float(state.price_usd)  # type: ignore[arg-type]
    supply, borrow, absorbable = liquidity_caps(problem.depth, target.bonus_bps / BPS, price, market.borrow_share_of_supply.as_float())
    sens = sensitivities(ev, target, _bps(opt.sensitivity_step, "down"))
    peers = _peers(policy, problem, target.lt_bps, target.ltv_bps, target.bonus_bps, history, step_seconds)
    cap_reason = f"liquidity: 2 x ${absorbable:,.0f} absorbable within the bonus' price impact"
    targets = RuleTargets(
        ltv=target.ltv_bps / BPS, liquidation_threshold=target.lt_bps / BPS, liquidation_bonus=target.bonus_bps / BPS,
        supply_cap_tokens=supply, borrow_cap_tokens=borrow, adverse_move_horizon=math.nan, adverse_move_ltv_buffer=math.nan,
        slippage=incentive.slippage,
        reasons=(
            ("liquidation_threshold", (best.binding,)),
            ("ltv", (f"buffer: LTV = LT - {problem.ltv_buffer_bps / 100:.2f}%",)),
            ("liquidation_bonus", (incentive.reason,)),
            ("supply_cap", (cap_reason,)),
            ("borrow_cap", (f"{cap_reason}; borrow share {market.borrow_share_of_supply}",)),
        ),
    )
    for name, cap in (("supply_cap", supply), ("borrow_cap", borrow)):
        intervals.append(fixed_interval(name, round_cap_down(cap), level, "set by the liquidity inputs, not by the paths"))
    figures = RiskFigures.of(ev.loss(target.lt_bps, target.ltv_bps, target.bonus_bps))
    analysis = LendingAnalysis(
        objective=ra.objective.value, objective_value=objective_value(ra.objective.value, target.ltv_bps / BPS), binding=best.binding,
        feasible=best.feasible,
        limits=(("evar99_share", problem.limits.evar99_share), ("insolvency_probability", problem.limits.insolvency_probability),
                ("var95_share", problem.limits.var95_share)),
        incentive=incentive, absorbable_usd=absorbable, current=None, proposed=figures, target=figures,
        candidates=tuple(sorted({p.lt_bps: p for p in (*best.grid, *best.refined, *((best.looser,) if best.looser else ()))}.values(),
                                key=lambda p: -p.lt_bps)),
        intervals=tuple(intervals), var95_interval=var_interval, agreement=agreement, sensitivities=sens, peers=peers,
        simulations=0, bad_debt_current_usd=None, bad_debt_proposed_usd=None,
    )
    return analysis, targets, ev


def _peers(policy: Policy, problem: MarketProblem, lt: int, ltv: int, bonus: int, history: np.ndarray, step_seconds: int) -> Peers:
    ra = _appetite(policy)
    book = problem.book.build(problem.name, problem.price_usd, lt / BPS, ltv / BPS)
    trigger = book.debt_usd / (book.collateral * problem.price_usd * lt / BPS)
    riskdao = riskdao_collateral_factor(problem.paths, trigger, book.debt_usd * (1 + bonus / BPS), problem.depth, bonus / BPS,
                                        ra.coverage.as_float())
    drawdown, windows = monthly_drawdown_quantile(history, step_seconds, 0.99)
    return Peers(riskdao, gauntlet_lltv(problem.book.total_debt_usd, drawdown, windows, problem.depth), morpho_lif(lt / BPS))


def _with_figures(analysis: LendingAnalysis, ev: Evaluator, changes: tuple, state: MarketState) -> LendingAnalysis:
    """Add the figures at today's and at the proposed parameters (same paths and draws) to the analysis."""
    by = {c.parameter.value: c for c in changes}
    proposed = tuple(by[k].proposed.value for k in ("liquidation_threshold", "ltv", "liquidation_bonus"))
    loss_proposed = ev.loss(*proposed)
    cur = (state.liquidation_threshold.value, state.ltv.value, state.liquidation_bonus.value)
    loss_current = None
    if 0 < cur[0] <= BPS and 0 <= cur[1] <= cur[0] and cur[2] > 0 and cur[0] * (BPS + cur[2]) <= BPS * BPS:
        loss_current = ev.loss(*cur)
    return replace(
        analysis,
        current=None if loss_current is None else RiskFigures.of(loss_current),
        proposed=RiskFigures.of(loss_proposed),
        simulations=ev.simulations,
        bad_debt_current_usd=None if loss_current is None else loss_current.bad_debt_usd,
        bad_debt_proposed_usd=loss_proposed.bad_debt_usd,
    )
