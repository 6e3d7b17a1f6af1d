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


# -- the event log's engine ------------------------------------------------------------------
# `make test` runs the event-log suites a second time with --events-engine=postgresql: each test
# gets a fresh database on a real server the session starts, named by SPECMEM_EVENTS_URL, so
# every door and every subprocess the test starts uses it (spec 093).


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--events-engine",
        choices=["sqlite", "postgresql"],
        default="sqlite",
        help="the engine the event log runs on in this pass (default: sqlite)",
    )


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session, or a skip that says why there is none."""
    import tempfile

    from .postgres_server import PostgresServer, binaries

    if binaries() is None:
        pytest.skip("PostgreSQL is not installed and `make test` could not install it")
    # Not under pytest's tmp dir: as root that is closed to the `postgres` user the server runs as.
    root = Path(tempfile.mkdtemp(prefix="specmem-pg-"))
    server = PostgresServer(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


def _on_postgres(request: pytest.FixtureRequest) -> bool:
    return request.config.getoption("--events-engine") == "postgresql"


@pytest.fixture(scope="module", autouse=True)
def _module_events_engine(request: pytest.FixtureRequest):
    """A database for the module's own module-scoped apps and services."""
    if not _on_postgres(request):
        yield
        return
    server = request.getfixturevalue("postgres")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPECMEM_EVENTS_URL", server.create_database(server.fresh_name()))
        yield


@pytest.fixture(autouse=True)
def _events_engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh database per test, as each test gets a fresh data dir on SQLite."""
    if not _on_postgres(request):
        return
    if request.node.get_closest_marker("sqlite_log"):
        pytest.skip("checks the SQLite event log's own file; this pass runs on PostgreSQL")
    server = request.getfixturevalue("postgres")
    monkeypatch.setenv("SPECMEM_EVENTS_URL", server.create_database(server.fresh_name()))


@pytest.fixture
def event_log(tmp_path: Path):
    """An empty event log on this pass's engine: a file path, or the database the test got."""
    if url := os.environ.get("SPECMEM_EVENTS_URL"):
        from retriever.events import PostgresDatabase

        return PostgresDatabase(url)
    return tmp_path / "events.sqlite"


@pytest.fixture(scope="session", autouse=True)
def _postgres_pass_writes_no_sqlite_log(request: pytest.FixtureRequest, tmp_path_factory):
    """Proof that the PostgreSQL pass ran on PostgreSQL: no test left an events.sqlite behind."""
    yield
    if _on_postgres(request):
        stray = sorted(tmp_path_factory.getbasetemp().rglob("events.sqlite"))
        assert not stray, f"the PostgreSQL pass wrote a SQLite event log: {stray[0]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests first: on a fresh clone they build the whole LeanSpec index (minutes of
    embedding), which then runs beside the other tests instead of after them, when the other
    worker of `make test` has nothing left to do. A stable sort: every other order stays."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is None)
