"""Compile the devnet's governance contracts with the npm `solc` package into build/contracts/*.json.

Sources are ours (governance/contracts/*.sol) and import OpenZeppelin from node_modules
(`@openzeppelin/contracts`); TimelockController is OpenZeppelin's, compiled as it is. Node runs
solcjs (governance/contracts/compile.mjs) on a standard-JSON input built here, with fixed settings:
optimizer on (200 runs), EVM version cancun (OpenZeppelin 5 emits `mcopy`; anvil runs a later
hardfork, which executes cancun code).

Every artifact records `inputs_sha256`, a digest of the settings, the sources and the compiler and
OpenZeppelin versions; `ensure_built` recompiles when any of them changed or build/ is missing, under
a file lock, writing each artifact atomically — tests running in parallel can all ask for it.
`python -m governance.compile` does the same from `make`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from governance.artifacts import (
    INSTALL_HINT,
    REPO_ROOT,
    Artifact,
    ArtifactError,
    node_modules,
)

SOURCES_DIR = Path(__file__).resolve().parent / "contracts"
SCRIPT = SOURCES_DIR / "compile.mjs"
SOURCES = ("StewardVotes.sol", "StewardGovernor.sol", "StewardSequentialGovernor.sol", "PushAggregator.sol")
TIMELOCK_SOURCE = "@openzeppelin/contracts/governance/TimelockController.sol"
# contract name → the source unit that defines it
CONTRACTS = {
    "StewardVotes": "StewardVotes.sol",
    "StewardGovernor": "StewardGovernor.sol",
    "StewardSequentialGovernor": "StewardSequentialGovernor.sol",
    "TimelockController": TIMELOCK_SOURCE,
    "PushAggregator": "PushAggregator.sol",  # the monitor's devnet price feed (emits AnswerUpdated)
}
SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "optimizer": {"enabled": True, "runs": 200},
}
COMPILE_TIMEOUT_S = 600.0
NODE_HINT = "install Node.js (>= 18) and run `make install`; the devnet's governor is compiled with the npm solc package"


def build_dir() -> Path:
    """Where artifacts go: `$STEWARD_BUILD_DIR/contracts`, else `<repo>/build/contracts`."""
    override = os.environ.get("STEWARD_BUILD_DIR")
    return (Path(override) if override else REPO_ROOT / "build") / "contracts"


def _package_version(package: str) -> str:
    path = node_modules() / package / "package.json"
    try:
        return str(json.loads(path.read_text())["version"])
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"npm package {package} is not installed ({path}: {e})", INSTALL_HINT) from None


def standard_input() -> dict[str, Any]:
    """The solc standard-JSON input: our sources inline, OpenZeppelin's resolved by the import callback."""
    sources = {}
    for name in SOURCES:
        try:
            sources[name] = {"content": (SOURCES_DIR / name).read_text()}
        except OSError as e:
            raise ArtifactError(f"contract source {SOURCES_DIR / name} cannot be read ({e.strerror})", "") from None
    sources[TIMELOCK_SOURCE] = {"urls": []}  # filled by the import callback, like any import
    wanted = sorted(set(CONTRACTS.values()))
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            **SETTINGS,
            "outputSelection": {unit: {"*": ["abi", "evm.bytecode.object"]} for unit in wanted},
        },
    }


def inputs_digest() -> str:
    """sha256 of everything the artifacts follow from: input, solc and OpenZeppelin versions, the driver."""
    h = hashlib.sha256()
    h.update(json.dumps(standard_input(), sort_keys=True).encode())
    for package in ("solc", "@openzeppelin/contracts"):
        h.update(f"\n{package}@{_package_version(package)}".encode())
    h.update(SCRIPT.read_bytes())
    return h.hexdigest()


def _node() -> str:
    found = shutil.which("node")
    if found is None:
        raise ArtifactError("node (Node.js) is not on PATH: the governance contracts cannot be compiled", NODE_HINT)
    return found


def _run_solc(std_input: dict[str, Any]) -> dict[str, Any]:
    # The timelock is listed by URL only; solcjs does not read URLs, so its content goes in here too.
    path = node_modules() / TIMELOCK_SOURCE
    try:
        std_input["sources"][TIMELOCK_SOURCE] = {"content": path.read_text()}
    except OSError:
        raise ArtifactError(f"{path} is missing", INSTALL_HINT) from None
    try:
        done = subprocess.run(
            [_node(), str(SCRIPT), str(node_modules()), str(SOURCES_DIR)],
            input=json.dumps(std_input).encode(),
            capture_output=True,
            timeout=COMPILE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ArtifactError(f"solc did not finish within {COMPILE_TIMEOUT_S:.0f} s", "run `make install` again") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        hint = INSTALL_HINT if "Cannot find module" in " ".join(tail) else ""
        raise ArtifactError(f"solcjs failed (exit {done.returncode}): {' | '.join(tail) or 'no output'}", hint)
    try:
        answer = json.loads(done.stdout)
        return {"version": str(answer["version"]), **answer["output"]}
    except (ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"solcjs answered something that is not standard JSON ({e})", "") from None


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compile and return {contract name: artifact JSON}; solc errors are raised, warnings ignored."""
    digest = inputs_digest()
    output = _run_solc(standard_input())
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        messages = [str(e.get("formattedMessage") or e.get("message", "?")).strip() for e in errors]
        report = build_dir() / "solc-errors.txt"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("\n\n".join(messages) + "\n")
        raise ArtifactError(
            f"solc reports {len(errors)} error(s) in governance/contracts: {messages[0].splitlines()[0]}",
            f"fix the Solidity source; every message is in {report}",
        )
    (build_dir() / "solc-errors.txt").unlink(missing_ok=True)
    artifacts = {}
    for name, unit in CONTRACTS.items():
        try:
            compiled = output["contracts"][unit][name]
            bytecode = compiled["evm"]["bytecode"]["object"]
        except KeyError:
            raise ArtifactError(f"solc produced no output for {name} ({unit})", "") from None
        artifacts[name] = {
            "abi": compiled["abi"],
            "bytecode": "0x" + bytecode,
            "compiler": {"solc": output["version"], "settings": SETTINGS},
            "contractName": name,
            "inputs_sha256": digest,
            "linkReferences": {},
            "sourceName": unit,
        }
    return artifacts


def _current(folder: Path, digest: str) -> bool:
    for name in CONTRACTS:
        try:
            if json.loads((folder / f"{name}.json").read_text()).get("inputs_sha256") != digest:
                return False
        except (OSError, ValueError):
            return False
    return True


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ensure_built() -> Path:
    """The build folder with up-to-date artifacts, compiling first if they are missing or stale."""
    folder = build_dir()
    digest = inputs_digest()
    if _current(folder, digest):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be compiling the same thing
        if not _current(folder, digest):
            for name, doc in compile_contracts().items():
                _write_atomic(folder / f"{name}.json", (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    _load.cache_clear()
    return folder


@cache
def _load(name: str, folder: Path) -> Artifact:
    path = folder / f"{name}.json"
    try:
        raw = json.loads(path.read_text())
        return Artifact(name=raw["contractName"], source=raw["sourceName"], abi=tuple(raw["abi"]),
                        bytecode=raw["bytecode"], link_references={})
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"artifact {path} cannot be read ({e})", "delete build/ and run `make install`") from None


def load_built(name: str) -> Artifact:
    """One of CONTRACTS' artifacts, compiled on demand."""
    if name not in CONTRACTS:
        raise ArtifactError(f"{name} is not a governance contract Steward compiles", f"one of {', '.join(CONTRACTS)}")
    return _load(name, ensure_built())


def main() -> int:
    try:
        folder = ensure_built()
    except ArtifactError as e:
        print(f"error: {e.cause}\nhint: {e.hint}", file=sys.stderr)
        return 2
    print(f"governance contracts up to date in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
