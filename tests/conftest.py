"""Shared fixtures. The real LeanSpec corpus lives beside the repo in ../shared/corpora/leanspec."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpora" / "leanspec"
CORPUS_SPECS = CORPUS / "specs"
DEV_QUERIES = CORPUS / "queries-dev.jsonl"


@pytest.fixture(scope="session")
def corpus_specs() -> Path:
    if not CORPUS_SPECS.is_dir():
        pytest.skip(f"LeanSpec corpus not found at {CORPUS_SPECS}")
    return CORPUS_SPECS


@pytest.fixture
def corpus_copy(tmp_path: Path, corpus_specs: Path) -> Path:
    """A writable copy of the whole LeanSpec specs dir."""
    target = tmp_path / "specs"
    shutil.copytree(corpus_specs, target, symlinks=True)
    return target


def write_spec(root: Path, name: str, text: str, **files: str) -> Path:
    """Create `root/name/README.md` from dedented text (plus sub-spec files, which may sit in
    sub-folders: `**{"research/evals.md": ...}`)."""
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "README.md").write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    for filename, content in files.items():
        (directory / filename).parent.mkdir(parents=True, exist_ok=True)
        (directory / filename).write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return directory


@pytest.fixture
def tiny_specs(tmp_path: Path) -> Path:
    """Three small specs with a dependency chain, for fast unit tests."""
    root = tmp_path / "specs"
    write_spec(
        root,
        "001-auth-design",
        """
        ---
        status: complete
        created: 2025-10-24
        priority: high
        tags: [auth, security]
        ---
        # Authentication design

        ## Overview
        How agents authenticate against the API.

        ## Decision
        We use bearer tokens because sessions do not fit headless agents.
        """,
    )
    write_spec(
        root,
        "002-token-refresh",
        """
        ---
        status: in_progress
        priority: med
        tags: auth, tokens
        depends_on:
          - 001-auth-design
        ---
        # Token refresh

        ## Overview
        Refresh tokens before they expire.
        """,
    )
    write_spec(
        root,
        "003-search-ui",
        """
        ---
        status: planned
        priority: low
        tags: [ui]
        depends_on: ['2']
        related: [001-auth-design]
        ---
        # Search UI

        ## Overview
        A page to search specs.
        """,
        **{"DESIGN.md": "# Search UI design\n\n## Layout\nTwo panes.\n"},
    )
    return root


# Shared by the fault, crash and lifetime suites: a SpecMemory on tiny_specs (indexed with the
# fake model, or without an index), and the app on it behind the module's own TOKEN.
@pytest.fixture
def indexed_memory(tiny_specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from ingest.index.embedding import FakeEmbedder
    from retriever import SpecMemory

    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.ingest()
    return memory


@pytest.fixture
def unindexed_memory(tiny_specs: Path, tmp_path: Path):
    from ingest.index.embedding import FakeEmbedder
    from retriever import SpecMemory

    return SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())


@pytest.fixture
def client(memory, request: pytest.FixtureRequest):
    """The app on the module's `memory` fixture, with the module's TOKEN (a module that needs
    another client defines its own)."""
    from fastapi.testclient import TestClient

    from retriever.http import create_app

    with TestClient(create_app(memory, token=request.module.TOKEN, mount_mcp=False)) as test:
        yield test
