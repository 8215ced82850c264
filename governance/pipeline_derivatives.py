"""One epoch of a perps or options venue: inputs → recommendation → setter calls → Safe batch → report → files.

The same two stages as `governance.pipeline`: `gather_derivative_inputs` is the only one that reads the
outside world (the policy, its price files, funding and option-book files, the breaker policy it names)
and pins all of it; `build_derivative_files` is a pure function of the pinned inputs, so `steward
verify` rebuilds a bundle from its own ``inputs/`` byte for byte (`derivative_inputs_from_bundle`).

Pinned inputs: ``inputs/policy.yaml``, ``inputs/prices.csv`` (canonical `MarketData` CSV of every
market's closes over the lookback), ``inputs/funding-<SYMBOL>.csv`` and ``inputs/book-<SYMBOL>-<role>.csv``
(the source files verbatim; only rates up to the last price are used), ``inputs/breakers.yaml``.
Bundle files: recommendation.json, calls.json, safe-tx-builder.json and safe-tx.json (when a Safe is
set and a parameter changes), breakers.json (when the policy names a breaker policy), report.md,
report.html (report.md with the backtest and breaker-replay charts), manifest.json. The lending
pipeline's helpers are imported where used: it dispatches here, and importing it at module level
would make the two modules import each other.
"""

from __future__ import annotations

import dataclasses
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from governance import jsonio
from governance.bundle import MANIFEST, BundleError, sha256
from governance.calls import Call
from governance.pinned import INPUT_POLICY, INPUT_PRICES, Source, pinned_policy, read_pinned
from governance.report_derivatives import render_derivative_markdown, report_context
from governance.report_derivatives_charts import derivative_charts
from governance.report_derivatives_html import render_derivative_html
from governance.safe import build_tx_builder_batch, decode_tx_builder_batch, safe_tx_for_calls, safe_tx_json
from governance.signer_packet import allowed_targets, call_flags
from governance.signer_packet_venues import derivative_signer_context
from governance.venues import breaker_calls, generic
from risk.breaker_changes import BreakerChange, breaker_changes
from risk.breaker_policy import Breakers, check_breaker_policy_text
from risk.breakers_calibrate import CalibrationReport, calibrate
from risk.breakers_feed import MarketStream, SourceSeries, merge_sources
from risk.data import load_series
from risk.data_files import load_prices_file
from risk.data_problems import Repair
from risk.data_text import iso_utc
from risk.derivative_inputs import FundingSeries, parse_book_csv, parse_funding_csv
from risk.errors import DataError, PolicyError, StewardError
from risk.market import MarketData, align
from risk.policy import Policy, VenueKind
from risk.policy_derivatives import OptionBookSpec, OptionLeg, OptionMarket, PerpMarket, derivative_section
from risk.policy_load import LoadedPolicy, load_policy
from risk.recommend_derivatives import recommend_derivatives

INPUT_BREAKERS = "inputs/breakers.yaml"
BREAKERS_FILE = "breakers.json"


def funding_input(symbol: str) -> str:
    return f"inputs/funding-{symbol}.csv"


def book_input(symbol: str, role: str) -> str:
    return f"inputs/book-{symbol}-{role}.csv"


def is_derivative(policy: Policy) -> bool:
    """Whether `build_files` should hand this policy's epoch to `build_derivative_files`."""
    return policy.venue.kind in (VenueKind.PERPS, VenueKind.OPTIONS)


def is_derivative_bundle(files: dict[str, bytes]) -> bool:
    """Whether a bundle's pinned policy is a perps or options venue (False when it cannot tell: the lending path reports why)."""
    policy = pinned_policy(files)
    return policy is not None and is_derivative(policy)


@dataclasses.dataclass(frozen=True)
class DerivativeInputs:
    """Everything an epoch of a derivative venue computes on, pinned: ``pinned`` maps bundle paths to bytes."""

    policy: LoadedPolicy
    market: MarketData
    pinned: tuple[tuple[str, bytes], ...]
    seed: int
    epoch: str
    sources: tuple[Source, ...]
    repairs: tuple[dict[str, Any], ...]

    def file(self, rel: str) -> bytes | None:
        return dict(self.pinned).get(rel)


def _books(market: OptionMarket) -> list[tuple[str, OptionBookSpec]]:
    books = [("reference", market.reference_book)]
    if market.hedging is not None:
        books.append(("vault", market.hedging.book))
    return [(role, spec) for role, spec in books if spec.file is not None]


def _read(data_dir: Path, rel: str, what: str) -> bytes:
    path = data_dir / rel
    if not path.is_file():
        raise DataError(f"{what}: file {rel} not found under {data_dir}", "pass --data DIR (default ../shared/data, or set STEWARD_DATA)")
    return path.read_bytes()


def _prices(policy: Policy, data_dir: Path) -> tuple[MarketData, dict[str, bytes], tuple[Repair, ...]]:
    from governance.epoch_inputs import data_options

    options = data_options(policy)
    series, repairs, sources, tables = [], [], {}, {}
    for m in derivative_section(policy).markets:
        src = m.price_source
        if src.file not in tables:  # markets often share one long file: parse it once
            sources[src.file] = _read(data_dir, src.file, f"market {m.symbol} prices")
            tables[src.file] = load_prices_file(data_dir / src.file, name=src.file)
        s, r = load_series(tables[src.file], symbol=src.symbol, column=src.column, options=options, name=src.file)
        series.append(s if s.symbol == m.symbol else dataclasses.replace(s, symbol=m.symbol))
        repairs.extend(r)
    return align(series, policy.scenarios.step.seconds, max_gap_seconds=options.max_gap_seconds), sources, tuple(repairs)


def gather_derivative_inputs(policy_path: Path, *, data_dir: Path | None = None, seed: int | None = None, epoch: str | None = None) -> DerivativeInputs:
    """Read a perps or options policy and everything it names, and pin it (prices in canonical form)."""
    from governance.epoch_inputs import default_data_dir, epoch_label, lookback_window

    loaded = load_policy(policy_path)
    policy = loaded.policy
    if not is_derivative(policy):
        raise StewardError(f"{policy_path} is a {policy.venue.kind} venue", "use governance.epoch_inputs.gather_inputs for lending venues")
    data_dir = data_dir or default_data_dir()
    market, raw_sources, repairs = _prices(policy, data_dir)
    market = lookback_window(policy, market)
    market = MarketData.from_csv_bytes(market.to_csv_bytes(), INPUT_PRICES)  # compute on exactly what is pinned
    pinned: dict[str, bytes] = {}
    section = derivative_section(policy)
    for m in section.markets:
        if isinstance(m, PerpMarket) and m.funding is not None:
            data = _read(data_dir, m.funding.file, f"market {m.symbol} funding")
            parse_funding_csv(data, m.funding.file, m.funding.column).until(int(market.times[-1]))  # fail now, not at build
            pinned[funding_input(m.symbol)] = data
            raw_sources[m.funding.file] = data
        if isinstance(m, OptionMarket):
            for role, spec in _books(m):
                data = _read(data_dir, spec.file, f"market {m.symbol} {role} book")  # type: ignore[arg-type]
                parse_book_csv(data, spec.file)  # type: ignore[arg-type]
                pinned[book_input(m.symbol, role)] = data
                raw_sources[spec.file] = data  # type: ignore[index]
    if section.breakers is not None:
        path = Path(policy_path).parent / section.breakers
        if not path.is_file():
            raise PolicyError(f"{policy_path}: breaker policy {section.breakers} not found next to it", "breakers: is a path relative to the policy file")
        data = path.read_bytes()
        _breakers(data, f"{section.breakers}")
        pinned[INPUT_BREAKERS] = data
    return DerivativeInputs(
        policy=loaded, market=market, pinned=tuple(sorted(pinned.items())), seed=policy.scenarios.seed if seed is None else seed,
        epoch=epoch or epoch_label(int(market.times[-1])),
        sources=tuple(Source(name, sha256(data)) for name, data in sorted(raw_sources.items())),
        repairs=tuple(r.to_json() for r in repairs),
    )


def derivative_inputs_from_bundle(files: dict[str, bytes], bundle: Path) -> DerivativeInputs:
    """The inputs pinned in a derivative bundle, as `build_derivative_files` needs them to rebuild it."""
    common = read_pinned(files, bundle)
    pinned = tuple(sorted((rel, data) for rel, data in files.items() if rel.startswith("inputs/") and rel not in (INPUT_POLICY, INPUT_PRICES)))
    return DerivativeInputs(
        policy=common.policy, market=common.market, pinned=pinned, seed=common.seed, epoch=common.epoch,
        sources=common.sources, repairs=common.repairs,
    )


def _breakers(data: bytes, name: str) -> Breakers:
    parsed, problems = check_breaker_policy_text(data, name)
    if parsed is None:
        raise PolicyError(f"{name}: {len(problems)} problem(s) in the breaker policy", "fix each line listed", tuple(str(p) for p in problems))
    return parsed.breakers


def breaker_streams(breakers: Breakers, policy: Policy, market: MarketData) -> dict[str, MarketStream]:
    """Each breaker market's stream from the pinned prices: one source, named after the breaker source reading the same file.

    That source's time offset applies (bars stamped at their open are known at their close); rules
    watching another source, and divergence (two sources), are skipped by the calibration and listed.
    """
    venue = {m.symbol: m for m in derivative_section(policy).markets}
    streams = {}
    for bm in breakers.markets:
        if bm.symbol not in venue:
            raise PolicyError(f"breaker market {bm.symbol} is not a market of {policy.venue.name}", f"its markets are {', '.join(venue)}")
        src = venue[bm.symbol].price_source
        same = [s for s in bm.sources if (s.file, s.symbol, s.column) == (src.file, src.symbol, src.column)]
        name, offset = (same[0].name, same[0].time_offset.seconds) if same else ("pinned", 0)
        times = market.times + offset
        keep = np.ones(times.size, bool)
        if bm.start is not None:
            keep &= times >= int(bm.start.timestamp())
        if bm.end is not None:
            keep &= times <= int(bm.end.timestamp())
        series = SourceSeries(name, times[keep], market.series(bm.symbol)[keep], INPUT_PRICES)
        streams[bm.symbol] = merge_sources(bm.symbol, [series], bm.fresh_within.seconds)
    return streams


def measure_breakers(data: bytes, policy: Policy, market: MarketData) -> CalibrationReport:
    """Calibrate the pinned breaker policy on the epoch's pinned prices."""
    return _measure(_breakers(data, INPUT_BREAKERS), policy, market)


def _measure(breakers: Breakers, policy: Policy, market: MarketData) -> CalibrationReport:
    if breakers.calibration is None:
        raise PolicyError(f"{INPUT_BREAKERS}: no calibration section", "add calibration: {max_false_alarms_per_month, max_detection_delay, crash_windows}")
    return calibrate(breakers, breaker_streams(breakers, policy, market))


def package_breakers(inputs: DerivativeInputs, market: MarketData) -> tuple[CalibrationReport | None, tuple[BreakerChange, ...], list[Call], list[dict[str, Any]]]:
    """The pinned breaker policy measured on the epoch's prices, its thresholds' changes, and the calls of the rules with setters (proven)."""
    data = inputs.file(INPUT_BREAKERS)
    if data is None:
        return None, (), [], []
    breakers = _breakers(data, INPUT_BREAKERS)
    report = _measure(breakers, inputs.policy.policy, market)
    changes = breaker_changes(breakers, report)
    calls = breaker_calls.breaker_calls_for(breakers, changes)
    breaker_calls.prove_breaker_calls(calls, breakers, changes)
    return report, changes, calls, breaker_calls.breaker_calls_json(calls, breakers, changes)


def _parsed_inputs(inputs: DerivativeInputs) -> tuple[dict[str, FundingSeries], dict[str, dict[str, tuple[OptionLeg, ...]]]]:
    funding, books = {}, {}
    for m in derivative_section(inputs.policy.policy).markets:
        if isinstance(m, PerpMarket) and m.funding is not None:
            data = inputs.file(funding_input(m.symbol))
            if data is None:
                raise BundleError(f"{funding_input(m.symbol)} is not pinned", "rebuild the bundle with `steward epoch`")
            funding[m.symbol] = parse_funding_csv(data, funding_input(m.symbol), m.funding.column)
        if isinstance(m, OptionMarket):
            for role, _ in _books(m):
                data = inputs.file(book_input(m.symbol, role))
                if data is None:
                    raise BundleError(f"{book_input(m.symbol, role)} is not pinned", "rebuild the bundle with `steward epoch`")
                books.setdefault(m.symbol, {})[role] = parse_book_csv(data, book_input(m.symbol, role))
    return funding, books


def build_derivative_files(inputs: DerivativeInputs) -> dict[str, bytes]:
    """Every file of a derivative venue's bundle, in memory. Pure: same inputs, same bytes."""

    policy = inputs.policy.policy
    section = derivative_section(policy)
    bundle_path = f"proposals/{policy.venue.name}/{inputs.epoch}"
    market = inputs.market
    as_of = iso_utc(int(market.times[-1]))
    funding, books = _parsed_inputs(inputs)
    rec = recommend_derivatives(policy, market, funding=funding, books=books, epoch=inputs.epoch, as_of=as_of)
    calls = generic.calls_for(policy, rec)
    generic.prove_calls(calls, policy, rec)
    calls_doc = generic.calls_json(calls, policy, rec)
    breakers, threshold_changes, more_calls, more_rows = package_breakers(inputs, market)  # breaker thresholds ride in the same Safe batch
    calls, calls_doc = calls + more_calls, calls_doc + more_rows
    breaker_data = inputs.file(INPUT_BREAKERS)
    breaker_policy = None if breaker_data is None else _breakers(breaker_data, INPUT_BREAKERS)
    allowed = allowed_targets(policy, breaker_policy)  # the policy's setters' contracts and its breaker policy's
    calls_doc = [{**row, "flags": call_flags(call, allowed)} for row, call in zip(calls_doc, calls, strict=True)]

    files: dict[str, bytes] = {INPUT_POLICY: inputs.policy.text, INPUT_PRICES: market.to_csv_bytes(), **dict(inputs.pinned)}
    files["recommendation.json"] = jsonio.dumps(rec.to_json())
    files["calls.json"] = jsonio.dumps(calls_doc)
    safe_summary = None
    safe_address = policy.venue.addresses.safe
    if calls and safe_address is not None:
        batch = build_tx_builder_batch(
            calls, chain_id=policy.venue.chain_id, safe_address=safe_address,
            created_at_ms=int(market.times[-1]) * 1000,  # the data's as-of time: no clock in artefacts
            name=f"{policy.venue.name} risk parameters, epoch {inputs.epoch}",
            description=f"{len(calls)} call(s) generated by steward; verify with `steward verify {bundle_path}`",
            owner_address=policy.venue.addresses.safe_owner,
        )
        if decode_tx_builder_batch(batch) != [(c.to, c.value, c.data) for c in calls]:
            raise StewardError("the Tx Builder file does not encode the same calls as calls.json", "do not sign; report a bug")
        safe_tx = safe_tx_for_calls(calls, safe_address=safe_address, chain_id=policy.venue.chain_id, nonce=section.safe_nonce)
        safe_doc = safe_tx_json(safe_tx)
        files["safe-tx-builder.json"] = jsonio.dumps(batch)
        files["safe-tx.json"] = jsonio.dumps(safe_doc)
        safe_summary = {
            "safe": safe_doc["safe"], "chain_id": policy.venue.chain_id, "nonce": safe_tx.nonce, "to": safe_doc["to"],
            "operation": "DELEGATECALL (MultiSendCallOnly)" if safe_tx.operation == 1 else "CALL", "hash": safe_doc["safeTxHash"],
        }
    if breakers is not None:
        files[BREAKERS_FILE] = jsonio.dumps({
            "measured_on": f"{INPUT_PRICES} ({len(market.times)} steps up to {as_of})", **breakers.to_json(),
            "onchain": [c.to_json() for c in threshold_changes],
        })
    inputs_hashes = {rel.removeprefix("inputs/").rsplit(".", 1)[0]: sha256(data) for rel, data in sorted(files.items()) if rel.startswith("inputs/")}
    context = report_context(
        rec, calls=calls_doc, safe=safe_summary, inputs=inputs_hashes, bundle_path=bundle_path,
        data_range=f"{len(market.times)} steps of {market.step_seconds // 60} min, {iso_utc(int(market.times[0]))} .. {as_of}",
        sources=[s.to_json() for s in inputs.sources], repairs=list(inputs.repairs), breakers=breakers, breaker_changes=threshold_changes,
        signer=derivative_signer_context(rec, policy=policy, breakers=breaker_policy, breaker_changes=threshold_changes, calls=calls_doc,
                                         files=files, safe=safe_summary, bundle_path=bundle_path),
    )
    files["report.md"] = render_derivative_markdown(context)
    figures = derivative_charts(rec, market, policy, inputs.file(INPUT_BREAKERS), breakers)
    files["report.html"] = render_derivative_html(context, files["report.md"], figures)
    files[MANIFEST] = jsonio.dumps({
        "block": None, "chain_id": policy.venue.chain_id, "epoch": inputs.epoch,
        "files": {rel: sha256(data) for rel, data in sorted(files.items())}, "inputs": inputs_hashes, "policy_sha256": inputs_hashes["policy"],
        "repairs": list(inputs.repairs), "seed": inputs.seed, "sources": [s.to_json() for s in inputs.sources],
        "steward_version": metadata.version("steward"), "venue": policy.venue.name,
    })
    return files
