"""One epoch: inputs → recommendation → calls → Safe batch → report → bundle files.

`gather_inputs` is the only stage that reads the outside world (policy, data files, snapshot);
`build_files` is a pure function of the pinned inputs, which is what lets `steward verify` rebuild a
bundle from its own `inputs/` folder and compare it byte for byte.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from governance import jsonio
from governance.bundle import MANIFEST, sha256
from governance.calls import Call, decode_call
from governance.governor import governor_files
from governance.pinned import INPUT_HISTORY, INPUT_POLICY, INPUT_PRICES, Source, read_pinned
from governance.price_files import PriceFiles
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
from governance.venues.aave_steward_state import INPUT_STEWARD, parse_steward_state, steward_state_bytes
from risk.data import load_series
from risk.data_problems import DataOptions, Repair
from risk.data_text import iso_utc
from risk.demo import synthetic
from risk.errors import DataError, StewardError
from risk.market import MarketData, align
from risk.parallel import TaskMap, serial_map
from risk.policy import FilePriceSource, Policy, Protocol, SyntheticPriceSource, VenueKind
from risk.policy_load import LoadedPolicy, load_policy
from risk.recommend import recommend
from risk.recommend_scenarios import history_span
from risk.recommendation import Recommendation
from risk.routing import RouteKind, routes_table
from risk.routing_chain import StewardState, disagreements
from risk.snapshot import (
    VenueSnapshot,
    parse_aave_reserves_csv,
    parse_snapshot_json,
    restrict,
    with_prices,
)

DEMO_DIR = Path(__file__).resolve().parents[1] / "risk" / "demo"
DEMO_POLICY = DEMO_DIR / "policy.yaml"
DEMO_SNAPSHOT = DEMO_DIR / "snapshot.json"
INPUT_SNAPSHOT = "inputs/snapshot.json"


@dataclass(frozen=True)
class EpochInputs:
    policy: LoadedPolicy
    market: MarketData
    snapshot: VenueSnapshot
    seed: int
    epoch: str
    sources: tuple[Source, ...]
    repairs: tuple[dict[str, Any], ...]
    history: MarketData | None = None  # crash-window prices for the lending core's replays
    steward: StewardState | None = None  # the RiskSteward read at the snapshot's block (routing uses it, not the policy's)


def default_data_dir() -> Path:
    env = os.environ.get("STEWARD_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def epoch_label(seconds: int) -> str:
    t = dt.datetime.fromtimestamp(int(seconds), dt.UTC)
    return t.strftime("%Y-%m-%d") if (t.hour, t.minute, t.second) == (0, 0, 0) else t.strftime("%Y-%m-%dT%H%MZ")


def _data_options(policy: Policy) -> DataOptions:
    d = policy.data
    return DataOptions(
        max_gap_seconds=d.max_gap.seconds,
        spike_threshold=d.spike_threshold.as_float(),
        repairs=frozenset(r.value for r in d.repairs),
    )


def _synthetic_market(policy: Policy, snapshot: VenueSnapshot, seed: int) -> MarketData:
    step = policy.scenarios.step.seconds
    if step != 3600:
        raise StewardError("the demo market is hourly", "set scenarios.step: 1h in the demo policy")
    symbols = tuple(m.symbol for m in policy.markets)
    anchors = {s: float(snapshot.market(s).price_usd) for s in ("WETH", "WBTC", "wstETH", "USDC")}
    paths = synthetic.generate(seed, anchors)
    unknown = [s for s in symbols if s not in paths]
    if unknown:
        raise StewardError(f"the demo market has no synthetic prices for {', '.join(unknown)}", "demo markets: WETH, WBTC, wstETH, USDC")
    end = int(dt.datetime.fromisoformat(synthetic.DEMO_END).timestamp())
    n = synthetic.DEMO_STEPS + 1
    times = end - step * np.arange(n - 1, -1, -1, dtype=np.int64)
    return MarketData(step_seconds=step, times=times, symbols=symbols, prices=np.column_stack([paths[s] for s in symbols]))


def _file_series(
    policy: Policy, data_dir: Path, files: PriceFiles | None = None
) -> tuple[list[Any], tuple[Source, ...], tuple[Repair, ...]]:
    """Each market's validated series (each file parsed once), with the files' hashes and the repairs made."""
    options = _data_options(policy)
    files = PriceFiles() if files is None else files
    series, repairs, sources = [], [], {}
    for market in policy.markets:
        src = market.price_source
        assert isinstance(src, FilePriceSource)
        path = data_dir / src.file
        if not path.is_file():
            raise DataError(
                f"market {market.symbol}: price file {src.file} not found under {data_dir}",
                "pass --data DIR (default ../shared/data, or set STEWARD_DATA)",
            )
        table, digest = files.load(path, src.file)  # markets (and policies) often share one file: parse it once
        s, r = load_series(table, symbol=src.symbol, column=src.column, options=options, name=src.file)
        series.append(_renamed(s, market.symbol))
        repairs.extend(r)
        sources[src.file] = Source(src.file, digest)
    return series, tuple(sources[k] for k in sorted(sources)), tuple(repairs)


def _renamed(series: Any, symbol: str) -> Any:
    """The series is named after the policy's market, whatever the file calls it."""
    from dataclasses import replace

    return series if series.symbol == symbol else replace(series, symbol=symbol)


def _window(policy: Policy, market: MarketData) -> MarketData:
    sc = policy.scenarios
    end = int(market.times[-1]) if sc.as_of is None else int(sc.as_of.timestamp())
    if end > int(market.times[-1]) or end < int(market.times[0]):
        raise DataError(
            f"scenarios.as_of {iso_utc(end)} is outside the data ({iso_utc(int(market.times[0]))} .. {iso_utc(int(market.times[-1]))})",
            "choose an as_of inside the data range",
        )
    start = end - sc.lookback.seconds
    if start < int(market.times[0]):
        raise DataError(
            f"the {sc.lookback} lookback before {iso_utc(end)} starts before the data ({iso_utc(int(market.times[0]))})",
            "shorten scenarios.lookback or move scenarios.as_of later",
        )
    return market.slice(start, end)


def _load_snapshot(policy: Policy, data_dir: Path, snapshot_path: Path | None, demo: bool) -> VenueSnapshot:
    if snapshot_path is None and policy.snapshot is not None:
        snapshot_path = data_dir / policy.snapshot.file
    if snapshot_path is None:
        if not demo:
            raise StewardError(
                f"no snapshot of {policy.venue.name}'s current parameters",
                "pass --rpc URL, --snapshot FILE (JSON or Aave reserves CSV), or set snapshot.file in the policy",
            )
        snapshot_path = DEMO_SNAPSHOT
    if not snapshot_path.is_file():
        raise DataError(f"snapshot file {snapshot_path} not found", "check the path given with --snapshot or snapshot.file")
    data = snapshot_path.read_bytes()
    if snapshot_path.suffix.lower() == ".csv":
        return parse_aave_reserves_csv(data, snapshot_path.name, policy.venue.chain_id, policy.venue.name)
    return parse_snapshot_json(data, snapshot_path.name)


def _for_policy(snap: VenueSnapshot, policy: Policy) -> VenueSnapshot:
    """The policy's markets only, and only from the policy's chain."""
    if snap.chain_id and snap.chain_id != policy.venue.chain_id:
        raise StewardError(
            f"the snapshot ({snap.source}) is of chain {snap.chain_id}, the policy's venue is on chain {policy.venue.chain_id}",
            "use the snapshot of the policy's venue",
        )
    return restrict(snap, [m.symbol for m in policy.markets], policy.venue.name)


def gather_inputs(
    policy_path: Path | None,
    *,
    data_dir: Path | None = None,
    snapshot_path: Path | None = None,
    seed: int | None = None,
    epoch: str | None = None,
    snapshot: VenueSnapshot | None = None,
    price_files: PriceFiles | None = None,
    steward: StewardState | None = None,
) -> EpochInputs:
    """Read everything an epoch needs and pin it: the canonical prices are what the epoch computes on.

    `snapshot` (read from a chain at a pinned block) takes precedence over `snapshot_path`; `steward`
    is the policy's RiskSteward read at that same block (governance.venues.aave_steward_state).
    """
    loaded = load_policy(policy_path if policy_path is not None else DEMO_POLICY, None)
    policy = loaded.policy
    if policy.venue.kind is not VenueKind.LENDING:
        # Imported here: pipeline_derivatives reuses this module's helpers (no import cycle).
        from governance.pipeline_derivatives import gather_derivative_inputs

        if snapshot_path is not None or snapshot is not None or steward is not None:
            raise StewardError(
                "--snapshot/--rpc read lending reserves", "a perps/options venue gives current values in its policy (current:)"
            )
        return gather_derivative_inputs(policy_path, data_dir=data_dir, seed=seed, epoch=epoch)  # type: ignore[return-value]
    if policy.venue.protocol is Protocol.COMPOUND_V3:
        from governance.pipeline_compound import gather_compound_inputs
        from governance.venues.compound_snapshot import CometSnapshot

        if snapshot is not None and not isinstance(snapshot, CometSnapshot):
            raise StewardError("a Compound v3 venue's chain snapshot is a Comet read", "read it with governance.venues.compound_read")
        if steward is not None:
            raise StewardError("a RiskSteward state was read for a Compound v3 venue", "routing through the steward is Aave v3's")
        return gather_compound_inputs(  # type: ignore[return-value]
            policy_path or DEMO_POLICY, data_dir=data_dir, snapshot_path=snapshot_path, seed=seed, epoch=epoch,
            price_files=price_files, comet=snapshot,
        )
    kinds = {type(m.price_source) for m in policy.markets}
    if len(kinds) > 1:
        raise StewardError("the policy mixes synthetic and file price sources", "use one kind of price_source for all markets")
    demo = kinds == {SyntheticPriceSource}
    seed = policy.scenarios.seed if seed is None else seed
    if snapshot is None:
        snapshot = _load_snapshot(policy, data_dir or default_data_dir(), snapshot_path, demo)
    snapshot = _for_policy(snapshot, policy)
    steward_matches(policy, steward, chain_id=policy.venue.chain_id, block=snapshot.block)
    history = None
    if demo:
        market, sources, repairs = _synthetic_market(policy, snapshot, seed), (), ()
    else:
        series, sources, repairs = _file_series(policy, data_dir or default_data_dir(), price_files)
        max_gap = policy.data.max_gap.seconds
        market = align(series, policy.scenarios.step.seconds, max_gap_seconds=max_gap)
        span = history_span(policy)  # the crash windows the lending core replays, if any
        if span is not None:
            history = align(series, policy.scenarios.step.seconds, start=span[0], end=span[1], max_gap_seconds=max_gap)
            history = MarketData.from_csv_bytes(history.to_csv_bytes(), INPUT_HISTORY)
    market = _window(policy, market)
    # Compute on exactly what is pinned: the canonical CSV round-trips floats exactly.
    market = MarketData.from_csv_bytes(market.to_csv_bytes(), INPUT_PRICES)
    last = {s: Decimal(repr(float(market.series(s)[-1]))) for s in market.symbols}
    snapshot = with_prices(snapshot, last, f"taken from the market data at {iso_utc(int(market.times[-1]))}")
    return EpochInputs(
        policy=loaded,
        market=market,
        snapshot=snapshot,
        seed=seed,
        epoch=epoch or epoch_label(int(market.times[-1])),
        sources=sources,
        repairs=tuple(r.to_json() for r in repairs),
        history=history,
        steward=steward,
    )


def inputs_from_bundle(files: dict[str, bytes], bundle: Path) -> EpochInputs:
    """The inputs pinned in a bundle, as `build_files` needs them to rebuild it."""
    from governance.pipeline_derivatives import derivative_inputs_from_bundle, is_derivative_bundle

    if is_derivative_bundle(files):
        return derivative_inputs_from_bundle(files, bundle)  # type: ignore[return-value]
    from governance.pipeline_compound import compound_inputs_from_bundle, is_compound_bundle

    if is_compound_bundle(files):
        return compound_inputs_from_bundle(files, bundle)  # type: ignore[return-value]
    common = read_pinned(files, bundle, INPUT_SNAPSHOT)
    return EpochInputs(
        policy=common.policy, market=common.market,
        snapshot=parse_snapshot_json(files[INPUT_SNAPSHOT], INPUT_SNAPSHOT),
        seed=common.seed, epoch=common.epoch, sources=common.sources, repairs=common.repairs,
        history=MarketData.from_csv_bytes(files[INPUT_HISTORY], INPUT_HISTORY) if INPUT_HISTORY in files else None,
        steward=parse_steward_state(files[INPUT_STEWARD], f"{bundle}/{INPUT_STEWARD}") if INPUT_STEWARD in files else None,
    )


def _calls_json(calls: list[Call], policy: Policy | None = None) -> list[dict[str, Any]]:
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
        for doc in _calls_json(calls, policy)
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
        rec_doc, calls_doc = rec.to_json(), _calls_json(calls, policy)
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
