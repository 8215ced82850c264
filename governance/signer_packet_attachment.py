"""signer-packet.md: the signer packet after a simulation (or reconciliation), read on chain.

For every parameter the run touched — each one the bundle recommends, and any other that moved — the
value before and after, read on chain, beside the recommended one, with ✓/✗; then what changed that
nobody asked for, revert and gas, the block and chain, and the safeTxHash (or proposalId).

It is an attachment (outside the immutable core, like simulation.json) and a pure function of the
bundle's core files and simulation.json: whoever writes simulation.json rewrites it
(`chain_bundle.write_attachment`), and `steward verify` renders it again and compares the bytes, so an
edited packet, or one left from an earlier run, is caught.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from governance.bundle import ATTACHMENT, MANIFEST, SIGNER_PACKET, read_bundle
from governance.report import LABELS, environment
from risk.policy import LendingParameter

TEMPLATE = "signer_packet.md.j2"
_BPS = {"ltv", "liquidation_threshold", "liquidation_bonus"}
_CAPS = {"supply_cap", "borrow_cap"}
_MODES = {
    "simulate": "Simulated on a snapshot (reverted after)",
    "reconcile": "Reconciled after the Safe's execution",
    "reconcile-governor": "Reconciled after the Governor's execution",
}


def _param_order(param: str) -> tuple[int, str]:
    """The report's order (LTV, threshold, bonus, caps), then anything else alphabetically."""
    order = [p.value for p in LendingParameter]
    return (order.index(param), "") if param in order else (len(order), param)


def _label(param: str) -> str:
    try:
        return LABELS[LendingParameter(param)]
    except ValueError:
        return param


def _value(market: str, param: str, value: Any) -> str:
    """People's units with the on-chain value beside it; anything not a recommended parameter as read."""
    if value is None:
        return "—"
    if param in _BPS and isinstance(value, int):
        return f"{value / 100:.2f}% (`{value}`)"
    if param in _CAPS and isinstance(value, int):
        return f"{'no cap' if value == 0 else f'{value:,} {market}'} (`{value}`)"
    return f"`{value}`"


def _rows(sim: Mapping[str, Any]) -> list[dict[str, Any]]:
    pre, post, expected = sim["pre_state"], sim["post_state"], sim["expected"]
    rows = []
    for market in sorted(set(pre) | set(post) | set(expected)):
        before, after, wanted = pre.get(market, {}), post.get(market, {}), expected.get(market, {})
        for param in sorted(set(before) | set(after) | set(wanted), key=_param_order):
            a, b = before.get(param), after.get(param)
            if param not in wanted and a == b:
                continue  # untouched and not in the proposal
            ok = param in wanted and b == wanted[param]
            rows.append({
                "market": market if market in expected else f"`{market}`",
                "parameter": _label(param),
                "before": _value(market, param, a),
                "after": _value(market, param, b),
                "recommended": _value(market, param, wanted[param]) if param in wanted else "not in the proposal",
                "ok": ok,
            })
    return rows


def render_signer_packet(core: Mapping[str, bytes], simulation: bytes) -> bytes | None:
    """The packet for this epoch bundle and simulation.json, or None when simulation.json is not a state
    check (not JSON, or without pre_state / post_state / expected) or the bundle is not an epoch's."""
    try:
        sim = json.loads(simulation)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    states = [sim.get(k) for k in ("pre_state", "post_state", "expected")] if isinstance(sim, dict) else [None]
    if not all(isinstance(st, dict) and all(isinstance(v, dict) for v in st.values()) for st in states):
        return None
    try:
        manifest = json.loads(core[MANIFEST]) if MANIFEST in core else {}
        safe_doc = json.loads(core["safe-tx.json"]) if "safe-tx.json" in core else None
        governor_doc = json.loads(core["governor.json"]) if "governor.json" in core else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged core: verify reports it; there is nothing trustworthy to render
    if not isinstance(manifest, dict):
        return None
    venue, epoch = manifest.get("venue", "?"), manifest.get("epoch", "?")
    title, bundle_path = f"epoch {epoch}", f"proposals/{venue}/{epoch}"
    if manifest.get("kind") is not None:  # the monitor's emergency bundle: named by what fired
        from governance.watch_emergency import emergency_title  # here: watch_emergency writes through chain_bundle

        named = emergency_title(core, venue)
        if named is None:
            return None
        title, bundle_path = named
    context = {
        "venue": venue,
        "title": title,
        "bundle_path": bundle_path,
        "mode": _MODES.get(str(sim.get("mode")), str(sim.get("mode"))),
        "sim": sim,
        "rows": _rows(sim),
        "safe_tx_hash": sim.get("safe_tx_hash") or (safe_doc or {}).get("safeTxHash"),
        "proposal_id": sim.get("proposal_id") or (governor_doc or {}).get("proposalId"),
        "governed": sim.get("mode") == "reconcile-governor",
    }
    return environment().get_template(TEMPLATE).render(**context).encode("utf-8")


def refresh_signer_packet(bundle: Path, simulation: bytes, *, write: Callable[[Path, str, bytes], Path]) -> Path | None:
    """After simulation.json was written: write the matching packet with `write` (atomic), or remove a
    stale one when simulation.json is not a state check."""
    core = {rel: data for rel, data in read_bundle(bundle).items() if not ATTACHMENT.match(rel)}
    packet = render_signer_packet(core, simulation)
    if packet is None:
        (bundle / SIGNER_PACKET).unlink(missing_ok=True)
        return None
    return write(bundle, SIGNER_PACKET, packet)


def check_signer_packet(core: Mapping[str, bytes], attachments: Mapping[str, bytes], bundle: Path) -> list[str]:
    """`steward verify`'s check: an attached packet must be exactly the one simulation.json renders."""
    from governance.bundle import SIMULATION

    if SIGNER_PACKET not in attachments:
        return []
    where = f"{bundle}/{SIGNER_PACKET}"
    if SIMULATION not in attachments:
        return [f"{where}: a signer packet without the simulation.json it was rendered from"]
    if render_signer_packet(core, attachments[SIMULATION]) != attachments[SIGNER_PACKET]:
        return [f"{where}: differs from the packet simulation.json and the bundle render (edited, or left from another run)"]
    return []
