"""Plain scalar reference of the liquidation simulator: one path, one step, one position at a time.

Written for clarity, not speed; `risk.lending_engine` must agree with it. The model, step by step:

1. The price at step t is ``price_usd · path[t] · impact``, where ``impact`` is the product of the
   depth curve's factors for the USD sold by keepers at every earlier step (with ``cascade``).
2. Every open position with health factor ``c·price·LT/d < 1`` gets at most one liquidation call:
   the whole debt if HF <= close_factor_full_hf and that is profitable for the keeper, otherwise the
   close-factor share if that is profitable, otherwise none this step. A whole-position market
   (`LiquidationStyle.WHOLE_POSITION`, Comet's absorb) has no close-factor share: the whole debt if
   that is profitable, otherwise none this step.
3. Seized collateral = repaid·(1+bonus)/price. If the position does not hold that much, all of it is
   seized, the repayment shrinks to collateral·price/(1+bonus) and the debt left behind (now without
   collateral) is written off: Aave's deficit. Of it, ``max(debt - collateral·price, 0)`` (taken just
   before the call) is the collateral shortfall, i.e. bad debt; the rest is the bonus paid out of
   the last collateral. The protocol takes ``fee·bonus/(1+bonus)`` of the seized collateral; the
   keeper sells the rest into the depth curve.
4. A full liquidation closes the position and returns what collateral is left to the borrower.
5. At the end, open positions whose collateral is worth less than their debt add the shortfall
   (bad debt and deficit alike).
"""

from __future__ import annotations

import numpy as np

from risk.lending_params import LendingMarket, LiquidationStyle

FIELDS = (
    "repaid_usd",
    "seized_usd",
    "seized_tokens",
    "protocol_fee_usd",
    "protocol_fee_tokens",
    "sold_usd",
    "written_off_usd",
    "insolvent_usd",
    "shortfall_usd",
    "open_debt_usd",
    "open_collateral_tokens",
    "returned_tokens",
    "liquidations",
    "final_price_usd",
)


def reference_ledger(
    collateral: np.ndarray, debt: np.ndarray, market: LendingMarket, paths: np.ndarray, cascade: bool
) -> dict[str, np.ndarray]:
    """Per-path totals (the fields of `risk.lending_engine.Ledger`) by brute force."""
    lt = market.liquidation_threshold
    bonus = market.liquidation_bonus
    whole = market.style is LiquidationStyle.WHOLE_POSITION
    out = {name: np.zeros(paths.shape[0]) for name in FIELDS}
    for j in range(paths.shape[0]):
        c = [float(x) for x in collateral]
        d = [float(x) for x in debt]
        is_open = [True] * len(c)
        impact = 1.0
        price = market.price_usd
        for t in range(paths.shape[1]):
            price = market.price_usd * float(paths[j, t]) * impact
            sold = 0.0
            for i in range(len(c)):
                if not is_open[i]:
                    continue
                hf = c[i] * price * lt / d[i]
                if not hf < 1.0:
                    continue
                if (whole or hf <= market.close_factor_full_hf) and market.is_profitable(d[i]):
                    share = 1.0
                elif not whole and market.is_profitable(market.close_factor * d[i]):
                    share = market.close_factor
                else:
                    continue
                repay = share * d[i]
                seize = repay * (1.0 + bonus) / price
                short = seize > c[i]
                if short:
                    out["insolvent_usd"][j] += max(d[i] - c[i] * price, 0.0)
                    seize = c[i]
                    repay = seize * price / (1.0 + bonus)
                fee = market.protocol_fee * seize * bonus / (1.0 + bonus)
                out["repaid_usd"][j] += repay
                out["seized_tokens"][j] += seize
                out["seized_usd"][j] += seize * price
                out["protocol_fee_tokens"][j] += fee
                out["protocol_fee_usd"][j] += fee * price
                out["liquidations"][j] += 1
                sold += (seize - fee) * price
                c[i] -= seize
                d[i] -= repay
                if short:
                    out["written_off_usd"][j] += d[i]
                    c[i], d[i], is_open[i] = 0.0, 0.0, False
                elif share == 1.0:
                    out["returned_tokens"][j] += c[i]
                    c[i], d[i], is_open[i] = 0.0, 0.0, False
            out["sold_usd"][j] += sold
            if cascade:
                impact *= float(market.depth.price_factor(sold))
        out["final_price_usd"][j] = price
        for i in range(len(c)):
            if is_open[i]:
                out["open_debt_usd"][j] += d[i]
                out["open_collateral_tokens"][j] += c[i]
                out["shortfall_usd"][j] += max(d[i] - c[i] * price, 0.0)
    return out


# -- test support: scenarios built locally, as the brief asks (scenario generators live elsewhere) --


def gbm_jump_paths(
    rng: np.random.Generator,
    n_paths: int,
    steps: int,
    *,
    sigma: float = 0.03,
    drift: float = -0.002,
    jump_probability: float = 0.05,
    jump_mean: float = -0.08,
    jump_sd: float = 0.04,
) -> np.ndarray:
    """Relative price paths (n_paths, steps + 1) starting at 1: lognormal steps plus normal log-jumps."""
    steps_ = rng.normal(drift, sigma, (n_paths, steps))
    jumps = (rng.random((n_paths, steps)) < jump_probability) * rng.normal(jump_mean, jump_sd, (n_paths, steps))
    return np.exp(np.concatenate([np.zeros((n_paths, 1)), np.cumsum(steps_ + jumps, axis=1)], axis=1))
