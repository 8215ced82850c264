"""One epoch: inputs → recommendation → calls → Safe batch → report → bundle files.

`governance.epoch_inputs.gather_inputs` is the only stage that reads the outside world (policy, data
files, snapshot); `build_files` here is a pure function of the pinned inputs, which is what lets
`steward verify` rebuild a bundle from its own `inputs/` folder and compare it byte for byte.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from governance import jsonio
from governance.bundle import MANIFEST, sha256
from governance.calls import Call, decode_call
from governance.epoch_inputs import INPUT_SNAPSHOT, EpochInputs
from governance.governor import governor_files
from governance.pinned import INPUT_HISTORY, INPUT_POLICY, INPUT_PRICES
from governance.report import render_markdown, report_context
from governance.report_html import chart_inputs, render_html
from governance.routed_calls import (
    RoutedCalls,
    for_route,
    prove_steward_calls,
    route_calls,
    routed_recommendation_json,
    steward_matches,
)
from governance.safe import (
    build_tx_builder_batch,
    decode_tx_builder_batch,
    safe_tx_for_calls,
    safe_tx_json,
)
from governance.signer_packet import allowed_targets, call_flags, lending_signer_context
from governance.venues import aave_v3
from governance.venues.aave_steward_state import INPUT_STEWARD, steward_state_bytes
from risk.data_text import iso_utc
from risk.errors import StewardError
from risk.parallel import TaskMap, serial_map
from risk.policy import Policy, Protocol
from risk.recommend import recommend
from risk.recommendation import Recommendation
from risk.routing import RouteKind, routes_table
from risk.routing_chain import StewardState, disagreements


def calls_json(calls: list[Call], policy: Policy | None = None) -> list[dict[str, Any]]:
    """calls.json: each call decoded, with its red flags (governance.safe.flag_call): value transfers and,
    given the policy, targets outside its allow-list (governance.signer_packet.allowed_targets)."""
    allowed = None if policy is None else allowed_targets(policy)
    return [
        {
            "args": {k: str(v) for k, v in c.named_args.items()},
            "contract": c.contract_label,
            "data": c.data,
            "flags": call_flags(c, allowed),
            "human": c.human,
            "signature": c.function.signature,
            "to": c.to,
            "value": str(c.value),
        }
        for c in calls
    ]


def _prove_calls(calls: list[Call], recommendation: Recommendation) -> None:
    """Decode every call's bytes and compare with what the recommendation says, independently of encoding."""
    for call in calls:
        decoded = decode_call(call.function, call.data)
        intended = aave_v3.intended_args(call, recommendation)
        if decoded != intended:
            raise StewardError(
                f"call '{call.human}' decodes to {decoded}, the recommendation says {intended}",
                "do not sign: this is a bug in packaging",
            )


def _prove_routed_calls(
    routed: RoutedCalls, policy: Policy, recommendation: Recommendation, steward: StewardState | None
) -> None:
    """Each route's calls against the recommendation as that route carries it; steward calls decoded too."""
    prove_steward_calls(routed.steward_calls, policy, recommendation, routed.routes, steward)
    _prove_calls(routed.safe_calls, for_route(recommendation, routed.routes, RouteKind.SAFE))
    _prove_calls(routed.governor_calls, for_route(recommendation, routed.routes, RouteKind.GOVERNANCE))


def _routed_calls_json(routed: RoutedCalls, policy: Policy) -> list[dict[str, Any]]:
    """calls.json of a routed bundle: each call names the batch that carries it (the Safe's or the Governor's)."""
    return [
        {**doc, "batch": batch}
        for batch, calls in (("safe", routed.safe_batch), ("governor", routed.governor_calls))
        for doc in calls_json(calls, policy)
    ]


def build_files(inputs: EpochInputs, *, task_map: TaskMap = serial_map) -> dict[str, bytes]:
    """Every file of the bundle, in memory. Pure: same inputs, same bytes (whatever `task_map` runs them)."""
    from governance.pipeline_derivatives import DerivativeInputs, build_derivative_files

    if isinstance(inputs, DerivativeInputs):
        return build_derivative_files(inputs)
    from governance.pipeline_compound import CompoundInputs, build_compound_files

    if isinstance(inputs, CompoundInputs):
        return build_compound_files(inputs, task_map=task_map)
    policy = inputs.policy.policy
    bundle_path = f"proposals/{policy.venue.name}/{inputs.epoch}"  # as the report and the batch name it
    if policy.venue.protocol is not Protocol.AAVE_V3:
        raise StewardError(
            f"protocol {policy.venue.protocol} cannot be packaged yet",
            "lending venues: aave-v3 or compound-v3; any other venue's setters: venue.kind perps/options with setters: in the policy",
        )
    steward_matches(policy, inputs.steward, chain_id=policy.venue.chain_id, block=inputs.snapshot.block)
    market = inputs.market
    as_of = iso_utc(int(market.times[-1]))
    rec = recommend(
        policy, market.symbols, market.prices, market.step_seconds, inputs.snapshot,
        epoch=inputs.epoch, as_of=as_of, history=inputs.history, task_map=task_map,
    )
    routed = None
    if policy.routing is None:
        calls = aave_v3.calls_for(policy, rec)
        _prove_calls(calls, rec)
        batch_calls, governor_calls, governor_rec = calls, calls, rec
        rec_doc, calls_doc = rec.to_json(), calls_json(calls, policy)
    else:  # steward + Safe routes in the Safe batch, the governance route in governor.json only
        routed = route_calls(policy, rec, as_of_seconds=int(market.times[-1]), steward=inputs.steward)
        _prove_routed_calls(routed, policy, rec, inputs.steward)
        calls, batch_calls, governor_calls = routed.all_calls, routed.safe_batch, routed.governor_calls
        governor_rec = for_route(rec, routed.routes, RouteKind.GOVERNANCE)
        rec_doc = routed_recommendation_json(rec, routed, policy, inputs.steward)
        calls_doc = _routed_calls_json(routed, policy)

    files: dict[str, bytes] = {
        INPUT_POLICY: inputs.policy.text,
        INPUT_PRICES: market.to_csv_bytes(),
        INPUT_SNAPSHOT: inputs.snapshot.to_json_bytes(),
        "recommendation.json": jsonio.dumps(rec_doc),
        "calls.json": jsonio.dumps(calls_doc),
    }
    if inputs.history is not None:
        files[INPUT_HISTORY] = inputs.history.to_csv_bytes()
    if inputs.steward is not None:
        files[INPUT_STEWARD] = steward_state_bytes(inputs.steward)
    safe_summary = None
    safe_address = policy.venue.addresses.safe
    if batch_calls and safe_address is not None:
        title = f"{policy.venue.name} risk parameters, epoch {inputs.epoch}"
        batch = build_tx_builder_batch(
            batch_calls,
            chain_id=policy.venue.chain_id,
            safe_address=safe_address,
            created_at_ms=int(market.times[-1]) * 1000,  # the data's as-of time: no clock in artefacts
            name=title,
            description=f"{len(batch_calls)} call(s) generated by steward; verify with `steward verify {bundle_path}`",
            owner_address=policy.venue.addresses.safe_owner,
        )
        if decode_tx_builder_batch(batch) != [(c.to, c.value, c.data) for c in batch_calls]:
            raise StewardError("the Tx Builder file does not encode the same calls as calls.json", "do not sign; report a bug")
        safe_tx = safe_tx_for_calls(batch_calls, safe_address=safe_address, chain_id=policy.venue.chain_id, nonce=inputs.snapshot.safe_nonce)
        safe_doc = safe_tx_json(safe_tx)
        files["safe-tx-builder.json"] = jsonio.dumps(batch)
        files["safe-tx.json"] = jsonio.dumps(safe_doc)
        safe_summary = {
            "safe": safe_doc["safe"],
            "chain_id": policy.venue.chain_id,
            "nonce": safe_tx.nonce,
            "to": safe_doc["to"],
            "operation": "DELEGATECALL (MultiSendCallOnly)" if safe_tx.operation == 1 else "CALL",
            "hash": safe_doc["safeTxHash"],
        }
    inputs_hashes = {
        "policy": sha256(files[INPUT_POLICY]),
        "prices": sha256(files[INPUT_PRICES]),
        "snapshot": sha256(files[INPUT_SNAPSHOT]),
    }
    if INPUT_HISTORY in files:
        inputs_hashes["history"] = sha256(files[INPUT_HISTORY])
    if INPUT_STEWARD in files:
        inputs_hashes["steward"] = sha256(files[INPUT_STEWARD])
    files.update(
        governor_files(
            policy, governor_rec, governor_calls, inputs=inputs_hashes, bundle_path=bundle_path,
            version=metadata.version("steward"), block=inputs.snapshot.block,
        )
    )
    context = report_context(
        rec,
        calls=calls_doc,
        safe=safe_summary,
        inputs=inputs_hashes,
        bundle_path=bundle_path,
        data_range=f"{len(market.times)} steps of {market.step_seconds // 60} min, {iso_utc(int(market.times[0]))} .. {as_of}",
        sources=[s.to_json() for s in inputs.sources] or [{"name": "embedded demo market (synthetic, risk/demo/synthetic.py)", "sha256": inputs_hashes["prices"]}],
        repairs=list(inputs.repairs),
        charts=chart_inputs(rec, market, policy.change_limits),
        signer=lending_signer_context(
            rec, policy=policy, calls=calls_doc, files=files, safe=safe_summary,
            bundle_path=bundle_path, snapshot_block=inputs.snapshot.block,
        ),
    )
    if routed is not None:
        context["routing"] = routes_table(routed.routes)
        if inputs.steward is not None and policy.routing is not None:
            context["routing_chain"] = _routing_chain_context(inputs.steward, disagreements(policy.routing, inputs.steward))
    files["report.md"] = render_markdown(context)
    files["report.html"] = render_html(context)
    files[MANIFEST] = jsonio.dumps(
        {
            "block": inputs.snapshot.block,
            "chain_id": policy.venue.chain_id,
            "epoch": inputs.epoch,
            "files": {rel: sha256(data) for rel, data in sorted(files.items())},
            "inputs": inputs_hashes,
            "policy_sha256": inputs_hashes["policy"],
            "repairs": list(inputs.repairs),
            "seed": inputs.seed,
            "sources": [s.to_json() for s in inputs.sources],
            "steward_version": metadata.version("steward"),
            "venue": policy.venue.name,
        }
    )
    return files


def _routing_chain_context(steward: StewardState, differ: tuple[str, ...]) -> dict[str, Any]:
    """The report's words for a routing decided on the steward's state read from the chain."""
    return {
        "source": f"RiskSteward {steward.steward} at block {steward.block} of chain {steward.chain_id} ({INPUT_STEWARD})",
        "disagreements": list(differ),
    }


def bundle_dir(out: Path, inputs: EpochInputs) -> Path:
    return out / inputs.policy.policy.venue.name / inputs.epoch
