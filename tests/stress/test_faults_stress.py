"""Slow: the fault, writer and schema runs of the default suite, many times over."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.test_faults import run_ingest_kills, run_write_kills
from tests.test_faults_writers import run_mixed_writers

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("SPECMEM_STRESS_ROUNDS", "20"))


@pytest.mark.parametrize("seed", [101, 202])
def test_many_random_kills_during_cli_writes(tmp_path, seed):
    landed = run_write_kills(tmp_path, rounds=ROUNDS, seed=seed)
    assert landed == sorted(landed)


@pytest.mark.parametrize("seed", [303, 404])
def test_many_random_kills_during_ingest(tmp_path, seed):
    run_ingest_kills(tmp_path, rounds=ROUNDS, seed=seed)


def test_many_concurrent_writers_through_every_door(tmp_path):
    run_mixed_writers(tmp_path, per_writer=30)


def test_schemathesis_with_many_examples():
    env = dict(os.environ, SPECMEM_OPENAPI_EXAMPLES="150")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_openapi.py"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    assert done.returncode == 0, done.stdout[-5000:]
