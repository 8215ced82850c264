"""`steward verify`: a bundle must match its manifest *and* follow, byte for byte, from its inputs.

The manifest check catches accidental damage; the rebuild catches a consistent forgery (a file edited
and its hash updated), because the calls, the Safe batch and the report are recomputed from
`inputs/` with this version of steward. Every problem is listed, not just the first.

Attachments added after the build — `simulation.json`, `signer-packet.md` and `signatures/<owner>.json` —
are outside the manifest (the core stays immutable) and verify themselves: a signature must recover to
the owner its file names for this bundle's safeTxHash; a simulation must name this bundle's manifest and
have passed; the signer packet must be exactly what simulation.json and the core render.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

from governance.bundle import (
    ATTACHMENT,
    MANIFEST,
    SIGNER_PACKET,
    SIMULATION,
    BundleError,
    check_against_manifest,
    diff_files,
    load_manifest,
    read_bundle,
    sha256,
)
from governance.epoch_inputs import inputs_from_bundle
from governance.pipeline import build_files
from governance.safe import recover_signer, safe_tx_from_json
from governance.signer_packet_attachment import check_signer_packet
from risk.errors import StewardError


def _check_signature(rel: str, data: bytes, safe_doc: dict | None, bundle: Path) -> list[str]:
    where = f"{bundle}/{rel}"
    if safe_doc is None:
        return [f"{where}: a signature, but the bundle has no safe-tx.json to sign"]
    try:
        doc = json.loads(data)
        signer, signature, tx_hash = doc["signer"], doc["signature"], doc["safeTxHash"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        return [f"{where}: not a signature file ({exc})"]
    named = rel.removeprefix("signatures/").removesuffix(".json")
    problems = []
    if str(signer).lower() != named.lower():
        problems.append(f"{where}: signer {signer} differs from the file name")
    if tx_hash != safe_doc.get("safeTxHash"):
        problems.append(f"{where}: signs {tx_hash}, not this bundle's safeTxHash {safe_doc.get('safeTxHash')}")
        return problems
    try:
        recovered = recover_signer(safe_tx_from_json(safe_doc), signature)
    except StewardError as exc:
        return [*problems, f"{where}: signature does not recover ({exc.cause})"]
    if recovered.lower() != named.lower():
        problems.append(f"{where}: signature recovers to {recovered}, not {named}")
    return problems


def _check_simulation(data: bytes, manifest_bytes: bytes, bundle: Path, *, require_passed: bool) -> list[str]:
    where = f"{bundle}/{SIMULATION}"
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [f"{where}: not valid JSON ({exc})"]
    if not isinstance(doc, dict):
        return [f"{where}: not a simulation record"]
    if doc.get("bundle_manifest_sha256") != sha256(manifest_bytes):
        return [f"{where}: records a run of another bundle (manifest sha256 differs)"]
    if require_passed and doc.get("ok") is not True:
        return [f"{where}: records a FAILED {doc.get('mode', 'simulation')}: {'; '.join(doc.get('differences') or []) or doc.get('revert_reason')}"]
    return []


# Rebuilds done by verify itself, keyed by the exact bytes of what a rebuild reads (inputs/ and the
# manifest's seed, epoch and kind). A chain step verifies the same bundle again and again (simulate,
# sign, execute, reconcile); each would otherwise recompute the epoch. Only verify's own rebuilds are
# kept — never the build an epoch wrote — so the first verify in a process always recomputes from
# inputs/ independently of the run that produced the bundle. A new process starts empty.
_REBUILDS: OrderedDict[str, dict[str, bytes]] = OrderedDict()
_REBUILDS_KEPT = 4


def _rebuild_key(core: dict[str, bytes], manifest: dict) -> str:
    digest = hashlib.sha256()
    for rel in sorted(r for r in core if r.startswith("inputs/")):
        digest.update(rel.encode() + b"\0" + sha256(core[rel]).encode() + b"\0")
    for field in ("kind", "seed", "epoch", "steward_version"):
        digest.update(f"{field}={manifest.get(field)!r}\0".encode())
    return digest.hexdigest()


def _rebuild(core: dict[str, bytes], manifest: dict, bundle: Path) -> dict[str, bytes]:
    key = _rebuild_key(core, manifest)
    if key not in _REBUILDS:
        _REBUILDS[key] = _rebuild_uncached(core, manifest, bundle)
        while len(_REBUILDS) > _REBUILDS_KEPT:
            _REBUILDS.popitem(last=False)
    _REBUILDS.move_to_end(key)
    return _REBUILDS[key]


def _rebuild_uncached(core: dict[str, bytes], manifest: dict, bundle: Path) -> dict[str, bytes]:
    """Every kind of bundle is rebuilt by the code that built it: an epoch, or the monitor's emergency."""
    if manifest.get("kind") == "emergency":
        from governance.watch_emergency import build_emergency_files, inputs_from_emergency_bundle

        return build_emergency_files(inputs_from_emergency_bundle(core, bundle))
    return build_files(inputs_from_bundle(core, bundle))


def verify_bundle(bundle: Path, *, require_passed_simulation: bool = True) -> tuple[int, int]:
    """Return (core files, attachments) verified, or raise BundleError listing every problem.

    An attached simulation that failed is a problem (nobody should sign that bundle) unless
    `require_passed_simulation` is False: simulating again must stay possible.
    """
    files = read_bundle(bundle)
    attachments = {rel: data for rel, data in files.items() if ATTACHMENT.match(rel)}
    core = {rel: data for rel, data in files.items() if rel not in attachments}
    manifest = load_manifest(core, bundle)
    problems = check_against_manifest(core, manifest, bundle)
    try:
        rebuilt = _rebuild(core, manifest, bundle)
    except (StewardError, KeyError, ValueError) as exc:
        problems.append(f"{bundle}: cannot rebuild from inputs/ ({getattr(exc, 'cause', exc)})")
    else:
        problems.extend(p for p in diff_files(rebuilt, core, bundle) if p not in problems)
    safe_doc = json.loads(core["safe-tx.json"]) if "safe-tx.json" in core and not problems else None
    core_ok = not problems
    for rel, data in sorted(attachments.items()):
        if rel == SIMULATION:
            problems.extend(_check_simulation(data, core[MANIFEST], bundle, require_passed=require_passed_simulation))
        elif rel == SIGNER_PACKET:
            if core_ok:  # rendered from the core: only meaningful once the core is the rebuild's
                problems.extend(check_signer_packet(core, attachments, bundle))
        elif core_ok:
            problems.extend(_check_signature(rel, data, safe_doc, bundle))
    if problems:
        raise BundleError(
            f"{len(problems)} problem(s) in {bundle}",
            "do not sign: the bundle was modified or does not follow from its inputs; rebuild it with `steward epoch`",
            problems=tuple(problems),
        )
    return len(core), len(attachments)
