"""Epochs of the example perps and options venues on the real data (margins, backtests, hedging,
breaker calibration, setter calls, report.md + report.html with charts), and `steward verify`.

Needs ../shared/data (or STEWARD_DATA); without it this prints why and reports nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from governance import verify as verify_mod
from governance.bundle import write_bundle
from governance.epoch_inputs import default_data_dir
from governance.pipeline_derivatives import build_derivative_files, gather_derivative_inputs
from governance.verify import verify_bundle

POLICIES = Path(__file__).resolve().parents[1] / "policies"
VENUES = {"perps": POLICIES / "dydx-style-perps.yaml", "options": POLICIES / "options-venue.yaml"}
REPEATS = 3


def run() -> dict[str, float]:
    data = default_data_dir()
    if not data.is_dir():
        print(f"skipped: no market data at {data} (set STEWARD_DATA)")
        return {}
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, policy in VENUES.items():
            build, verify = [], []
            for i in range(REPEATS):
                verify_mod._REBUILDS.clear()  # cold, as a signer's own process verifies
                t0 = time.perf_counter()
                inputs = gather_derivative_inputs(policy, data_dir=data)
                files = build_derivative_files(inputs)
                target = Path(tmp) / f"{name}-{i}"
                write_bundle(files, target)
                t1 = time.perf_counter()
                verify_mod._REBUILDS.clear()
                verify_bundle(target)
                t2 = time.perf_counter()
                build.append(t1 - t0)
                verify.append(t2 - t1)
            figures[f"epoch_{name}_real_build_and_write_s"] = statistics.median(build)
            figures[f"epoch_{name}_real_verify_s"] = statistics.median(verify)
            figures[f"epoch_{name}_report_html_kb"] = len(files["report.html"]) / 1024
    for k, v in figures.items():
        print(f"{k:40s} {v:8.3f}   (median of {REPEATS})" if k.endswith("_s") else f"{k:40s} {v:8.1f}")
    return figures
