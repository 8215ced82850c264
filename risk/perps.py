"""Margin recommendation for one perpetual market, with the backtest of its move component on history.

All fractions are of position notional (0.03 = 3%); USD amounts are plain floats in USD.

`recommend_perp_margin` puts the parts together: the maintenance move and funding
(`risk.perps_margin`), the liquidation fee that pays the liquidator's slippage at the liquidation size
(`risk.perps_liquidation`), the initial margin buffer over them and the OI caps (`risk.perps_oi`).
`margin_path` sets the move margin at every non-overlapping horizon start from rolling EWMA volatility,
so that it can be compared with the moves that followed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from risk.backtest import (
    NORMAL,
    MarginBacktest,
    Side,
    Tail,
    TailKind,
    backtest_margin,
    coverage_float,
    horizon_quantiles,
    standardised_moves,
)
from risk.errors import RiskInputError
from risk.perps_inputs import ratio_float
from risk.perps_liquidation import NO_INCENTIVE, liquidation_fee, slippage_at_size
from risk.perps_margin import funding_cost, initial_margin, maintenance_margin
from risk.perps_oi import OiCaps, oi_caps_from_liquidity
from risk.units import Ratio, Usd
from risk.vol import EWMA


@dataclass(frozen=True, slots=True)
class PerpLiquidity:
    """Order-book depth for liquidations: ``depth`` USD moves the price by ``impact``."""

    depth: Usd
    impact: Ratio
    liquidation_size: Usd
    incentive: Ratio = NO_INCENTIVE


@dataclass(frozen=True, slots=True)
class PerpMarginRecommendation:
    """Recommended margin of one perpetual market, with the backtest of its move component.

    Fractions are of notional. ``mmf = max(move_long + funding_long, move_short + funding_short) + fee``.
    The backtests compare ``move_*`` as it would have been set at each non-overlapping horizon start
    against the realised price move over that horizon; funding and fee are not part of them.
    """

    symbol: str
    coverage: float
    horizon_steps: int
    step_seconds: int
    volatility_model: str
    tail: str
    sigma_per_step: float
    move_long: float
    move_short: float
    funding_long: float
    funding_short: float
    slippage: float | None
    liquidation_fee: float
    mmf: float
    imf: float
    oi_caps: OiCaps | None
    backtest_long: MarginBacktest
    backtest_short: MarginBacktest
    path: MarginPath | None = field(default=None, compare=False, repr=False)  # the backtests' periods, for the report's charts


@dataclass(frozen=True, slots=True, eq=False)
class MarginPath:
    """Margins as they would have been set at each decision index, and the realised moves after them."""

    at: np.ndarray
    move_long: np.ndarray
    move_short: np.ndarray
    realised: np.ndarray


def _checked_closes(closes: np.ndarray) -> np.ndarray:
    p = np.asarray(closes, dtype=np.float64)
    if p.ndim != 1 or p.size < 3:
        raise RiskInputError(f"price series of shape {p.shape}", "need a 1-D series of at least three closes")
    bad = ~np.isfinite(p) | (p <= 0)
    if np.any(bad):
        raise RiskInputError(f"close {int(np.flatnonzero(bad)[0])} is {p[bad][0]!r}", "prices must be finite and > 0")
    return p


def _check_horizon(horizon_steps: int) -> None:
    if isinstance(horizon_steps, bool) or not isinstance(horizon_steps, int) or horizon_steps < 1:
        raise RiskInputError(f"horizon of {horizon_steps!r} steps", "use a whole number of steps >= 1")


def _log_prices_and_sigma(closes: np.ndarray, half_life_steps: float) -> tuple[np.ndarray, np.ndarray]:
    """Log prices from the second close on, and the EWMA volatility per step known at each of them."""
    p = _checked_closes(closes)
    # variance_path[t] follows the return ending at close t+1, so it is the forecast known at that close.
    sig = np.sqrt(EWMA(half_life_steps).variance_path(np.diff(np.log(p)))[:, 0])
    return np.log(p[1:]), sig


def margin_path(
    closes: np.ndarray, horizon_steps: int, coverage: Ratio, *, half_life_steps: float = 72.0,
    tail: Tail = NORMAL, burn_in_steps: int = 720,
) -> MarginPath:
    """Move margins set every ``horizon_steps`` (non-overlapping) from rolling EWMA volatility.

    Parameters
    ----------
    closes : array
        Prices in USD on a fixed step.
    horizon_steps : int
        Liquidation horizon in steps; also the spacing of decisions.
    coverage : Ratio
        Coverage target per side.
    half_life_steps : float
        EWMA half-life in steps.
    tail : Tail
        Tail model of the standardised horizon move.
    burn_in_steps : int
        Steps of history before the first decision (EWMA warm-up; filtered history).
    """
    c = coverage_float(coverage)
    _check_horizon(horizon_steps)
    lp, sig = _log_prices_and_sigma(closes, half_life_steps)
    start = burn_in_steps
    if tail.kind is TailKind.FILTERED_HISTORICAL:
        start = max(start, tail.min_history + horizon_steps - 1)
    at = np.arange(start, lp.size - horizon_steps, horizon_steps)
    if at.size < 2:
        raise RiskInputError(
            f"{lp.size + 1} prices leave {at.size} backtest period(s) after a burn-in of {start} steps",
            "use a longer history or a shorter burn-in",
        )
    std = standardised_moves(lp, sig, horizon_steps)
    q_lo, q_hi = horizon_quantiles(tail, (1.0 - c, c), std, at, horizon_steps)
    s = sig[at] * math.sqrt(horizon_steps)
    realised = np.expm1(lp[at + horizon_steps] - lp[at])
    return MarginPath(at, -np.expm1(np.minimum(q_lo, 0) * s), np.expm1(np.maximum(q_hi, 0) * s), realised)


def recommend_perp_margin(
    closes: np.ndarray,
    *,
    step_seconds: int,
    horizon_steps: int,
    coverage: Ratio,
    initial_buffer: Ratio,
    half_life_steps: float = 72.0,
    tail: Tail = NORMAL,
    burn_in_steps: int = 720,
    liquidity: PerpLiquidity | None = None,
    funding_rates: np.ndarray | None = None,
    funding_interval_seconds: int = 8 * 3600,
    symbol: str = "",
) -> PerpMarginRecommendation:
    """Maintenance and initial margin for one perpetual market, with its backtest on ``closes``.

    Parameters
    ----------
    closes : array
        Price history in USD on a fixed step of ``step_seconds``; the last close is "now".
    step_seconds, horizon_steps : int
        Step length in seconds and liquidation horizon in steps.
    coverage : Ratio
        Coverage target per side (e.g. 99%).
    initial_buffer : Ratio
        IMF over MMF, relative (see `initial_margin`).
    half_life_steps, tail, burn_in_steps
        Volatility model and tail model (see `margin_path`).
    liquidity : PerpLiquidity, optional
        Depth for the liquidation fee and OI caps; without it the fee is 0 and there are no caps.
    funding_rates : array, optional
        Funding history (fraction per ``funding_interval_seconds``); adds the funding paid over the horizon.

    Returns
    -------
    PerpMarginRecommendation
        Fractions of notional for "now" (the last close) and the long and short backtests of the move
        component over the history (non-overlapping horizons after the burn-in).
    """
    if step_seconds <= 0:
        raise RiskInputError(f"step of {step_seconds}s", "pass the data's step, e.g. 3600")
    path = margin_path(closes, horizon_steps, coverage, half_life_steps=half_life_steps, tail=tail,
                       burn_in_steps=burn_in_steps)
    bt_long = backtest_margin(path.realised, path.move_long, Side.LONG, coverage)
    bt_short = backtest_margin(path.realised, path.move_short, Side.SHORT, coverage)

    # "Now": the forecast after the last return, with every completed move in the filtered history.
    c = coverage_float(coverage)
    lp, sig = _log_prices_and_sigma(closes, half_life_steps)
    now = np.array([sig.size - 1])
    std = standardised_moves(lp, sig, horizon_steps)
    q_lo, q_hi = horizon_quantiles(tail, (1.0 - c, c), std, now, horizon_steps)
    sigma_now = float(sig[-1])
    move_long = float(maintenance_margin(sigma_now, horizon_steps, coverage, side=Side.LONG, quantiles=(q_lo[0], q_hi[0])))
    move_short = float(maintenance_margin(sigma_now, horizon_steps, coverage, side=Side.SHORT, quantiles=(q_lo[0], q_hi[0])))

    f_long = f_short = 0.0
    if funding_rates is not None:
        periods = max(1, math.ceil(horizon_steps * step_seconds / funding_interval_seconds))
        f_long, f_short = funding_cost(funding_rates, periods, coverage)
    base = max(move_long + f_long, move_short + f_short)

    slip: float | None = None
    fee = 0.0
    caps: OiCaps | None = None
    if liquidity is not None:
        slip = slippage_at_size(liquidity.liquidation_size, liquidity.depth, liquidity.impact)
        wanted = base + slip + ratio_float(liquidity.incentive, "liquidation incentive")
        # Refuses a fee that would eat the whole (capped) margin: liquidations then create bad debt.
        fee = liquidation_fee(slip, min(1.0, wanted), liquidity.incentive)
        if fee > 0:  # with no slippage and no incentive there is no size limit to derive caps from
            caps = oi_caps_from_liquidity(liquidity.depth, liquidity.impact, Ratio.from_float(fee))
    mmf = min(1.0, base + fee)
    return PerpMarginRecommendation(
        symbol=symbol, coverage=c, horizon_steps=horizon_steps, step_seconds=step_seconds,
        volatility_model=f"EWMA, half-life {half_life_steps:g} steps", tail=tail.describe(), sigma_per_step=sigma_now,
        move_long=move_long, move_short=move_short, funding_long=f_long, funding_short=f_short, slippage=slip,
        liquidation_fee=fee, mmf=mmf, imf=initial_margin(mmf, initial_buffer), oi_caps=caps,
        backtest_long=bt_long, backtest_short=bt_short, path=path,
    )
