"""`steward epoch POLICY...`: several venues' epochs in one run, sharing loaded data, on any executor.

Reading is done here, once: every policy's inputs are gathered in this process with one shared
`PriceFiles`, so a price file named by several policies is parsed and hashed once. Computing is the
executor's: `governance.pipeline.build_files` is pure (pinned inputs in, bundle bytes out), so each
policy's bundle is one task, and the bytes are the same whether it ran alone, in this process, in a
local worker or on a Ray node. Writing is done here again, one bundle at a time, atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from governance.bundle import write_bundle
from governance.epoch_inputs import EpochInputs, default_data_dir, gather_inputs
from governance.executors import Executor, SerialExecutor
from governance.pipeline import build_files, bundle_dir
from governance.price_files import PriceFiles
from risk.errors import StewardError


@dataclass(frozen=True)
class EpochRun:
    """One policy's epoch: where its bundle went."""

    policy: Path
    venue: str
    epoch: str
    bundle: Path


@dataclass(frozen=True)
class MultiEpoch:
    """Every policy's run, in the order given, and how many price files were read for all of them."""

    runs: tuple[EpochRun, ...]
    files_read: int
    files_reused: int


def gather_all(policy_paths: Sequence[Path], *, data_dir: Path | None = None, seed: int | None = None, epoch: str | None = None,
               files: PriceFiles | None = None) -> list[EpochInputs]:
    """Every policy's pinned inputs, price files read once (see `PriceFiles`)."""
    paths = [Path(p) for p in policy_paths]
    if not paths:
        raise StewardError("no policy given", "steward epoch policies/*.yaml")
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise StewardError(f"policy {p} is given twice", "name each policy file once")
        seen[key] = p
    files = PriceFiles() if files is None else files
    data = data_dir or default_data_dir()
    return [gather_inputs(p, data_dir=data, seed=seed, epoch=epoch, price_files=files) for p in paths]


def run_epochs(
    policy_paths: Sequence[Path],
    *,
    data_dir: Path | None = None,
    out_dir: Path,
    executor: Executor | None = None,
    seed: int | None = None,
    epoch: str | None = None,
    say: Callable[[str], None] | None = None,
) -> MultiEpoch:
    """Run each policy's epoch and write its bundle to ``out_dir/<venue>/<epoch>/``.

    Parameters
    ----------
    policy_paths : sequence of Path
        Policy files; their snapshots come from each policy's ``snapshot.file`` (or the demo's).
    data_dir : Path, optional
        Market data folder (default ``../shared/data`` or ``$STEWARD_DATA``).
    out_dir : Path
        Where bundles go.
    executor : Executor, optional
        Where the bundles are computed, one task per policy (default: this process).
    seed, epoch : optional
        Override every policy's seed / the bundle folder name (as ``steward epoch`` does).
    say : callable, optional
        Progress lines.

    Raises
    ------
    StewardError
        A policy given twice, two policies writing the same bundle folder, or any policy's own error
        (nothing is written then).
    """
    files = PriceFiles()
    inputs = gather_all(policy_paths, data_dir=data_dir, seed=seed, epoch=epoch, files=files)
    targets = [bundle_dir(out_dir, i) for i in inputs]
    clash = sorted({str(t) for t in targets if targets.count(t) > 1})
    if clash:
        raise StewardError(f"several policies would write the same bundle {clash[0]}", "give each venue its own name, or run them apart")
    if say is not None:
        say(f"read {len(inputs)} policies, {files.loads} price file(s) parsed ({files.hits} reuse(s))")
    executor = SerialExecutor() if executor is None else executor
    built = executor.map(build_files, inputs)
    runs = []
    for path, inp, files_out, target in zip(policy_paths, inputs, built, targets, strict=True):
        write_bundle(files_out, target)
        runs.append(EpochRun(Path(path), inp.policy.policy.venue.name, inp.epoch, target))
        if say is not None:
            say(f"bundle: {target}")
    return MultiEpoch(tuple(runs), files.loads, files.hits)
