"""One epoch of a Compound v3 (Comet) venue: inputs → lending risk core → Configurator calls → Safe batch → report.

The same two stages as `governance.pipeline`: `gather_compound_inputs` is the only one that reads the
outside world (the policy, its price files, the Comet snapshot) and pins it; `build_compound_files`
is a pure function of the pinned inputs, so `steward verify` rebuilds the bundle from its own
``inputs/`` byte for byte (`compound_inputs_from_bundle`). `governance.pipeline` dispatches here for
``venue.protocol: compound-v3``; its helpers are imported where used (it imports this module).

Pinned inputs: ``inputs/policy.yaml``, ``inputs/prices.csv``, ``inputs/comet.json`` (the Comet's asset
configurations, `governance.venues.compound_snapshot`) and ``inputs/history.csv`` when crash windows
are replayed. Bundle files: recommendation.json, calls.json, safe-tx-builder.json and safe-tx.json
(when a Safe is set and a parameter changes), report.md, report.html, manifest.json. No governor.json.

The lending risk core recommends Aave-shaped parameters; `governance.venues.compound_mapping` maps them
onto Comet (LTV ↔ borrow collateral factor, liquidation threshold ↔ liquidate collateral factor, bonus ↔
liquidation penalty = 1 − liquidation factor, supply cap ↔ supply cap; no borrow cap, Comet has none per
asset) and the report's method section states it, with what is modelled as Comet does it and what is still
approximated. `risk.recommend` simulates compound-v3 venues with whole-position liquidations
(`risk.lending_params.LiquidationStyle.WHOLE_POSITION`: all of the debt once HF < 1, as Comet's absorb).

No devnet simulation: Comet's bytecode is not published on npm (@compound-finance/comet is not in the
registry), so there is no Comet on the local anvil devnet and `steward simulate` cannot run these
bundles. No stand-in contract is written in its place.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from governance import jsonio
from governance.bundle import MANIFEST, sha256
from governance.calls import Call
from governance.pinned import INPUT_HISTORY, INPUT_POLICY, INPUT_PRICES, Source, pinned_policy, read_pinned
from governance.report import render_markdown, report_context
from governance.report_html import chart_inputs, render_html
from governance.safe import build_tx_builder_batch, decode_tx_builder_batch, safe_tx_for_calls, safe_tx_json
from governance.signer_packet_venues import compound_signer_context
from governance.venues.compound_mapping import ROW_LABELS, comet_changes, compound_context, for_comet, prove_comet_calls
from governance.venues.compound_snapshot import CometSnapshot, parse_comet_snapshot_json
from governance.venues.compound_v3 import comet_calls
from risk.data_text import iso_utc
from risk.demo import synthetic
from risk.errors import DataError, PolicyError, StewardError
from risk.market import MarketData, align
from risk.parallel import TaskMap, serial_map
from risk.policy import Policy, Protocol, SyntheticPriceSource, VenueKind
from risk.policy_compound import compound_section
from risk.policy_load import LoadedPolicy, load_policy
from risk.recommend import recommend
from risk.recommend_scenarios import history_span

if TYPE_CHECKING:
    from governance.price_files import PriceFiles

DEMO_COMET = Path(__file__).resolve().parents[1] / "risk" / "demo" / "comet_snapshot.json"
INPUT_COMET = "inputs/comet.json"

def is_compound(policy: Policy) -> bool:
    """Whether `build_files` should hand this policy's epoch to `build_compound_files`."""
    return policy.venue.kind is VenueKind.LENDING and policy.venue.protocol is Protocol.COMPOUND_V3


def is_compound_bundle(files: dict[str, bytes]) -> bool:
    """Whether a bundle's pinned policy is a Compound v3 venue (False when it cannot tell: the lending path reports why)."""
    policy = pinned_policy(files)
    return policy is not None and is_compound(policy)


@dataclasses.dataclass(frozen=True)
class CompoundInputs:
    """Everything a Compound v3 epoch computes on, pinned."""

    policy: LoadedPolicy
    market: MarketData
    comet: CometSnapshot
    seed: int
    epoch: str
    sources: tuple[Source, ...]
    repairs: tuple[dict[str, Any], ...]
    history: MarketData | None = None


def _supported(policy: Policy) -> None:
    """Sections this pipeline would otherwise ignore silently: refused, naming them."""
    unsupported = [name for name in ("routing", "governor") if getattr(policy, name) is not None]
    if unsupported:
        raise PolicyError(f"venue {policy.venue.name}: {' and '.join(unsupported)} cannot be packaged for a compound-v3 venue yet",
                          "remove the section: Compound v3 bundles are one Safe batch (Configurator calls, then the upgrade)")


def _load_comet(policy: Policy, data_dir: Path, snapshot_path: Path | None, demo: bool) -> CometSnapshot:
    if snapshot_path is None and policy.snapshot is not None:
        snapshot_path = data_dir / policy.snapshot.file
    if snapshot_path is None:
        if not demo:
            raise StewardError(f"no snapshot of {policy.venue.name}'s Comet asset configurations",
                               "pass --snapshot FILE or set snapshot.file in the policy (format: risk/demo/comet_snapshot.json)")
        snapshot_path = DEMO_COMET
    if not snapshot_path.is_file():
        raise DataError(f"Comet snapshot {snapshot_path} not found", "check the path given with --snapshot or snapshot.file")
    return parse_comet_snapshot_json(snapshot_path.read_bytes(), snapshot_path.name)


def _for_policy(comet: CometSnapshot, policy: Policy) -> CometSnapshot:
    """The policy's markets only; the snapshot must be of the policy's chain, Comet and assets."""
    section = compound_section(policy)
    if comet.chain_id and comet.chain_id != policy.venue.chain_id:
        raise StewardError(f"the Comet snapshot ({comet.source}) is of chain {comet.chain_id}, the venue is on chain {policy.venue.chain_id}",
                           "use the snapshot of the policy's venue")
    if comet.comet != section.comet:
        raise StewardError(f"the Comet snapshot is of Comet {comet.comet}, the policy's compound.comet is {section.comet}",
                           "read the snapshot from the policy's Comet, or fix compound.comet")
    restricted = comet.restricted([m.symbol for m in policy.markets], policy.venue.name)
    for m in policy.markets:
        if restricted.asset(m.symbol).asset.lower() != m.asset.lower():
            raise StewardError(f"market {m.symbol}: the policy's asset {m.asset} differs from the Comet snapshot's {restricted.asset(m.symbol).asset}",
                               "the policy and the snapshot must name the same token")
    return restricted


def _demo_market(policy: Policy, comet: CometSnapshot, seed: int) -> MarketData:
    """The embedded synthetic market anchored on the snapshot's prices (the generator needs USDC's: the base asset's)."""
    step = policy.scenarios.step.seconds
    if step != 3600:
        raise StewardError("the demo market is hourly", "set scenarios.step: 1h in the demo policy")
    anchors = {s: float(p) for s, p in comet.prices.items() if p is not None}
    if comet.base_symbol is not None and comet.base_price_usd is not None:
        anchors[comet.base_symbol] = float(comet.base_price_usd)
    missing = [s for s in ("WETH", "WBTC", "wstETH", "USDC") if s not in anchors]
    if missing:
        raise DataError(f"the Comet snapshot has no price for {', '.join(missing)}", "the demo market anchors on WETH, WBTC, wstETH and USDC prices")
    paths = synthetic.generate(seed, anchors)
    symbols = tuple(m.symbol for m in policy.markets)
    unknown = [s for s in symbols if s not in paths]
    if unknown:
        raise StewardError(f"the demo market has no synthetic prices for {', '.join(unknown)}", "demo markets: WETH, WBTC, wstETH, USDC")
    end = int(dt.datetime.fromisoformat(synthetic.DEMO_END).timestamp())
    times = end - step * np.arange(synthetic.DEMO_STEPS, -1, -1, dtype=np.int64)
    return MarketData(step_seconds=step, times=times, symbols=symbols, prices=np.column_stack([paths[s] for s in symbols]))


def gather_compound_inputs(
    policy_path: Path, *, data_dir: Path | None = None, snapshot_path: Path | None = None, seed: int | None = None,
    epoch: str | None = None, price_files: PriceFiles | None = None, comet: CometSnapshot | None = None,
) -> CompoundInputs:
    """Read a Compound v3 policy, its prices and its Comet snapshot, and pin them (prices in canonical form).

    `comet` (read from a chain at a pinned block, `governance.venues.compound_read`) takes precedence over `snapshot_path`.
    """
    from governance.epoch_inputs import default_data_dir, epoch_label, file_series, lookback_window

    loaded = load_policy(policy_path)
    policy = loaded.policy
    if not is_compound(policy):
        raise StewardError(f"{policy_path} is not a compound-v3 lending venue", "use governance.epoch_inputs.gather_inputs")
    compound_section(policy)
    _supported(policy)
    kinds = {type(m.price_source) for m in policy.markets}
    if len(kinds) > 1:
        raise StewardError("the policy mixes synthetic and file price sources", "use one kind of price_source for all markets")
    demo = kinds == {SyntheticPriceSource}
    seed = policy.scenarios.seed if seed is None else seed
    data_dir = data_dir or default_data_dir()
    if comet is None:
        comet = _load_comet(policy, data_dir, snapshot_path, demo)
    history = None
    if demo:
        market, sources, repairs = _demo_market(policy, comet, seed), (), ()
    else:
        series, sources, repairs = file_series(policy, data_dir, price_files)
        max_gap = policy.data.max_gap.seconds
        market = align(series, policy.scenarios.step.seconds, max_gap_seconds=max_gap)
        span = history_span(policy)
        if span is not None:
            history = align(series, policy.scenarios.step.seconds, start=span[0], end=span[1], max_gap_seconds=max_gap)
            history = MarketData.from_csv_bytes(history.to_csv_bytes(), INPUT_HISTORY)
    comet = _for_policy(comet, policy)
    market = lookback_window(policy, market)
    market = MarketData.from_csv_bytes(market.to_csv_bytes(), INPUT_PRICES)  # compute on exactly what is pinned
    last = {s: Decimal(repr(float(market.series(s)[-1]))) for s in market.symbols}
    comet = comet.with_prices(last, f"taken from the market data at {iso_utc(int(market.times[-1]))}")
    return CompoundInputs(policy=loaded, market=market, comet=comet, seed=seed, epoch=epoch or epoch_label(int(market.times[-1])),
                          sources=sources, repairs=tuple(r.to_json() for r in repairs), history=history)


def compound_inputs_from_bundle(files: dict[str, bytes], bundle: Path) -> CompoundInputs:
    """The inputs pinned in a Compound v3 bundle, as `build_compound_files` needs them to rebuild it."""
    common = read_pinned(files, bundle, INPUT_COMET)
    return CompoundInputs(
        policy=common.policy, market=common.market, comet=parse_comet_snapshot_json(files[INPUT_COMET], INPUT_COMET),
        seed=common.seed, epoch=common.epoch, sources=common.sources, repairs=common.repairs,
        history=MarketData.from_csv_bytes(files[INPUT_HISTORY], INPUT_HISTORY) if INPUT_HISTORY in files else None,
    )


# ------------------------------------------------------------------------------------- the bundle


def _safe_files(calls: tuple[Call, ...], policy: Policy, inputs: CompoundInputs, bundle_path: str) -> tuple[dict[str, bytes], dict[str, Any] | None]:
    safe_address = policy.venue.addresses.safe
    if not calls or safe_address is None:
        return {}, None
    batch = build_tx_builder_batch(
        list(calls), chain_id=policy.venue.chain_id, safe_address=safe_address,
        created_at_ms=int(inputs.market.times[-1]) * 1000,  # the data's as-of time: no clock in artefacts
        name=f"{policy.venue.name} risk parameters, epoch {inputs.epoch}",
        description=f"{len(calls)} call(s) generated by steward; verify with `steward verify {bundle_path}`",
        owner_address=policy.venue.addresses.safe_owner,
    )
    if decode_tx_builder_batch(batch) != [(c.to, c.value, c.data) for c in calls]:
        raise StewardError("the Tx Builder file does not encode the same calls as calls.json", "do not sign; report a bug")
    safe_tx = safe_tx_for_calls(list(calls), safe_address=safe_address, chain_id=policy.venue.chain_id, nonce=inputs.comet.safe_nonce)
    doc = safe_tx_json(safe_tx)
    summary = {"safe": doc["safe"], "chain_id": policy.venue.chain_id, "nonce": safe_tx.nonce, "to": doc["to"],
               "operation": "DELEGATECALL (MultiSendCallOnly)" if safe_tx.operation == 1 else "CALL", "hash": doc["safeTxHash"]}
    return {"safe-tx-builder.json": jsonio.dumps(batch), "safe-tx.json": jsonio.dumps(doc)}, summary


def build_compound_files(inputs: CompoundInputs, *, task_map: TaskMap = serial_map) -> dict[str, bytes]:
    """Every file of a Compound v3 venue's bundle, in memory. Pure: same inputs, same bytes."""
    from governance.pipeline import calls_json

    policy = inputs.policy.policy
    section = compound_section(policy)
    _supported(policy)
    bundle_path = f"proposals/{policy.venue.name}/{inputs.epoch}"
    market, comet = inputs.market, inputs.comet
    as_of = iso_utc(int(market.times[-1]))
    rec = recommend(policy, market.symbols, market.prices, market.step_seconds, comet.to_venue_snapshot(),
                    epoch=inputs.epoch, as_of=as_of, history=inputs.history, task_map=task_map)
    rec = for_comet(rec, comet)
    changes = comet_changes(rec, comet)
    package = comet_calls(changes, configurator=section.configurator, comet=section.comet, proxy_admin=section.proxy_admin,
                          states={a.asset: a for a in comet.assets.values()})
    prove_comet_calls(package.calls, rec, comet, section)
    calls_doc = calls_json(list(package.calls), policy)  # flags: anything but the Configurator and the CometProxyAdmin

    files: dict[str, bytes] = {INPUT_POLICY: inputs.policy.text, INPUT_PRICES: market.to_csv_bytes(), INPUT_COMET: comet.to_json_bytes(),
                               "recommendation.json": jsonio.dumps(rec.to_json()), "calls.json": jsonio.dumps(calls_doc)}
    if inputs.history is not None:
        files[INPUT_HISTORY] = inputs.history.to_csv_bytes()
    safe_files, safe_summary = _safe_files(package.calls, policy, inputs, bundle_path)
    files.update(safe_files)
    inputs_hashes = {"snapshot": sha256(files[INPUT_COMET]), "policy": sha256(files[INPUT_POLICY]), "prices": sha256(files[INPUT_PRICES])}
    if INPUT_HISTORY in files:
        inputs_hashes["history"] = sha256(files[INPUT_HISTORY])
    context = report_context(
        rec, calls=calls_doc, safe=safe_summary, inputs=inputs_hashes, bundle_path=bundle_path,
        data_range=f"{len(market.times)} steps of {market.step_seconds // 60} min, {iso_utc(int(market.times[0]))} .. {as_of}",
        sources=[s.to_json() for s in inputs.sources] or [{"name": "embedded demo market (synthetic, risk/demo/synthetic.py)", "sha256": inputs_hashes["prices"]}],
        repairs=list(inputs.repairs), charts=chart_inputs(rec, market, policy.change_limits),
        signer=compound_signer_context(rec, policy=policy, comet=comet, calls=calls_doc, files=files, safe=safe_summary,
                                       bundle_path=bundle_path),
    )
    for m in context["markets"]:
        for row in m["rows"]:
            row["label"] = ROW_LABELS.get(row["label"], row["label"])
    context["compound"] = compound_context(package, changes, section, comet)
    files["report.md"] = render_markdown(context)
    files["report.html"] = render_html(context)
    files[MANIFEST] = jsonio.dumps({
        "block": comet.block, "chain_id": policy.venue.chain_id, "epoch": inputs.epoch,
        "files": {rel: sha256(data) for rel, data in sorted(files.items())}, "inputs": inputs_hashes, "policy_sha256": inputs_hashes["policy"],
        "repairs": list(inputs.repairs), "seed": inputs.seed, "sources": [s.to_json() for s in inputs.sources],
        "steward_version": metadata.version("steward"), "venue": policy.venue.name,
    })
    return files
