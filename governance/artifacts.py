"""Contract artifacts from npm packages: ABI and creation bytecode, with libraries linked.

The devnet deploys real bytecode, not contracts compiled here: `@aave/core-v3` ships Hardhat
artifacts (`artifacts/**/<Name>.json`). Contracts that call external libraries (the Pool and its logic
libraries, the PoolConfigurator and ConfiguratorLogic) carry placeholders in their bytecode; `link`
writes each library's address at the byte offsets the artifact's `linkReferences` names, and refuses
to return bytecode with a placeholder left.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_utils import is_address, to_checksum_address

from risk.errors import StewardError

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_HINT = "run `make install` (or `npm install` in the repository root) to fetch the npm dev tools"


class ArtifactError(StewardError):
    """A contract artifact that is missing, ambiguous, malformed or cannot be linked."""


def node_modules() -> Path:
    """The npm packages directory: `$STEWARD_NODE_MODULES`, else `<repo>/node_modules`."""
    override = os.environ.get("STEWARD_NODE_MODULES")
    return Path(override) if override else REPO_ROOT / "node_modules"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One compiled contract: `bytecode` is creation code (hex, 0x-prefixed, maybe unlinked)."""

    name: str
    source: str
    abi: tuple[Mapping[str, Any], ...]
    bytecode: str
    # {library name: ((byte offset, length), ...)} over the creation code
    link_references: Mapping[str, tuple[tuple[int, int], ...]]

    @property
    def libraries(self) -> tuple[str, ...]:
        return tuple(sorted(self.link_references))

    def link(self, addresses: Mapping[str, str]) -> str:
        """Creation bytecode with every library placeholder replaced by its address."""
        missing = [lib for lib in self.libraries if lib not in addresses]
        if missing:
            raise ArtifactError(
                f"{self.name} ({self.source}) needs libraries {', '.join(missing)} to be linked",
                "deploy those libraries first and pass their addresses",
            )
        # Offsets are in bytes of the creation code; the unlinked hex holds `__$<34 hex>$__` there.
        code = list(self.bytecode[2:])
        for lib, spots in self.link_references.items():
            address = addresses[lib]
            if not is_address(address):
                raise ArtifactError(f"library {lib} for {self.name}: {address!r} is not an address", "")
            raw = to_checksum_address(address)[2:].lower()
            for start, length in spots:
                if length != 20 or 2 * (start + length) > len(code):
                    raise ArtifactError(
                        f"{self.name}: link reference for {lib} at {start}+{length} is outside the bytecode",
                        "the artifact is malformed; reinstall the npm package",
                    )
                code[2 * start : 2 * (start + length)] = raw
        linked = "0x" + "".join(code)
        try:
            bytes.fromhex(linked[2:])
        except ValueError:
            raise ArtifactError(
                f"{self.name}: bytecode still holds a library placeholder after linking", ""
            ) from None
        return linked


@cache
def _index(package: str) -> Mapping[str, tuple[Path, ...]]:
    root = node_modules() / package / "artifacts"
    if not root.is_dir():
        raise ArtifactError(f"npm package {package} has no artifacts under {root}", INSTALL_HINT)
    found: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith(".dbg.json") or "build-info" in path.parts:
            continue
        found.setdefault(path.stem, []).append(path)
    return {name: tuple(paths) for name, paths in found.items()}


@cache
def load_artifact(package: str, contract: str) -> Artifact:
    """Load `contract`'s Hardhat artifact from the npm `package` (e.g. "@aave/core-v3", "Pool")."""
    paths = _index(package).get(contract, ())
    if not paths:
        raise ArtifactError(f"no artifact named {contract} in npm package {package}", INSTALL_HINT)
    if len(paths) > 1:
        raise ArtifactError(
            f"{len(paths)} artifacts named {contract} in {package}: {', '.join(str(p) for p in paths)}",
            "this is a bug in the caller; name the contract unambiguously",
        )
    try:
        raw = json.loads(paths[0].read_text())
        refs = {
            lib: tuple((int(s["start"]), int(s["length"])) for s in spots)
            for by_lib in raw.get("linkReferences", {}).values()
            for lib, spots in by_lib.items()
        }
        bytecode = raw["bytecode"]
        abi = tuple(raw["abi"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ArtifactError(f"artifact {paths[0]} cannot be read: {e}", INSTALL_HINT) from None
    if not isinstance(bytecode, str) or not bytecode.startswith("0x") or len(bytecode) <= 2:
        raise ArtifactError(f"artifact {paths[0]} has no creation bytecode (abstract or an interface?)", "")
    return Artifact(
        name=raw.get("contractName", contract),
        source=raw.get("sourceName", str(paths[0])),
        abi=abi,
        bytecode=bytecode,
        link_references=refs,
    )
