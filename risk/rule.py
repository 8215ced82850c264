"""The foundation's lending rule: volatility in, target LTV / threshold / bonus / caps out.

A documented closed-form rule, simple on purpose; the lending risk core (`risk.optimize`, used when
the policy has a `lending_core` section) replaces it behind the same output (`RuleTargets`). For each market, with hourly volatility sigma from the
policy's volatility model and z the normal quantile of the policy's coverage:

* adverse move over the liquidation horizon H:   d_H = 1 - exp(-z * sigma * sqrt(H))
* slippage selling the stress liquidation size S into depth D that moves the price by k:  s = k * S / D
* liquidation bonus  LB  = s + minimum incentive over slippage   (liquidators must profit)
* liquidation threshold LT = (1 - d_H) / (1 + LB)
    a position liquidated at HF = 1 still has collateral worth debt * (1 + LB) after the move d_H,
    so liquidators can repay the debt and take their bonus without leaving bad debt;
* LTV = LT * (1 - d_B), d_B the adverse move over the LTV buffer horizon B
    a position opened at the maximum LTV survives that move before it becomes liquidatable;
* supply cap = 2 x (USD the market absorbs within the bonus' price impact) / price, borrow cap =
  the policy's borrow share x supply cap (the LlamaRisk rule of thumb).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from risk.errors import RiskInputError
from risk.policy import Market, Policy


@dataclass(frozen=True, slots=True)
class RuleTargets:
    """Unquantised targets as fractions of one (bonus: the bonus only) and caps in tokens."""

    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float | None
    supply_cap_tokens: float | None
    borrow_cap_tokens: float | None
    adverse_move_horizon: float
    adverse_move_ltv_buffer: float
    slippage: float | None
    # What set each target, by parameter name (the lending core's binding constraints); a parameter
    # without an entry reads "rule" when nothing else binds it.
    reasons: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def reason(self, parameter: str) -> tuple[str, ...]:
        for name, why in self.reasons:
            if name == parameter:
                return why
        return ()


def adverse_move(sigma_per_step: float, steps: float, coverage: float) -> float:
    """Log-normal drop not exceeded with probability `coverage` over `steps` steps (fraction of one)."""
    if not (math.isfinite(sigma_per_step) and sigma_per_step >= 0):
        raise RiskInputError(f"volatility {sigma_per_step!r} is not a finite non-negative number", "check the price data")
    z = float(norm.ppf(coverage))
    return float(-np.expm1(-z * sigma_per_step * math.sqrt(steps)))


def targets_for_market(policy: Policy, market: Market, sigma_per_step: float, price_usd: float) -> RuleTargets:
    """Apply the rule to one market. Prices in USD, sigma per policy step (dimensionless)."""
    if not price_usd > 0:
        raise RiskInputError(f"{market.symbol}: price {price_usd!r} is not positive", "check the snapshot's price_usd")
    sc = policy.scenarios
    coverage = policy.risk_appetite.coverage.as_float()
    d_h = adverse_move(sigma_per_step, sc.horizon.seconds / sc.step.seconds, coverage)
    d_b = adverse_move(sigma_per_step, sc.ltv_buffer_horizon.seconds / sc.step.seconds, coverage)
    liquidity = market.liquidity
    if liquidity is None:
        return RuleTargets(
            ltv=math.nan, liquidation_threshold=math.nan, liquidation_bonus=None, supply_cap_tokens=None,
            borrow_cap_tokens=None, adverse_move_horizon=d_h, adverse_move_ltv_buffer=d_b, slippage=None,
        )
    depth, impact = liquidity.depth.as_float(), liquidity.impact.as_float()
    if depth <= 0 or impact <= 0:
        raise RiskInputError(f"{market.symbol}: liquidity depth and impact must be positive", "e.g. depth: '$40M', impact: '2%'")
    slippage = impact * liquidity.liquidation_size.as_float() / depth
    bonus = slippage + policy.risk_appetite.min_incentive_over_slippage.as_float()
    lt = (1.0 - d_h) / (1.0 + bonus)
    ltv = lt * (1.0 - d_b)
    absorbable_usd = depth * bonus / impact
    supply = 2.0 * absorbable_usd / price_usd
    borrow = market.borrow_share_of_supply.as_float() * supply
    return RuleTargets(
        ltv=ltv, liquidation_threshold=lt, liquidation_bonus=bonus, supply_cap_tokens=supply,
        borrow_cap_tokens=borrow, adverse_move_horizon=d_h, adverse_move_ltv_buffer=d_b, slippage=slippage,
    )


METHOD = (
    "Volatility: {vol}.",
    "Adverse move d = 1 - exp(-z * sigma * sqrt(t)), z the normal quantile of the coverage ({coverage}).",
    "Liquidation bonus = slippage of the stress liquidation size (linear depth curve) + minimum incentive ({incentive}).",
    "Liquidation threshold = (1 - d over the {horizon} liquidation horizon) / (1 + bonus).",
    "LTV = threshold x (1 - d over the {buffer} LTV buffer horizon).",
    "Supply cap = 2 x USD absorbable within the bonus' price impact / price; borrow cap = borrow share x supply cap.",
    "Then: parameter bounds, the per-update change limits, and Aave's rules (LTV <= LT, LT x (1 + bonus) <= 100%).",
)
