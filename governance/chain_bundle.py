"""A bundle as the chain steps use it: verified, its SafeTx re-hashed, its calls checked against the
recommendation; and the attachments those steps add (simulation.json, signatures/<owner>.json).

Every chain step (simulate, sign, execute, reconcile) starts with `load_chain_bundle`: a bundle that
fails `steward verify`, whose safe-tx.json hash does not follow from its fields, or whose calls —
decoded from the SafeTx bytes, independently of the pipeline that encoded them — do not set exactly
the recommendation's proposed values, is never simulated, signed or executed.

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

from governance.bundle import ATTACHMENT, MANIFEST, BundleError, read_bundle, sha256
from governance.calls import decode_call
from governance.pipeline import INPUT_POLICY
from governance.safe import SafeTx, flag_unusual, inner_calls, safe_tx_from_json
from governance.safe_tx import SafeTxError
from governance.venues.aave_v3 import (
    CONFIGURE_RESERVE_AS_COLLATERAL,
    FUNCTIONS,
    SET_SUPPLY_CAP,
)
from governance.verify import verify_bundle
from risk.policy import Policy
from risk.policy_load import check_policy_text
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
        raise BundleError(f"{rel!r} is not an attachment name", "attachments are simulation.json and signatures/<owner>.json")
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


def _json(files: dict[str, bytes], rel: str, bundle: Path) -> Any:
    if rel not in files:
        hint = ("the epoch produced no Safe batch (no parameter changes, or no venue.addresses.safe)"
                if rel == "safe-tx.json" else "rebuild the bundle with `steward epoch`")
        raise BundleError(f"{bundle}/{rel} is missing", hint)
    try:
        return json.loads(files[rel])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{bundle}/{rel} is not JSON ({exc})", "rebuild the bundle with `steward epoch`") from None


def expected_values(recommendation: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Proposed value of every recommended parameter, in on-chain units (bps with bonus only; whole tokens).

    With a liquidation threshold of 0 Aave stores a bonus of 0, whatever the recommendation's bonus.
    """
    out: dict[str, dict[str, int]] = {}
    for symbol, market in recommendation["markets"].items():
        values = {}
        for param, change in market["parameters"].items():
            proposed = change["proposed"]
            values[param] = int(proposed["bps"] if "bps" in proposed else proposed["tokens"])
        if values.get("liquidation_threshold") == 0:
            values["liquidation_bonus"] = 0
        out[symbol] = values
    return out


def check_calls(tx: SafeTx, recommendation: dict[str, Any], configurator: str | None) -> None:
    """Decode the SafeTx's inner calls and require that they set exactly the recommendation's changes."""
    if configurator is None:
        raise BundleError("the policy has no venue.addresses.pool_configurator", "the calls cannot be checked without it")
    configurator = to_checksum_address(configurator)
    problems = list(flag_unusual(tx, allowed_targets=[configurator]))
    markets = {to_checksum_address(m["asset"]): (s, m["parameters"]) for s, m in recommendation["markets"].items()}
    covered: dict[tuple[str, str], int] = {}
    try:
        calls = inner_calls(tx)
    except SafeTxError as exc:
        raise BundleError(f"safe-tx.json: the batch does not decode ({exc.cause})", "do not sign it") from None
    for i, call in enumerate(calls):
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
        symbol, params = markets[to_checksum_address(args[0])]
        proposed = {p: int(c["proposed"].get("bps", c["proposed"].get("tokens"))) for p, c in params.items()}
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
    for symbol, market in recommendation["markets"].items():
        for param, change in market["parameters"].items():
            count = covered.get((symbol, param), 0)
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
    check_calls(safe_tx, recommendation, policy.venue.addresses.pool_configurator)
    block = manifest.get("block")
    return ChainBundle(
        path=bundle,
        manifest_sha256=sha256(files[MANIFEST]),
        chain_id=chain_id,
        snapshot_block=int(block) if block is not None else None,
        policy=policy,
        safe_tx=safe_tx,
        markets={m.symbol: to_checksum_address(m.asset) for m in policy.markets},
        expected=expected_values(recommendation),
    )
