"""`steward verify`: a bundle must match its manifest *and* follow, byte for byte, from its inputs.

The manifest check catches accidental damage; the rebuild catches a consistent forgery (a file edited
and its hash updated), because the calls, the Safe batch and the report are recomputed from
`inputs/` with this version of steward. Every problem is listed, not just the first.
"""

from __future__ import annotations

from pathlib import Path

from governance.bundle import BundleError, check_against_manifest, diff_files, load_manifest, read_bundle
from governance.pipeline import build_files, inputs_from_bundle
from risk.errors import StewardError


def verify_bundle(bundle: Path) -> int:
    """Return the number of files verified, or raise BundleError listing every problem."""
    files = read_bundle(bundle)
    manifest = load_manifest(files, bundle)
    problems = check_against_manifest(files, manifest, bundle)
    try:
        rebuilt = build_files(inputs_from_bundle(files, bundle))
    except (StewardError, KeyError, ValueError) as exc:
        problems.append(f"{bundle}: cannot rebuild from inputs/ ({getattr(exc, 'cause', exc)})")
    else:
        problems.extend(p for p in diff_files(rebuilt, files, bundle) if p not in problems)
    if problems:
        raise BundleError(
            f"{len(problems)} problem(s) in {bundle}",
            "do not sign: the bundle was modified or does not follow from its inputs; rebuild it with `steward epoch`",
            problems=tuple(problems),
        )
    return len(files)
