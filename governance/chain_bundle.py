"""A bundle as the chain steps use it: verified, its SafeTx re-hashed, its calls checked against the
recommendation; and the attachments those steps add (simulation.json, signatures/<owner>.json).

Every chain step (simulate, sign, execute, reconcile) starts with `load_chain_bundle`: a bundle that
fails `steward verify`, whose safe-tx.json hash does not follow from its fields, or whose calls —
decoded from the SafeTx bytes, independently of the pipeline that encoded them — do not set exactly
the recommendation's proposed values, is never simulated, signed or executed. Aave bundles are checked
here (`check_calls`); Compound v3 and perps/options bundles by `chain_bundle_venues`, and cannot be
simulated or reconciled (refused before any RPC).

Attachments are not in the manifest (the core files stay immutable); each is written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address

from governance.bundle import ATTACHMENT, MANIFEST, SIMULATION, BundleError, read_bundle, sha256
from governance.calls import decode_call
from governance.chain_bundle_venues import AAVE, KIND_TEXT, bundle_kind, check_venue_calls
from governance.governor import GOVERNOR_JSON, GovernorError, proposal_from_json
from governance.pinned import INPUT_POLICY
from governance.safe import SafeTx, flag_unusual, inner_calls, safe_tx_for_calls, safe_tx_from_json
from governance.safe_tx import SafeTxError
from governance.venues.aave_steward import StewardCallError, values_set
from governance.venues.aave_steward_state import bundle_steward_limits
from governance.venues.aave_v3 import (
    CONFIGURE_RESERVE_AS_COLLATERAL,
    FUNCTIONS,
    SET_SUPPLY_CAP,
)
from governance.verify import verify_bundle
from risk.policy import Policy
from risk.policy_load import check_policy_text
from risk.policy_routing import StewardLimits, StewardParameter
from risk.routing import steward_move_problem
from risk.units import BPS_PER_ONE

_SELECTORS = {f.selector: f for f in FUNCTIONS}


def call_label(data: str) -> str:
    """The PoolConfigurator function a calldata calls, or its selector."""
    raw = bytes.fromhex(data[2:10]) if data.startswith("0x") else b""
    fn = _SELECTORS.get(raw)
    return fn.name if fn else f"selector 0x{raw.hex()}"


def write_attachment(bundle: Path, rel: str, data: bytes) -> Path:
    """Write an attachment atomically (temp file in the same folder, fsync, rename)."""
    if not ATTACHMENT.match(rel):
        raise BundleError(f"{rel!r} is not an attachment name", "attachments are simulation.json, signer-packet.md and signatures/<owner>.json")
    target = bundle / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if rel == SIMULATION:  # every writer of simulation.json (simulate, reconcile, execute, governor) keeps the packet in step
        from governance.signer_packet_attachment import refresh_signer_packet

        refresh_signer_packet(bundle, data, write=write_attachment)
    return target


def verify_core(bundle: Path, *, require_passed_simulation: bool = True) -> None:
    """`steward verify`: the core files and any attachments (a kept name for the chain steps)."""
    verify_bundle(bundle, require_passed_simulation=require_passed_simulation)


@dataclass(frozen=True)
class ChainBundle:
    """A verified bundle's facts the chain steps need."""

    path: Path
    manifest_sha256: str
    chain_id: int
    snapshot_block: int | None
    policy: Policy
    safe_tx: SafeTx
    markets: dict[str, str]  # symbol → asset (checksummed), the policy's markets
    expected: dict[str, dict[str, int]]  # symbol → recommended parameter → proposed value (bps / tokens)
    kind: str = AAVE  # which venue's calls the batch carries (chain_bundle_venues.bundle_kind)


def _json(files: dict[str, bytes], rel: str, bundle: Path) -> Any:
    if rel not in files:
        hint = ("the epoch produced no Safe batch (no parameter changes, or no venue.addresses.safe)"
                if rel == "safe-tx.json" else "rebuild the bundle with `steward epoch`")
        raise BundleError(f"{bundle}/{rel} is missing", hint)
    try:
        return json.loads(files[rel])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{bundle}/{rel} is not JSON ({exc})", "rebuild the bundle with `steward epoch`") from None


# Which routes (recommendation.json's `routing`) each executor's transaction carries.
BATCHES = {"safe": ("risk_steward", "safe"), "governor": ("governance",)}
_BATCH_TEXT = {"safe": "the Safe batch", "governor": "the Governor proposal"}
_ROUTE_TEXT = {"risk_steward": "the RiskSteward", "safe": "the Safe batch", "governance": "a DAO proposal (governor.json)"}


def routes_of(recommendation: dict[str, Any]) -> dict[tuple[str, str], str] | None:
    """(symbol, parameter) → route of every changed parameter, or None for a bundle built without routing."""
    routing = recommendation.get("routing")
    if routing is None:
        return None
    return {(s, p): str(r["route"]) for s, params in routing["markets"].items() for p, r in params.items()}


def _onchain(value: dict[str, Any]) -> int:
    return int(value["bps"] if "bps" in value else value["tokens"])


def _after_batch(recommendation: dict[str, Any], batch: str) -> dict[str, dict[str, int]]:
    """Every parameter's value once `batch` has run: proposed if the batch carries its route, else current."""
    routes = routes_of(recommendation)
    out: dict[str, dict[str, int]] = {}
    for symbol, market in recommendation["markets"].items():
        out[symbol] = {
            param: _onchain(change["proposed"] if routes is None or routes.get((symbol, param)) in BATCHES[batch]
                            else change["current"])
            for param, change in market["parameters"].items()
        }
    return out


def expected_values(recommendation: dict[str, Any], batch: str = "safe") -> dict[str, dict[str, int]]:
    """Value of every recommended parameter after `batch` ran, in on-chain units (bps with bonus only; whole tokens).

    Without routing every parameter ends at its proposed value; with it, only the routes the batch
    carries move and the others must stay at their current value. With a liquidation threshold of 0
    Aave stores a bonus of 0, whatever the recommendation's bonus.
    """
    out = _after_batch(recommendation, batch)
    for values in out.values():
        if values.get("liquidation_threshold") == 0:
            values["liquidation_bonus"] = 0
    return out


def _check_steward_call(
    i: int, data: str, recommendation: dict[str, Any], want: dict[str, dict[str, int]], limits: StewardLimits | None,
    covered: dict[tuple[str, str], int],
) -> list[str]:
    """A RiskSteward call: every value it sets must be a steward-routed change, as recommended, within the limit."""
    try:
        values = values_set(data)
    except StewardCallError as exc:
        return [f"call {i} to the RiskSteward: {exc.cause}"]
    except (DecodingError, UnicodeDecodeError, OverflowError) as exc:
        return [f"call {i} to the RiskSteward: calldata does not decode ({exc})"]
    routes = routes_of(recommendation) or {}
    markets = {to_checksum_address(m["asset"]): s for s, m in recommendation["markets"].items()}
    problems = []
    for asset, params in values.items():
        symbol = markets.get(asset)
        if symbol is None:
            problems.append(f"call {i} (RiskSteward) targets asset {asset}, which the recommendation does not cover")
            continue
        for param, value in params.items():
            change = recommendation["markets"][symbol]["parameters"].get(param)
            if change is None:
                problems.append(f"call {i} (RiskSteward) sets {symbol} {param}, which the recommendation does not cover")
                continue
            route = routes.get((symbol, param))
            if route != "risk_steward":
                where = _ROUTE_TEXT.get(route or "", "nowhere (unchanged)")
                problems.append(f"call {i} (RiskSteward) sets {symbol} {param}, which is routed to {where}, not the steward")
            if limits is not None:
                limit = limits.for_parameter(StewardParameter(param))
                problem = steward_move_problem(StewardParameter(param), _onchain(change["current"]), value, limit)
                if problem is not None:
                    problems.append(f"call {i} (RiskSteward) {symbol}: {problem}; a change above the steward's limit "
                                    "is never sent to it")
            if value != want[symbol][param]:
                problems.append(f"call {i} (RiskSteward) sets {symbol} {param} to {value}, the recommendation says "
                                f"{want[symbol][param]}")
            covered[(symbol, param)] = covered.get((symbol, param), 0) + 1
    return problems


def check_calls(
    tx: SafeTx, recommendation: dict[str, Any], configurator: str | None, *, batch: str = "safe",
    limits: StewardLimits | None = None,
) -> None:
    """Decode the SafeTx's inner calls and require that they set exactly the recommendation's changes.

    With routing (recommendation.json's `routing`), exactly the changes of the routes `batch` carries
    (BATCHES): the Safe's RiskSteward calls — to the recommendation's steward, each within `limits`
    when given — and PoolConfigurator calls; the Governor's PoolConfigurator calls. A parameter routed
    elsewhere must stay at its current value and be set by no call.
    """
    if configurator is None:
        raise BundleError("the policy has no venue.addresses.pool_configurator", "the calls cannot be checked without it")
    configurator = to_checksum_address(configurator)
    routes = routes_of(recommendation)
    steward_doc = (recommendation.get("routing") or {}).get("steward")
    steward = to_checksum_address(steward_doc) if steward_doc and batch == "safe" else None
    problems = list(flag_unusual(tx, allowed_targets=[configurator, *([steward] if steward else [])]))
    markets = {to_checksum_address(m["asset"]): s for s, m in recommendation["markets"].items()}
    want_all = _after_batch(recommendation, batch)
    covered: dict[tuple[str, str], int] = {}
    try:
        calls = inner_calls(tx)
    except SafeTxError as exc:
        raise BundleError(f"safe-tx.json: the batch does not decode ({exc.cause})", "do not sign it") from None
    for i, call in enumerate(calls):
        if steward is not None and to_checksum_address(call.to) == steward:
            problems.extend(_check_steward_call(i, call.data, recommendation, want_all, limits, covered))
            continue
        fn = _SELECTORS.get(bytes.fromhex(call.data[2:10]))
        if fn is None:
            problems.append(f"call {i} to {call.to}: {call_label(call.data)} is not a PoolConfigurator setter Steward makes")
            continue
        try:
            args = decode_call(fn, call.data)
        except (DecodingError, UnicodeDecodeError, OverflowError) as exc:
            problems.append(f"call {i} ({fn.name}): calldata does not decode ({exc})")
            continue
        if to_checksum_address(args[0]) not in markets:
            problems.append(f"call {i} ({fn.name}) targets asset {args[0]}, which the recommendation does not cover")
            continue
        symbol = markets[to_checksum_address(args[0])]
        proposed = want_all[symbol]
        if fn == CONFIGURE_RESERVE_AS_COLLATERAL:
            names = ("ltv", "liquidation_threshold", "liquidation_bonus")
            lt = proposed["liquidation_threshold"]
            want = (proposed["ltv"], lt, BPS_PER_ONE + proposed["liquidation_bonus"] if lt else 0)
        else:
            names = ("supply_cap",) if fn == SET_SUPPLY_CAP else ("borrow_cap",)
            want = (proposed[names[0]],)
        if tuple(args[1:]) != want:
            problems.append(f"call {i} ({fn.name} on {symbol}) sets {tuple(args[1:])}, the recommendation says {want}")
        for name in names:
            covered[(symbol, name)] = covered.get((symbol, name), 0) + 1
            if routes is not None and routes.get((symbol, name)) == "risk_steward":
                problems.append(f"call {i} ({fn.name} on {symbol}) sets {name} through the PoolConfigurator, but it is "
                                "routed to the RiskSteward")
    for symbol, market in recommendation["markets"].items():
        for param, change in market["parameters"].items():
            count = covered.get((symbol, param), 0)
            route = None if routes is None else routes.get((symbol, param))
            if routes is not None and route is not None and route not in BATCHES[batch]:
                if count:
                    problems.append(f"{symbol} {param} is routed to {_ROUTE_TEXT[route]}, but {_BATCH_TEXT[batch]} sets it")
                continue
            if change["proposed"] != change["current"] and count == 0:
                problems.append(f"the recommendation changes {symbol} {param} but no call sets it")
            if count > 1:
                problems.append(f"{symbol} {param} is set by {count} calls")
    if problems:
        raise BundleError(
            "the Safe transaction's calls do not match recommendation.json",
            "do not sign: the batch does not do what the report says",
            problems=tuple(problems),
        )


def check_routed(files: dict[str, bytes], recommendation: dict[str, Any], policy: Policy, bundle: Path) -> None:
    """A routed bundle: its steward is the policy's, and its governance-routed changes are all in governor.json."""
    routes = routes_of(recommendation)
    routing = policy.routing
    if routes is None:
        if routing is not None:
            raise BundleError(f"{bundle}/recommendation.json has no routing, the policy has a `routing:` section",
                              "rebuild the bundle with `steward epoch`")
        return
    stated = recommendation["routing"].get("steward")
    steward = None if routing is None or routing.steward is None else to_checksum_address(routing.steward)
    if (to_checksum_address(stated) if stated else None) != steward:
        raise BundleError(f"{bundle}/recommendation.json routes through steward {stated}, the policy's is {steward}",
                          "rebuild the bundle with `steward epoch`")
    governance = sorted(f"{s} {p}" for (s, p), route in routes.items() if route == "governance")
    if not governance:
        return
    if GOVERNOR_JSON not in files:
        raise BundleError(f"{bundle}: {', '.join(governance)} are routed to a DAO proposal, but there is no {GOVERNOR_JSON}",
                          "do not sign: rebuild the bundle with `steward epoch` (the policy needs a `governor:` section)")
    try:
        proposal = proposal_from_json(json.loads(files[GOVERNOR_JSON]), f"{bundle}/{GOVERNOR_JSON}")
    except (GovernorError, ValueError) as exc:
        raise BundleError(f"{bundle}/{GOVERNOR_JSON} cannot be read ({exc})", "rebuild the bundle with `steward epoch`") from None
    actions = [_Action(t, v, "0x" + d.hex()) for t, v, d in zip(*proposal.args, strict=True)]
    packed = safe_tx_for_calls(actions, safe_address=proposal.governor, chain_id=proposal.chain_id, nonce=0)
    try:
        check_calls(packed, recommendation, policy.venue.addresses.pool_configurator, batch="governor")
    except BundleError as exc:
        raise BundleError(f"{bundle}/{GOVERNOR_JSON}: the DAO proposal does not carry exactly the governance-routed changes",
                          "do not sign: the bundle does not do what the report says", exc.problems) from None


@dataclass(frozen=True)
class _Action:
    to: str
    value: int
    data: str


def load_chain_bundle(bundle: Path, *, for_simulation: bool = False) -> ChainBundle:
    """Verify `bundle` and read what simulation, signing and execution need; refuse anything inconsistent.

    Signing and executing also refuse a bundle whose attached simulation failed; simulating again
    (`for_simulation`) does not, since that is how a fixed chain state is checked.
    """
    bundle = Path(bundle)
    verify_core(bundle, require_passed_simulation=not for_simulation)
    files = read_bundle(bundle)
    manifest = _json(files, MANIFEST, bundle)
    try:
        safe_tx = safe_tx_from_json(_json(files, "safe-tx.json", bundle))
    except SafeTxError as exc:
        raise BundleError(f"{bundle}/safe-tx.json: {exc.cause}", exc.hint) from None
    policy, found = check_policy_text(files[INPUT_POLICY], f"{bundle}/{INPUT_POLICY}")
    if policy is None:
        raise BundleError(f"{bundle}/{INPUT_POLICY} does not validate: {found[0]}", "rebuild the bundle")
    recommendation = _json(files, "recommendation.json", bundle)
    chain_id = int(manifest["chain_id"])
    safe = policy.venue.addresses.safe
    if safe_tx.chain_id != chain_id or policy.venue.chain_id != chain_id:
        raise BundleError(f"{bundle}: the SafeTx is for chain {safe_tx.chain_id}, the manifest says {chain_id}",
                          "rebuild the bundle with `steward epoch`")
    if safe is None or to_checksum_address(safe) != safe_tx.safe_address:
        raise BundleError(f"{bundle}: the SafeTx is for Safe {safe_tx.safe_address}, the policy's Safe is {safe}",
                          "rebuild the bundle with `steward epoch`")
    kind = bundle_kind(policy)
    if kind == AAVE:
        check_calls(safe_tx, recommendation, policy.venue.addresses.pool_configurator,
                    limits=bundle_steward_limits(files, policy, bundle))
        check_routed(files, recommendation, policy, bundle)
        expected = expected_values(recommendation)
    else:
        expected = check_venue_calls(kind, safe_tx, recommendation, files, policy, bundle)
        if for_simulation:  # simulate and reconcile read Aave v3 pool state: anything else would compare nothing and pass
            raise BundleError(
                f"{bundle}: a {KIND_TEXT[kind]} bundle cannot be simulated or reconciled: `steward simulate` reads Aave v3 state only",
                "nothing was run; check the decoded calls in report.md's signer packet — `steward sign` needs no simulation",
            )
    block = manifest.get("block")
    return ChainBundle(
        path=bundle,
        manifest_sha256=sha256(files[MANIFEST]),
        chain_id=chain_id,
        snapshot_block=int(block) if block is not None else None,
        policy=policy,
        safe_tx=safe_tx,
        markets={m.symbol: to_checksum_address(m.asset) for m in policy.markets},
        expected=expected,
        kind=kind,
    )
