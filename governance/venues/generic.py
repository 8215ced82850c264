"""Any venue's setters: DerivativeChange → Call, from the setter spec each market names in the policy.

A setter (`risk.policy_derivatives.Setter`) gives the contract, the function signature and, per argument,
either a recommended parameter with its on-chain unit, a constant, or a bytes32 text. A market's setter
is called when one of its parameters changes; its other parameters are sent at their proposed value.

Values become integers through `risk.units` only: ``Bps.to_ratio()`` then ``Ratio.to_bps/to_wad/to_ray``
(rounding only where the argument names one), ``TokenAmount.from_units`` for e6 / raw decimals and for
USD amounts. Every call is encoded with `governance.calls.encode_call` (which decodes it back), and
`prove_calls` decodes the calldata again and turns each integer back into people's units through the
inverse types (``Wad(raw).to_ratio()``, ``TokenAmount(raw, 6).to_decimal()``, ...) to compare it with
the recommendation: a different path from the one that encoded it.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from eth_abi.grammar import normalize as normalize_abi_type
from eth_abi.grammar import parse as parse_abi_type
from eth_utils import is_address, to_checksum_address

from governance.calls import AbiInput, Call, FunctionAbi, decode_call, encode_call
from risk.errors import StewardError, UnitError
from risk.policy import Policy
from risk.policy_derivatives import (
    ROUNDABLE_UNITS,
    USD_PARAMETERS,
    DerivativeMarket,
    OnChainUnit,
    Setter,
    SetterArg,
    derivative_section,
    signature_parts,
)
from risk.recommendation_derivatives import (
    DerivativeMarketRecommendation,
    DerivativeRecommendation,
    ParameterValue,
    value_text,
)
from risk.units import Bps, Duration, Ratio, Ray, TokenAmount, Usd, Wad

# What a setter argument may carry: a venue parameter (Bps, Usd) or a breaker's threshold or setting (Ratio, Duration, Usd).
OnChainValue = ParameterValue | Ratio | Duration

_PLACES = {OnChainUnit.E6: 6}


class GenericSetterError(StewardError):
    """A setter spec that cannot carry the recommendation (type, range, unit) — named with its market and argument."""


def function_abi(setter: Setter) -> FunctionAbi:
    """The setter's ABI from its signature and argument names (internal type = type)."""
    name, types = signature_parts(setter.function)
    for t in types:
        canonical = normalize_abi_type(t)
        if canonical != t:
            raise GenericSetterError(f"{setter.function}: write {canonical}, not {t}", "the selector is computed from canonical types; another spelling calls another function")
        try:
            parse_abi_type(t).validate()
        except Exception as exc:  # noqa: BLE001 - eth-abi raises several types for an unknown or malformed type
            raise GenericSetterError(f"{setter.function}: ABI type {t!r} is not valid ({exc})", "use Solidity types, e.g. uint256, bytes32, address") from None
    return FunctionAbi(name, tuple(AbiInput(a.name, t, t) for a, t in zip(setter.args, types, strict=True)))


def _where(market: str, setter: Setter, arg: SetterArg) -> str:
    return f"{market} {setter.function} argument {arg.name!r}"


def _decimals(arg: SetterArg) -> int | None:
    if arg.unit is OnChainUnit.RAW:
        return arg.decimals
    return _PLACES.get(arg.unit)  # type: ignore[arg-type]


def _text(value: OnChainValue) -> str:
    return value_text(value) if isinstance(value, (Bps, Usd)) else str(value)


def onchain_value(value: OnChainValue, arg: SetterArg, where: str = "") -> int:
    """The integer a setter argument carries for ``value`` in the argument's unit (exact unless it names a rounding)."""
    rounding = None if arg.rounding is None else arg.rounding.value
    unit = arg.unit
    if isinstance(value, Duration):
        if unit is OnChainUnit.SECONDS:
            return value.seconds
        raise GenericSetterError(f"{where}: the duration {value} cannot be written in {unit}", "durations are sent in seconds (unit: seconds)")
    if unit is OnChainUnit.SECONDS:
        raise GenericSetterError(f"{where}: {_text(value)} is not a duration", "seconds are for durations; ratios: bps, wad, ray, e6, raw")
    try:
        if isinstance(value, (Bps, Ratio)):
            ratio = value.to_ratio() if isinstance(value, Bps) else value
            if unit is OnChainUnit.BPS:
                return ratio.to_bps(rounding).value  # type: ignore[arg-type]
            if unit is OnChainUnit.WAD:
                return ratio.to_wad(rounding).raw  # type: ignore[arg-type]
            if unit is OnChainUnit.RAY:
                return ratio.to_ray(rounding).raw  # type: ignore[arg-type]
            places = _decimals(arg)
            if places is not None:
                return TokenAmount.from_units(ratio.value, places).raw
        elif isinstance(value, Usd):
            if unit is OnChainUnit.WHOLE_TOKEN:
                return TokenAmount.from_units(value.value, 36).to_whole_tokens(rounding)  # type: ignore[arg-type]
            places = {OnChainUnit.WAD: 18, OnChainUnit.RAY: 27}.get(unit, _decimals(arg))  # type: ignore[arg-type]
            if places is not None:
                return TokenAmount.from_units(value.value, places).raw
    except UnitError:
        exact = "" if rounding is not None or unit not in ROUNDABLE_UNITS else ", or name a rounding (down, up, nearest)"
        raise GenericSetterError(
            f"{where}: {_text(value)} is not a whole number in {unit}" + (f" ({_decimals(arg)} decimals)" if _decimals(arg) is not None else ""),
            f"write it in a finer unit{exact}",
        ) from None
    raise GenericSetterError(f"{where}: {value!r} cannot be written in {unit}", "ratios: bps, wad, ray, e6, raw; USD amounts: wad, ray, e6, whole-token, raw")


def value_back(raw: int, arg: SetterArg, like: OnChainValue) -> Decimal:
    """The inverse of `onchain_value`, through the inverse unit types: a fraction of one, a USD amount or seconds."""
    unit = arg.unit
    if isinstance(like, Duration):
        return Decimal(Duration(raw).seconds)
    if isinstance(like, (Bps, Ratio)):
        if unit is OnChainUnit.BPS:
            return Bps(raw).to_ratio().value
        if unit is OnChainUnit.WAD:
            return Wad(raw).to_ratio().value
        if unit is OnChainUnit.RAY:
            return Ray(raw).to_ratio().value
        return TokenAmount(raw, _decimals(arg)).to_decimal()  # type: ignore[arg-type]
    if unit is OnChainUnit.WHOLE_TOKEN:
        return TokenAmount.whole(raw, 0).to_decimal()
    if unit is OnChainUnit.WAD:
        return Wad(raw).to_ratio().value
    if unit is OnChainUnit.RAY:
        return Ray(raw).to_ratio().value
    return TokenAmount(raw, _decimals(arg)).to_decimal()  # type: ignore[arg-type]


def exact_value(value: OnChainValue) -> Decimal:
    """What `value_back` should give back: a fraction of one, a USD amount or seconds."""
    if isinstance(value, Duration):
        return Decimal(value.seconds)
    return value.to_ratio().value if isinstance(value, Bps) else value.value


def decodes_to(raw: int, arg: SetterArg, value: OnChainValue) -> tuple[bool, Decimal, Decimal]:
    """Whether ``raw`` (decoded from calldata) is ``value`` in the argument's unit: exact, or within one unit in its rounding's direction."""
    back, want = value_back(raw, arg, value), exact_value(value)
    one = value_back(1, arg, value)
    rounding = None if arg.rounding is None else arg.rounding.value
    ok = back == want if rounding is None else (abs(back - want) < one and (rounding != "down" or back <= want) and (rounding != "up" or back >= want))
    return ok, back, want


def _text_bytes(text: str) -> bytes:
    return text.encode("utf-8").ljust(32, b"\0")


def _uint_bits(abi_type: str) -> int:
    return int(abi_type[4:] or 256)


def constant_value(arg: SetterArg, abi_type: str, where: str) -> Any:
    """A constant argument in the form eth-abi encodes, refusing one that does not fit its type."""
    if arg.text is not None:
        return _text_bytes(arg.text)
    c = arg.constant
    node = parse_abi_type(abi_type)
    if abi_type == "address":
        if not (isinstance(c, str) and is_address(c)):
            raise GenericSetterError(f"{where}: {c!r} is not an address", 'quote it in YAML: "0x..." (40 hex digits)')
        return to_checksum_address(c)
    if abi_type == "bool":
        if not isinstance(c, bool):
            raise GenericSetterError(f"{where}: {c!r} is not a boolean", "write true or false")
        return c
    if node.base in ("uint", "int") and not node.is_array:
        if isinstance(c, bool) or not isinstance(c, int):
            raise GenericSetterError(f"{where}: {c!r} is not an integer", "write the integer without quotes")
        bits = int(node.sub)
        lo, hi = (0, 2**bits) if node.base == "uint" else (-(2 ** (bits - 1)), 2 ** (bits - 1))
        if not lo <= c < hi:
            raise GenericSetterError(f"{where}: {c} does not fit {abi_type}", "check the value")
        return c
    if node.base == "bytes" and not node.is_array:
        if not (isinstance(c, str) and c.startswith("0x")):
            raise GenericSetterError(f"{where}: {c!r} is not 0x-prefixed hex", "quote bytes in YAML: \"0x...\"")
        try:
            data = bytes.fromhex(c[2:])
        except ValueError:
            raise GenericSetterError(f"{where}: {c!r} is not hex", "write 0x followed by hex digits") from None
        if node.sub and len(data) != int(node.sub):
            raise GenericSetterError(f"{where}: {len(data)} bytes for {abi_type}", f"give exactly {node.sub} bytes")
        return data
    if abi_type == "string":
        if not isinstance(c, str):
            raise GenericSetterError(f"{where}: {c!r} is not a string", "quote it")
        return c
    raise GenericSetterError(f"{where}: constants of type {abi_type} are not supported", "use address, bool, (u)intN, bytesN or string")


def _markets(policy: Policy) -> tuple[DerivativeMarket, ...]:
    return derivative_section(policy).markets  # type: ignore[return-value]


def _firing(market: DerivativeMarket, rec: DerivativeMarketRecommendation) -> list[Setter]:
    """The market's setters that write at least one changed parameter, in the policy's order."""
    out = []
    for setter in market.setters:
        for p in setter.parameters:
            if not rec.has(p):
                raise GenericSetterError(
                    f"{market.symbol} {setter.function} writes {p}, which this recommendation has no value for",
                    "add what the parameter comes from (liquidity for fees and caps, hedging for the hedge) or drop it from the setter",
                )
        if any(rec.change(p).changed for p in setter.parameters):
            out.append(setter)
    return out


def _human(symbol: str, setter: Setter, rec: DerivativeMarketRecommendation) -> str:
    parts = []
    for p in setter.parameters:
        c = rec.change(p)
        parts.append(f"{c.label} {value_text(c.proposed)} (unchanged)" if not c.changed else f"{c.label} {value_text(c.current)} → {value_text(c.proposed)}")
    return f"{symbol}: " + "; ".join(parts)


def _args(symbol: str, setter: Setter, function: FunctionAbi, rec: DerivativeMarketRecommendation) -> tuple[Any, ...]:
    args = []
    for arg, inp in zip(setter.args, function.inputs, strict=True):
        where = _where(symbol, setter, arg)
        if arg.parameter is None:
            args.append(constant_value(arg, inp.type, where))
            continue
        value = rec.change(arg.parameter).proposed
        if (arg.parameter in USD_PARAMETERS) != isinstance(value, Usd):
            raise GenericSetterError(f"{where}: {arg.parameter} has value {value!r}", "this is a bug: USD parameters carry Usd values")
        raw = onchain_value(value, arg, where)
        if not 0 <= raw < 2 ** _uint_bits(inp.type):
            raise GenericSetterError(f"{where}: {value_text(value)} is {raw} in {arg.unit}, which does not fit {inp.type}", "use a wider type or another unit")
        args.append(raw)
    return tuple(args)


def calls_for(policy: Policy, recommendation: DerivativeRecommendation) -> list[Call]:
    """Every setter call of the recommendation, market by market and setter by setter in the policy's order."""
    calls = []
    for market in _markets(policy):
        rec = recommendation.market(market.symbol)
        for setter in _firing(market, rec):
            function = function_abi(setter)
            calls.append(encode_call(setter.contract, function, _args(market.symbol, setter, function, rec), _human(market.symbol, setter, rec),
                                     contract_label=setter.label))
    return calls


def prove_calls(calls: Sequence[Call], policy: Policy, recommendation: DerivativeRecommendation) -> None:
    """Decode every call and check each argument against the recommendation through the inverse unit path.

    Raises
    ------
    StewardError
        A call whose target, function or any argument differs from what the policy and recommendation say.
    """
    planned = [(market, setter) for market in _markets(policy) for setter in _firing(market, recommendation.market(market.symbol))]
    if len(planned) != len(calls):
        raise StewardError(f"{len(calls)} call(s) built, {len(planned)} setter(s) should fire", "do not sign: this is a bug in packaging")
    for call, (market, setter) in zip(calls, planned, strict=True):
        function = function_abi(setter)
        if call.function != function or call.to != to_checksum_address(setter.contract):
            raise StewardError(f"call '{call.human}' is not {setter.function} on {setter.contract}", "do not sign: this is a bug in packaging")
        decoded = decode_call(function, call.data)
        rec = recommendation.market(market.symbol)
        for arg, inp, got in zip(setter.args, function.inputs, decoded, strict=True):
            where = _where(market.symbol, setter, arg)
            if arg.parameter is None:
                if got != constant_value(arg, inp.type, where):
                    raise StewardError(f"{where}: decodes to {got!r}, the policy says {arg.constant if arg.text is None else arg.text!r}", "do not sign")
                continue
            ok, back, want = decodes_to(got, arg, rec.change(arg.parameter).proposed)
            if not ok:
                raise StewardError(f"{where}: {got} in {arg.unit} is {back}, the recommendation says {want}", "do not sign: this is a bug in packaging")


_UNIT_TEXT = {
    OnChainUnit.BPS: "basis points (10000 = 100%)",
    OnChainUnit.WAD: "wad (1e18 = 1)",
    OnChainUnit.RAY: "ray (1e27 = 1)",
    OnChainUnit.E6: "6 decimals (1e6 = 1)",
    OnChainUnit.WHOLE_TOKEN: "whole units",
    OnChainUnit.SECONDS: "seconds",
}


def argument_units(setter: Setter) -> dict[str, str]:
    """What each argument of a setter carries, in words: ``{"imfWad": "imf in wad (1e18 = 1)", ...}``."""
    out = {}
    for arg in setter.args:
        if arg.parameter is not None:
            unit = f"raw ({arg.decimals} decimals)" if arg.unit is OnChainUnit.RAW else _UNIT_TEXT[arg.unit]  # type: ignore[index]
            out[arg.name] = f"{arg.parameter.value} in {unit}" + (f", rounded {arg.rounding.value}" if arg.rounding else "")
        else:
            out[arg.name] = f"text {arg.text!r} as bytes32" if arg.text is not None else "constant from the policy"
    return out


def calls_json(calls: Sequence[Call], policy: Policy, recommendation: DerivativeRecommendation) -> list[dict[str, Any]]:
    """calls.json rows: the lending pipeline's shape (bytes shown as 0x hex) plus each argument's unit."""
    planned = [setter for market in _markets(policy) for setter in _firing(market, recommendation.market(market.symbol))]

    def text(v: Any) -> str:
        return "0x" + bytes(v).hex() if isinstance(v, (bytes, bytearray)) else str(v)

    return [
        {
            "args": {k: text(v) for k, v in c.named_args.items()}, "contract": c.contract_label, "data": c.data, "human": c.human,
            "signature": c.function.signature, "to": c.to, "units": argument_units(setter), "value": str(c.value),
        }
        for c, setter in zip(calls, planned, strict=True)
    ]
