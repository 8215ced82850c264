"""How a breaker rule's threshold reaches the chain: its ``setters:``, ``current:`` and ``change_limit:``.

A rule may name setters that write its threshold (`BreakerSetter`: the venue setters' shape,
`risk.policy_derivatives.Setter`, whose arguments carry one of the rule's values), the threshold on
chain now and how far one update may move it; `risk.breaker_changes` turns the calibrated threshold
into the change those setters carry. The checks here are the rule's validators (`risk.breaker_rules`),
which know what the rule's values are: a ratio, a duration or USD.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from risk.policy import ChangeLimit
from risk.policy_derivatives import OnChainUnit, Setter, SetterArg

CURRENT_DESCRIPTION = "The threshold on chain now, in the threshold's unit; none: unknown (the setter sends the proposed one)."


class BreakerValue(StrEnum):
    """What a breaker setter argument may carry: the rule's threshold (calibrated), or one of its fixed settings."""

    THRESHOLD = "threshold"
    WINDOW = "window"
    COOLDOWN = "cooldown"
    HALF_LIFE = "half_life"
    MAX_SCALE = "max_scale"


# On-chain units per kind of value: a ratio in bps/wad/ray/e6/raw, a duration in seconds, USD like a cap.
UNITS_FOR = {
    "ratio": (OnChainUnit.BPS, OnChainUnit.WAD, OnChainUnit.RAY, OnChainUnit.E6, OnChainUnit.RAW),
    "duration": (OnChainUnit.SECONDS,),
    "usd": (OnChainUnit.WAD, OnChainUnit.RAY, OnChainUnit.E6, OnChainUnit.WHOLE_TOKEN, OnChainUnit.RAW),
}


class BreakerSetterArg(SetterArg):
    """A setter argument carrying one of the rule's values (``parameter: threshold``), a constant or a bytes32 text."""

    parameter: BreakerValue | None = Field(default=None, description="The rule's value this argument carries: threshold, window, cooldown, half_life or max_scale.")  # type: ignore[assignment]

    def _check_unit_fits_parameter(self) -> None:
        """Checked by the rule, which knows whether its threshold is a ratio, a duration or USD."""


class BreakerSetter(Setter):
    """A function writing a rule's threshold on chain; contract addresses are the policy's."""

    args: tuple[BreakerSetterArg, ...] = Field(description="One per argument of the function, in order.")  # type: ignore[assignment]


def check_setters_carry(setters: tuple[BreakerSetter, ...], kind: str, values: dict[BreakerValue, str]) -> None:
    """Raise ValueError unless every setter carries the threshold, and only values a `kind` rule has
    (`values`: value → ratio, duration or usd) in an on-chain unit that fits it."""
    for i, setter in enumerate(setters):
        if BreakerValue.THRESHOLD not in setter.parameters:
            raise ValueError(f"setters[{i}] {setter.function} carries no threshold (parameter: threshold): it would never know when to be sent")
        for arg in setter.args:
            if arg.parameter is None:
                continue
            what = values.get(arg.parameter)
            if what is None:
                raise ValueError(f"setters[{i}] argument {arg.name!r}: a {kind} rule has no {arg.parameter}; it has {', '.join(values)}")
            if arg.unit not in UNITS_FOR[what]:
                units = ", ".join(UNITS_FOR[what])
                raise ValueError(f"setters[{i}] argument {arg.name!r}: the {arg.parameter} of a {kind} rule is a {what}; write it in {units}, not {arg.unit}")


def check_change_limit(limit: ChangeLimit | None, threshold_is: str) -> None:
    """Raise ValueError for a percentage-point limit on a threshold that is not a ratio (a duration or USD)."""
    if limit is not None and limit.max_relative is None and threshold_is != "ratio":
        raise ValueError(f"the threshold is a {threshold_is}: limit it relatively (max_relative: '50%'), not in percentage points")


def check_setters_values_set(rule: Any) -> None:
    """Raise ValueError when a setter carries a value the rule leaves unset (None)."""
    for i, setter in enumerate(rule.setters):
        for p in setter.parameters:
            if getattr(rule, p.value) is None:
                raise ValueError(f"setters[{i}] {setter.function} carries the rule's {p}, which the rule does not set")
