"""The end-to-end demo on a local chain: devnet up → epoch from the chain → verify → simulate → two
owners sign → execute → reconcile → devnet down, each step printed.

The demo venue's policy (risk/demo/policy.yaml) is pointed at the devnet: its contracts, its Safe and
its token addresses, under the venue name `steward-devnet-aave-v3`. Current parameters and the Safe's
nonce are read from the devnet at one block and pinned in the bundle; the risk rule still runs on the
demo's synthetic price history, since a fresh devnet has none. If anvil cannot start, the demo says
why and runs the offline demo instead.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

from governance import devnet as devnet_mod
from governance.bundle import write_bundle
from governance.chain import connect
from governance.devnet_chain import DevnetError
from governance.epoch_inputs import DEMO_POLICY, gather_inputs
from governance.pipeline import build_files, bundle_dir
from governance.signing import execute_bundle, sign_bundle
from governance.simulate import require_ok, simulate
from governance.venues.aave_v3_read import read_snapshot
from governance.verify import verify_bundle
from risk.policy_load import load_policy
from risk.snapshot import VenueSnapshot

DEVNET_VENUE = "steward-devnet-aave-v3"
POLICY_FILE = "devnet-policy.yaml"
_HEADER = (
    "# The demo venue pointed at the local devnet (written by `steward demo-chain`): its Aave v3 market,\n"
    "# Safe and tokens. Current parameters are read from the chain; prices stay SYNTHETIC (a fresh devnet\n"
    "# has no price history; see risk/demo/synthetic.py).\n"
)
Say = Callable[[str], None]


def devnet_policy_text(devnet: devnet_mod.Devnet, template: Path = DEMO_POLICY) -> bytes:
    """The demo policy with the devnet's venue name, contract addresses and market assets."""
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the template's layout
    doc = yaml.load(template.read_text())
    a = devnet.addresses
    doc["venue"]["name"] = DEVNET_VENUE
    if doc["venue"]["chain_id"] != devnet.chain_id:
        raise DevnetError(f"{template}: chain_id {doc['venue']['chain_id']}, the devnet's is {devnet.chain_id}", "")
    doc["venue"]["addresses"] = {
        "pool_configurator": Quoted(a["pool_configurator"]),
        "pool": Quoted(a["pool"]),
        "data_provider": Quoted(a["data_provider"]),
        "oracle": Quoted(a["oracle"]),
        "safe": Quoted(a["safe"]),
        "safe_owner": Quoted(devnet.owners[0]),
    }
    for market in doc["markets"]:
        found = devnet.markets.get(market["symbol"])
        if found is None:
            raise DevnetError(f"the devnet has no market {market['symbol']}", f"devnet markets: {', '.join(sorted(devnet.markets))}")
        market["asset"] = Quoted(found["asset"])
    buffer = io.StringIO()
    yaml.dump(doc, buffer)
    lines = buffer.getvalue().splitlines(keepends=True)
    while lines and lines[0].startswith("#"):  # the template's header describes the offline demo
        lines.pop(0)
    return (_HEADER + "".join(lines)).encode()


@dataclass(frozen=True)
class DevnetEpoch:
    bundle: Path
    policy: Path
    snapshot: VenueSnapshot


def devnet_epoch(devnet: devnet_mod.Devnet, state_dir: Path, out_dir: Path, *, block: int | None = None) -> DevnetEpoch:
    """Write the devnet policy, read the devnet at one block, run the epoch and write its bundle."""
    state_dir.mkdir(parents=True, exist_ok=True)
    policy_path = state_dir / POLICY_FILE
    policy_path.write_bytes(devnet_policy_text(devnet))
    policy = load_policy(policy_path, None).policy
    reader = connect(devnet.rpc_url, expected_chain_id=policy.venue.chain_id)
    snapshot = read_snapshot(reader, policy, block=block, safe=policy.venue.addresses.safe)
    # gather_inputs takes a snapshot file: the read is written where the devnet keeps its state.
    snapshot_path = state_dir / f"snapshot-block-{snapshot.block}.json"
    snapshot_path.write_bytes(snapshot.to_json_bytes())
    inputs = gather_inputs(policy_path, snapshot_path=snapshot_path)
    target = bundle_dir(out_dir, inputs)
    write_bundle(build_files(inputs), target)
    return DevnetEpoch(bundle=target, policy=policy_path, snapshot=snapshot)


def offline_demo(out_dir: Path, say: Say) -> Path:
    """The embedded demo without a chain: epoch on the committed snapshot, then verify."""
    inputs = gather_inputs(None)
    target = bundle_dir(out_dir, inputs)
    write_bundle(build_files(inputs), target)
    say(f"offline epoch (synthetic prices, committed snapshot): {target}")
    say(f"verify: {verify_bundle(target)[0]} files match the manifest and the rebuild")
    return target


def run_demo_chain(out_dir: Path, *, state_dir: Path | None = None, keep: bool = False, say: Say = print) -> Path:
    """The whole loop on a fresh devnet; returns the bundle. Falls back to the offline demo without anvil."""
    own_dir = state_dir is None
    state = Path(tempfile.mkdtemp(prefix="steward-demo-devnet-")) if own_dir else Path(state_dir)
    say("1/8 devnet up: anvil with a real Aave v3 market and a 2-of-3 Safe holding RISK_ADMIN …")
    try:
        devnet = devnet_mod.up(state)
    except DevnetError as exc:
        if own_dir:
            shutil.rmtree(state, ignore_errors=True)
        say(f"    anvil cannot start: {exc.cause}")
        if exc.hint:
            say(f"    ({exc.hint})")
        say("    falling back to the offline demo")
        return offline_demo(out_dir, say)
    try:
        say(f"    {devnet.rpc_url} chain {devnet.chain_id}; pool {devnet.addresses['pool']}; Safe {devnet.addresses['safe']}")
        epoch = devnet_epoch(devnet, state, out_dir)
        snap = epoch.snapshot
        say(f"2/8 epoch: {len(snap.markets)} markets' parameters and the Safe nonce ({snap.safe_nonce}) read from the "
            f"devnet at block {snap.block}, pinned in inputs/snapshot.json")
        say("    the risk rule runs on the demo's SYNTHETIC price history: the devnet has no price history")
        say(f"    bundle: {epoch.bundle}")
        say(f"3/8 verify: {verify_bundle(epoch.bundle)[0]} files match the manifest and the rebuild from inputs/")
        sim = simulate(epoch.bundle, devnet.rpc_url)
        require_ok(sim)
        say(f"4/8 simulate: {len(sim.changed)} parameters moved exactly as recommended, nothing else changed "
            f"(gas {sim.gas_used}); state reverted; wrote simulation.json and signer-packet.md (before → after, read on chain)")
        for i, key in enumerate(devnet.owner_keys[:2]):
            signed = sign_bundle(epoch.bundle, bytes.fromhex(key[2:]), rpc_url=devnet.rpc_url)
            say(f"{'5/8 sign:' if i == 0 else '         '} owner {signed.signer} signed {signed.safe_tx_hash}")
        done = execute_bundle(epoch.bundle, devnet.rpc_url, bytes.fromhex(devnet.owner_keys[0][2:]))
        say(f"6/8 execute: tx {done.tx_hash} in block {done.block}, gas {done.gas_used}, sent by {done.sender}")
        require_ok(done.reconciliation)
        say(f"7/8 reconcile: the chain at block {done.block} holds every recommended value "
            f"({len(done.reconciliation.changed)} changed); nothing else changed")
    finally:
        if keep:
            say(f"8/8 devnet kept running: {devnet.rpc_url} (state in {state}; stop it with "
                f"`steward devnet down --state-dir {state}`)")
        else:
            devnet_mod.down(state)
            if own_dir:
                shutil.rmtree(state, ignore_errors=True)
            say("8/8 devnet down")
    return epoch.bundle
