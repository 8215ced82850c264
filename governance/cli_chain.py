"""The chain commands of `steward`: devnet up|down, simulate, reconcile, sign, execute, demo-chain.

Thin, like governance/cli.py: parse, call, print. Errors go through the `guarded` wrapper cli.py
passes in (one line of cause, one of hint, exit 2). Passwords are prompted without echo or read from
a named environment variable; keys are never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from governance.bundle import SIGNER_PACKET
from governance.chain import DEFAULT_TIMEOUT_S

T = TypeVar("T")
Guarded = Callable[[Callable[[], T]], T]

BundleArg = Annotated[Path, typer.Argument(help="A bundle folder, proposals/<venue>/<epoch>.")]
RpcOpt = Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the chain (the devnet's: see `steward devnet up`).")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per RPC request.")]
KeystoreOpt = Annotated[Path, typer.Option("--keystore", help="A Web3 Secret Storage (v3) keystore JSON file.")]
PasswordEnvOpt = Annotated[
    str | None, typer.Option("--password-env", help="Read the keystore password from this environment variable.")
]
StateDirOpt = Annotated[Path, typer.Option("--state-dir", help="Where the devnet keeps its state.")]


def state_check_lines(result: Any, bundle: Path) -> list[str]:
    """What a simulation or reconciliation found, under its header line: each change, the verdict, and
    where the signer packet rendered from it is (a Safe's run or a Governor's)."""
    lines = [f"  {line}" for line in result.changed]
    if result.ok:
        lines.append("  every recommended value reached exactly; nothing else changed")
    if (packet := bundle / SIGNER_PACKET).is_file():
        lines.append(f"  signer packet (before → after, read on chain): {packet}")
    return lines


def register(app: typer.Typer, *, guarded: Guarded[Any], out: Console, err: Console) -> None:
    """Add the chain commands to `app`."""

    def password(keystore: Path, env: str | None) -> str:
        from governance.signing import password_from_env

        if env is not None:
            return password_from_env(env)
        return err.input(f"password for {keystore}: ", password=True)

    def print_result(result: Any, bundle: Path) -> None:
        what = "simulated" if result.mode == "simulate" else "reconciled"
        out.print(
            f"{what} safeTxHash {result.safe_tx_hash} on chain {result.chain_id} at block {result.block}: "
            f"{'OK' if result.ok else 'FAILED'}; gas used {result.gas_used}",
            markup=False,
        )
        for line in state_check_lines(result, bundle):
            out.print(line, markup=False)

    devnet_app = typer.Typer(help="A local chain with a real Aave v3 market and a Safe.", no_args_is_help=True)

    @devnet_app.command("up")
    def devnet_up(
        state_dir: StateDirOpt = Path(".devnet"),
        port: Annotated[int | None, typer.Option(help="Port for anvil; default a free one.")] = None,
    ) -> None:
        """Start anvil and deploy the market, the Safe and a borrower book (idempotent)."""
        from governance import devnet

        def body() -> None:
            with err.status("starting anvil and deploying Aave v3, the Safe and the book…"):
                d = devnet.up(state_dir, port=port)
            out.print(f"devnet: {d.rpc_url} (chain {d.chain_id}, block {d.block})", markup=False)
            for name in ("pool", "pool_configurator", "data_provider", "oracle", "safe", "multisend_call_only"):
                out.print(f"  {name}: {d.addresses[name]}", markup=False)
            out.print(f"  Safe owners (threshold 2): {', '.join(d.owners)}", markup=False)
            out.print(f"  state and the owners' (public anvil test) keys: {state_dir / 'devnet.json'}", markup=False)

        guarded(body)

    @devnet_app.command("down")
    def devnet_down(state_dir: StateDirOpt = Path(".devnet")) -> None:
        """Stop the devnet's anvil and forget its state."""
        from governance import devnet

        def body() -> None:
            out.print("devnet stopped" if devnet.down(state_dir) else f"no devnet was running in {state_dir}")

        guarded(body)

    app.add_typer(devnet_app, name="devnet")

    @app.command("simulate")
    def simulate_cmd(bundle: BundleArg, rpc: RpcOpt, timeout: TimeoutOpt = DEFAULT_TIMEOUT_S) -> None:
        """Run the bundle's Safe transaction on the devnet or an anvil fork, compare, revert; write simulation.json."""
        from governance.simulate import require_ok, simulate

        def body() -> None:
            with err.status("verifying, then running the Safe transaction on a snapshot…"):
                result = simulate(bundle, rpc, timeout_s=timeout)
            print_result(result, bundle)
            require_ok(result)

        guarded(body)

    @app.command("reconcile")
    def reconcile_cmd(
        bundle: BundleArg,
        rpc: RpcOpt,
        tx: Annotated[str | None, typer.Option("--tx", help="Hash of the executing transaction (default: searched).")] = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Check the chain after execution: every recommended value reached, nothing else changed."""
        from governance.simulate import reconcile, require_ok

        def body() -> None:
            with err.status("finding the execution and reading the state around it…"):
                result = reconcile(bundle, rpc, tx_hash=tx, timeout_s=timeout)
            print_result(result, bundle)
            require_ok(result)

        guarded(body)

    @app.command("sign")
    def sign_cmd(
        bundle: BundleArg,
        keystore: KeystoreOpt,
        password_env: PasswordEnvOpt = None,
        rpc: Annotated[str | None, typer.Option("--rpc", help="Check on chain that the signer owns the Safe.")] = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Add an owner's signature of the bundle's safeTxHash (signatures/<owner>.json)."""
        from governance.signing import load_keystore, sign_bundle

        def body() -> None:
            key = load_keystore(keystore, password(keystore, password_env))
            signed = sign_bundle(bundle, key, rpc_url=rpc, timeout_s=timeout)
            del key
            for warning in signed.warnings:
                err.print(f"[yellow]warning:[/] {warning}", markup=True)
            out.print(f"signed safeTxHash {signed.safe_tx_hash} as {signed.signer}: {signed.path}", markup=False)

        guarded(body)

    @app.command("execute")
    def execute_cmd(
        bundle: BundleArg,
        rpc: RpcOpt,
        keystore: KeystoreOpt,
        password_env: PasswordEnvOpt = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Execute the signed Safe transaction (the keystore's account pays gas), then reconcile."""
        from governance.signing import execute_bundle, load_keystore
        from governance.simulate import require_ok

        def body() -> None:
            key = load_keystore(keystore, password(keystore, password_env))
            with err.status("checking signatures, nonce and an eth_call, then sending…"):
                done = execute_bundle(bundle, rpc, key, timeout_s=timeout)
            del key
            for warning in done.warnings:
                err.print(f"[yellow]warning:[/] {warning}", markup=True)
            out.print(f"executed: tx {done.tx_hash} in block {done.block}, gas {done.gas_used}, "
                      f"signed by {', '.join(done.signers)}", markup=False)
            print_result(done.reconciliation, bundle)
            require_ok(done.reconciliation)

        guarded(body)

    @app.command("demo-chain")
    def demo_chain_cmd(
        out_dir: Annotated[Path, typer.Option("--out", help="Where bundles go.")] = Path("proposals"),
        state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Devnet state dir; default a temporary one.")] = None,
        keep: Annotated[bool, typer.Option("--keep", help="Leave the devnet running at the end.")] = False,
    ) -> None:
        """devnet up → epoch from the chain → verify → simulate → sign ×2 → execute → reconcile → devnet down."""
        from governance.demo_chain import run_demo_chain

        def body() -> None:
            bundle = run_demo_chain(out_dir, state_dir=state_dir, keep=keep, say=lambda s: out.print(s, markup=False))
            after = f"; the chain's before/after is in {bundle / 'simulation.json'}" if (bundle / "simulation.json").is_file() else ""
            out.print(f"done. Read {bundle / 'report.md'}{after}.", markup=False)

        guarded(body)
