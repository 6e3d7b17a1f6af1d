"""Reads never wait on writes or on an ingest (issue 11 class 6, spec 076).

A real uvicorn over a real SpecMemory; another process holds a lock the writes need, as a
running `specmem ingest` or a stuck writer would. Forty PATCHes arrive at once; `GET /specs/X`,
`/health` and an MCP session must answer while the writes are still waiting, and every write
must end as a success (its file written, at most a "not re-indexed" warning) or as a 503 `busy`
with Retry-After that wrote nothing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ingest.authoring.spec_changes import SpecChange
from ingest.index.embedding import FakeEmbedder
from ingest.index.layout import IndexLayout
from retriever import SpecMemory
from retriever.http import create_app
from retriever.http.server import LastResort, serving_options
from tests.conftest import write_spec
from tests.live_server import serve_in_thread

TOKEN = "reads-during-writes-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITES = 40

# Holds the file lock at argv[1] until its stdin closes, as another specmem process would.
_HOLDER = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_by_another_process(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


@pytest.fixture
def memory(tmp_path: Path) -> SpecMemory:
    specs = tmp_path / "specs"
    for n in range(1, WRITES + 1):
        write_spec(
            specs,
            f"{n:03d}-feature-{n}",
            f"""
            ---
            status: planned
            created: 2025-01-01
            ---
            # Feature {n}

            ## Overview
            What feature {n} does and why.
            """,
        )
    memory = SpecMemory(specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.ingest()
    return memory


def _reads(url: str) -> dict[str, int | str]:
    """One of each read a client makes; every one must answer (the timeout is the failure)."""
    answers: dict[str, int | str] = {}
    answers["spec"] = httpx.get(f"{url}/specs/001-feature-1", headers=AUTH, timeout=10).status_code
    answers["health"] = httpx.get(f"{url}/health", timeout=10).status_code

    async def mcp() -> str:
        async with (
            httpx2.AsyncClient(headers=AUTH, timeout=10) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            tools = (await client.list_tools()).tools
            spec = await client.call_tool("get_spec", {"spec": "002"})
            return "ok" if tools and not spec.is_error else "error"

    answers["mcp"] = anyio.run(mcp)
    return answers


def _patch_all(url: str, targets: list[tuple[str, str]]) -> tuple[list, list[threading.Thread]]:
    """Send one status PATCH per (spec, etag) at once, each on its own thread."""
    results: list = []

    def patch(spec: str, etag: str) -> None:
        results.append(
            (
                spec,
                httpx.patch(
                    f"{url}/specs/{spec}",
                    json={"status": "in-progress"},
                    headers={**AUTH, "If-Match": etag},
                    timeout=120,
                ),
            )
        )

    threads = [threading.Thread(target=patch, args=target) for target in targets]
    for thread in threads:
        thread.start()
    return results, threads


def _status_on_disk(memory: SpecMemory, spec: str) -> str:
    return SpecMemory(memory.settings.specs_dir, memory.settings.data_dir).get_spec(spec).status


def test_reads_answer_while_forty_writes_wait_on_a_spec_lock_held_elsewhere(memory):
    app = create_app(memory, token=TOKEN)
    spec = "001-feature-1"
    lock = memory.settings.data_dir / "locks" / f"{spec}.lock"
    with serve_in_thread(LastResort(app), **serving_options()) as url:
        etag = httpx.get(f"{url}/specs/{spec}", headers=AUTH).headers["etag"]
        with held_by_another_process(lock):
            results, threads = _patch_all(url, [(spec, etag)] * WRITES)
            reads = [_reads(url) for _ in range(3)]
            # Every write is still waiting for the lock when every read has been answered.
            unanswered_during_reads = WRITES - len(results)
        for thread in threads:
            thread.join(timeout=120)
    assert reads == [{"spec": 200, "health": 200, "mcp": "ok"}] * 3
    assert unanswered_during_reads == WRITES
    statuses = sorted(response.status_code for _, response in results)
    assert len(statuses) == WRITES
    # One write wins once the lock is free; the others name the version it replaced (412), or
    # could not get a write slot in time (503 busy, nothing written).
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 412, 503}, statuses
    for _, response in results:
        if response.status_code == 503:
            assert response.json()["error"]["code"] == "busy"
            assert int(response.headers["retry-after"]) >= 1
    assert _status_on_disk(memory, spec) == "in-progress"


def test_writes_during_an_ingest_elsewhere_land_with_a_warning_and_reads_answer(memory):
    """The issue's case: a running `specmem ingest` holds the index; each write lands at once,
    says it was not re-indexed, and reads keep answering."""
    app = create_app(memory, token=TOKEN)
    with serve_in_thread(LastResort(app), **serving_options()) as url:
        targets = [
            (s.dir_name, httpx.get(f"{url}/specs/{s.dir_name}", headers=AUTH).headers["etag"])
            for s in memory.list_specs()
        ]
        with held_by_another_process(IndexLayout(memory.settings.data_dir).lock_path):
            results, threads = _patch_all(url, targets)
            reads = [_reads(url) for _ in range(3)]
            for thread in threads:
                thread.join(timeout=120)
    assert reads == [{"spec": 200, "health": 200, "mcp": "ok"}] * 3
    assert len(results) == WRITES
    acknowledged = [spec for spec, response in results if response.status_code == 200]
    for spec, response in results:
        if response.status_code == 200:
            warnings = response.json()["warnings"]
            assert any(w.startswith("not re-indexed: busy") for w in warnings), warnings
        else:
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "busy"
            assert "retry-after" in response.headers
            assert _status_on_disk(memory, spec) == "planned"
    assert acknowledged, "no write landed"
    assert all(_status_on_disk(memory, spec) == "in-progress" for spec in acknowledged)


def test_a_busy_index_skips_the_reindex_for_a_moment_then_a_later_write_catches_up(memory):
    """Writes that could not re-index are re-indexed with the next write once the index is free."""
    lock = IndexLayout(memory.settings.data_dir).lock_path
    with held_by_another_process(lock):
        first = memory.update_spec("001", SpecChange(status="in-progress"))
        second = memory.update_spec("002", SpecChange(status="in-progress"))
    assert any(w.startswith("not re-indexed: busy") for w in first.warnings)
    assert any(w.startswith("not re-indexed: busy") for w in second.warnings)
    memory.index_follower._busy_until = 0.0  # the backoff is a second; no need to sleep it out
    third = memory.update_spec("003", SpecChange(status="in-progress"))
    assert not any(w.startswith("not re-indexed") for w in third.warnings), third.warnings
    indexed = memory.search("feature", mode="lexical", limit=50, status=["in-progress"])
    assert {hit.spec for hit in indexed} == {"001-feature-1", "002-feature-2", "003-feature-3"}
