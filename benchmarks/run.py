"""`make bench`: run every benchmarks/bench_*.py and write benchmarks/results.json.

Each module exposes `run() -> dict[str, float]`, printing what it measures; names carry their unit
(`..._per_s`, `..._s`, `..._ms`, `..._mb`). The results file is one flat JSON object, sorted keys.
Benchmarks are measurements, not tests: nothing here fails on a slow machine.
"""

from __future__ import annotations

import importlib
import json
import math
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    only = set(argv)
    results: dict[str, float] = {}
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        figures = importlib.import_module(f"benchmarks.{name}").run()
        for key, value in figures.items():
            if key in results:
                raise SystemExit(f"benchmark figure {key!r} is reported twice")
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SystemExit(f"{name}: figure {key!r} = {value!r} is not a finite number")
            results[key] = float(value)
    out = HERE / "results.json"
    if only and out.is_file():  # a partial run updates its own figures and keeps the others
        results = {**json.loads(out.read_text()), **results}
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"\n{len(results)} figures on {platform.machine()} / Python {platform.python_version()} → {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
