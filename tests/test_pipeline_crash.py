"""SIGKILL the ingest at each write point, run it again, and expect exactly the index a clean
run builds. The killed run is a real `specmem ingest` subprocess (SPECMEM_MODEL=fake selects the
FakeEmbedder; SPECMEM_INGEST_CRASH_AT names the point to die at); EMBED_BATCH is lowered so the
"after-first-batch" point leaves a partly written Chroma behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.index.embedding import FakeEmbedder
from ingest.index.pipeline import CRASH_POINTS
from retriever.service import SpecMemory

from .conftest import write_spec
from .test_pipeline import index_state

CHILD = """
import sys
import ingest.index.pipeline
ingest.index.pipeline.EMBED_BATCH = 2
from retriever.cli import main
sys.argv = ["specmem", "--specs-dir", sys.argv[1], "--data-dir", sys.argv[2], "ingest", "-q"]
main()
"""


def run_child(specs: Path, data: Path, crash_at: str | None = None) -> int:
    env = dict(os.environ, SPECMEM_MODEL="fake", ANONYMIZED_TELEMETRY="False")
    env.pop("SPECMEM_INGEST_CRASH_AT", None)
    if crash_at:
        env["SPECMEM_INGEST_CRASH_AT"] = crash_at
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(specs), str(data)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    return done.returncode


def edit_corpus(specs: Path) -> None:
    """One edited spec, one deleted, one new: the run has vectors to add and to delete."""
    readme = specs / "001-auth-design" / "README.md"
    readme.write_text(readme.read_text().replace("complete", "in-progress"), encoding="utf-8")
    shutil.rmtree(specs / "002-token-refresh")
    write_spec(
        specs,
        "004-chunk-cache",
        """
        ---
        status: planned
        ---
        # Chunk cache

        ## Overview
        Keep token counts of unchanged chunks.

        ## Design
        A spec table keyed by hash.
        """,
    )


@pytest.fixture(scope="module")
def indexed_before(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The tiny corpus, indexed by a child process that exited normally."""
    root = tmp_path_factory.mktemp("crash-base")
    specs = _tiny_copy(root)
    data = root / "data"
    assert run_child(specs, data) == 0
    return specs, data


def _tiny_copy(root: Path) -> Path:
    write_spec(
        root / "specs",
        "001-auth-design",
        "---\nstatus: complete\ntags: [auth]\n---\n"
        "# Authentication design\n\n## Overview\nHow agents authenticate.\n\n"
        "## Decision\nWe use bearer tokens because sessions do not fit headless agents.\n",
    )
    write_spec(
        root / "specs",
        "002-token-refresh",
        "---\nstatus: in-progress\n---\n"
        "# Token refresh\n\n## Overview\nRefresh tokens before they expire.\n",
    )
    write_spec(
        root / "specs",
        "003-search-ui",
        "---\nstatus: planned\n---\n# Search UI\n\n## Overview\nA page to search specs.\n",
        **{"DESIGN.md": "# Search UI design\n\n## Layout\nTwo panes.\n"},
    )
    return root / "specs"


@pytest.fixture(scope="module")
def clean_state(
    indexed_before: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """The index a clean, uninterrupted run builds from the edited corpus."""
    root = tmp_path_factory.mktemp("crash-clean")
    specs = root / "specs"
    shutil.copytree(indexed_before[0], specs)
    edit_corpus(specs)
    memory = SpecMemory(specs, root / "data", embedder=FakeEmbedder())
    memory.ingest()
    return index_state(memory)


# Each point costs a child process (~5-10 s on a shared 2-core box): the two that leave the
# stores disagreeing in opposite directions run by default, all four under -m slow.
DEFAULT_POINTS = ("after-first-batch", "after-commit")


@pytest.mark.parametrize(
    "point",
    [p if p in DEFAULT_POINTS else pytest.param(p, marks=pytest.mark.slow) for p in CRASH_POINTS],
)
def test_killed_ingest_is_repaired_by_the_next_run(
    point: str, indexed_before: tuple[Path, Path], clean_state: dict, tmp_path: Path
) -> None:
    specs, data = tmp_path / "specs", tmp_path / "data"
    shutil.copytree(indexed_before[0], specs)
    shutil.copytree(indexed_before[1], data)
    edit_corpus(specs)
    assert run_child(specs, data, crash_at=point) == -signal.SIGKILL

    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    summary = memory.ingest()  # the first process to open this copy: no stale Chroma cache
    assert summary.reconciled  # every crash point lies inside the dirty window
    state = index_state(memory)
    assert state == clean_state
    assert memory.ingest().embedded == 0
