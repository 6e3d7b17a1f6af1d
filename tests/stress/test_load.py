"""Slow: the bounded load run (tests/stress/load.py) against a real `specmem serve` process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.stress.load import run_load

pytestmark = pytest.mark.slow

OUT = Path(os.environ.get("SPECMEM_LOAD_OUT", "/tmp/specmem-reliability/load.json"))


def test_mixed_load_has_no_errors_and_the_server_does_not_grow():
    figures = run_load(OUT, clients=8, requests=1200, seconds=180, specs=60, model="fake")
    assert figures["server_alive"]
    assert figures["errors"] == 0, (
        figures["phase1"]["error_samples"] + figures["phase2"]["error_samples"]
    )
    assert figures["phase1"]["ok"] > 0 and figures["phase2"]["ok"] > 0
    # Caches fill during warm-up and phase 1; phase 2 repeats the same work and must not keep
    # growing beyond allocator noise (5% of the warmed-up size).
    rss = figures["rss_kib"]
    assert figures["rss_growth_phase2_kib"] < 0.05 * rss["after_warmup"], rss
