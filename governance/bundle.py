"""Write a bundle atomically, and check one against its manifest.

A bundle is built in memory (`dict[path, bytes]`), written to a temporary sibling folder and renamed
into place, so an interrupted run leaves the previous bundle or none — never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from risk.errors import StewardError

MANIFEST = "manifest.json"
# Added after the build by the chain steps; outside the manifest, each verified on its own.
SIMULATION = "simulation.json"
SIGNER_PACKET = "signer-packet.md"  # rendered from simulation.json and the core (governance/signer_packet_attachment.py)
SIGNATURES_DIR = "signatures"
ATTACHMENT = re.compile(r"^(simulation\.json|signer-packet\.md|signatures/0x[0-9a-fA-F]{40}\.json)$")


class BundleError(StewardError):
    """A bundle that is missing, incomplete, or differs from its manifest or its rebuild."""

    def __init__(self, cause: str, hint: str = "", problems: tuple[str, ...] = ()) -> None:
        super().__init__(cause, hint)
        self.problems = problems


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(files: dict[str, bytes], target: Path) -> None:
    for rel in files:
        if rel.startswith("/") or ".." in Path(rel).parts:
            raise BundleError(f"bundle path {rel!r} escapes the bundle", "this is a bug in the pipeline")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is meant to be read
    try:
        for rel, data in sorted(files.items()):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_bundle(bundle: Path) -> dict[str, bytes]:
    if not bundle.is_dir():
        raise BundleError(f"{bundle} is not a bundle folder", "give the folder proposals/<venue>/<epoch>")
    files = {}
    for path in sorted(bundle.rglob("*")):
        if path.is_file():
            files[path.relative_to(bundle).as_posix()] = path.read_bytes()
    return files


def load_manifest(files: dict[str, bytes], bundle: Path) -> dict[str, Any]:
    if MANIFEST not in files:
        raise BundleError(f"{bundle}/{MANIFEST} is missing", "is this a Steward bundle? rebuild it with `steward epoch`")
    try:
        manifest = json.loads(files[MANIFEST])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{bundle}/{MANIFEST} is not valid JSON ({exc})", "the manifest was modified; rebuild the bundle") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BundleError(f"{bundle}/{MANIFEST} has no 'files' table", "the manifest was modified; rebuild the bundle")
    return manifest


def check_against_manifest(files: dict[str, bytes], manifest: dict[str, Any], bundle: Path) -> list[str]:
    """Every listed file present with its hash, and no file the manifest does not list."""
    problems = []
    listed: dict[str, str] = manifest["files"]
    for rel, digest in sorted(listed.items()):
        if rel not in files:
            problems.append(f"{bundle}/{rel}: missing (listed in the manifest)")
        elif sha256(files[rel]) != digest:
            problems.append(f"{bundle}/{rel}: sha256 {sha256(files[rel])[:16]}… differs from the manifest's {str(digest)[:16]}…")
    for rel in sorted(set(files) - set(listed) - {MANIFEST}):
        problems.append(f"{bundle}/{rel}: not listed in the manifest")
    return problems


def diff_files(expected: dict[str, bytes], actual: dict[str, bytes], bundle: Path) -> list[str]:
    problems = []
    for rel in sorted(set(expected) | set(actual)):
        if rel not in actual:
            problems.append(f"{bundle}/{rel}: missing; the rebuild produces it")
        elif rel not in expected:
            problems.append(f"{bundle}/{rel}: the rebuild does not produce this file")
        elif expected[rel] != actual[rel]:
            problems.append(f"{bundle}/{rel}: differs from the rebuild from inputs/")
    return problems
