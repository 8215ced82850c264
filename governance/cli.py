"""The `steward` command: parses, calls the pipeline, prints. Nothing else lives here.

Expected failures print one line of cause and one of hint and exit 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

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
    err.print(f"[bold red]error:[/] {exc.cause}", markup=True)
    for line in getattr(exc, "problems", ()):
        err.print(f"  {line}", markup=False)
    if exc.hint:
        err.print(f"[yellow]hint:[/] {exc.hint}", markup=True)
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
    from risk.policy_load import check_policy_text

    def body() -> None:
        problems: list[str] = []
        for path in policies:
            try:
                text = path.read_bytes()
            except OSError as exc:
                problems.append(f"{path}: cannot read ({exc.strerror})")
                continue
            _, found = check_policy_text(text, str(path))
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


def _run_epoch(policy: Path | None, data: Path | None, snapshot: Path | None, seed: int | None, out_dir: Path, epoch: str | None) -> Path:
    from governance.bundle import write_bundle
    from governance.pipeline import bundle_dir, build_files, gather_inputs

    with err.status("reading policy, prices and snapshot…"):
        inputs = gather_inputs(policy, data_dir=data, snapshot_path=snapshot, seed=seed, epoch=epoch)
    target = bundle_dir(out_dir, inputs)
    with err.status(f"computing {len(inputs.market.symbols)} market(s) and packaging…"):
        files = build_files(inputs)
        write_bundle(files, target)
    return target


@app.command()
def epoch(
    policy: Annotated[Path | None, typer.Argument(help="Policy file; default: the embedded demo venue.")] = None,
    data: Annotated[Path | None, typer.Option(help="Market data folder (default ../shared/data or $STEWARD_DATA).")] = None,
    snapshot: Annotated[Path | None, typer.Option(help="Current parameters: Steward JSON or Aave reserves CSV.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the policy's seed.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Where bundles go.")] = Path("proposals"),
    epoch_name: Annotated[str | None, typer.Option("--epoch", help="Bundle folder name; default the data's end date.")] = None,
) -> None:
    """Run one epoch and write its bundle to OUT/<venue>/<epoch>/."""

    def body() -> None:
        target = _run_epoch(policy, data, snapshot, seed, out_dir, epoch_name)
        out.print(f"bundle: {target}")

    guarded(body)


@app.command()
def verify(bundle: Annotated[Path, typer.Argument(help="A bundle folder, proposals/<venue>/<epoch>.")]) -> None:
    """Check every file against the manifest, rebuild from inputs/ and compare byte for byte."""
    from governance.verify import verify_bundle

    def body() -> None:
        with err.status("checking the manifest and rebuilding from inputs/…"):
            n = verify_bundle(bundle)
        out.print(f"verified: {n} files match the manifest and the rebuild from inputs/ ({bundle})")

    guarded(body)


@app.command()
def demo(out_dir: Annotated[Path, typer.Option("--out", help="Where bundles go.")] = Path("proposals")) -> None:
    """The main job on the embedded demo venue: epoch, then verify the bundle."""

    def body() -> None:
        out.print("[bold]1/2[/] epoch on the embedded demo venue (synthetic prices, committed snapshot)")
        target = _run_epoch(None, None, None, None, out_dir, None)
        out.print(f"     bundle: {target}")
        out.print("[bold]2/2[/] verify: rebuild from inputs/ and compare")
        verify(target)
        out.print(f"done. Read {target / 'report.md'}; import {target / 'safe-tx-builder.json'} in Safe{{Wallet}}.")

    guarded(body)


def run() -> Any:  # pragma: no cover - console entry for `python -m governance.cli`
    return app()


if __name__ == "__main__":  # pragma: no cover
    run()


def _register_extensions() -> None:
    """Command groups that live in their own modules (chain commands: devnet, simulate, sign, execute...)."""
    import importlib

    for name in ("governance.cli_chain",):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(app, guarded=guarded, out=out, err=err)


_register_extensions()
