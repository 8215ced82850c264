"""Policy + prices (+ funding, option books) → recommendation of a perps or options venue.

Pure: arrays and frozen models in, a frozen `DerivativeRecommendation` out. Per market:

* perps — `risk.perps.recommend_perp_margin`: MMF (backtested long and short), IMF, liquidation fee and
  OI caps from the order book's depth;
* options — `risk.options_*`: the scan range and vol shocks "now", the scenario margin of the reference
  book, and `backtest_option_margin` of that book on the history;
* either, with a ``hedging:`` section — `risk.hedging_backtest.recommend_hedge`: hedge ratio and
  rebalance band, with every candidate's backtest.

Quantising is on the safe side: margins, fees, scan range and vol shocks up to whole basis points, caps
down to three significant figures in whole USD; hedge ratio and band are grid values. Then the
per-update change limits move the current value toward the target; a parameter whose current value the
policy does not give is proposed at its target, and its change says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from risk.backtest import Side, TailKind, horizon_quantiles, standardised_moves
from risk.derivative_inputs import FundingSeries
from risk.errors import PolicyError, RiskInputError
from risk.hedging import HedgeCosts, candidate_grid
from risk.hedging_backtest import IMPLIED_VOL_NOTE, HedgeResult, PerpVault, recommend_hedge
from risk.limits import round_cap_down
from risk.market import MarketData
from risk.options import DAYS_PER_YEAR
from risk.options_backtest import OptionTemplate, backtest_option_margin
from risk.options_calibration import recommend_scan_range, recommend_vol_shock
from risk.options_margin import ScanRange, ScenarioGrid, deribit_grid, scenario_margin, span_grid
from risk.perps import PerpLiquidity, PerpMarginRecommendation, recommend_perp_margin
from risk.perps_oi import oi_caps_from_liquidity
from risk.policy import ChangeLimit, Policy, VenueKind
from risk.policy_derivatives import (
    DerivativeParameter,
    GridKind,
    HedgingSpec,
    OptionBookSpec,
    OptionLeg,
    OptionMarket,
    PerpMarket,
    derivative_section,
)
from risk.recommendation_derivatives import (
    BacktestFigures,
    BacktestSeries,
    DerivativeChange,
    DerivativeMarketRecommendation,
    DerivativeRecommendation,
    OptionFigures,
    ParameterValue,
    PerpFigures,
)
from risk.units import Bps, Ratio, Usd
from risk.vol import EWMA

D = DerivativeParameter
YEAR_SECONDS = DAYS_PER_YEAR * 86400
MAX_VOL_DOWN = Bps(9999)  # a vol shock of -100% would leave no volatility: the grid refuses it

METHOD = {
    "perps": (
        "Volatility: EWMA of hourly log returns; tail: the market's tail model of standardised horizon moves.",
        "MMF = largest adverse move (long or short) over the liquidation horizon at the coverage target, plus the funding paid over it, plus the liquidation fee.",
        "Liquidation fee = slippage of the stress liquidation size (linear depth curve) + incentive; OI caps: the lower cap's liquidation moves the price by the fee, the upper is a multiple of it.",
        "IMF = MMF x (1 + initial buffer). Backtest: the move part of the MMF set every horizon from data known then, against the realised move (Kupiec, Christoffersen, traffic light).",
    ),
    "options": (
        "Volatility: EWMA of hourly log returns; realised volatility stands in for implied volatility (no implied-volatility history).",
        "Scan range = two-sided quantile move over the scan horizon at the coverage target; vol shocks = quantiles of the change of volatility over the horizon.",
        "Margin = worst loss of the book over the scenario grid (SPAN 16 scenarios or Deribit buckets with an extended table).",
        "Backtest: the reference book re-struck every horizon, its scenario margin against its realised loss (Kupiec, Christoffersen, traffic light).",
    ),
}
HEDGE_METHOD = (
    "Hedging: the vault hedges a share of its delta and rebalances when the hedge drifts past the band; the loss at coverage "
    "comes from the book revalued at the coverage moves, the cost from the diffusion of the hedge target; the cheapest "
    "(ratio, band) meeting the loss target within the cost budget is proposed, and every candidate is replayed on the history."
)


def _steps(duration_seconds: int, step_seconds: int, what: str) -> int:
    if duration_seconds % step_seconds or duration_seconds < step_seconds:
        raise PolicyError(f"{what} of {duration_seconds}s is not a whole number of {step_seconds}s steps", "use a multiple of the data's step")
    return duration_seconds // step_seconds


def _limit_text(limit: ChangeLimit | None) -> str:
    if limit is None:
        return "no limit in the policy"
    if limit.max_absolute is not None:
        return f"±{limit.max_absolute.value * 100:.2f} pp per update, every {limit.min_delay}"
    return f"±{limit.max_relative.value * 100:.0f}% per update, every {limit.min_delay}"  # type: ignore[union-attr]


def _step(current: ParameterValue, target: ParameterValue, limit: ChangeLimit, what: str) -> tuple[ParameterValue, int]:
    """Move toward the target by at most the limit; the value and the number of updates to the target."""
    if isinstance(current, Bps) and isinstance(target, Bps):
        delta = target.value - current.value
        if limit.max_absolute is not None:
            step = limit.max_absolute.to_bps("down").value
        else:
            step = int(Decimal(current.value) * limit.max_relative.value)  # type: ignore[union-attr]
        if delta == 0 or step <= 0:  # a zero limit pins the parameter
            return current, 0
        return Bps(current.value + max(-step, min(step, delta))), math.ceil(abs(delta) / step)
    assert isinstance(current, Usd) and isinstance(target, Usd)
    if limit.max_relative is None:
        raise PolicyError(f"{what}: a USD cap needs a relative change limit (max_relative)", "e.g. max_relative: '100%'")
    if target == current:
        return current, 0
    rel = limit.max_relative.value
    lo, hi = current.value * (1 - rel) if rel < 1 else Decimal(0), current.value * (1 + rel)
    proposed = Usd(max(lo, min(hi, target.value)).to_integral_value(rounding="ROUND_FLOOR"))
    if proposed == target or current.value <= 0 or rel <= 0:
        return proposed, 1 if proposed == target else 0
    factor = float(1 + rel) if target.value > current.value else float(1 - rel)
    updates = math.ceil(math.log(float(target.value / current.value)) / math.log(factor)) if factor > 0 and target.value > 0 else 1
    return proposed, max(updates, 1)


def _current(market: PerpMarket | OptionMarket, parameter: DerivativeParameter) -> ParameterValue | None:
    raw = None if market.current is None else getattr(market.current, parameter.value)
    if raw is None or isinstance(raw, Usd):
        return raw
    return raw.to_bps()  # on-chain values are whole basis points; a finer one is refused with its hint


def _change(market: PerpMarket | OptionMarket, parameter: DerivativeParameter, target: ParameterValue, binding: tuple[str, ...],
            backtests: tuple[BacktestFigures, ...] = ()) -> DerivativeChange:
    current = _current(market, parameter)
    limit = getattr(market.change_limits, parameter.value)
    if current is None:
        return DerivativeChange(market.symbol, parameter, None, target, target, _limit_text(limit), binding or ("rule",), 1, backtests,
                                "no current value in the policy: proposed = target")
    if limit is None:
        updates = 0 if target == current else 1
        return DerivativeChange(market.symbol, parameter, current, target, target, _limit_text(limit), binding or ("rule",), updates, backtests)
    proposed, updates = _step(current, target, limit, f"{market.symbol} {parameter}")
    if proposed != target:
        binding = (*binding, f"change limit: {_limit_text(limit)}")
    return DerivativeChange(market.symbol, parameter, current, proposed, target, _limit_text(limit), binding or ("rule",), updates, backtests)


def _sigma(closes: np.ndarray, half_life_steps: float) -> np.ndarray:
    return np.sqrt(EWMA(half_life_steps).variance_path(np.diff(np.log(closes)))[:, 0])


def _template(name: str, legs: tuple[OptionLeg, ...]) -> OptionTemplate:
    return OptionTemplate(
        name=name, moneyness=tuple(leg.moneyness.as_float() for leg in legs),
        expiry_years=tuple(leg.expiry.seconds / YEAR_SECONDS for leg in legs),
        is_call=tuple(leg.kind == "call" for leg in legs), quantity=tuple(float(leg.quantity) for leg in legs),
    )


def _legs(spec: OptionBookSpec, symbol: str, role: str, books: Mapping[str, Mapping[str, tuple[OptionLeg, ...]]]) -> tuple[OptionLeg, ...]:
    if spec.legs is not None:
        return spec.legs
    try:
        return books[symbol][role]
    except KeyError:
        raise RiskInputError(f"{symbol}: the {role} book file {spec.file} was not loaded", "pass the pinned book files") from None


def _hedge(market: PerpMarket | OptionMarket, closes: np.ndarray, step: int, horizon: int, vault: PerpVault | OptionTemplate) -> HedgeResult:
    spec: HedgingSpec = market.hedging  # type: ignore[assignment]
    ratios, bands = candidate_grid(spec.ratios, spec.bands)
    return recommend_hedge(
        closes, vault=vault, step_seconds=step,
        horizon_steps=horizon if spec.horizon is None else _steps(spec.horizon.seconds, step, f"{market.symbol} hedging horizon"),
        coverage=spec.coverage or market.coverage, ratios=ratios, bands=bands, max_loss=spec.max_loss, cost_budget=spec.cost_budget,
        costs=HedgeCosts.of(spec.fee, spec.depth, spec.impact), half_life_steps=market.volatility_half_life.seconds / step,
        tail=market.tail.tail(), burn_in_steps=market.burn_in.seconds // step,
    )


def _hedge_changes(market: PerpMarket | OptionMarket, result: HedgeResult) -> tuple[DerivativeChange, ...]:
    figures = (BacktestFigures.of("hedged loss vs the model's bound, every horizon", result.backtest.chosen_backtest),)
    why = (f"hedging: {result.choice.reason}",)
    return (
        _change(market, D.HEDGE_RATIO, Bps.from_float(result.choice.hedge_ratio, "nearest"), why, figures),
        _change(market, D.REBALANCE_BAND, Bps.from_float(result.choice.band, "nearest"), why, figures),
    )


def _consistent(changes: list[DerivativeChange]) -> list[DerivativeChange]:
    """The venue's rules on what this update writes: IMF >= MMF, and a liquidation fee below the MMF.

    Per-parameter change limits can break them (MMF limited up less than IMF, a fee cut less than the
    MMF); the dependent value then moves with the MMF and says so.
    """
    by = {c.parameter: i for i, c in enumerate(changes)}
    mmf = changes[by[D.MMF]].proposed
    assert isinstance(mmf, Bps)
    out = list(changes)
    rules = ((D.IMF, lambda v: v < mmf, mmf, "venue rule: IMF >= MMF"),
             (D.LIQUIDATION_FEE, lambda v: v >= mmf, Bps(mmf.value - 1), "venue rule: liquidation fee < MMF"))
    for parameter, broken, fixed, why in rules:
        if parameter in by and broken(out[by[parameter]].proposed):
            c = out[by[parameter]]
            out[by[parameter]] = dataclasses.replace(c, proposed=fixed, binding=(*c.binding, why))
    return out


def _move_series(rec: PerpMarginRecommendation, side: Side) -> BacktestSeries:
    """One side's backtested move margins and realised adverse moves, per period (the report charts them)."""
    path = rec.path
    assert path is not None  # recommend_perp_margin always records it
    losses, margins = (-path.realised, path.move_long) if side is Side.LONG else (path.realised, path.move_short)
    return BacktestSeries("fraction", rec.horizon_steps, path.at + 1, losses, margins)  # `at` indexes closes[1:]


def recommend_perp_market(market: PerpMarket, closes: np.ndarray, step: int, funding: FundingSeries | None, as_of: int) -> DerivativeMarketRecommendation:
    """One perpetual market: margins, fee, caps (and hedge) from its closes (USD, fixed step of ``step`` seconds)."""
    horizon = _steps(market.liquidation_horizon.seconds, step, f"{market.symbol} liquidation horizon")
    liq = market.liquidity
    liquidity = None if liq is None else PerpLiquidity(liq.depth, liq.impact, liq.liquidation_size, liq.incentive)
    rates = None
    if market.funding is not None:
        if funding is None:
            raise RiskInputError(f"{market.symbol}: the policy names a funding file but none was loaded", "pass the pinned funding history")
        rates = funding.until(as_of)
    rec = recommend_perp_margin(
        closes, step_seconds=step, horizon_steps=horizon, coverage=market.coverage, initial_buffer=market.initial_buffer,
        half_life_steps=market.volatility_half_life.seconds / step, tail=market.tail.tail(), burn_in_steps=market.burn_in.seconds // step,
        liquidity=liquidity, funding_rates=rates, funding_interval_seconds=60 * 60 * 8 if market.funding is None else market.funding.interval.seconds,
        symbol=market.symbol,
    )
    caps = rec.oi_caps
    if caps is not None and liq is not None:
        caps = oi_caps_from_liquidity(liq.depth, liq.impact, Ratio.from_float(rec.liquidation_fee), market.oi_caps.upper_over_lower.as_float())
    move = (BacktestFigures.of("MMF move, long side", rec.backtest_long, _move_series(rec, Side.LONG)),
            BacktestFigures.of("MMF move, short side", rec.backtest_short, _move_series(rec, Side.SHORT)))
    mmf = Bps.from_float(rec.mmf, "up")
    imf = max(Bps.from_float(rec.imf, "up"), mmf)
    changes = [_change(market, D.MMF, mmf, (), move), _change(market, D.IMF, imf, ("IMF = MMF x (1 + buffer)",), move)]
    if liq is not None:
        changes.append(_change(market, D.LIQUIDATION_FEE, Bps.from_float(rec.liquidation_fee, "up"), ("slippage at the liquidation size + incentive",)))
        if caps is not None:
            for parameter, usd in ((D.OI_CAP_LOWER, caps.lower_usd), (D.OI_CAP_UPPER, caps.upper_usd)):
                changes.append(_change(market, parameter, Usd(Decimal(round_cap_down(usd))), ("depth within the liquidation fee's slippage",)))
    changes = _consistent(changes)
    hedge = None
    if market.hedging is not None:
        hedge = _hedge(market, closes, step, horizon, PerpVault(market.hedging.skew.as_float()))
        changes.extend(_hedge_changes(market, hedge))
    steps_per_year = YEAR_SECONDS / step
    figures = PerpFigures(
        price_usd=float(closes[-1]), step_seconds=step, horizon_steps=horizon, sigma_per_step=rec.sigma_per_step,
        sigma_annualised=rec.sigma_per_step * math.sqrt(steps_per_year), volatility_model=rec.volatility_model, tail=rec.tail,
        move_long=rec.move_long, move_short=rec.move_short, funding_long=rec.funding_long, funding_short=rec.funding_short,
        slippage=rec.slippage, mmf=rec.mmf, imf=rec.imf, liquidation_fee=rec.liquidation_fee,
        oi_cap_lower_usd=None if caps is None else caps.lower_usd, oi_cap_upper_usd=None if caps is None else caps.upper_usd,
    )
    notes = (() if liq is not None else ("no liquidity in the policy: no liquidation fee or OI caps",)) + (
        () if market.funding is not None else ("no funding history in the policy: the MMF includes no funding",))
    return DerivativeMarketRecommendation(market.symbol, "perp", figures, tuple(changes), hedge, notes)


def _grid_factory(market: OptionMarket):  # type: ignore[no-untyped-def]
    fraction = market.extreme_fraction.as_float()
    if market.grid is GridKind.DERIBIT:
        def deribit(scan: ScanRange, up: float, down: float, look_ahead: float) -> ScenarioGrid:
            return deribit_grid(scan, up, down, extended_fraction=fraction, horizon_years=look_ahead)
        return deribit

    def span(scan: ScanRange, up: float, down: float, look_ahead: float) -> ScenarioGrid:
        return span_grid(scan, up, vol_down=down, extreme_fraction=fraction, horizon_years=look_ahead)
    return span


def recommend_option_market(
    market: OptionMarket, closes: np.ndarray, step: int, books: Mapping[str, Mapping[str, tuple[OptionLeg, ...]]] | None = None
) -> DerivativeMarketRecommendation:
    """One option market: scan range and vol shocks now, with the reference book's margin backtest (and hedge)."""
    horizon = _steps(market.scan_horizon.seconds, step, f"{market.symbol} scan horizon")
    steps_per_year = YEAR_SECONDS / step
    half_life = market.volatility_half_life.seconds / step
    tail = market.tail.tail()
    books = books or {}
    reference = _template(f"{market.symbol} reference book", _legs(market.reference_book, market.symbol, "reference", books))
    factory = _grid_factory(market)
    bt = backtest_option_margin(
        closes, steps_per_year=steps_per_year, horizon_steps=horizon, coverage=market.coverage, template=reference,
        half_life_steps=half_life, tail=tail, burn_in_steps=market.burn_in.seconds // step, grid_factory=factory,
    )
    sig = _sigma(closes, half_life)
    c = market.coverage.as_float()
    lp = np.log(closes[1:])
    now = np.array([lp.size - 1])
    probs = ((1.0 - c) / 2.0, (1.0 + c) / 2.0)
    if tail.kind is TailKind.FILTERED_HISTORICAL:
        q_lo, q_hi = horizon_quantiles(tail, probs, standardised_moves(lp, sig, horizon), now, horizon)
        quantiles = (float(q_lo[0]), float(q_hi[0]))
    else:
        quantiles = (tail.parametric_quantile(probs[0]), tail.parametric_quantile(probs[1]))
    sigma_annual = float(sig[-1]) * math.sqrt(steps_per_year)
    look_ahead = horizon / steps_per_year
    scan = recommend_scan_range(sigma_annual, look_ahead * DAYS_PER_YEAR, market.coverage, quantiles=quantiles)
    vol_up, vol_down = recommend_vol_shock(sig, horizon, market.coverage)
    book = reference.book(float(closes[-1]), sigma_annual)
    margin = scenario_margin(book, factory(scan, vol_up, vol_down, look_ahead))
    series = BacktestSeries("USD", horizon, bt.at + 1, bt.losses, bt.margins)  # `at` indexes closes[1:]
    figures_bt = (BacktestFigures.of(f"scenario margin of the reference book ({bt.grid}), every horizon", bt.backtest, series),)
    down_bps = Bps.from_float(vol_down, "up")
    changes = [
        _change(market, D.SCAN_RANGE, Bps.from_float(scan.widest, "up"), ("wider side of the two-sided quantile move",), figures_bt),
        _change(market, D.VOL_SHOCK_UP, Bps.from_float(vol_up, "up"), ("quantile of the volatility change over the horizon",), figures_bt),
        _change(market, D.VOL_SHOCK_DOWN, min(down_bps, MAX_VOL_DOWN),
                ("quantile of the volatility change over the horizon",) + (("cap: below 100%",) if down_bps > MAX_VOL_DOWN else ()), figures_bt),
    ]
    hedge = None
    if market.hedging is not None:
        vault = _legs(market.hedging.book, market.symbol, "vault", books)
        hedge = _hedge(market, closes, step, horizon, _template(f"{market.symbol} vault book", vault))
        changes.extend(_hedge_changes(market, hedge))
    figures = OptionFigures(
        price_usd=float(closes[-1]), step_seconds=step, horizon_steps=horizon, sigma_per_step=float(sig[-1]), sigma_annualised=sigma_annual,
        volatility_model=f"EWMA, half-life {half_life:g} steps", implied_vol_source=IMPLIED_VOL_NOTE, tail=tail.describe(), grid=bt.grid,
        scan_up=scan.up, scan_down=scan.down, vol_shock_up=vol_up, vol_shock_down=vol_down, reference_book=reference.name,
        reference_margin_usd=margin.margin, reference_margin_over_notional=margin.margin / float(np.abs(book.quantity) @ book.forward),
        backtest_mean_scan_range=bt.mean_scan_range, backtest_mean_vol_shock_up=bt.mean_vol_shock_up,
        backtest_mean_margin_over_notional=bt.mean_margin_over_notional,
    )
    return DerivativeMarketRecommendation(market.symbol, "option", figures, tuple(changes), hedge, (IMPLIED_VOL_NOTE,))


def recommend_derivatives(
    policy: Policy, market: MarketData, *, funding: Mapping[str, FundingSeries], books: Mapping[str, Mapping[str, tuple[OptionLeg, ...]]],
    epoch: str, as_of: str,
) -> DerivativeRecommendation:
    """Recommend every market of a perps or options venue.

    Parameters
    ----------
    policy : Policy
        A perps or options venue's policy.
    market : MarketData
        USD prices of every market on one fixed grid (the pinned ``inputs/prices.csv``); the last row is "now".
    funding : mapping of symbol to FundingSeries
        Funding histories of the perp markets that name one (only rates up to the last price are used).
    books : mapping of symbol to {"reference" | "vault": legs}
        Option books of the option markets, as parsed from the policy or its pinned book files.
    epoch, as_of : str
        Labels written into the recommendation (no clock is read).
    """
    kind = policy.venue.kind
    if kind is VenueKind.LENDING:
        raise RiskInputError(f"venue {policy.venue.name} is a lending venue", "use risk.recommend.recommend")
    section = derivative_section(policy)
    end = int(market.times[-1])
    out = []
    for m in section.markets:
        closes = market.series(m.symbol)
        if isinstance(m, PerpMarket):
            out.append(recommend_perp_market(m, closes, market.step_seconds, funding.get(m.symbol), end))
        else:
            out.append(recommend_option_market(m, closes, market.step_seconds, books))
    notes = (IMPLIED_VOL_NOTE,) if kind is VenueKind.OPTIONS else ()
    method = METHOD[kind.value] + ((HEDGE_METHOD,) if any(r.hedge is not None for r in out) else ())
    return DerivativeRecommendation(
        venue=policy.venue.name, protocol=policy.venue.protocol.value, chain_id=policy.venue.chain_id, kind=kind.value,
        epoch=epoch, as_of=as_of, method=method, notes=notes, markets=tuple(out),
    )
