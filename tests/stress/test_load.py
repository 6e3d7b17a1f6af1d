"""Slow: the bounded load run (tests/stress/load.py) against a real `specmem serve` process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.stress.load import run_load

pytestmark = pytest.mark.slow

OUT = Path(os.environ.get("SPECMEM_LOAD_OUT", "/tmp/specmem-reliability/load.json"))


def test_mixed_load_has_no_errors_and_the_server_does_not_grow():
    figures = run_load(OUT, clients=8, requests=1200, seconds=180, specs=60, model="fake", phases=3)
    phases = [figures[f"phase{n}"] for n in (1, 2, 3)]
    assert figures["server_alive"]
    assert figures["errors"] == 0, [sample for p in phases for sample in p["error_samples"]]
    assert all(p["ok"] > 0 for p in phases)
    # Caches fill during warm-up and phase 1; the last phase repeats the same work and must not
    # keep growing beyond allocator noise (3% of the warmed-up size).
    rss = figures["rss_kib"]
    assert figures["rss_growth_last_phase_kib"] < 0.03 * rss["after_warmup"], rss


def test_reads_keep_their_latency_while_full_ingests_run_in_another_process():
    """Issue 11 class 6: an ingest holds the index lock for the whole last phase."""
    out = OUT.with_name("load-ingest-during.json")
    figures = run_load(
        out, clients=8, requests=900, seconds=150, specs=60, model="fake", ingest_during=True
    )
    before, during = figures["phase1"], figures["phase2"]
    assert figures["server_alive"]
    assert figures["errors"] == 0, before["error_samples"] + during["error_samples"]
    assert during["ingests"]["runs"] >= 1
    assert during["search"]["ok"] > 0 and during["context"]["ok"] > 0
    # Reads never wait on the ingest: slower only by what another process's CPU costs on two
    # cores, never by a lock wait (which was seconds to a timeout before spec 076).
    for kind in ("search", "context"):
        assert during[kind]["p50_ms"] < 3 * before[kind]["p50_ms"] + 50, (kind, before, during)
