"""The signer packet: what a multisig signer who trusts nothing checks before signing, from the bundle alone.

Each call decoded (contract, function, every argument in people's units beside the value as sent),
the red flags of `governance.safe` over the SafeTx and over each call, the state each market moves
from (the pinned snapshot) to (the proposal), the safeTxHash / Governor proposalId, and the commands
that reproduce and check each of them. Pure: it is part of report.md / report.html, which
`steward verify` rebuilds byte for byte.

`signer_context` is venue-neutral (calls.json rows, a Safe summary, a Governor summary, state rows);
`lending_signer_context` fills it for an Aave bundle. A derivative report can build its own rows and
call `signer_context` and the `_signer_packet.*.j2` macros the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from eth_utils import to_checksum_address

from governance.calls import Call
from governance.report import LABELS, bps_text, delta_text
from governance.safe import MultiSendTx, Operation, flag_call, flag_unusual, safe_tx_from_json
from risk.breaker_policy import Breakers
from risk.policy import Policy, Protocol, VenueKind
from risk.policy_compound import compound_section
from risk.policy_derivatives import derivative_section
from risk.recommendation import Recommendation, value_text
from risk.units import BPS_PER_ONE

# (every argument of the call as sent, the argument's name, its value as sent) -> people's units
ArgText = Callable[[Mapping[str, str], str, str], str]


def allowed_targets(policy: Policy, breakers: Breakers | None = None) -> dict[str, str]:
    """Contracts a bundle of this policy may call, address → label; anything else a call targets is flagged.

    Aave: the PoolConfigurator and the RiskSteward the routing names. Compound v3: the Configurator and
    the CometProxyAdmin (its upgrade). Perps and options: the contract of every setter the policy names,
    and of every setter of `breakers` (the breaker policy the venue policy names, pinned beside it)."""
    if policy.venue.kind in (VenueKind.PERPS, VenueKind.OPTIONS):
        setters = [(s, f"{m.symbol} setter") for m in derivative_section(policy).markets for s in m.setters]
        setters += [(s, f"breaker {r.name} setter") for r in (breakers.rules if breakers else ()) for s in r.setters]
        out: dict[str, str] = {}
        for setter, fallback in setters:  # the first label a contract is given names it
            out.setdefault(to_checksum_address(setter.contract), setter.label or fallback)
        return out
    if policy.venue.protocol is Protocol.COMPOUND_V3:
        section = compound_section(policy)
        return {to_checksum_address(section.configurator): "Configurator", to_checksum_address(section.proxy_admin): "CometProxyAdmin"}
    out = {}
    if policy.venue.addresses.pool_configurator is not None:
        out[policy.venue.addresses.pool_configurator] = "PoolConfigurator"
    routing = getattr(policy, "routing", None)
    if routing is not None and routing.steward is not None:
        out[routing.steward] = "RiskSteward"
    return out


def call_flags(call: Call, allowed: Collection[str] | None) -> list[str]:
    """One call's red flags as the Safe would run it (a CALL inside the batch); `allowed` None: no allow-list."""
    entry = MultiSendTx(Operation.CALL, call.to, call.value, call.data)
    return flag_call(entry, allowed_targets=allowed, where=f"call to {call.to}")


def _raw_text(args: Mapping[str, str], name: str, raw: str) -> str:
    return raw


def _people(call: Mapping[str, Any], arg_text: ArgText, name: str, raw: str) -> str:
    """An argument in people's units; a lone struct argument the venue cannot spell out (a RiskSteward
    update array) reads as the call's own line, which is generated from the same values. A row may
    carry its own `people` texts (a venue whose arguments have per-call units: `setter_people`)."""
    own = call.get("people", {})
    if name in own:
        return str(own[name])
    text = arg_text(call["args"], name, raw)
    if text == raw and len(call["args"]) == 1 and raw.startswith("("):
        return str(call["human"])
    return text


def signer_context(
    *,
    calls: Sequence[Mapping[str, Any]],
    safe: Mapping[str, Any] | None,
    governor: Mapping[str, Any] | None,
    state_rows: Sequence[Mapping[str, Any]],
    bundle_path: str,
    allowed: Mapping[str, str],
    snapshot: Mapping[str, Any],
    arg_text: ArgText = _raw_text,
    simulate: bool = True,
) -> dict[str, Any]:
    """The packet's template data.

    `calls`: calls.json rows (with `flags`); `safe`: the report's Safe summary plus `flags`
    (`flag_unusual` over the SafeTx), or None; `governor`: `governor_summary`,
    or None; `state_rows`: dicts with market, label, current, proposed, change, changed;
    `allowed`: address → label of the allow-listed targets; `snapshot`: where "current" comes from,
    {"file": bundle path, "block": block number or None}; `simulate`: whether `steward simulate` can run
    the bundle (an Aave one), else the packet neither lists it nor promises its on-chain packet.
    """
    decoded = [
        {
            "index": i,
            "contract": c["contract"] or "unknown contract",
            "to": c["to"],
            "function": c["signature"],
            "value": c["value"],
            "batch": c.get("batch"),  # routed bundles: which executor's transaction carries the call
            "flags": list(c["flags"]),
            "args": [{"name": k, "people": _people(c, arg_text, k, v), "raw": v} for k, v in c["args"].items()],
        }
        for i, c in enumerate(calls, start=1)
    ]
    # With a SafeTx its flags cover every inner call (it is what is signed); without one, each call's own.
    flags = list(safe["flags"]) if safe is not None else [f"call {c['index']}: {f}" for c in decoded for f in c["flags"]]
    commands = [{"line": f"steward verify {bundle_path}", "what": "verify"}]
    if safe is not None:
        if simulate:
            commands.append({"line": f"steward simulate {bundle_path} --rpc URL", "what": "simulate"})
        commands.append({"line": f"steward sign {bundle_path} --keystore FILE", "what": "sign"})
    if governor is not None:
        commands.append({"line": f"steward propose {bundle_path} --governor --rpc URL --keystore FILE", "what": "propose"})
    return {
        "calls": decoded,
        "flags": flags,
        "allowed": [{"address": a, "label": label} for a, label in sorted(allowed.items(), key=lambda kv: kv[1])],
        "state": [dict(r) for r in state_rows],
        "snapshot": snapshot,
        "safe": safe,
        "governor": governor,
        "commands": commands,
        "simulate": simulate,
    }


def governor_summary(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What the packet shows of governor.json: the ids a voter or executor compares with the chain."""
    return {
        "governor": doc["governor"],
        "chain_id": doc["chainId"],
        "proposal_id": doc["proposalId"],
        "description_hash": doc["descriptionHash"],
        "timelock_operation_id": doc.get("timelockOperationId"),
    }


def lending_state_rows(recommendation: Recommendation) -> list[dict[str, Any]]:
    """Every parameter of every market: today's value (the pinned snapshot) → the proposed one."""
    return [
        {"market": m.symbol, "label": LABELS[c.parameter], "current": value_text(c.current),
         "proposed": value_text(c.proposed), "change": delta_text(c), "changed": c.changed}
        for m in recommendation.markets
        for c in m.changes
    ]


def aave_arg_text(recommendation: Recommendation) -> ArgText:
    """People's units of PoolConfigurator arguments (DOMAIN.md): bps as %, bonus as 10000 + bonus, caps in
    whole tokens (0 = no cap), assets by symbol. Anything else is shown as sent."""
    symbols = {m.asset.lower(): m.symbol for m in recommendation.markets}

    def text(args: Mapping[str, str], name: str, raw: str) -> str:
        symbol = symbols.get(str(args.get("asset", "")).lower())
        if name == "asset":
            return symbol or "unknown asset"
        if not raw.isdigit():
            return raw
        value = int(raw)
        if name in ("ltv", "liquidationThreshold"):
            return bps_text(value)
        if name == "liquidationBonus":
            return "0 (not collateral)" if value == 0 else f"{bps_text(value - BPS_PER_ONE)} bonus"
        if name in ("newSupplyCap", "newBorrowCap"):
            return "no cap" if value == 0 else f"{value:,} {symbol or 'tokens'}"
        return raw

    return text


def lending_signer_context(
    recommendation: Recommendation,
    *,
    policy: Policy,
    calls: Sequence[Mapping[str, Any]],
    files: Mapping[str, bytes],
    safe: Mapping[str, Any] | None,
    bundle_path: str,
    snapshot_block: int | None,
) -> dict[str, Any]:
    """The packet of a lending bundle, from the bundle's own files (`files` holds safe-tx.json and
    governor.json when the bundle has them): the SafeTx is read back and flagged, not taken on trust."""
    allowed = allowed_targets(policy)
    if safe is not None:
        tx = safe_tx_from_json(json.loads(files["safe-tx.json"]))
        safe = {**safe, "flags": flag_unusual(tx, allowed_targets=allowed)}
    governor = governor_summary(json.loads(files["governor.json"])) if "governor.json" in files else None
    return signer_context(
        calls=calls, safe=safe, governor=governor, state_rows=lending_state_rows(recommendation),
        bundle_path=bundle_path, allowed=allowed, snapshot={"file": "inputs/snapshot.json", "block": snapshot_block},
        arg_text=aave_arg_text(recommendation),
    )
