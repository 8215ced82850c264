"""The Governor commands of `steward`: governor vote|queue|execute|reconcile|status, and the --governor path of propose.

Thin: parse, call governance.governor_chain / governor_reconcile, print. Errors go through the
`guarded` wrapper cli.py passes in. Keys come from keystores (password prompted without echo or
read from a named environment variable) and are never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from governance.chain import DEFAULT_TIMEOUT_S

T = TypeVar("T")
Guarded = Callable[[Callable[[], T]], T]

BundleArg = Annotated[Path, typer.Argument(help="A bundle folder with governor.json, proposals/<venue>/<epoch>.")]
RpcOpt = Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of the governor's chain.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per RPC request.")]
KeystoreOpt = Annotated[Path, typer.Option("--keystore", help="A Web3 Secret Storage (v3) keystore JSON file.")]
PasswordEnvOpt = Annotated[
    str | None, typer.Option("--password-env", help="Read the keystore password from this environment variable.")
]
SUPPORT = {"against": 0, "for": 1, "abstain": 2}


def _key_from(keystore: Path, env: str | None, err: Console) -> bytes:
    from governance.signing import load_keystore, password_from_env

    password = password_from_env(env) if env is not None else err.input(f"password for {keystore}: ", password=True)
    return load_keystore(keystore, password)


def propose_with_governor(
    bundle: Path, rpc: str, keystore: Path, password_env: str | None, timeout: float, *, out: Console, err: Console
) -> None:
    """`steward propose BUNDLE --governor`: check the id and the proposer's votes, then propose."""
    from governance.governor_chain import connect_bundle, load_governor_bundle, propose

    gb = load_governor_bundle(bundle)
    key = _key_from(keystore, password_env, err)
    reader = connect_bundle(gb, rpc, timeout_s=timeout)
    with err.status("checking the proposal against the governor, then sending…"):
        done = propose(reader, gb, key)
    del key
    out.print(f"proposed: proposal {done.proposal_id} in tx {done.tx_hash} (block {done.block}); {done.detail}", markup=False)
    out.print(f"  governor {gb.proposal.governor}; the id is the hash of governor.json's actions and description", markup=False)


def register(app: typer.Typer, *, guarded: Guarded[Any], out: Console, err: Console) -> None:
    """Add the `governor` command group to `app` (`steward propose --governor` lives in cli_propose)."""

    def key_from(keystore: Path, env: str | None) -> bytes:
        return _key_from(keystore, env, err)

    def say(text: str) -> None:
        out.print(text, markup=False)

    def print_reconciliation(result: Any, bundle: Path) -> None:
        from governance.cli_chain import state_check_lines

        say(f"reconciled proposal {result.proposal_id} on chain {result.chain_id} at block {result.block}: "
            f"{'OK' if result.ok else 'FAILED'}; gas used {result.gas_used}")
        for line in state_check_lines(result, bundle):
            say(line)

    gov = typer.Typer(help="Follow a bundle's Governor proposal: vote, queue, execute, reconcile.", no_args_is_help=True)

    def step_command(name: str, doc: str) -> None:
        @gov.command(name, help=doc)
        def command(
            bundle: BundleArg,
            rpc: RpcOpt,
            keystore: KeystoreOpt,
            password_env: PasswordEnvOpt = None,
            support: Annotated[str, typer.Option(help="vote only: for, against or abstain.")] = "for",
            timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
        ) -> None:
            from governance import governor_chain as gc
            from governance.governor import GovernorError
            from governance.governor_reconcile import (
                reconcile_on_chain,
                require_ok,
                write_result,
            )

            def body() -> None:
                if name == "vote" and support not in SUPPORT:
                    raise GovernorError(f"--support {support!r} is not one of {', '.join(SUPPORT)}", "")
                gb = gc.load_governor_bundle(bundle)
                key = key_from(keystore, password_env)
                reader = gc.connect_bundle(gb, rpc, timeout_s=timeout)
                if name == "vote":
                    done = gc.vote(reader, gb, key, SUPPORT[support])
                elif name == "queue":
                    done = gc.queue(reader, gb, key)
                else:
                    done = gc.execute(reader, gb, key)
                del key
                say(f"{done.step}: proposal {done.proposal_id} in tx {done.tx_hash} (block {done.block}); {done.detail}")
                if name == "execute":
                    result = reconcile_on_chain(reader, gb, tx_hash=done.tx_hash)
                    write_result(gb, result)
                    print_reconciliation(result, bundle)
                    require_ok(result)

            guarded(body)

    step_command("vote", "Cast the keystore account's votes on the bundle's proposal.")
    step_command("queue", "Queue the passed proposal in the timelock.")
    step_command("execute", "Execute the queued proposal once the timelock's delay is over, then reconcile.")

    @gov.command("reconcile")
    def reconcile_cmd(
        bundle: BundleArg,
        rpc: RpcOpt,
        tx: Annotated[str | None, typer.Option("--tx", help="Hash of the executing transaction (default: searched).")] = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Check the chain after the governor executed: every recommended value reached, nothing else changed."""
        from governance.governor_reconcile import reconcile, require_ok

        def body() -> None:
            result = reconcile(bundle, rpc, tx_hash=tx, timeout_s=timeout)
            print_reconciliation(result, bundle)
            require_ok(result)

        guarded(body)

    @gov.command("status")
    def status_cmd(bundle: BundleArg, rpc: RpcOpt, timeout: TimeoutOpt = DEFAULT_TIMEOUT_S) -> None:
        """The bundle's proposal id and its state on the governor."""
        from governance.governor_chain import (
            connect_bundle,
            load_governor_bundle,
            proposal_state,
        )

        def body() -> None:
            gb = load_governor_bundle(bundle, for_reconcile=True)
            reader = connect_bundle(gb, rpc, timeout_s=timeout)
            state = proposal_state(reader, gb.proposal, block=reader.block_number())
            say(f"proposal {gb.proposal.proposal_id} on governor {gb.proposal.governor}: "
                f"{'not proposed' if state is None else state.name}")

        guarded(body)

    app.add_typer(gov, name="governor")
