"""Open-interest limits of a perpetual market: the caps and the initial margin ramp between them.

* OI caps: the lower cap is the open interest whose full liquidation moves the price by no more than the
  allowed slippage; the upper cap is a multiple of it (2.5 in most dYdX tiers).
* OI-scaled IMF: flat up to the lower OI cap, then linear to 1.0 at the upper cap (dYdX liquidity tiers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from risk.errors import RiskInputError
from risk.perps_inputs import ratio_float, usd_float
from risk.units import Ratio, Usd

DYDX_UPPER_OVER_LOWER = 2.5


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
    d, k, m = usd_float(depth, "depth"), ratio_float(impact, "impact"), ratio_float(max_slippage, "max slippage")
    if d <= 0 or k <= 0 or m <= 0:
        raise RiskInputError(f"depth {depth}, impact {impact}, max slippage {max_slippage}", "all must be positive")
    if not (math.isfinite(upper_multiple) and upper_multiple > 1):
        raise RiskInputError(f"upper cap multiple {upper_multiple!r} is not above 1", "use e.g. 2.5 as dYdX")
    lower = d * m / k
    return OiCaps(lower, lower * upper_multiple)
