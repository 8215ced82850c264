"""The independent call check of a Compound v3 or a perps/options bundle (`chain_bundle.check_calls` is Aave's).

Like the Aave check, it starts from the bytes that are signed: the SafeTx's inner calls are decoded and
compared with the bundle's own files, never with the encoder's output.

* Compound v3: every Configurator setter must set a parameter recommendation.json changes, to its
  proposed value in Comet's unit (`compound_mapping.intended_calls`, with decimals and asset addresses
  from the pinned inputs/comet.json), each exactly once, and `deployAndUpgradeTo` must come once, last
  (`compound_v3.batch_problems`).
* perps/options: each call is matched to a setter the policy (or its breaker policy) names by contract
  and selector, decoded with that setter's ABI, and proven with `generic.prove_calls` against the values
  of recommendation.json and `breaker_calls.prove_breaker_calls` against the breaker policy's changes
  (measured again on the pinned prices, and compared with breakers.json), through the inverse unit types.

Neither kind can be simulated: `steward simulate` and `reconcile` read Aave v3 state only.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address

from governance.bundle import BundleError
from governance.calls import Call, FunctionAbi, decode_call
from governance.pinned import INPUT_PRICES
from governance.pipeline_compound import INPUT_COMET, is_compound
from governance.pipeline_derivatives import BREAKERS_FILE, INPUT_BREAKERS, is_derivative, measure_breakers
from governance.safe import SafeTx, flag_unusual, inner_calls
from governance.safe_tx import SafeTxError
from governance.signer_packet import allowed_targets
from governance.venues import breaker_calls, compound_v3, generic
from governance.venues.compound_mapping import intended_calls
from governance.venues.compound_snapshot import parse_comet_snapshot_json
from risk.breaker_changes import breaker_changes
from risk.breaker_policy import Breakers, check_breaker_policy_text
from risk.errors import StewardError
from risk.market import MarketData
from risk.policy import Policy
from risk.policy_compound import compound_section
from risk.policy_derivatives import DerivativeParameter, derivative_section
from risk.recommendation_derivatives import DerivativeChange, DerivativeMarketRecommendation, DerivativeRecommendation
from risk.units import Bps, Usd

AAVE, COMPOUND, DERIVATIVE = "aave-v3", "compound-v3", "derivative"
KIND_TEXT = {COMPOUND: "Compound v3 (Comet)", DERIVATIVE: "perps/options"}
_DECODE_ERRORS = (DecodingError, UnicodeDecodeError, OverflowError, ValueError)


def bundle_kind(policy: Policy) -> str:
    """Which call check a bundle of this policy gets."""
    if is_derivative(policy):
        return DERIVATIVE
    return COMPOUND if is_compound(policy) else AAVE


def _refuse(problems: list[str]) -> None:
    if problems:
        raise BundleError("the Safe transaction's calls do not match recommendation.json",
                          "do not sign: the batch does not do what the report says", problems=tuple(problems))


def _inner(tx: SafeTx) -> list[Any]:
    try:
        return list(inner_calls(tx))
    except SafeTxError as exc:
        raise BundleError(f"safe-tx.json: the batch does not decode ({exc.cause})", "do not sign it") from None


# ------------------------------------------------------------------------------------- Compound v3


def check_compound_calls(tx: SafeTx, recommendation: dict[str, Any], files: dict[str, bytes], policy: Policy) -> dict[str, dict[str, int]]:
    """Refuse a batch that is not exactly recommendation.json's Configurator setters then the upgrade.

    Returns what the batch sets: market → Comet parameter → value as sent (1e18 factors, cap in base units).
    """
    section = compound_section(policy)
    comet = parse_comet_snapshot_json(files[INPUT_COMET], INPUT_COMET)
    problems = list(flag_unusual(tx, allowed_targets=[section.configurator, section.proxy_admin]))
    symbols = {a.asset.lower(): s for s, a in comet.assets.items()}
    intended = intended_calls(recommendation["markets"], comet, section)
    want = {(sig, to_checksum_address(args[1])): args for sig, args in intended[:-1]}
    by_selector = {f.selector: f for f in compound_v3.FUNCTIONS}
    parameter = {f.signature: p.value for p, f in compound_v3.SETTERS.items()}
    calls = _inner(tx)
    decoded: list[tuple[str, str]] = []
    count: dict[tuple[str, str], int] = {}
    for i, call in enumerate(calls):
        fn = by_selector.get(bytes.fromhex(call.data[2:10]))
        if fn is None:
            problems.append(f"call {i} to {call.to}: selector {call.data[:10]} is not a Comet Configurator setter or deployAndUpgradeTo")
            continue
        try:
            args = decode_call(fn, call.data)
        except _DECODE_ERRORS as exc:
            problems.append(f"call {i} ({fn.name}): calldata does not decode ({exc})")
            continue
        decoded.append((call.to, call.data))
        if fn is compound_v3.DEPLOY_AND_UPGRADE_TO:
            continue
        key = (fn.signature, to_checksum_address(args[1]))
        where = f"call {i} ({fn.name} on {symbols.get(key[1].lower(), key[1])})"
        if key not in want:
            problems.append(f"{where}: the recommendation changes no such parameter")
            continue
        count[key] = count.get(key, 0) + 1
        if args[0] != want[key][0]:
            problems.append(f"{where} is for Comet {args[0]}, the policy's Comet is {want[key][0]}")
        elif args[2] != want[key][2]:
            problems.append(f"{where} sends {args[2]}, the recommendation says {want[key][2]}")
    for (sig, asset), n in sorted((k, count.get(k, 0)) for k in want):
        if n != 1:
            what = f"{symbols.get(asset.lower(), asset)} {parameter[sig]}"
            problems.append(f"the recommendation changes {what} but no call sets it" if n == 0 else f"{what} is set by {n} calls")
    if len(decoded) == len(calls):  # the batch's shape: setters for this Comet on its Configurator, the upgrade once, last
        problems += compound_v3.batch_problems(decoded, configurator=section.configurator, comet=section.comet, proxy_admin=section.proxy_admin)
    _refuse(problems)
    expected: dict[str, dict[str, int]] = {}
    for (sig, asset), args in want.items():
        expected.setdefault(symbols[asset.lower()], {})[parameter[sig]] = int(args[2])
    return expected


# ------------------------------------------------------------------------------------- perps / options


def _value(doc: dict[str, Any]) -> Bps | Usd:
    return Bps(int(doc["bps"])) if "bps" in doc else Usd(Decimal(doc["usd"]))


def recommendation_values(doc: dict[str, Any]) -> DerivativeRecommendation:
    """recommendation.json's values as a DerivativeRecommendation the setter proofs read (current, proposed;
    the figures and backtests, which no call carries, are left out)."""
    markets = []
    for symbol, m in doc["markets"].items():
        changes = tuple(
            DerivativeChange(symbol, DerivativeParameter(p), None if c["current"] is None else _value(c["current"]), _value(c["proposed"]),
                             _value(c["target"]), str(c["limit"]), tuple(c["binding"]), int(c["updates_to_target"]), ())
            for p, c in m["parameters"].items()
        )
        markets.append(DerivativeMarketRecommendation(symbol, str(m["kind"]), None, changes))  # type: ignore[arg-type]
    return DerivativeRecommendation(str(doc["venue"]), str(doc["protocol"]), int(doc["chain_id"]), str(doc["kind"]), str(doc["epoch"]),
                                    str(doc["as_of"]), (), (), tuple(markets))


def _breakers(files: dict[str, bytes]) -> Breakers | None:
    if INPUT_BREAKERS not in files:
        return None
    parsed, problems = check_breaker_policy_text(files[INPUT_BREAKERS], INPUT_BREAKERS)
    if parsed is None:
        raise BundleError(f"{INPUT_BREAKERS} does not validate: {problems[0]}", "rebuild the bundle with `steward epoch`")
    return parsed.breakers


def _setter_functions(policy: Policy, breakers: Breakers | None) -> dict[tuple[str, bytes], tuple[FunctionAbi, str]]:
    """(contract, selector) → (ABI, label) of every setter the policy and its breaker policy name."""
    setters = [s for m in derivative_section(policy).markets for s in m.setters]
    setters += [s for r in (breakers.rules if breakers else ()) for s in r.setters]
    out: dict[tuple[str, bytes], tuple[FunctionAbi, str]] = {}
    for s in setters:
        fn = generic.function_abi(s)
        out.setdefault((to_checksum_address(s.contract), fn.selector), (fn, s.label))
    return out


def check_derivative_calls(tx: SafeTx, recommendation: dict[str, Any], files: dict[str, bytes], policy: Policy) -> dict[str, dict[str, int]]:
    """Refuse a batch whose calls are not exactly the policy's setters carrying recommendation.json's and the breaker changes' values."""
    breakers = _breakers(files)
    problems = list(flag_unusual(tx, allowed_targets=allowed_targets(policy, breakers)))
    rec = recommendation_values(recommendation)
    functions = _setter_functions(policy, breakers)
    calls: list[Call] = []
    for i, raw in enumerate(_inner(tx)):
        to = to_checksum_address(raw.to)
        found = functions.get((to, bytes.fromhex(raw.data[2:10])))
        if found is None:
            problems.append(f"call {i} to {to}: selector {raw.data[:10]} is not a setter the policy names on that contract")
            continue
        fn, label = found
        try:
            args = decode_call(fn, raw.data)
        except _DECODE_ERRORS as exc:
            problems.append(f"call {i} ({fn.signature}): calldata does not decode ({exc})")
            continue
        calls.append(Call(to=to, value=raw.value, data=raw.data, function=fn, args=args, human=f"call {i} ({fn.signature} on {label or to})",
                          contract_label=label))
    _refuse(problems)
    try:
        n_venue = len(generic.calls_for(policy, rec))  # how many of the batch's calls are the venue's setters (they come first)
        generic.prove_calls(calls[:n_venue], policy, rec)
    except StewardError as exc:
        _refuse([f"venue setter calls: {exc.cause}"])  # the breaker calls' place in the batch is unknown then
    problems += _breaker_problems(calls[n_venue:], breakers, files, policy)
    _refuse(problems)
    return {}  # never simulated: `steward simulate` reads Aave v3 state only


def _breaker_problems(calls: list[Call], breakers: Breakers | None, files: dict[str, bytes], policy: Policy) -> list[str]:
    if breakers is None:
        return [f"{c.human}: beyond the venue's setters, and the bundle has no breaker policy" for c in calls]
    market = MarketData.from_csv_bytes(files[INPUT_PRICES], INPUT_PRICES)
    changes = breaker_changes(breakers, measure_breakers(files[INPUT_BREAKERS], policy, market))
    stated = json.loads(files[BREAKERS_FILE])["onchain"] if BREAKERS_FILE in files else None
    problems = []
    if stated is not None and stated != [c.to_json() for c in changes]:
        problems.append(f"{BREAKERS_FILE}: its on-chain thresholds are not the breaker policy's, measured on the pinned prices")
    try:
        breaker_calls.prove_breaker_calls(calls, breakers, changes)
    except StewardError as exc:
        problems.append(f"breaker setter calls: {exc.cause}")
    return problems


def check_venue_calls(kind: str, tx: SafeTx, recommendation: dict[str, Any], files: dict[str, bytes], policy: Policy,
                      bundle: Path) -> dict[str, dict[str, int]]:
    """The check of a non-Aave kind; returns what the batch sets (`ChainBundle.expected`)."""
    try:
        if kind == COMPOUND:
            return check_compound_calls(tx, recommendation, files, policy)
        return check_derivative_calls(tx, recommendation, files, policy)
    except BundleError as exc:
        raise BundleError(f"{bundle}: {exc.cause}", exc.hint, exc.problems) from None
