"""Slow: random damage to the index files, many rounds (tests/test_index_damage.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_index_damage import run_random_damage, specmem

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("SPECMEM_STRESS_ROUNDS", "20")) * 5


@pytest.mark.parametrize("seed", [505, 606])
def test_many_rounds_of_random_damage(
    tiny_specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    data = tmp_path / "data"
    assert specmem(tiny_specs, data, "ingest", "-q").exit_code == 0
    from ingest.index.embedding import FakeEmbedder
    from retriever import SpecMemory

    SpecMemory(tiny_specs, data, embedder=FakeEmbedder()).log_event("1", "session", summary="x")
    outcomes = run_random_damage(tiny_specs, data, rounds=ROUNDS, seed=seed)
    print(seed, sorted(outcomes.items()))
    assert outcomes.get("update: ok") == 2 * ROUNDS


def test_searches_during_many_rebuilds(
    tiny_specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_index_damage import run_searches_during_rebuilds

    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    data = tmp_path / "data"
    assert specmem(tiny_specs, data, "ingest", "-q").exit_code == 0
    answers = run_searches_during_rebuilds(tiny_specs, data, rebuilds=ROUNDS)
    print(sorted(answers.items()))
    assert set(answers) <= {"200", "409 no_index"}, answers
