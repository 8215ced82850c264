"""`steward propose BUNDLE`: send a verified bundle where its signers or voters will find it.

* `--safe-service URL`: post the bundle's SafeTx and its owners' signatures (signatures/*.json) to the
  Safe Transaction Service, so Safe{Wallet} shows it in the Safe's queue (governance.safe_service).
* `--governor`: submit the bundle's governor.json as an OpenZeppelin Governor proposal
  (governance.governor_chain: load_governor_bundle, connect_bundle, propose).

Thin like governance/cli.py: parse, call, print. The API key is read from the environment variable
named by --api-key-env and never printed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from governance.safe_service import DEFAULT_TIMEOUT_S
from risk.errors import StewardError

T = TypeVar("T")
Guarded = Callable[[Callable[[], T]], T]


def register(app: typer.Typer, *, guarded: Guarded[Any], out: Console, err: Console) -> None:
    """Add `propose` to `app`."""

    @app.command("propose")
    def propose_cmd(
        bundle: Annotated[Path, typer.Argument(help="A bundle folder, proposals/<venue>/<epoch>.")],
        safe_service: Annotated[str | None, typer.Option(
            "--safe-service", help="Safe Transaction Service base URL, e.g. https://api.safe.global/tx-service/eth.")] = None,
        sender: Annotated[str | None, typer.Option(
            "--sender", help="Owner proposing it (must be one of the signers); default: the first signer.")] = None,
        api_key_env: Annotated[str, typer.Option(
            "--api-key-env", help="Environment variable holding the service's API key (sent as a Bearer token).")] = "SAFE_API_KEY",
        governor: Annotated[bool, typer.Option("--governor", help="Submit the bundle as a Governor proposal instead.")] = False,
        rpc: Annotated[str | None, typer.Option("--rpc", help="With --governor: JSON-RPC URL of the chain.")] = None,
        keystore: Annotated[Path | None, typer.Option("--keystore", help="With --governor: the proposer's keystore.")] = None,
        password_env: Annotated[str | None, typer.Option(
            "--password-env", help="With --governor: read the keystore password from this variable.")] = None,
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds per request.")] = DEFAULT_TIMEOUT_S,
    ) -> None:
        """Propose the bundle: to the Safe Transaction Service (--safe-service) or to a Governor (--governor)."""

        def body() -> None:
            if (safe_service is None) == (not governor):
                raise StewardError("give exactly one of --safe-service URL or --governor",
                                   "the Safe path posts the SafeTx and signatures; the Governor path submits a proposal")
            if safe_service is not None:
                _propose_safe(bundle, safe_service, sender, api_key_env, timeout, out, err)
            else:
                _propose_governor(bundle, rpc, keystore, password_env, timeout, out, err)

        guarded(body)


def _propose_safe(bundle: Path, url: str, sender: str | None, api_key_env: str, timeout: float,
                  out: Console, err: Console) -> None:
    from governance.chain_bundle import load_chain_bundle
    from governance.safe_service import propose_to_service
    from governance.signing import read_signatures

    cb = load_chain_bundle(bundle)
    signatures = read_signatures(cb)
    if not signatures:
        raise StewardError(f"{bundle} has no owner signatures (signatures/*.json)",
                           "sign first: `steward sign BUNDLE --keystore FILE`; the service needs the sender's signature")
    chosen = sender or min(s.signer for s in signatures)
    with err.status("checking the Safe, its queue and the signatures, then posting…"):
        done = propose_to_service(url, cb.safe_tx, signatures, sender=chosen, api_key_env=api_key_env, timeout=timeout)
    for warning in done.warnings:
        err.print(f"warning: {warning}", markup=False)
    what = "already queued; confirmations added" if done.already_queued else "proposed"
    out.print(f"{what}: safeTxHash {done.safe_tx_hash} (nonce {done.nonce}) on {done.service} by {chosen}; "
              f"confirmed by {', '.join(done.confirmations) or 'nobody'}", markup=False)


def _propose_governor(bundle: Path, rpc: str | None, keystore: Path | None, password_env: str | None, timeout: float,
                      out: Console, err: Console) -> None:
    from governance.cli_governor import propose_with_governor

    if rpc is None or keystore is None:
        raise StewardError("--governor needs --rpc and --keystore", "the proposer's account sends propose()")
    propose_with_governor(bundle, rpc, keystore, password_env, timeout, out=out, err=err)

