"""The `steward breakers` commands: calibrate a breaker policy on history, replay it on price files.

Thin, like governance/cli.py: parse, load, call the risk core, print JSON on stdout (sorted keys),
notes (repairs applied, rules skipped) on stderr. Errors go through the `guarded` wrapper cli.py
passes in: one line of cause, one of hint, exit 2.

    steward breakers calibrate POLICY [--data DIR]
        One JSON document: per rule the threshold, false alarms per month, delay per crash window and
        missed windows, at the policy's threshold and at the calibrated one. Exit 1 when the policy's
        thresholds miss the targets.
    steward breakers replay POLICY [--prices [SOURCE=]CSV ...] [--market SYMBOL] [--open-interest CSV] [--data DIR]
        One JSON line per alert: {"market", "rule", "severity", "threshold", "time", "value"}. Each
        --prices file is one source of the market (in the policy's order, or named SOURCE=), read as
        the policy reads that source (its column or symbol when the file has it, else the file's only
        one; its time offset; the market's range); without --prices every market is replayed on the
        policy's own files.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from risk.errors import DataError, PolicyError

T = TypeVar("T")
Guarded = Callable[[Callable[[], T]], T]

PolicyArg = Annotated[Path, typer.Argument(help="A breaker policy (policies/*-breaker*.yaml).")]
DataOpt = Annotated[Path | None, typer.Option("--data", help="Market data folder (default ../shared/data or $STEWARD_DATA).")]


def _data_dir(data: Path | None) -> Path:
    if data is not None:
        return data
    from governance.epoch_inputs import default_data_dir  # heavy imports: only when the default is needed

    return default_data_dir()


def source_files(market: Any, prices: list[str]) -> dict[str, Path]:
    """Map --prices arguments to the market's sources: ``NAME=CSV`` names one, a bare ``CSV`` takes the next unnamed one."""
    names = [s.name for s in market.sources]
    named: dict[str, Path] = {}
    bare: list[Path] = []
    for arg in prices:
        head, sep, tail = arg.partition("=")
        if sep and head in names:
            if head in named:
                raise DataError(f"--prices: source {head!r} given twice", "give each source one file")
            named[head] = Path(tail)
        else:
            bare.append(Path(arg))
    free = [n for n in names if n not in named]
    if len(bare) > len(free):
        raise DataError(
            f"market {market.symbol} has {len(names)} source(s) ({', '.join(names)}) but {len(prices)} --prices file(s) were given",
            "pass at most one file per source, or name them: --prices SOURCE=CSV",
        )
    files = dict(named)
    files.update(zip(free, bare))
    for name, path in files.items():
        if not path.is_file():
            raise DataError(f"--prices {path}: file not found (source {name} of {market.symbol})", "check the path")
    return {n: files[n] for n in names if n in files}


def _note_repairs(err: Console, repairs: Any) -> None:
    for r in repairs:
        err.print(f"note: {r.file}: {r.kind} — {r.detail}", markup=False)


def register(app: typer.Typer, *, guarded: Guarded[Any], out: Console, err: Console) -> None:
    """Add `steward breakers calibrate|replay` to `app`."""
    breakers_app = typer.Typer(help="Circuit breakers: calibrate thresholds on real crashes, replay alerts on price files.", no_args_is_help=True)

    @breakers_app.command("calibrate")
    def calibrate_cmd(policy: PolicyArg, data: DataOpt = None) -> None:
        """Measure each rule on history and choose thresholds; JSON on stdout (exit 1 if the policy misses its targets)."""
        from risk.breaker_policy import load_breaker_policy
        from risk.breakers_calibrate import calibrate
        from risk.breakers_feed import load_market_stream

        def body() -> bool:
            breakers = load_breaker_policy(policy).policy.breakers
            if breakers.calibration is None:
                raise PolicyError(f"{policy}: no calibration section", "add calibration: {max_false_alarms_per_month, max_detection_delay, crash_windows}")
            data_dir, streams, tables = _data_dir(data), {}, {}
            with err.status("loading the markets' price history…"):
                for market in breakers.markets:
                    streams[market.symbol], repairs = load_market_stream(market, breakers.data, data_dir=data_dir, tables=tables)
                    _note_repairs(err, repairs)
            report = calibrate(breakers, streams)
            for note in report.skipped:
                err.print(f"note: {note}", markup=False)
            sys.stdout.write(json.dumps(report.to_json(), indent=2, sort_keys=True, allow_nan=False) + "\n")
            return report.ok

        if not guarded(body):
            raise typer.Exit(1)

    @breakers_app.command("replay")
    def replay_cmd(
        policy: PolicyArg,
        prices: Annotated[list[str] | None, typer.Option("--prices", help="A price CSV/Parquet of one source, [SOURCE=]FILE; repeat for several sources.")] = None,
        market: Annotated[str | None, typer.Option("--market", help="The policy market the --prices files belong to (needed if it has several).")] = None,
        open_interest: Annotated[Path | None, typer.Option("--open-interest", help="Open interest in USD (timestamp_utc + one column) for the OI cap.")] = None,
        data: DataOpt = None,
    ) -> None:
        """Replay the policy's rules; one JSON line per alert on stdout."""
        from risk.breaker_policy import load_breaker_policy
        from risk.breakers import replay
        from risk.breakers_feed import load_market_stream

        def body() -> None:
            breakers = load_breaker_policy(policy).policy.breakers
            streams, tables = {}, {}
            if prices or open_interest is not None:
                if market is None and len(breakers.markets) > 1:
                    raise PolicyError(
                        f"{policy} has {len(breakers.markets)} markets ({', '.join(m.symbol for m in breakers.markets)}); which one are the files of?",
                        "add --market SYMBOL",
                    )
                chosen = breakers.market(market) if market is not None else breakers.markets[0]
                files = source_files(chosen, prices or [])
                if not files:
                    raise DataError(f"no --prices file for market {chosen.symbol}", "pass --prices CSV (one per source)")
                stream, repairs = load_market_stream(chosen, breakers.data, files=files, open_interest=open_interest, tables=tables)
                streams[chosen.symbol] = stream
                _note_repairs(err, repairs)
            else:
                data_dir = _data_dir(data)
                selected = [breakers.market(market)] if market is not None else list(breakers.markets)
                for m in selected:
                    streams[m.symbol], repairs = load_market_stream(m, breakers.data, data_dir=data_dir, tables=tables)
                    _note_repairs(err, repairs)
            alerts, skipped = replay(breakers, streams)
            for note in skipped:
                err.print(f"note: {note}", markup=False)
            sys.stdout.write("".join(json.dumps(a.to_json(), sort_keys=True, allow_nan=False) + "\n" for a in alerts))

        guarded(body)

    app.add_typer(breakers_app, name="breakers")
