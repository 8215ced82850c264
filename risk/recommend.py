"""Policy + prices + current parameters → Recommendation (the risk core's single entry for lending).

Pure: arrays and frozen models in, a frozen Recommendation out.
"""

from __future__ import annotations

import numpy as np

from risk.errors import RiskInputError
from risk.limits import changes_for_market
from risk.policy import Policy, VenueKind, VolatilityModel
from risk.recommendation import MarketMetrics, MarketRecommendation, Recommendation
from risk.rule import METHOD, targets_for_market
from risk.snapshot import VenueSnapshot
from risk.vol import EWMA, VolEstimate


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
    annual = vol.annualised()
    markets = []
    for j, symbol in enumerate(symbols):
        market = policy.market(symbol)
        state = snapshot.market(symbol)
        if state.price_usd is None:
            raise RiskInputError(f"{symbol}: the snapshot has no price", "the pipeline fills it from market data; pass a priced snapshot")
        sigma = vol.sigma_per_step[j]
        targets = targets_for_market(policy, market, sigma, float(state.price_usd))
        metrics = MarketMetrics(
            price_usd=float(state.price_usd),
            sigma_hourly=sigma * (3600 / step_seconds) ** 0.5,
            sigma_annualised=float(annual[j]),
            adverse_move_horizon=targets.adverse_move_horizon,
            adverse_move_ltv_buffer=targets.adverse_move_ltv_buffer,
            slippage_at_liquidation_size=targets.slippage if targets.slippage is not None else 0.0,
            observations=vol.observations,
        )
        markets.append(MarketRecommendation(symbol, market.asset, metrics, changes_for_market(policy, market, state, targets)))
    sc, ra = policy.scenarios, policy.risk_appetite
    method = tuple(
        line.format(
            vol=vol.model, coverage=ra.coverage, incentive=ra.min_incentive_over_slippage,
            horizon=sc.horizon, buffer=sc.ltv_buffer_horizon,
        )
        for line in METHOD
    )
    return Recommendation(
        venue=policy.venue.name,
        protocol=policy.venue.protocol.value,
        chain_id=policy.venue.chain_id,
        epoch=epoch,
        as_of=as_of,
        method=method,
        markets=tuple(markets),
    )
