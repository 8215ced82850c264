"""The liquidation fee of a perpetual market: the liquidator's slippage at the liquidation size.

A linear order book is assumed: ``depth`` USD moves the price by ``impact``. The fee is that slippage
plus what the liquidator keeps, and must leave part of the margin it is paid from.
"""

from __future__ import annotations

import math

from risk.errors import RiskInputError
from risk.perps_inputs import ratio_float, usd_float
from risk.units import Ratio, Usd

NO_INCENTIVE = Ratio.parse("0%")


def slippage_at_size(size: Usd, depth: Usd, impact: Ratio) -> float:
    """Price impact of selling ``size`` into a book where ``depth`` moves the price by ``impact`` (linear)."""
    d, k, s = usd_float(depth, "depth"), ratio_float(impact, "impact"), usd_float(size, "liquidation size")
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
    fee = slippage_at_size + ratio_float(incentive, "liquidation incentive")
    if fee >= margin:
        raise RiskInputError(
            f"liquidation fee {fee:.4%} (slippage {slippage_at_size:.4%}) uses all of the margin {margin:.4%}",
            "raise the maintenance margin or lower the OI cap so liquidations are smaller",
        )
    return fee
