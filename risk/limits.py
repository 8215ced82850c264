"""From a rule's targets to proposed values: quantise, bound, limit the step, keep the venue consistent.

Order, each step naming itself in `binding` when it changes the value:
1. quantise on the safe side (LTV and threshold down, bonus up, caps down to 3 significant figures);
2. clamp to the policy's bounds;
3. move at most the per-update change limit from the current value (the glide path counts how
   many such updates reach the target);
4. Aave's consistency rules on the combined result: LT x (1 + bonus) <= 100% and LTV <= LT.

The targets may carry what set them (`RuleTargets.reasons`, from the lending core's optimiser): that
reason heads `binding`. A target only a DAO vote can reach — zero (a steward cannot set it), a pinned
change limit, or a glide path longer than the lending core's `max_steward_updates` — is flagged
`target_needs_governance` with the reason; this update's own value stays within the steward's limit.
"""

from __future__ import annotations

import math
from decimal import Decimal

from risk.errors import RiskInputError
from risk.policy import Bound, ChangeLimit, LendingParameter, Market, Policy
from risk.recommendation import ParameterChange
from risk.rule import RuleTargets
from risk.snapshot import MarketState
from risk.units import BPS_PER_ONE, Bps, TokenAmount

P = LendingParameter
CAP_SIGNIFICANT_FIGURES = 3


def round_cap_down(tokens: float) -> int:
    """Whole tokens, rounded down to 3 significant figures (signers read 41,200, not 41,237)."""
    if not math.isfinite(tokens) or tokens < 0:
        raise RiskInputError(f"cap of {tokens!r} tokens", "check liquidity inputs")
    if tokens < 1:
        return 0
    scale = 10 ** max(0, math.floor(math.log10(tokens)) - CAP_SIGNIFICANT_FIGURES + 1)
    return int(tokens // scale) * scale


def _bps_bounds(bound: Bound) -> tuple[Bps, Bps]:
    return bound.min.to_bps("up"), bound.max.to_bps("down")


def _limit_text(limit: ChangeLimit) -> str:
    if limit.max_absolute is not None:
        return f"±{limit.max_absolute.value * 100:.2f} pp per update, every {limit.min_delay}"
    assert limit.max_relative is not None  # guaranteed by ChangeLimit's validator
    return f"±{limit.max_relative.value * 100:.0f}% per update, every {limit.min_delay}"


def _step_bps(current: Bps, target: Bps, limit: ChangeLimit) -> tuple[Bps, int]:
    """Move toward target by at most the limit; return the value and the number of updates to target."""
    if limit.max_absolute is None:
        raise RiskInputError("a ratio parameter needs an absolute change limit (max_absolute)", "e.g. '0.5%'")
    step = limit.max_absolute.to_bps("down").value
    delta = target.value - current.value
    if delta == 0:
        return current, 0
    if step <= 0:
        return current, 0
    updates = math.ceil(abs(delta) / step)
    moved = max(-step, min(step, delta))
    return Bps(current.value + moved), updates


def _step_cap(current: int, target: int, limit: ChangeLimit) -> tuple[int, int]:
    """Caps move by a relative step; the target is at least 1 token (0 would mean *no cap* on Aave)."""
    if current == 0:  # 0 means "no cap" on Aave: any finite cap is one update away
        return target, (1 if target != 0 else 0)
    if limit.max_relative is None:
        raise RiskInputError("a cap needs a relative change limit (max_relative)", "e.g. '100%'")
    rel = limit.max_relative.value
    if target == current:
        return current, 0
    lo = int(Decimal(current) * (1 - rel)) if rel < 1 else 0
    hi = int(Decimal(current) * (1 + rel))
    proposed = max(lo, min(hi, target))
    if proposed == target:
        return proposed, 1
    factor = float(1 + rel) if target > current else float(1 - rel)
    updates = math.ceil(math.log(target / current) / math.log(factor)) if target > 0 and factor > 0 else 1
    return proposed, max(updates, 1)


def _ratio_change(
    market: Market, state: MarketState, parameter: LendingParameter, raw: float | None, bound: Bound,
    limit: ChangeLimit, rounding: str, reasons: tuple[str, ...] = (),
) -> tuple[Bps, Bps, list[str], int]:
    current: Bps = getattr(state, parameter.value)
    if raw is None or math.isnan(raw):
        return current, current, ["no liquidity data in the policy: kept"], 0
    binding: list[str] = list(reasons)
    target = Bps.from_float(raw, rounding)  # type: ignore[arg-type]
    lo, hi = _bps_bounds(bound)
    if target > hi:
        target, binding = hi, [*binding, f"bound: max {hi.value / 100:.2f}%"]
    elif target < lo:
        target, binding = lo, [*binding, f"bound: min {lo.value / 100:.2f}%"]
    proposed, updates = _step_bps(current, target, limit)
    if proposed != target:
        binding.append(f"change limit: {_limit_text(limit)}")
    return proposed, target, binding, updates


def changes_for_market(policy: Policy, market: Market, state: MarketState, targets: RuleTargets) -> tuple[ParameterChange, ...]:
    """Turn one market's targets into ParameterChanges (every parameter listed, changed or not)."""
    bounds = policy.bounds_for(market)
    limits = policy.change_limits
    out: dict[P, tuple[object, object, list[str], int]] = {}
    for parameter, raw, rounding in (
        (P.LTV, targets.ltv, "down"),
        (P.LIQUIDATION_THRESHOLD, targets.liquidation_threshold, "down"),
        (P.LIQUIDATION_BONUS, targets.liquidation_bonus, "up"),
    ):
        out[parameter] = _ratio_change(
            market, state, parameter, raw, getattr(bounds, parameter.value), limits.for_parameter(parameter), rounding,
            targets.reason(parameter.value),
        )

    # Aave's consistency rules on the combination this update would write.
    ltv, ltv_target, ltv_binding, ltv_updates = out[P.LTV]
    lt = out[P.LIQUIDATION_THRESHOLD][0]
    lb, lb_target, lb_binding, lb_updates = out[P.LIQUIDATION_BONUS]
    assert isinstance(lt, Bps) and isinstance(lb, Bps) and isinstance(ltv, Bps)
    if lt.value * (BPS_PER_ONE + lb.value) > BPS_PER_ONE * BPS_PER_ONE:
        lb = Bps(BPS_PER_ONE * BPS_PER_ONE // lt.value - BPS_PER_ONE)
        lb_binding = [*lb_binding, "aave: LT x (1 + bonus) <= 100%"]
        out[P.LIQUIDATION_BONUS] = (lb, lb_target, lb_binding, lb_updates)
    if ltv > lt:
        out[P.LTV] = (lt, ltv_target, [*ltv_binding, "aave: LTV <= LT"], ltv_updates)

    for parameter, raw in ((P.SUPPLY_CAP, targets.supply_cap_tokens), (P.BORROW_CAP, targets.borrow_cap_tokens)):
        current_cap: TokenAmount = getattr(state, parameter.value)
        current_tokens = current_cap.to_whole_tokens()
        if raw is None:
            out[parameter] = (current_cap, current_cap, ["no liquidity data in the policy: kept"], 0)
            continue
        target_tokens = round_cap_down(raw)
        binding = list(targets.reason(parameter.value))
        if target_tokens < 1:
            target_tokens, binding = 1, ["cap floor: 1 token (0 would mean no cap on Aave)"]
        proposed_tokens, updates = _step_cap(current_tokens, target_tokens, limits.for_parameter(parameter))
        if proposed_tokens != target_tokens:
            binding.append(f"change limit: {_limit_text(limits.for_parameter(parameter))}")
        out[parameter] = (
            TokenAmount.whole(proposed_tokens, state.decimals, state.symbol),
            TokenAmount.whole(target_tokens, state.decimals, state.symbol),
            binding,
            updates,
        )

    changes = []
    core = policy.lending_core
    max_updates = None if core is None else core.optimiser.max_steward_updates
    for parameter in P:
        proposed, target, binding, updates = out[parameter]
        current = getattr(state, parameter.value)
        limit = limits.for_parameter(parameter)
        zero = (proposed.value if isinstance(proposed, Bps) else proposed.raw) == 0  # type: ignore[union-attr]
        governance = _target_route(current, target, updates, limit, max_updates)
        changes.append(
            ParameterChange(
                market=market.symbol,
                asset=market.asset,
                parameter=parameter,
                current=current,
                proposed=proposed,  # type: ignore[arg-type]
                target=target,  # type: ignore[arg-type]
                limit_text=_limit_text(limit),
                binding=tuple(binding) or ("rule",),
                updates_to_target=updates,
                min_delay=limit.min_delay,
                # Stewards cannot set caps, LTV, LT or LB to 0 (DOMAIN.md): that needs a DAO vote.
                needs_governance=zero and proposed != current,
                target_needs_governance=bool(governance),
                governance_reason=governance,
            )
        )
    return tuple(changes)


def _raw(value: object) -> int:
    return value.value if isinstance(value, Bps) else value.raw  # type: ignore[attr-defined]


def _target_route(current: object, target: object, updates: int, limit: ChangeLimit, max_updates: int | None) -> str:
    """Why only a DAO vote reaches `target` ("" when steward updates can)."""
    if target == current:
        return ""
    if _raw(target) == 0:
        return "a steward cannot set it to 0"
    pinned = (limit.max_absolute is not None and limit.max_absolute.to_bps("down").value == 0) or (
        limit.max_relative is not None and limit.max_relative.value == 0 and _raw(current) != 0
    )
    if pinned:
        return "its change limit is 0: steward updates cannot move it"
    if max_updates is not None and updates > max_updates:
        return f"{updates} steward updates exceed the policy's max_steward_updates ({max_updates})"
    return ""

