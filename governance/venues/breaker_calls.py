"""Circuit-breaker thresholds as setter calls: `BreakerChange` → Call, through the generic adapter.

A breaker rule's ``setters:`` have the shape of a venue's (`risk.breaker_setters.BreakerSetter`); their
arguments carry the rule's proposed threshold or one of its fixed settings (window, cooldown,
half-life, max scale) in an on-chain unit, a constant or a bytes32 text. A rule's setters are sent when
its threshold changes (`risk.breaker_changes`). Integers come from `generic.onchain_value`, calls from
`governance.calls.encode_call` (which decodes them back), and `prove_breaker_calls` decodes the calldata
once more and compares every argument with the change through the inverse unit types, like
`generic.prove_calls` does for venue parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils import to_checksum_address

from governance.calls import Call, FunctionAbi, decode_call, encode_call
from governance.venues.generic import (
    GenericSetterError,
    OnChainValue,
    argument_units,
    constant_value,
    decodes_to,
    function_abi,
    onchain_value,
)
from risk.breaker_changes import BreakerChange, threshold_text
from risk.breaker_policy import Breakers
from risk.breaker_setters import BreakerSetter, BreakerSetterArg, BreakerValue
from risk.errors import StewardError


def _planned(breakers: Breakers, changes: Sequence[BreakerChange]) -> list[tuple[Any, int, BreakerSetter, BreakerChange]]:
    """(rule, setter index, setter, change) of every setter to send, rule by rule in the policy's order."""
    by_rule = {c.rule: c for c in changes}
    out = []
    for rule in breakers.rules:
        change = by_rule.get(rule.name)
        if change is None or not change.changed:
            continue
        out += [(rule, i, setter, change) for i, setter in enumerate(rule.setters)]
    return out


def _where(rule: Any, i: int, setter: BreakerSetter, arg: BreakerSetterArg) -> str:
    return f"breaker rule {rule.name} setters[{i}] {setter.function} argument {arg.name!r}"


def _value(rule: Any, arg: BreakerSetterArg, change: BreakerChange) -> OnChainValue:
    return change.proposed if arg.parameter is BreakerValue.THRESHOLD else getattr(rule, arg.parameter.value)  # type: ignore[union-attr]


def _args(rule: Any, i: int, setter: BreakerSetter, function: FunctionAbi, change: BreakerChange) -> tuple[Any, ...]:
    args = []
    for arg, inp in zip(setter.args, function.inputs, strict=True):
        where = _where(rule, i, setter, arg)
        if arg.parameter is None:
            args.append(constant_value(arg, inp.type, where))
            continue
        value = _value(rule, arg, change)
        raw = onchain_value(value, arg, where)
        bits = int(inp.type[4:] or 256)
        if not 0 <= raw < 2**bits:
            raise GenericSetterError(
                f"{where}: {arg.parameter} {threshold_text(value)} is {raw} in {arg.unit}, which does not fit {inp.type}",  # type: ignore[arg-type]
                f"use a wider type (the largest {inp.type} is {2**bits - 1}) or a coarser unit",
            )
        args.append(raw)
    return tuple(args)


def breaker_calls_for(breakers: Breakers, changes: Sequence[BreakerChange]) -> list[Call]:
    """The setter calls of every changed threshold, rule by rule and setter by setter in the policy's order."""
    calls = []
    for rule, i, setter, change in _planned(breakers, changes):
        function = function_abi(setter)
        calls.append(encode_call(setter.contract, function, _args(rule, i, setter, function, change), f"{change.human} (rule {rule.name})",
                                 contract_label=setter.label))
    return calls


def prove_breaker_calls(calls: Sequence[Call], breakers: Breakers, changes: Sequence[BreakerChange]) -> None:
    """Decode every breaker call and check each argument against the change and the policy through the inverse unit path.

    Raises
    ------
    StewardError
        A call whose target, function or any argument differs from what the breaker policy and the change say.
    """
    planned = _planned(breakers, changes)
    if len(planned) != len(calls):
        raise StewardError(f"{len(calls)} breaker call(s) built, {len(planned)} setter(s) should fire", "do not sign: this is a bug in packaging")
    for call, (rule, i, setter, change) in zip(calls, planned, strict=True):
        function = function_abi(setter)
        if call.function != function or call.to != to_checksum_address(setter.contract):
            raise StewardError(f"call '{call.human}' is not {setter.function} on {setter.contract}", "do not sign: this is a bug in packaging")
        for arg, inp, got in zip(setter.args, function.inputs, decode_call(function, call.data), strict=True):
            where = _where(rule, i, setter, arg)
            if arg.parameter is None:
                if got != constant_value(arg, inp.type, where):
                    raise StewardError(f"{where}: decodes to {got!r}, the policy says {arg.constant if arg.text is None else arg.text!r}", "do not sign")
                continue
            ok, back, want = decodes_to(got, arg, _value(rule, arg, change))
            if not ok:
                raise StewardError(f"{where}: {got} in {arg.unit} is {back}, the breaker policy says {want}", "do not sign: this is a bug in packaging")


def breaker_calls_json(calls: Sequence[Call], breakers: Breakers, changes: Sequence[BreakerChange]) -> list[dict[str, Any]]:
    """calls.json rows of the breaker calls: the venue rows' shape, plus the rule each call writes."""
    planned = _planned(breakers, changes)

    def text(v: Any) -> str:
        return "0x" + bytes(v).hex() if isinstance(v, (bytes, bytearray)) else str(v)

    return [
        {
            "args": {k: text(v) for k, v in c.named_args.items()}, "contract": c.contract_label, "data": c.data, "human": c.human,
            "rule": rule.name, "signature": c.function.signature, "to": c.to, "units": argument_units(setter), "value": str(c.value),
        }
        for c, (rule, _, setter, _) in zip(calls, planned, strict=True)
    ]
