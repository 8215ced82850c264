"""What the liquidation simulator needs to know about one market: liquidation rules and sell-side depth.

A *market* is one collateral asset borrowed against with stable (USD) debt, as Aave risk analyses do
per collateral. Inside the core every number is a float in the unit its name says (``*_usd`` in USD,
ratios as fractions of one: 0.825 is 82.5%); `LendingMarket.from_units` and `DepthCurve.from_units`
take `risk.units` values at the boundary.

Liquidation styles (`LiquidationStyle`)
---------------------------------------
``AAVE``: a call repays `close_factor` of the debt while HF > `close_factor_full_hf`, all of it at or
below (Aave v3.0–3.2: 50%, 100% at HF <= 0.95). ``WHOLE_POSITION``: a call repays all of the debt as
soon as HF < 1 and there is never a partial call, as Compound v3's ``absorb`` takes every liquidatable
account whole. It is a style rather than "close_factor_full_hf = 1" because that would still let a
keeper fall back to a close-factor call when the full one does not pay (slippage on a whale), which
Comet has no way to do; with the style, the engine's partial-call branch is simply never taken.

The depth curve (documented model choice)
-----------------------------------------
Selling ``v`` USD of collateral multiplies the price by ``(1 - move) ** ((v / usd) ** exponent)``:
exactly ``1 - move`` at the calibration point (``usd`` moves the price by ``move``), never negative,
linear in log-price for ``exponent = 1`` and square-root impact for ``exponent = 0.5``. A keeper
walking that curve receives on average ``1 - average_slippage(v)`` of the pre-trade price.

The keeper's decision (documented model choice)
-----------------------------------------------
A liquidation repaying ``r`` USD is executed when the keeper's share of the bonus covers gas and the
slippage of selling what it receives: ``r·b·(1-f) >= gas + s·avg_slippage(s)`` with
``s = r·(1 + b·(1-f))``. The test uses the close-factor amount ``r`` the keeper asks to repay; when the
collateral cannot cover ``r·(1+b)`` Aave caps the repayment and the keeper earns less than it tested,
so a few already-insolvent positions are liquidated that a perfectly informed keeper would leave (their
bad debt is then recognised at that step instead of at the end of the path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
from scipy import special

from risk.errors import RiskInputError
from risk.units import Ratio, Usd

_NO_GAS = Usd.parse("$0")
_AAVE_CLOSE_FACTOR = Ratio.parse("50%")
_AAVE_FULL_LIQUIDATION_HF = Ratio.parse("95%")


class LiquidationStyle(StrEnum):
    """How much of a liquidatable position (HF < 1) one liquidation call takes (see the module doc)."""

    AAVE = "aave"
    WHOLE_POSITION = "whole-position"


def _finite(name: str, value: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RiskInputError(f"{where}: {name} must be a number, got {type(value).__name__} {value!r}", "pass a float")
    if not math.isfinite(value):
        raise RiskInputError(f"{where}: {name} is {value!r}", "every market parameter must be a finite number")
    return float(value)


@dataclass(frozen=True)
class DepthCurve:
    """Sell-side liquidity: selling ``usd`` of collateral moves its price down by ``move``.

    Parameters
    ----------
    usd : float
        USD of collateral that moves the price by `move`; ``math.inf`` means no price impact.
    move : float
        Fractional price move caused by selling `usd` (0.02 is 2%), in (0, 1).
    exponent : float
        Shape of the curve: 1 is linear in log-price, 0.5 is square-root impact.
    """

    usd: float = math.inf
    move: float = 0.02
    exponent: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.usd, bool) or not isinstance(self.usd, (int, float)) or math.isnan(self.usd) or self.usd <= 0:
            raise RiskInputError(f"depth curve: usd is {self.usd!r}", "depth must be a positive USD amount (math.inf for none)")
        move = _finite("move", self.move, "depth curve")
        if not 0 < move < 1:
            raise RiskInputError(f"depth curve: move {move!r} is outside (0, 1)", "write the price move as a fraction, 0.02 for 2%")
        exponent = _finite("exponent", self.exponent, "depth curve")
        if exponent <= 0:
            raise RiskInputError(f"depth curve: exponent {exponent!r} must be positive", "use 1 (linear) or 0.5 (square root)")

    @classmethod
    def from_units(cls, depth: Usd, impact: Ratio, exponent: float = 1.0) -> DepthCurve:
        """Build from a policy's liquidity block: `depth` USD moves the price by `impact`."""
        return cls(usd=depth.as_float(), move=impact.as_float(), exponent=exponent)

    @property
    def is_infinite(self) -> bool:
        return math.isinf(self.usd)

    def _z(self, sold_usd: np.ndarray) -> np.ndarray:
        """-log of the price factor: kappa·(v/usd)^exponent, with kappa = -log(1 - move)."""
        kappa = -math.log1p(-self.move)
        v = np.maximum(np.asarray(sold_usd, dtype=np.float64), 0.0)
        return kappa * (v / self.usd) ** self.exponent

    def price_factor(self, sold_usd: np.ndarray | float) -> np.ndarray:
        """Factor (0, 1] by which selling `sold_usd` USD multiplies the price."""
        return np.exp(-self._z(np.asarray(sold_usd, dtype=np.float64)))

    def average_slippage(self, sold_usd: np.ndarray | float) -> np.ndarray:
        """Average fractional discount to the pre-trade price when selling `sold_usd` USD along the curve.

        ``1 - (1/v)∫₀ᵛ factor(u) du = 1 - Γ(1+s)·P(s, z)/z^s`` with ``s = 1/exponent`` and ``z`` the
        factor's exponent at ``v`` (P is the regularised lower incomplete gamma function).
        """
        z = self._z(np.asarray(sold_usd, dtype=np.float64))
        s = 1.0 / self.exponent
        out = np.zeros_like(z)
        pos = z > 0
        zp = z[pos]
        out[pos] = 1.0 - special.gamma(1.0 + s) * special.gammainc(s, zp) / zp**s
        return np.maximum(out, 0.0)


@dataclass(frozen=True)
class LendingMarket:
    """One collateral asset against stable debt, with Aave v3's (or Comet's) liquidation rules (floats, see module doc).

    Parameters
    ----------
    name : str
        Market (collateral asset) symbol; positions of a `risk.book.Book` are matched by it.
    price_usd : float
        Reference USD price of the collateral; simulated paths are multiples of it.
    ltv : float
        Loan-to-value, fraction of one; only checked here (``ltv <= liquidation_threshold``) and used
        by `risk.book.Book.generate` to bound how much a position may have borrowed.
    liquidation_threshold : float
        LT, fraction of one in (0, 1]; health factor = collateral·price·LT / debt.
    liquidation_bonus : float
        Bonus only (0.05 for Aave's 10500): collateral seized = repaid·(1 + bonus) / price.
    protocol_fee : float
        Share of the bonus collateral that goes to the protocol (Aave's liquidationProtocolFee), in [0, 1].
    close_factor : float
        Share of the debt a liquidation may repay while HF > `close_factor_full_hf` (0.5 on Aave); unused
        by `LiquidationStyle.WHOLE_POSITION`.
    close_factor_full_hf : float
        At or below this health factor the whole debt may be repaid (0.95 on Aave v3.0–3.2); unused by
        `LiquidationStyle.WHOLE_POSITION`.
    gas_usd : float
        Keeper's gas cost of one liquidation, USD.
    depth : DepthCurve
        Liquidity keepers sell the seized collateral into.
    style : LiquidationStyle
        Aave's close factor or whole positions as soon as HF < 1 (Compound v3's absorb).
    """

    name: str
    price_usd: float
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float
    protocol_fee: float
    close_factor: float = 0.5
    close_factor_full_hf: float = 0.95
    gas_usd: float = 0.0
    depth: DepthCurve = field(default_factory=DepthCurve)
    style: LiquidationStyle = LiquidationStyle.AAVE

    def __post_init__(self) -> None:
        where = f"market {self.name!r}"
        if not isinstance(self.name, str) or not self.name:
            raise RiskInputError(f"market name {self.name!r} is empty", "name the collateral asset, e.g. 'WETH'")
        for name in ("price_usd", "ltv", "liquidation_threshold", "liquidation_bonus", "protocol_fee",
                     "close_factor", "close_factor_full_hf", "gas_usd"):
            _finite(name, getattr(self, name), where)
        lt, b = self.liquidation_threshold, self.liquidation_bonus
        checks = [
            (self.price_usd > 0, f"price_usd {self.price_usd!r} must be positive", "use the oracle price in USD"),
            (0 < lt <= 1, f"liquidation_threshold {lt!r} is outside (0, 1]", "LT is a fraction of one: 0.825 for 82.5%"),
            (0 <= self.ltv <= lt, f"ltv {self.ltv!r} must be within [0, liquidation_threshold {lt!r}]", "Aave requires ltv <= LT"),
            (b > 0, f"liquidation_bonus {b!r} must be positive", "give the bonus only: 0.05 for Aave's 10500"),
            (lt * (1 + b) <= 1, f"liquidation_threshold × (1 + bonus) = {lt * (1 + b)!r} exceeds 1",
             "Aave's PoolConfigurator refuses it: a liquidation would seize more than the collateral backing the debt"),
            (0 <= self.protocol_fee <= 1, f"protocol_fee {self.protocol_fee!r} is outside [0, 1]", "a share of the bonus: 0.1 for 10%"),
            (0 < self.close_factor < 1, f"close_factor {self.close_factor!r} is outside (0, 1)", "Aave's is 0.5"),
            (0 < self.close_factor_full_hf < 1, f"close_factor_full_hf {self.close_factor_full_hf!r} is outside (0, 1)",
             "Aave's is 0.95"),
            (self.gas_usd >= 0, f"gas_usd {self.gas_usd!r} is negative", "gas costs the keeper a non-negative USD amount"),
        ]
        for ok, cause, hint in checks:
            if not ok:
                raise RiskInputError(f"{where}: {cause}", hint)
        if not isinstance(self.depth, DepthCurve):
            raise RiskInputError(f"{where}: depth must be a DepthCurve, got {type(self.depth).__name__}", "use DepthCurve(...)")
        if not isinstance(self.style, LiquidationStyle):
            raise RiskInputError(f"{where}: style must be a LiquidationStyle, got {self.style!r}",
                                 "use LiquidationStyle.AAVE or LiquidationStyle.WHOLE_POSITION")

    @classmethod
    def from_units(
        cls,
        name: str,
        *,
        price: Usd,
        ltv: Ratio,
        liquidation_threshold: Ratio,
        liquidation_bonus: Ratio,
        protocol_fee: Ratio,
        gas: Usd = _NO_GAS,
        depth: DepthCurve | None = None,
        close_factor: Ratio = _AAVE_CLOSE_FACTOR,
        close_factor_full_hf: Ratio = _AAVE_FULL_LIQUIDATION_HF,
        style: LiquidationStyle = LiquidationStyle.AAVE,
    ) -> LendingMarket:
        """Build from unit values (`Ratio`, `Usd`) as a policy or snapshot states them."""
        return cls(
            name=name,
            price_usd=price.as_float(),
            ltv=ltv.as_float(),
            liquidation_threshold=liquidation_threshold.as_float(),
            liquidation_bonus=liquidation_bonus.as_float(),
            protocol_fee=protocol_fee.as_float(),
            close_factor=close_factor.as_float(),
            close_factor_full_hf=close_factor_full_hf.as_float(),
            gas_usd=gas.as_float(),
            depth=depth if depth is not None else DepthCurve(),
            style=style,
        )

    @property
    def partial_calls(self) -> bool:
        """Whether a liquidation may repay only `close_factor` of the debt (never for whole positions)."""
        return self.style is LiquidationStyle.AAVE

    @property
    def full_call_hf(self) -> float:
        """Health factor at or below which a call repays the whole debt (1.0 for whole positions, where HF < 1 rules anyway)."""
        return self.close_factor_full_hf if self.partial_calls else 1.0

    @property
    def partial_liquidation_restores_health(self) -> bool:
        """Whether one close-factor liquidation always lifts a position back to HF >= 1.

        A call at health factor h leaves ``(h - cf·k)/(1 - cf)`` with ``k = LT·(1+bonus)``; it is >= 1
        for every h above `close_factor_full_hf` iff ``k <= (hf_full - 1 + cf)/cf`` (0.9 with Aave's
        0.5 and 0.95). Above that (e.g. an eMode LT of 95% with a 1% bonus) a partial call can leave a
        position thinner and still liquidatable, and a safer position can end with more bad debt.
        Trivially true for whole positions, which never get a partial call.
        """
        if not self.partial_calls:
            return True
        k = self.liquidation_threshold * (1.0 + self.liquidation_bonus)
        return k <= (self.close_factor_full_hf - 1.0 + self.close_factor) / self.close_factor

    def keeper_profit_usd(self, repay_usd: np.ndarray | float) -> np.ndarray:
        """Keeper's profit, USD, from a liquidation repaying `repay_usd` (nominal close-factor amount).

        Its share of the bonus minus gas minus the slippage of selling the collateral it receives;
        the liquidation is executed when this is ``>= 0``.
        """
        r = np.asarray(repay_usd, dtype=np.float64)
        keep = self.liquidation_bonus * (1.0 - self.protocol_fee)
        sold = r * (1.0 + keep)
        return r * keep - self.gas_usd - sold * self.depth.average_slippage(sold)

    def is_profitable(self, repay_usd: np.ndarray | float) -> np.ndarray:
        """Whether a keeper executes a liquidation repaying `repay_usd` (see `keeper_profit_usd`)."""
        return self.keeper_profit_usd(repay_usd) >= 0.0
