"""Stage one of an epoch: read everything it needs from the outside world and pin it.

`gather_inputs` reads the policy, the price files (or the embedded demo's synthetic market), the
snapshot of current parameters (a file, or a chain read passed in) and, with routing, the RiskSteward
state read at the same block; it returns `EpochInputs`, exactly what `governance.pipeline.build_files`
computes on. `inputs_from_bundle` reads the same back from a bundle's `inputs/`, so `steward verify`
rebuilds a bundle from what it pinned. Compound v3 and perps/options venues are handed to their own
modules (`pipeline_compound`, `pipeline_derivatives`), which reuse the helpers here.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from governance.pinned import INPUT_HISTORY, INPUT_PRICES, Source, read_pinned
from governance.price_files import PriceFiles
from governance.routed_calls import steward_matches
from governance.venues.aave_steward_state import INPUT_STEWARD, parse_steward_state
from risk.data import load_series
from risk.data_problems import DataOptions, Repair
from risk.data_text import iso_utc
from risk.demo import synthetic
from risk.errors import DataError, StewardError
from risk.market import MarketData, align
from risk.policy import FilePriceSource, Policy, Protocol, SyntheticPriceSource, VenueKind
from risk.policy_load import LoadedPolicy, load_policy
from risk.recommend_scenarios import history_span
from risk.routing_chain import StewardState
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


def data_options(policy: Policy) -> DataOptions:
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


def file_series(
    policy: Policy, data_dir: Path, files: PriceFiles | None = None
) -> tuple[list[Any], tuple[Source, ...], tuple[Repair, ...]]:
    """Each market's validated series (each file parsed once), with the files' hashes and the repairs made."""
    options = data_options(policy)
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
        series.append(renamed_series(s, market.symbol))
        repairs.extend(r)
        sources[src.file] = Source(src.file, digest)
    return series, tuple(sources[k] for k in sorted(sources)), tuple(repairs)


def renamed_series(series: Any, symbol: str) -> Any:
    """The series is named after the policy's market, whatever the file calls it."""
    return series if series.symbol == symbol else replace(series, symbol=symbol)


def lookback_window(policy: Policy, market: MarketData) -> MarketData:
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
        series, sources, repairs = file_series(policy, data_dir or default_data_dir(), price_files)
        max_gap = policy.data.max_gap.seconds
        market = align(series, policy.scenarios.step.seconds, max_gap_seconds=max_gap)
        span = history_span(policy)  # the crash windows the lending core replays, if any
        if span is not None:
            history = align(series, policy.scenarios.step.seconds, start=span[0], end=span[1], max_gap_seconds=max_gap)
            history = MarketData.from_csv_bytes(history.to_csv_bytes(), INPUT_HISTORY)
    market = lookback_window(policy, market)
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
