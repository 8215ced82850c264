"""The `steward` command: parses, calls the pipeline, prints. Nothing else lives here.

Expected failures print one line of cause and one of hint and exit 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from risk.errors import PolicyError, StewardError

app = typer.Typer(
    name="steward",
    help="Risk-parameter proposals for lending and derivative venues: policy in, verified bundle out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
_state = {"debug": False}
T = TypeVar("T")


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of expected errors.")] = False) -> None:
    _state["debug"] = debug


def _fail(exc: StewardError) -> typer.Exit:
    # Causes and hints are plain text: "[remove_spikes]" must print as written, not as rich markup.
    err.print(Text.assemble(("error:", "bold red"), " ", exc.cause))
    for line in getattr(exc, "problems", ()):
        err.print(f"  {line}", markup=False)
    if exc.hint:
        err.print(Text.assemble(("hint:", "yellow"), " ", exc.hint))
    return typer.Exit(exc.exit_code)


def guarded(fn: Callable[[], T]) -> T:
    """Run a command body; expected errors become a clear message and exit 2."""
    try:
        return fn()
    except StewardError as exc:
        if _state["debug"]:
            raise
        raise _fail(exc) from None
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        raise typer.Exit(130) from None


@app.command()
def validate(policies: Annotated[list[Path], typer.Argument(help="Policy files to check.")]) -> None:
    """Check policy files; list every problem with file:line:column and the field."""
    from risk.breaker_policy import check_breaker_policy_text
    from risk.policy_load import check_policy_text

    def body() -> None:
        problems: list[str] = []
        for path in policies:
            try:
                text = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: cannot read ({exc.strerror})")
                continue
            # A breaker policy has a top-level `breakers:` section; everything else is a venue policy.
            is_breaker = re.search(rb"^breakers\s*:", text, re.MULTILINE) is not None
            _, found = (check_breaker_policy_text if is_breaker else check_policy_text)(text, str(path))
            problems.extend(str(p) for p in found)
        if problems:
            raise PolicyError(
                f"{len(problems)} problem(s) in {len(policies)} policy file(s)",
                "fix each line listed; the schema is policies/schema.json",
                tuple(problems),
            )
        out.print(f"ok: {len(policies)} policy file(s) valid")

    guarded(body)


@app.command()
def schema() -> None:
    """Print the policy JSON schema (policies/schema.json is this output)."""
    from risk.policy import Policy

    sys.stdout.write(json.dumps(Policy.model_json_schema(mode="validation"), indent=2, sort_keys=True) + "\n")


def _run_epoch(
    policy: Path | None, data: Path | None, snapshot: Path | None, seed: int | None, out_dir: Path, epoch: str | None,
    rpc: str | None = None, block: int | None = None, executor: str = "serial",
) -> Path:
    from governance.bundle import write_bundle
    from governance.epoch_inputs import DEMO_POLICY, gather_inputs
    from governance.pipeline import build_files, bundle_dir

    chain_snapshot, chain_steward = None, None
    if rpc is not None and policy is not None:
        from risk.policy import VenueKind
        from risk.policy_load import load_policy as _load

        if _load(policy).policy.venue.kind is not VenueKind.LENDING:
            raise StewardError("--rpc reads Aave reserves", "a perps/options venue gives current values in its policy (current:)")
    if rpc is not None:
        if snapshot is not None:
            raise StewardError("--rpc and --snapshot both given", "read current parameters from one place")
        from governance.venues.aave_v3_read import snapshot_from_rpc
        from governance.venues.compound_read import comet_snapshot_from_rpc
        from risk.policy import Protocol
        from risk.policy_load import load_policy

        with err.status(f"reading current parameters from the chain{'' if block is None else f' at block {block}'}…"):
            venue_policy = load_policy(policy or DEMO_POLICY).policy
            read = comet_snapshot_from_rpc if venue_policy.venue.protocol is Protocol.COMPOUND_V3 else snapshot_from_rpc  # Comet, not Aave reserves
            chain_snapshot = read(venue_policy, rpc, block=block)
            if venue_policy.venue.protocol is Protocol.AAVE_V3:  # the steward at the same block: routing uses its limits
                from governance.venues.aave_steward_state import steward_state_from_rpc

                chain_steward = steward_state_from_rpc(venue_policy, rpc, block=chain_snapshot.block)
    elif block is not None:
        raise StewardError("--block needs --rpc", "give the RPC to read the block from")
    with err.status("reading policy, prices and snapshot…"):
        inputs = gather_inputs(
            policy, data_dir=data, snapshot_path=snapshot, seed=seed, epoch=epoch, snapshot=chain_snapshot,
            steward=chain_steward,
        )
    target = bundle_dir(out_dir, inputs)
    with err.status(f"computing {len(inputs.market.symbols)} market(s) and packaging…"):
        from governance.executors import make_executor

        with make_executor(executor) as ex:  # the same bytes whatever runs the tasks
            files = build_files(inputs, task_map=ex.map)
        write_bundle(files, target)
    return target


@app.command()
def epoch(
    policies: Annotated[
        list[Path] | None, typer.Argument(help="Policy file(s); default: the embedded demo venue.", show_default=False)
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Market data folder (default ../shared/data or $STEWARD_DATA).")] = None,
    snapshot: Annotated[Path | None, typer.Option(help="Current parameters: Steward JSON or Aave reserves CSV.")] = None,
    rpc: Annotated[str | None, typer.Option(help="Read current parameters from this node instead (pinned into inputs/).")] = None,
    block: Annotated[int | None, typer.Option(help="With --rpc: the block to read at (default: the latest).")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the policy's seed.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where bundles go.")] = Path("proposals"),
    epoch_name: Annotated[str | None, typer.Option("--epoch", help="Bundle folder name; default the data's end date.")] = None,
    executor: Annotated[
        str, typer.Option(envvar="STEWARD_EXECUTOR", help="serial | local[:N] | ray[:N] | ray://HOST:PORT (same bytes on each).")
    ] = "local",
) -> None:
    """Run one epoch per policy and write each bundle to OUT/<venue>/<epoch>/ (several share loaded data)."""

    def body() -> None:
        if policies and len(policies) > 1:
            if snapshot is not None or rpc is not None or block is not None:
                raise StewardError("--snapshot/--rpc/--block name one venue's state", "run several policies without them")
            from governance.executors import make_executor
            from governance.multi_epoch import run_epochs

            with make_executor(executor) as ex:
                done = run_epochs(
                    policies, data_dir=data, out_dir=out_dir, executor=ex, seed=seed, epoch=epoch_name,
                    say=lambda line: err.print(line, markup=False),
                )
            for run in done.runs:
                out.print(f"bundle: {run.bundle}")
            err.print(f"price files parsed: {done.files_read}, reused: {done.files_reused}", markup=False)
            return
        policy = policies[0] if policies else None
        target = _run_epoch(policy, data, snapshot, seed, out_dir, epoch_name, rpc, block, executor)
        out.print(f"bundle: {target}")

    guarded(body)


@app.command()
def verify(bundle: Annotated[Path, typer.Argument(help="A bundle folder, proposals/<venue>/<epoch>.")]) -> None:
    """Check every file against the manifest, rebuild from inputs/ and compare byte for byte."""
    from governance.verify import verify_bundle

    def body() -> None:
        with err.status("checking the manifest and rebuilding from inputs/…"):
            core, attachments = verify_bundle(bundle)
        extra = f"; {attachments} attachment(s) (signatures, simulation) check out" if attachments else ""
        out.print(f"verified: {core} files match the manifest and the rebuild from inputs/{extra} ({bundle})")

    guarded(body)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where bundles go.")] = Path("proposals"),
    offline: Annotated[bool, typer.Option(help="Skip the local chain: epoch and verify on the embedded demo only.")] = False,
) -> None:
    """The whole job: devnet up → epoch from the chain → verify → simulate → sign ×2 → execute → reconcile → down.

    Falls back to the offline demo (epoch + verify on the embedded venue) when anvil cannot start.
    """
    from governance.demo_chain import offline_demo, run_demo_chain

    def say(line: str) -> None:
        out.print(line, markup=False)

    def body() -> None:
        target = offline_demo(out_dir, say) if offline else run_demo_chain(out_dir, say=say)
        out.print(f"bundle: {target}")

    guarded(body)


def run() -> Any:  # pragma: no cover - console entry for `python -m governance.cli`
    return app()


if __name__ == "__main__":  # pragma: no cover
    run()


EXTENSIONS = (
    "governance.cli_chain",  # devnet, simulate, reconcile, sign, execute, demo-chain
    "governance.cli_governor",  # governor vote|queue|execute|reconcile|status
    "governance.cli_propose",  # propose --safe-service | --governor
    "governance.cli_breakers",  # breakers calibrate|replay
    "governance.cli_watch",  # watch
    "governance.cli_backtest",  # backtest
)


def _register_extensions() -> None:
    """Command groups that live in their own modules (chain commands: devnet, simulate, sign, execute...)."""
    import importlib

    for name in EXTENSIONS:
        importlib.import_module(name).register(app, guarded=guarded, out=out, err=err)


_register_extensions()
