"""End-to-end epoch on the embedded demo venue, and `steward verify` of its bundle.

Measured cold, as a new process pays them: the per-process memos (chart drawings, verify's own
rebuilds) are cleared before every repeat.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from governance import charts
from governance import verify as verify_mod
from governance.bundle import write_bundle
from governance.epoch_inputs import gather_inputs
from governance.pipeline import build_files, bundle_dir
from governance.verify import verify_bundle

REPEATS = 5


def run() -> dict[str, float]:
    gather, build, verify = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(REPEATS):
            charts._DRAWN.clear()
            verify_mod._REBUILDS.clear()
            t0 = time.perf_counter()
            inputs = gather_inputs(None)
            t1 = time.perf_counter()
            files = build_files(inputs)
            target = bundle_dir(Path(tmp), inputs)
            write_bundle(files, target)
            charts._DRAWN.clear()  # a signer verifies in a process of their own
            t2 = time.perf_counter()
            verify_bundle(target)
            t3 = time.perf_counter()
            gather.append(t1 - t0)
            build.append(t2 - t1)
            verify.append(t3 - t2)
    figures = {
        "epoch_demo_gather_inputs_s": statistics.median(gather),
        "epoch_demo_build_and_write_s": statistics.median(build),
        "epoch_demo_verify_s": statistics.median(verify),
    }
    for k, v in figures.items():
        print(f"{k:40s} {v:8.3f}   (median of {REPEATS}, cold: memos cleared)")
    return figures
