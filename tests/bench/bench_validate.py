"""Inspection speed on the real corpus: scan, validate (cold and warm), deps and tokens.

Cold validate counts every file's tokens (~920k); warm validate reuses the per-content-hash token
counts a long-lived SpecMemory keeps, which is what the HTTP and MCP servers see.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable

from ingest.specs.store import SpecStore
from retriever import SpecMemory
from tests.conftest import CORPUS_SPECS


def _ms(action: Callable[[], object], repeat: int = 1) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 1)


def run(report: dict) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        memory = SpecMemory(CORPUS_SPECS, data_dir)
        scan_ms = _ms(lambda: SpecStore(CORPUS_SPECS).scan(), repeat=3)
        memory.catalog()
        cold_ms = _ms(memory.validate)
        warm_ms = _ms(memory.validate, repeat=5)
        result = memory.validate()
        report["validate"] = {
            "specs": result.checked,
            "errors": result.errors,
            "warnings": result.warnings,
            "scan_ms": scan_ms,
            "validate_cold_ms": cold_ms,
            "validate_warm_ms": warm_ms,
            "validate_one_spec_ms": _ms(lambda: memory.validate("184"), repeat=5),
            "deps_184_both_ms": _ms(lambda: memory.dependencies("184"), repeat=5),
            "tokens_045_ms": _ms(lambda: memory.count_tokens("045"), repeat=5),
        }
