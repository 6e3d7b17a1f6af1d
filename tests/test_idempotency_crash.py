"""Idempotency survives a crash (spec 084). A real `specmem serve` is SIGKILLed at a named point of
a keyed write (SPECMEM_HTTP_CRASH_AT, as SPECMEM_INGEST_CRASH_AT does for ingest): after the
claim, after the write committed but before its answer was stored, after an event committed but
before the reply was sent, or inside the re-index that follows a spec write. The retry (in a new
process, as after a restart) must get the committed result at once, exactly once: no 409 while a
dead claim ages, no 412 on its own stale If-Match, no second transition, event or spec.
The recovery rules themselves (tag edits, archives, other writers in between, repeated crashes)
are tested in process by tests/test_idempotency_recovery.py; random kills under a stream of
keyed writes are in tests/stress/test_idempotency_kills.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from ingest.index.embedding import FakeEmbedder
from ingest.specs.store import content_hash
from retriever import SpecMemory
from retriever.http import create_app
from retriever.http.idempotency import CRASH_ENV
from tests.conftest import REPO
from tests.live_server import free_port
from tests.test_faults import build_corpus

TOKEN = "crash-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def server_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, SPECMEM_MODEL="fake", SPECMEM_API_TOKEN=TOKEN)
    env.update(ANONYMIZED_TELEMETRY="False", PYTHONPATH=str(REPO))
    for name in ("SPECMEM_CHROMA_URL", CRASH_ENV, "SPECMEM_INGEST_CRASH_AT"):
        env.pop(name, None)
    env.update(extra)
    return env


@contextmanager
def serving(specs: Path, data: Path, **env: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """`specmem serve` on a free loopback port; yields the process and its base URL."""
    port = free_port()
    log = (data.parent / f"serve-{port}.log").open("wb")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("specmem")),
            "--specs-dir",
            str(specs),
            "--data-dir",
            str(data),
            "serve",
            "--port",
            str(port),
        ],
        env=server_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("specmem serve did not start")
            time.sleep(0.05)
        yield server, base
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)
        log.close()


def send_and_die(specs: Path, data: Path, crash_at: dict[str, str], method: str, path: str,
                 **request: Any) -> None:  # fmt: skip
    """Send one request to a server that SIGKILLs itself at `crash_at`; it must die unanswered."""
    with serving(specs, data, **crash_at) as (server, base):
        with pytest.raises(httpx.TransportError):
            httpx.request(method, base + path, timeout=60, **request)
        assert server.wait(timeout=30) == -signal.SIGKILL


@contextmanager
def restarted(specs: Path, data: Path) -> Iterator[TestClient]:
    """The same dirs served by a new process's app (the killed one's pid is gone)."""
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as client:
        yield client


def transition_count(specs: Path, spec: str, status: str) -> int:
    memory = SpecMemory(specs, specs.parent / "scratch", embedder=FakeEmbedder())
    found = memory.get_spec(spec).meta.transitions
    return sum(1 for t in found if t.get("status") == status)


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    return build_corpus(tmp_path)


def _etag(specs: Path, data: Path, spec: str) -> str:
    return f'"{SpecMemory(specs, data, embedder=FakeEmbedder()).get_spec(spec).content_hash}"'


@pytest.mark.parametrize(
    "crash_at",
    [
        {CRASH_ENV: "write-committed"},
        # Killed inside the re-index that follows the write: the file is written, the index not.
        {"SPECMEM_INGEST_CRASH_AT": "before-commit"},
    ],
    ids=["after-the-write", "inside-the-reindex"],
)
def test_a_status_callback_killed_after_its_write_is_answered_once(corpus, crash_at):
    specs, data = corpus
    before = transition_count(specs, "003", "complete")
    headers = {**AUTH, "If-Match": _etag(specs, data, "003"), "Idempotency-Key": "relay-9-done"}
    patch = {"status": "complete", "tags": {"add": ["shipped"]}}
    send_and_die(specs, data, crash_at, "PATCH", "/specs/003", json=patch, headers=headers)
    assert transition_count(specs, "003", "complete") == before + 1  # the write landed
    with restarted(specs, data) as client:
        retry = client.patch("/specs/003", json=patch, headers=headers)
        again = client.patch("/specs/003", json=patch, headers=headers)
        found = client.get(
            "/search", params={"q": "search", "status": "complete", "mode": "lexical"}
        )
    assert retry.status_code == 200, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    readme = next(specs.glob("003*/README.md")).read_bytes()
    assert retry.headers["etag"] == f'"{content_hash(readme)}"'
    assert retry.json()["status"] == "complete" and "shipped" in retry.json()["tags"]
    assert (again.status_code, again.json()) == (200, retry.json())
    assert transition_count(specs, "003", "complete") == before + 1  # and only once
    # The retry re-indexed what the killed process had not: the status filter sees it.
    assert "003-search-ui" in [hit["spec"] for hit in found.json()["results"]]


def test_a_create_killed_after_its_write_is_answered_once(corpus):
    specs, data = corpus
    before = sorted(p.name for p in specs.iterdir())
    headers = {**AUTH, "Idempotency-Key": "create-7"}
    new = {"title": "Crash-safe creates", "tags": ["reliability"]}
    send_and_die(specs, data, {CRASH_ENV: "write-committed"}, "POST", "/specs", json=new,
                 headers=headers)  # fmt: skip
    with restarted(specs, data) as client:
        retry = client.post("/specs", json=new, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    created = sorted(set(p.name for p in specs.iterdir()) - set(before))
    assert created == [retry.json()["spec"]]  # one spec, the one the retry names


def test_an_event_killed_before_its_reply_is_stored_once(corpus):
    specs, data = corpus
    headers = {**AUTH, "Idempotency-Key": "devlog-s-81"}
    event = {"spec": "002", "type": "session", "summary": "Split the refresh flow"}
    send_and_die(specs, data, {CRASH_ENV: "event-committed"}, "POST", "/events", json=event,
                 headers=headers)  # fmt: skip
    with restarted(specs, data) as client:
        retry = client.post("/events", json=event, headers=headers)
        stored = client.get("/specs/002/events").json()["events"]
    assert retry.status_code == 201, retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert [e["id"] for e in stored] == [retry.json()["id"]]
