"""Emergency proposals: a rule with an action fired → calls, Safe batch, report and manifest, in seconds.

Actions (on the venue's Aave v3 PoolConfigurator, for the reserve the breaker market maps to):

* ``freeze``  — ``setReserveFreeze(asset, true)``: no new supply or borrow; repay, withdraw and
  liquidations go on. RISK_ADMIN may call it (the devnet Safe holds that role).
* ``cut_ltv`` — ``configureReserveAsCollateral(asset, floor, LT, 10000 + LB)``: the LTV drops to the
  watch section's ``ltv_floor``, threshold and bonus stay as the chain has them (no existing position
  becomes liquidatable). RISK_ADMIN. No call when the LTV is already at or below the floor.
* ``pause``   — ``setReservePause(asset, true)``: nothing at all, liquidations included. This Aave
  version requires EMERGENCY_ADMIN (or POOL_ADMIN): the guardian Safe needs that role
  (`governance.watch_contract.grant_guardian` grants it on the devnet).

The bundle is the epoch's shape (calls.json, safe-tx-builder.json, safe-tx.json, report.md,
manifest.json) with ``"kind": "emergency"`` in the manifest and its inputs pinned: ``inputs/trigger.json``
(the alert and the action), ``inputs/venue-policy.yaml`` and ``inputs/snapshot.json`` (the reserve's
parameters and the Safe's nonce at one block). `build_emergency_files` is a pure function of those,
so `verify_emergency_bundle` rebuilds it byte for byte, as `steward verify` does for epochs.
`simulate_emergency` runs the Safe transaction on the devnet (or an anvil fork) through
`governance.simulate`: it passes only if the reserve ends exactly frozen / paused / at the floor and
nothing else changed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from eth_utils import to_checksum_address

from governance import jsonio
from governance.bundle import (
    MANIFEST,
    SIMULATION,
    BundleError,
    load_manifest,
    read_bundle,
    sha256,
)
from governance.calls import AbiInput, Call, FunctionAbi, decode_call, encode_call
from governance.chain import ChainReader
from governance.chain_bundle import ChainBundle, write_attachment
from governance.pipeline import calls_json
from governance.report import environment, pct, usd
from governance.safe import (
    build_tx_builder_batch,
    decode_tx_builder_batch,
    safe_tx_for_calls,
    safe_tx_json,
)
from governance.simulate import SimulationResult, simulate_safe_tx
from governance.venues.aave_v3 import (
    CONFIGURE_RESERVE_AS_COLLATERAL,
    check_collateral_rules,
)
from risk.errors import StewardError
from risk.policy import Policy
from risk.policy_load import LoadedPolicy, check_policy_text
from risk.snapshot import VenueSnapshot, parse_snapshot_json
from risk.units import BPS_PER_ONE, Bps

KIND = "emergency"
INPUT_TRIGGER = "inputs/trigger.json"
INPUT_VENUE = "inputs/venue-policy.yaml"
INPUT_SNAPSHOT = "inputs/snapshot.json"
ACTIONS = ("freeze", "cut_ltv", "pause")

SET_RESERVE_FREEZE = FunctionAbi("setReserveFreeze", (AbiInput("asset", "address", "address"), AbiInput("freeze", "bool", "bool")))
SET_RESERVE_PAUSE = FunctionAbi("setReservePause", (AbiInput("asset", "address", "address"), AbiInput("paused", "bool", "bool")))
ROLE = {"freeze": "RISK_ADMIN", "cut_ltv": "RISK_ADMIN", "pause": "EMERGENCY_ADMIN"}


@dataclass(frozen=True, slots=True)
class EmergencyTrigger:
    """What fired and what it asks for. ``value``/``threshold`` in ``unit`` (ratio, seconds or usd)."""

    time: int
    market: str
    reserve: str
    rule: str
    kind: str  # "alert" | "health"
    value: float
    threshold: float
    unit: str
    severity: str
    action: str
    ltv_floor_bps: int
    breaker_policy_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "breaker_policy_sha256": self.breaker_policy_sha256, "kind": self.kind, "ltv_floor_bps": self.ltv_floor_bps,
                "market": self.market, "reserve": self.reserve, "rule": self.rule, "severity": self.severity, "threshold": self.threshold,
                "time": self.time, "unit": self.unit, "value": self.value}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> EmergencyTrigger:
        return cls(int(doc["time"]), str(doc["market"]), str(doc["reserve"]), str(doc["rule"]), str(doc["kind"]), float(doc["value"]),
                   float(doc["threshold"]), str(doc["unit"]), str(doc["severity"]), str(doc["action"]), int(doc["ltv_floor_bps"]),
                   str(doc["breaker_policy_sha256"]))

    @property
    def stamp(self) -> str:
        return dt.datetime.fromtimestamp(self.time, dt.UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class EmergencyInputs:
    trigger: EmergencyTrigger
    venue: LoadedPolicy
    snapshot: VenueSnapshot


def emergency_calls(policy: Policy, trigger: EmergencyTrigger, snapshot: VenueSnapshot) -> list[Call]:
    """The PoolConfigurator calls of the action (see the module doc); [] when nothing needs to change."""
    if trigger.action not in ACTIONS:
        raise StewardError(f"emergency action {trigger.action!r}", f"actions with a proposal: {', '.join(ACTIONS)}")
    configurator = policy.venue.addresses.pool_configurator
    if configurator is None:
        raise StewardError(f"venue {policy.venue.name} has no pool_configurator address", "add venue.addresses.pool_configurator to the venue policy")
    asset = policy.market(trigger.reserve).asset
    why = f"{trigger.rule} on {trigger.market}"
    if trigger.action == "freeze":
        return [encode_call(configurator, SET_RESERVE_FREEZE, (asset, True), f"{trigger.reserve}: freeze the reserve ({why})", contract_label="PoolConfigurator")]
    if trigger.action == "pause":
        return [encode_call(configurator, SET_RESERVE_PAUSE, (asset, True), f"{trigger.reserve}: pause the reserve ({why})", contract_label="PoolConfigurator")]
    state = snapshot.market(trigger.reserve)
    floor = Bps(trigger.ltv_floor_bps)
    if state.ltv <= floor:
        return []
    check_collateral_rules(trigger.reserve, floor, state.liquidation_threshold, state.liquidation_bonus)
    lt, lb = state.liquidation_threshold.value, state.liquidation_bonus.value
    return [encode_call(configurator, CONFIGURE_RESERVE_AS_COLLATERAL, (asset, floor.value, lt, BPS_PER_ONE + lb if lt else 0),
                        f"{trigger.reserve} LTV {state.ltv} → {floor} (threshold {state.liquidation_threshold} and bonus {state.liquidation_bonus} kept; {why})",
                        contract_label="PoolConfigurator")]


def _value_text(value: float, unit: str) -> str:
    return f"{value:.0f}s" if unit == "seconds" else usd(value) if unit == "usd" else pct(value)


def bundle_name(trigger: EmergencyTrigger) -> str:
    return f"emergency-{trigger.stamp}-{trigger.reserve}-{trigger.action}"


def emergency_title(core: Mapping[str, bytes], venue: str) -> tuple[str, str] | None:
    """(what fired, the bundle's path as the report names it) from a bundle's pinned trigger; None if unreadable."""
    try:
        trigger = EmergencyTrigger.from_json(json.loads(core[INPUT_TRIGGER]))
    except (KeyError, ValueError, TypeError, StewardError):
        return None
    return f"emergency: {trigger.rule} → {trigger.action} {trigger.reserve}", f"proposals/{venue}/{bundle_name(trigger)}"


def build_emergency_files(inputs: EmergencyInputs) -> dict[str, bytes]:
    """Every file of the emergency bundle, in memory. Pure: same inputs, same bytes."""
    policy, trigger, snapshot = inputs.venue.policy, inputs.trigger, inputs.snapshot
    calls = emergency_calls(policy, trigger, snapshot)
    for call in calls:  # every call decodes back to what was meant, independently of its encoding
        if decode_call(call.function, call.data) != call.args:
            raise StewardError(f"call '{call.human}' does not decode to its arguments", "do not sign: a bug in packaging")
    bundle_path = f"proposals/{policy.venue.name}/{bundle_name(trigger)}"
    files: dict[str, bytes] = {
        INPUT_TRIGGER: jsonio.dumps(trigger.to_json()),
        INPUT_VENUE: inputs.venue.text,
        INPUT_SNAPSHOT: snapshot.to_json_bytes(),
        "calls.json": jsonio.dumps(calls_json(calls, policy)),
    }
    safe_address, safe = policy.venue.addresses.safe, None
    if calls and safe_address is not None:
        batch = build_tx_builder_batch(calls, chain_id=policy.venue.chain_id, safe_address=safe_address, created_at_ms=trigger.time * 1000,
                                       name=f"EMERGENCY {trigger.action} {trigger.reserve} ({trigger.rule})",
                                       description=f"{len(calls)} call(s) prepared by steward watch; verify with the bundle at {bundle_path}",
                                       owner_address=policy.venue.addresses.safe_owner)
        if decode_tx_builder_batch(batch) != [(c.to, c.value, c.data) for c in calls]:
            raise StewardError("the Tx Builder file does not encode the same calls as calls.json", "do not sign; report a bug")
        tx = safe_tx_for_calls(calls, safe_address=safe_address, chain_id=policy.venue.chain_id, nonce=snapshot.safe_nonce)
        safe = safe_tx_json(tx)
        files["safe-tx-builder.json"] = jsonio.dumps(batch)
        files["safe-tx.json"] = jsonio.dumps(safe)
    hashes = {"snapshot": sha256(files[INPUT_SNAPSHOT]), "trigger": sha256(files[INPUT_TRIGGER]), "venue_policy": sha256(files[INPUT_VENUE])}
    state = snapshot.market(trigger.reserve)
    context = {
        "t": trigger, "venue": policy.venue.name, "chain_id": policy.venue.chain_id, "calls": calls_json(calls, policy),
        "safe": safe, "role": ROLE[trigger.action], "time": dt.datetime.fromtimestamp(trigger.time, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "value": _value_text(trigger.value, trigger.unit), "threshold": _value_text(trigger.threshold, trigger.unit), "state": state,
        "floor": str(Bps(trigger.ltv_floor_bps)), "bundle_path": bundle_path, "hashes": hashes,
        "where": f"read at block {snapshot.block}" if snapshot.block is not None else f"from {snapshot.source}",
    }
    files["report.md"] = environment().get_template("emergency.md.j2").render(**context).encode("utf-8")
    files[MANIFEST] = jsonio.dumps({
        "action": trigger.action, "block": snapshot.block, "chain_id": policy.venue.chain_id, "files": {rel: sha256(data) for rel, data in sorted(files.items())},
        "inputs": hashes, "kind": KIND, "reserve": trigger.reserve, "rule": trigger.rule, "steward_version": metadata.version("steward"),
        "trigger_time": trigger.time, "venue": policy.venue.name,
    })
    return files


def inputs_from_emergency_bundle(files: dict[str, bytes], bundle: Path) -> EmergencyInputs:
    """The pinned inputs of an emergency bundle, as `build_emergency_files` needs them to rebuild it."""
    for rel in (INPUT_TRIGGER, INPUT_VENUE, INPUT_SNAPSHOT):
        if rel not in files:
            raise BundleError(f"{bundle}/{rel} is missing", "an emergency bundle cannot be rebuilt without its inputs")
    policy, problems = check_policy_text(files[INPUT_VENUE], f"{bundle}/{INPUT_VENUE}")
    if policy is None:
        raise BundleError(f"{bundle}/{INPUT_VENUE} no longer validates: {problems[0]}", "the pinned venue policy was modified")
    try:
        trigger = EmergencyTrigger.from_json(json.loads(files[INPUT_TRIGGER]))
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{bundle}/{INPUT_TRIGGER} is not a trigger ({exc})", "the pinned trigger was modified") from None
    return EmergencyInputs(trigger, LoadedPolicy(policy=policy, path=bundle / INPUT_VENUE, text=files[INPUT_VENUE]),
                           parse_snapshot_json(files[INPUT_SNAPSHOT], INPUT_SNAPSHOT))


def verify_emergency_bundle(bundle: Path, *, require_passed_simulation: bool = True) -> tuple[int, int]:
    """`steward verify` of a bundle that must be an emergency bundle: (core files, attachments), else BundleError."""
    from governance.verify import verify_bundle

    manifest = load_manifest(read_bundle(bundle), bundle)
    if manifest.get("kind") != KIND:
        raise BundleError(f"{bundle}/{MANIFEST}: not an emergency bundle (kind {manifest.get('kind')!r})", "give an emergency bundle")
    return verify_bundle(bundle, require_passed_simulation=require_passed_simulation)


def expected_state(trigger: EmergencyTrigger, snapshot: VenueSnapshot) -> dict[str, dict[str, Any]]:
    """What the reserve must read after the batch, in `pool_state`'s names and units."""
    if trigger.action == "freeze":
        return {trigger.reserve: {"frozen": True}}
    if trigger.action == "pause":
        return {trigger.reserve: {"paused": True}}
    return {trigger.reserve: {"ltv": min(trigger.ltv_floor_bps, snapshot.market(trigger.reserve).ltv.value)}}


def simulate_emergency(bundle: Path, reader: ChainReader) -> SimulationResult:
    """Verify the bundle, run its SafeTx on an anvil snapshot (reverted after), write simulation.json."""
    verify_emergency_bundle(bundle, require_passed_simulation=False)
    files = read_bundle(bundle)
    if "safe-tx.json" not in files:
        raise BundleError(f"{bundle} has no Safe transaction to simulate", "the action needed no change, or the venue policy names no Safe")
    inputs = inputs_from_emergency_bundle(files, bundle)
    from governance.safe import safe_tx_from_json

    policy = inputs.venue.policy
    cb = ChainBundle(path=bundle, manifest_sha256=sha256(files[MANIFEST]), chain_id=policy.venue.chain_id, snapshot_block=inputs.snapshot.block,
                     policy=policy, safe_tx=safe_tx_from_json(json.loads(files["safe-tx.json"])),
                     markets={m.symbol: to_checksum_address(m.asset) for m in policy.markets}, expected=expected_state(inputs.trigger, inputs.snapshot))
    result = simulate_safe_tx(reader, cb)
    write_attachment(bundle, SIMULATION, jsonio.dumps(result.to_json()))
    return result
