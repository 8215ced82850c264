"""The signer packet of a perps/options bundle and of a Compound v3 bundle (`signer_packet` holds the Aave one).

Same packet, same templates; what differs per venue is where "current" comes from, how an argument
reads in people's units, and which contracts are allowed:

* perps/options: a setter's argument is read back through the inverse of its on-chain unit
  (`generic.value_back`: bps, wad, ray, e6, raw, whole units, seconds) into a ratio, a USD amount or a
  duration, like the value it carries; "current" is the policy's `current:` values (each breaker
  rule's in inputs/breakers.yaml), "proposed" recommendation.json's (and breakers.json's);
* Compound v3: factors (1e18-scaled) as percentages, the supply cap in whole tokens of the asset,
  addresses by name; "current" is the pinned Comet snapshot.

Neither kind can run `steward simulate` (no venue state reader; Comet's and a venue's setters' bytecode
are not on the devnet), so the packet's commands leave it out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from eth_utils import to_checksum_address

from governance.report_derivatives import delta_text
from governance.safe import flag_unusual, safe_tx_from_json
from governance.signer_packet import ArgText, allowed_targets, lending_state_rows, signer_context
from governance.venues.compound_mapping import ROW_LABELS
from governance.venues.compound_snapshot import CometSnapshot
from governance.venues.generic import function_abi, value_back
from risk.breaker_changes import BreakerChange, threshold_text
from risk.breaker_policy import Breakers
from risk.errors import StewardError
from risk.policy import Policy
from risk.policy_derivatives import Setter, derivative_section
from risk.recommendation import Recommendation
from risk.recommendation_derivatives import DerivativeRecommendation, value_text
from risk.units import WAD, Duration, Ratio, Usd


def percent_text(fraction: Decimal) -> str:
    """A fraction of one as a percentage: two decimals, more only when the value has them (6.95%, 5.265%)."""
    pct = fraction * 100
    return (f"{pct:.2f}" if pct == round(pct, 2) else format(pct.normalize(), "f")) + "%"


def _like_text(back: Decimal, like: Any) -> str:
    if isinstance(like, Duration):
        return str(Duration(int(back))) if back == int(back) else f"{back} s"
    if isinstance(like, Usd):
        return str(Usd(back))
    return percent_text(back)


def setter_people(setter: Setter, args: Mapping[str, str], like: Mapping[str, Any]) -> dict[str, str]:
    """Each argument of a setter call in people's units: the integer as sent, read back through the inverse
    of its unit into the kind of value it carries (`like`: argument name → a value of that kind)."""
    out = {}
    for arg in setter.args:
        raw = args.get(arg.name)
        if raw is None:
            continue
        if arg.parameter is None:
            out[arg.name] = f"“{arg.text}” (text)" if arg.text is not None else "constant from the policy"
            continue
        out[arg.name] = _like_text(value_back(int(raw), arg, like[arg.name]), like[arg.name]) + f" ({arg.parameter.value})"
    return out


def _checked_pair(row: Mapping[str, Any], setter: Setter) -> None:
    """A calls.json row and the setter it is read with must be the same function on the same contract."""
    if to_checksum_address(row["to"]) != to_checksum_address(setter.contract) or row["signature"] != function_abi(setter).signature:
        raise StewardError(f"calls.json row '{row['human']}' is not {setter.function} on {setter.contract}",
                           "do not sign: this is a bug in packaging (the packet pairs calls with setters in the policy's order)")


def _venue_rows(policy: Policy, rec: DerivativeRecommendation, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Venue setter rows with their people's texts. The setters that fire are the ones writing a changed
    parameter, in the policy's order (`generic.calls_for`); each pairing is checked."""
    planned = [(m.symbol, s) for m in derivative_section(policy).markets for s in m.setters
               if any(rec.market(m.symbol).change(p).changed for p in s.parameters)]
    if len(planned) != len(rows):
        raise StewardError(f"calls.json has {len(rows)} venue call(s), {len(planned)} setter(s) fire", "do not sign: this is a bug in packaging")
    out = []
    for row, (symbol, setter) in zip(rows, planned, strict=True):
        _checked_pair(row, setter)
        market = rec.market(symbol)
        like = {a.name: market.change(a.parameter).proposed for a in setter.args if a.parameter is not None}
        out.append({**row, "people": setter_people(setter, row["args"], like)})
    return out


def _breaker_rows(breakers: Breakers | None, changes: Sequence[BreakerChange], rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Breaker setter rows (each names its rule; a rule's setters come in the policy's order)."""
    rules = {r.name: r for r in (breakers.rules if breakers else ())}
    by_rule = {c.rule: c for c in changes}
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        rule = rules[row["rule"]]
        i = seen[rule.name] = seen.get(rule.name, -1) + 1
        setter = rule.setters[i]
        _checked_pair(row, setter)
        like = {a.name: by_rule[rule.name].proposed if a.parameter.value == "threshold" else getattr(rule, a.parameter.value)
                for a in setter.args if a.parameter is not None}
        out.append({**row, "people": setter_people(setter, row["args"], like)})
    return out


def _breaker_delta(c: BreakerChange) -> str:
    if c.current is None:
        return "new"
    if not c.changed:
        return "—"
    if isinstance(c.current, Ratio) and isinstance(c.proposed, Ratio):
        return f"{(c.proposed.value - c.current.value) * 100:+.2f} pp"
    return "changed"


def derivative_state_rows(rec: DerivativeRecommendation, changes: Sequence[BreakerChange]) -> list[dict[str, Any]]:
    """Every venue parameter (the policy's `current:` → the proposal), then every breaker threshold with setters."""
    rows = [
        {"market": m.symbol, "label": c.label, "current": value_text(c.current), "proposed": value_text(c.proposed),
         "change": delta_text(c), "changed": c.changed}
        for m in rec.markets
        for c in m.changes
    ]
    rows += [
        {"market": ", ".join(c.markets), "label": f"Breaker {c.rule}: {c.label}", "current": threshold_text(c.current),
         "proposed": threshold_text(c.proposed), "change": _breaker_delta(c), "changed": c.changed}
        for c in changes
    ]
    return rows


def _safe_with_flags(safe: Mapping[str, Any] | None, files: Mapping[str, bytes], allowed: Mapping[str, str]) -> dict[str, Any] | None:
    """The Safe summary plus the flags of the SafeTx read back from safe-tx.json (not taken on trust)."""
    if safe is None:
        return None
    tx = safe_tx_from_json(json.loads(files["safe-tx.json"]))
    return {**safe, "flags": flag_unusual(tx, allowed_targets=allowed)}


def derivative_signer_context(
    rec: DerivativeRecommendation, *, policy: Policy, breakers: Breakers | None, breaker_changes: Sequence[BreakerChange],
    calls: Sequence[Mapping[str, Any]], files: Mapping[str, bytes], safe: Mapping[str, Any] | None, bundle_path: str,
) -> dict[str, Any]:
    """The packet of a perps or options bundle (`calls`: calls.json rows, venue setters first, then breaker setters)."""
    allowed = allowed_targets(policy, breakers)
    venue = [c for c in calls if "rule" not in c]
    rows = _venue_rows(policy, rec, venue) + _breaker_rows(breakers, breaker_changes, calls[len(venue):])
    labels = {a.lower(): label for a, label in allowed.items()}
    rows = [{**r, "contract": r["contract"] or labels.get(r["to"].lower(), "")} for r in rows]  # an unlabelled setter: the contract's label elsewhere
    return signer_context(
        calls=rows, safe=_safe_with_flags(safe, files, allowed), governor=None,
        state_rows=derivative_state_rows(rec, breaker_changes), bundle_path=bundle_path, allowed=allowed,
        snapshot={"file": "inputs/policy.yaml", "block": None}, simulate=False,
    )


def comet_arg_text(comet: CometSnapshot, allowed: Mapping[str, str]) -> ArgText:
    """People's units of Configurator / CometProxyAdmin arguments: 1e18 factors as %, supply caps in whole
    tokens of the asset, addresses by name (the policy's contracts, the snapshot's assets)."""
    assets = {a.asset.lower(): (symbol, a.decimals) for symbol, a in comet.assets.items()}
    names = {a.lower(): label for a, label in allowed.items()} | {comet.comet.lower(): "Comet"}

    def text(args: Mapping[str, str], name: str, raw: str) -> str:
        if raw.lower() in names:
            return names[raw.lower()]
        if raw.lower() in assets:
            return assets[raw.lower()][0]
        if not raw.isdigit():
            return raw
        if name == "newSupplyCap":
            symbol, decimals = assets.get(str(args.get("asset", "")).lower(), ("tokens", 0))
            whole, rest = divmod(int(raw), 10**decimals)
            return f"{whole:,} {symbol}" + (f" + {rest} base units (Comet keeps whole tokens)" if rest else "")
        if name in ("newBorrowCF", "newLiquidateCF", "newLiquidationFactor"):
            return percent_text(Decimal(int(raw)) / WAD)
        return raw

    return text


def compound_signer_context(
    rec: Recommendation, *, policy: Policy, comet: CometSnapshot, calls: Sequence[Mapping[str, Any]], files: Mapping[str, bytes],
    safe: Mapping[str, Any] | None, bundle_path: str,
) -> dict[str, Any]:
    """The packet of a Compound v3 bundle: the core's parameters (Comet's names beside them) from the snapshot to the proposal."""
    allowed = allowed_targets(policy)
    state = [{**r, "label": ROW_LABELS.get(r["label"], r["label"])} for r in lending_state_rows(rec)]
    return signer_context(
        calls=calls, safe=_safe_with_flags(safe, files, allowed), governor=None, state_rows=state, bundle_path=bundle_path,
        allowed=allowed, snapshot={"file": "inputs/comet.json", "block": comet.block}, arg_text=comet_arg_text(comet, allowed),
        simulate=False,
    )
