"""`make bench`: every benchmark module in this folder, one JSON report.

Each `bench_*.py` module exposes `run(report: dict) -> None` and adds its figures to `report`
under its own key. Speed targets are checked here, never in timed tests. The report is printed and
written to bench-results/latest.json.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    only = set(argv)
    report: dict = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for module in sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_")
    ):
        if only and module not in only and module.removeprefix("bench_") not in only:
            continue
        print(f"== {module}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"tests.bench.{module}").run(report)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
