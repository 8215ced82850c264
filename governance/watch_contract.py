"""Push feeds on the devnet: a Chainlink-style aggregator the devnet can push prices into.

The devnet prices its reserves with Aave's `MockAggregator`, which emits `AnswerUpdated` once, in
its constructor, and has no rounds. `governance/contracts/PushAggregator.sol` is the smallest feed
a monitor can follow the way it follows Chainlink: every push is a new round (id + 1) that emits
`NewRound` and `AnswerUpdated(current, roundId, updatedAt)` and stays readable through
`getRoundData` / `latestRoundData`.

It is compiled with the npm `solc` through the project's solcjs driver (governance/contracts/
compile.mjs, the one governance/compile.py uses for the Governor), with the same settings, into
build/contracts/PushAggregator.json (recompiled when the source, solc or the driver change; under a
file lock, so parallel tests can all ask). `point_oracle` makes the devnet's AaveOracle read a
reserve's price from a push feed (the deployer is pool admin), so a push moves the market's price
exactly as Chainlink does on mainnet; `grant_guardian` gives a Safe the EMERGENCY_ADMIN role a
reserve pause needs.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from governance.artifacts import (
    INSTALL_HINT,
    Artifact,
    ArtifactError,
    load_artifact,
    node_modules,
)
from governance.compile import SCRIPT, SETTINGS, SOURCES_DIR, _node, build_dir
from governance.devnet import Devnet
from governance.devnet_aave import AAVE, ORACLE_DECIMALS, price_answer
from governance.devnet_chain import Chain, DevnetError

SOURCE = "PushAggregator.sol"
NAME = "PushAggregator"
COMPILE_TIMEOUT_S = 300.0


def _standard_input() -> dict[str, Any]:
    try:
        text = (SOURCES_DIR / SOURCE).read_text()
    except OSError as e:
        raise ArtifactError(f"contract source {SOURCES_DIR / SOURCE} cannot be read ({e.strerror})", "") from None
    return {
        "language": "Solidity",
        "sources": {SOURCE: {"content": text}},
        "settings": {**SETTINGS, "outputSelection": {SOURCE: {NAME: ["abi", "evm.bytecode.object"]}}},
    }


def _digest(std_input: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(std_input, sort_keys=True).encode())
    try:
        h.update(json.loads((node_modules() / "solc" / "package.json").read_text())["version"].encode())
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"npm package solc is not installed ({e})", INSTALL_HINT) from None
    h.update(SCRIPT.read_bytes())
    return h.hexdigest()


def _compile(std_input: dict[str, Any], digest: str) -> dict[str, Any]:
    try:
        done = subprocess.run([_node(), str(SCRIPT), str(node_modules()), str(SOURCES_DIR)], input=json.dumps(std_input).encode(),
                              capture_output=True, timeout=COMPILE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"solc did not finish within {COMPILE_TIMEOUT_S:.0f} s", INSTALL_HINT) from None
    if done.returncode != 0:
        tail = " | ".join(done.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise ArtifactError(f"solcjs failed on {SOURCE} (exit {done.returncode}): {tail or 'no output'}", INSTALL_HINT)
    answer = json.loads(done.stdout)
    output = answer["output"]
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise ArtifactError(f"solc: {str(errors[0].get('formattedMessage') or errors[0].get('message')).strip()}", f"fix {SOURCES_DIR / SOURCE}")
    compiled = output["contracts"][SOURCE][NAME]
    return {"abi": compiled["abi"], "bytecode": "0x" + compiled["evm"]["bytecode"]["object"], "compiler": {"solc": answer["version"], "settings": SETTINGS},
            "contractName": NAME, "inputs_sha256": digest, "linkReferences": {}, "sourceName": SOURCE}


def ensure_push_aggregator() -> Path:
    """build/contracts/PushAggregator.json, compiled if missing or out of date."""
    std_input = _standard_input()
    digest = _digest(std_input)
    folder = build_dir()
    path = folder / f"{NAME}.json"

    def current() -> bool:
        try:
            return json.loads(path.read_text()).get("inputs_sha256") == digest
        except (OSError, ValueError):
            return False

    if current():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not current():
            doc = _compile(std_input, digest)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=folder)
            with os.fdopen(fd, "wb") as fh:
                fh.write((json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    return path


@cache
def push_aggregator() -> Artifact:
    raw = json.loads(ensure_push_aggregator().read_text())
    return Artifact(name=NAME, source=SOURCE, abi=tuple(raw["abi"]), bytecode=raw["bytecode"], link_references={})


def _deployer(devnet: Devnet) -> str:
    return devnet.addresses["pool_admin"]  # anvil account 0: deployer, pool admin, unlocked


def deploy_push_feed(devnet: Devnet, symbol: str, price_usd: Decimal) -> str:
    """Deploy a push feed for `symbol` opened at `price_usd` (8 decimals, like Chainlink USD feeds)."""
    chain = Chain(devnet.rpc_url)
    return chain.deploy(f"deploy push feed {symbol}", _deployer(devnet), push_aggregator(), (ORACLE_DECIMALS, f"{symbol} / USD", price_answer(price_usd)))


def push_price(devnet: Devnet, feed: str, price_usd: Decimal) -> int:
    """Push one price into `feed`; returns the block it was mined in."""
    chain = Chain(devnet.rpc_url)
    receipt = chain.transact(f"push {price_usd} to {feed}", _deployer(devnet), chain.contract(feed, push_aggregator()), "push", price_answer(price_usd))
    return int(receipt["blockNumber"], 16)


def point_oracle(devnet: Devnet, symbol: str, feed: str) -> None:
    """Make the devnet's AaveOracle price `symbol` from `feed` (AaveOracle.setAssetSources, as pool admin)."""
    market = devnet.markets.get(symbol)
    if market is None:
        raise DevnetError(f"the devnet has no market {symbol!r}", f"markets: {', '.join(sorted(devnet.markets))}")
    chain = Chain(devnet.rpc_url)
    oracle = chain.contract(devnet.addresses["oracle"], load_artifact(AAVE, "AaveOracle"))
    chain.transact(f"AaveOracle.setAssetSources({symbol})", _deployer(devnet), oracle, "setAssetSources", [market["asset"]], [feed])
    if oracle.functions.getSourceOfAsset(market["asset"]).call() != feed:
        raise DevnetError(f"AaveOracle does not read {symbol} from {feed} after setAssetSources", "")


def grant_guardian(devnet: Devnet, guardian: str) -> None:
    """Give `guardian` (a Safe) the pool's EMERGENCY_ADMIN role, which `setReservePause` requires."""
    chain = Chain(devnet.rpc_url)
    acl = chain.contract(devnet.addresses["acl_manager"], load_artifact(AAVE, "ACLManager"))
    if not acl.functions.isEmergencyAdmin(guardian).call():
        chain.transact("ACLManager.addEmergencyAdmin(guardian)", _deployer(devnet), acl, "addEmergencyAdmin", guardian)
