"""Margin for perpetual futures: maintenance, initial, OI-scaled initial, liquidation fee, OI caps.

All fractions are of position notional (0.03 = 3%); USD amounts are plain floats in USD.

* Maintenance margin (MMF) covers the adverse move over the liquidation horizon at the policy's
  coverage: for a long ``1 - exp(q_lo s)``, for a short ``exp(q_hi s) - 1``, with ``s = sigma sqrt(h)``
  and ``q`` the standardised quantiles of the tail model (`risk.backtest.Tail`). On top come the funding
  a position may pay while it waits to be liquidated (read from real funding history) and the
  liquidation fee, which pays the liquidator's slippage at the liquidation size.
* Initial margin (IMF) is the MMF plus a buffer; dYdX v4 writes MMF = IMF x maintenance fraction, so
  its 60% maintenance fraction is a buffer of 1/0.6 - 1 = 66.7%.
* OI-scaled IMF: flat up to the lower OI cap, then linear to 1.0 at the upper cap (dYdX liquidity tiers).
* OI caps: the lower cap is the open interest whose full liquidation moves the price by no more than the
  allowed slippage; the upper cap is a multiple of it (2.5 in most dYdX tiers).

`recommend_perp_margin` puts these together and backtests the move part of the margin on the history.
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
from risk.errors import RiskInputError, UnitError
from risk.units import Ratio, Usd
from risk.vol import EWMA

DYDX_UPPER_OVER_LOWER = 2.5
NO_INCENTIVE = Ratio.parse("0%")


def _ratio(value: Ratio, what: str) -> float:
    if not isinstance(value, Ratio):
        raise UnitError(f"{what}: {value!r} is not a Ratio", f"pass Ratio.parse(...), e.g. Ratio.parse('2%') for {what}")
    return value.as_float()


def _usd(value: Usd, what: str) -> float:
    if not isinstance(value, Usd):
        raise UnitError(f"{what}: {value!r} is not a Usd amount", "pass Usd.parse('$40M')")
    return value.as_float()


def _fraction_array(x: float | np.ndarray, what: str, low: float = 0.0, high: float = math.inf) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise RiskInputError(f"{what} is empty", f"pass at least one {what}")
    bad = ~np.isfinite(a) | (a < low) | (a > high)
    if np.any(bad):
        raise RiskInputError(f"{what} {a[bad].ravel()[0]!r} is outside [{low}, {high}]", f"check the {what}")
    return a


def maintenance_margin(
    sigma_per_step: float | np.ndarray,
    horizon_steps: float,
    coverage: Ratio,
    *,
    side: Side | None = None,
    tail: Tail = NORMAL,
    quantiles: tuple[float | np.ndarray, float | np.ndarray] | None = None,
) -> np.ndarray:
    """Margin that covers the adverse price move over the liquidation horizon at ``coverage``.

    Parameters
    ----------
    sigma_per_step : float or array
        Volatility of one step's log return (0.01 = 1% per step), e.g. from `risk.vol.VolEstimate`.
    horizon_steps : float
        Liquidation horizon in steps (24 for a day of hourly steps).
    coverage : Ratio
        Share of horizon moves the margin must absorb (e.g. 99%), per side.
    side : Side, optional
        LONG or SHORT; ``None`` gives the larger of the two, the one number a market needs.
    tail : Tail
        Normal or Student-t standardised quantiles (filtered historical needs ``quantiles``).
    quantiles : (lower, upper), optional
        Standardised quantiles at ``1 - coverage`` and ``coverage`` to use instead of the tail's.

    Returns
    -------
    ndarray
        Fraction of notional, same shape as ``sigma_per_step``.
    """
    c = coverage_float(coverage)
    sig = _fraction_array(sigma_per_step, "volatility per step")
    if not (math.isfinite(horizon_steps) and horizon_steps > 0):
        raise RiskInputError(f"liquidation horizon of {horizon_steps!r} steps", "use a positive horizon, e.g. 24 steps")
    if quantiles is None:
        q_lo, q_hi = tail.parametric_quantile(1.0 - c), tail.parametric_quantile(c)
    else:
        q_lo, q_hi = quantiles
    s = sig * math.sqrt(horizon_steps)
    long = -np.expm1(np.minimum(q_lo, 0.0) * s)
    short = np.expm1(np.maximum(q_hi, 0.0) * s)
    if side is Side.LONG:
        return long
    if side is Side.SHORT:
        return short
    return np.maximum(long, short)


def initial_margin(mmf: float, buffer: Ratio) -> float:
    """Initial margin fraction: ``min(1, mmf * (1 + buffer))``.

    Parameters
    ----------
    mmf : float
        Maintenance margin fraction of notional, in (0, 1].
    buffer : Ratio
        Extra margin over maintenance, relative (dYdX's maintenance fraction f is ``buffer = 1/f - 1``).
    """
    b = _ratio(buffer, "initial margin buffer")
    if b < 0:
        raise RiskInputError(f"initial margin buffer {buffer} is negative", "initial margin cannot be below maintenance")
    if not (math.isfinite(mmf) and 0 < mmf <= 1):
        raise RiskInputError(f"maintenance margin fraction {mmf!r} outside (0, 1]", "pass a fraction of notional")
    return min(1.0, mmf * (1.0 + b))


def oi_scaled_imf(base_imf: float, oi: float | np.ndarray, lower_cap: float, upper_cap: float) -> np.ndarray:
    """IMF that rises linearly from ``base_imf`` at the lower OI cap to 1.0 at the upper cap (dYdX v4).

    Parameters
    ----------
    base_imf : float
        IMF below the lower cap, fraction of notional in (0, 1].
    oi : float or array
        Open interest in USD.
    lower_cap, upper_cap : float
        OI caps in USD, ``0 <= lower_cap < upper_cap``.
    """
    if not (math.isfinite(base_imf) and 0 < base_imf <= 1):
        raise RiskInputError(f"base IMF {base_imf!r} outside (0, 1]", "pass a fraction of notional, e.g. 0.05")
    if not (math.isfinite(lower_cap) and math.isfinite(upper_cap) and 0 <= lower_cap < upper_cap):
        raise RiskInputError(f"OI caps {lower_cap!r}..{upper_cap!r} USD are not ordered", "need 0 <= lower < upper")
    o = np.asarray(oi, dtype=np.float64)
    if not np.all(np.isfinite(o)) or np.any(o < 0):
        raise RiskInputError("open interest is negative or not finite", "pass OI in USD, >= 0")
    ramp = np.clip((o - lower_cap) / (upper_cap - lower_cap), 0.0, 1.0)
    return base_imf + (1.0 - base_imf) * ramp


def slippage_at_size(size: Usd, depth: Usd, impact: Ratio) -> float:
    """Price impact of selling ``size`` into a book where ``depth`` moves the price by ``impact`` (linear)."""
    d, k, s = _usd(depth, "depth"), _ratio(impact, "impact"), _usd(size, "liquidation size")
    if d <= 0 or k <= 0 or s < 0:
        raise RiskInputError(f"depth {depth}, impact {impact}, size {size}", "depth and impact must be positive, size >= 0")
    return k * s / d


def liquidation_fee(slippage_at_size: float, margin: float, incentive: Ratio = NO_INCENTIVE) -> float:
    """Fee paid to the liquidator: the slippage at the liquidation size plus an incentive.

    Parameters
    ----------
    slippage_at_size : float
        Price impact of liquidating the stress size, fraction of notional.
    margin : float
        Maintenance margin fraction the fee is paid from.
    incentive : Ratio
        What the liquidator keeps after slippage.

    Returns
    -------
    float
        Fee as a fraction of notional. Raises `RiskInputError` when the fee would consume the whole
        margin: the liquidation itself would then leave bad debt.
    """
    if not (math.isfinite(slippage_at_size) and slippage_at_size >= 0):
        raise RiskInputError(f"slippage {slippage_at_size!r} is not a non-negative number", "pass a fraction of notional")
    if not (math.isfinite(margin) and margin > 0):
        raise RiskInputError(f"margin {margin!r} is not positive", "pass the maintenance margin fraction")
    fee = slippage_at_size + _ratio(incentive, "liquidation incentive")
    if fee >= margin:
        raise RiskInputError(
            f"liquidation fee {fee:.4%} (slippage {slippage_at_size:.4%}) uses all of the margin {margin:.4%}",
            "raise the maintenance margin or lower the OI cap so liquidations are smaller",
        )
    return fee


@dataclass(frozen=True, slots=True)
class OiCaps:
    """Open-interest caps in USD: IMF starts rising at ``lower_usd`` and reaches 100% at ``upper_usd``."""

    lower_usd: float
    upper_usd: float


def oi_caps_from_liquidity(
    depth: Usd, impact: Ratio, max_slippage: Ratio, upper_multiple: float = DYDX_UPPER_OVER_LOWER
) -> OiCaps:
    """OI caps such that liquidating the whole lower-cap OI at once moves the price by ``max_slippage``.

    Parameters
    ----------
    depth : Usd
        USD that moves the price by ``impact``.
    impact : Ratio
        Price impact of selling ``depth``.
    max_slippage : Ratio
        Slippage the liquidation fee covers.
    upper_multiple : float
        Upper cap over lower cap (> 1); dYdX tiers use 2 to 2.5.
    """
    d, k, m = _usd(depth, "depth"), _ratio(impact, "impact"), _ratio(max_slippage, "max slippage")
    if d <= 0 or k <= 0 or m <= 0:
        raise RiskInputError(f"depth {depth}, impact {impact}, max slippage {max_slippage}", "all must be positive")
    if not (math.isfinite(upper_multiple) and upper_multiple > 1):
        raise RiskInputError(f"upper cap multiple {upper_multiple!r} is not above 1", "use e.g. 2.5 as dYdX")
    lower = d * m / k
    return OiCaps(lower, lower * upper_multiple)


def funding_cost(funding_rates: np.ndarray, periods: int, coverage: Ratio) -> tuple[float, float]:
    """Funding a long and a short may pay over ``periods`` funding intervals, at ``coverage``.

    Parameters
    ----------
    funding_rates : array
        Historical funding rate per interval (fraction of notional; positive: longs pay shorts).
    periods : int
        Funding intervals in the liquidation horizon (rounded up).
    coverage : Ratio
        Quantile of the summed funding over ``periods`` consecutive intervals.

    Returns
    -------
    (long, short) : fractions of notional, each >= 0.
    """
    c = coverage_float(coverage)
    f = np.asarray(funding_rates, dtype=np.float64)
    if f.ndim != 1 or f.size < 2:
        raise RiskInputError(f"funding history of shape {f.shape}", "need at least two funding rates")
    if not np.all(np.isfinite(f)):
        raise RiskInputError(f"funding rate {int(np.flatnonzero(~np.isfinite(f))[0])} is not finite", "repair the file")
    if periods < 1 or periods > f.size:
        raise RiskInputError(f"{periods} funding periods against {f.size} rates", "use 1..len(rates) periods")
    sums = np.convolve(f, np.ones(periods), mode="valid")
    return max(float(np.quantile(sums, c)), 0.0), max(float(np.quantile(-sums, c)), 0.0)


# -- recommendation with its backtest -------------------------------------------------------------


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
        wanted = base + slip + _ratio(liquidity.incentive, "liquidation incentive")
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
