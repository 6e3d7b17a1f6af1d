"""The event log is a log, not a cache (spec 084): where it lives, and what a running process does
when its file is deleted or replaced underneath it (refuse, never acknowledge into nothing, never
re-create an empty log). Through the service, the real HTTP app and a real MCP client session."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.events import EVENTS_DIR_ENV, EventLogMissing, EventStore
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server

TOKEN = "event-log-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def memory(unindexed_memory: SpecMemory) -> SpecMemory:
    return unindexed_memory  # `client` (tests/conftest.py) serves it with this module's TOKEN


def _remove_log(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]


# -- where it lives -------------------------------------------------------------------------------


def test_the_log_lives_in_the_data_dir_unless_moved(memory, tmp_path):
    memory.log_event("1", "note", summary="here")
    assert memory.event_log.database.path == tmp_path / "data" / "events.sqlite"
    assert _stored(memory.event_log.database.path) == 1


def test_specmem_events_dir_moves_the_log_out_of_the_data_dir(tiny_specs, tmp_path, monkeypatch):
    monkeypatch.setenv(EVENTS_DIR_ENV, str(tmp_path / "log"))
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.log_event("1", "note", summary="kept apart")
    assert _stored(tmp_path / "log" / "events.sqlite") == 1
    assert not (tmp_path / "data" / "events.sqlite").exists()
    # Wiping the data dir (the cache) loses nothing: a new process still reads the event.
    memory.ingest()
    shutil.rmtree(tmp_path / "data")
    again = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    assert [e["summary"] for e in again.events("1")] == ["kept apart"]


def test_a_full_ingest_keeps_the_log(memory):
    memory.log_event("1", "note", summary="before the rebuild")
    memory.ingest()
    memory.ingest(full=True)
    assert [e["summary"] for e in memory.events("1")] == ["before the rebuild"]
    memory.log_event("1", "note", summary="after the rebuild")
    assert _stored(memory.event_log.database.path) == 2


# -- a log deleted or replaced under a running process -------------------------------------------


def test_a_deleted_log_is_refused_and_not_recreated(memory):
    memory.log_event("1", "note", summary="first")
    path = memory.event_log.database.path
    _remove_log(path)
    with pytest.raises(EventLogMissing, match="deleted"):
        memory.log_event("1", "note", summary="into nothing")
    with pytest.raises(EventLogMissing):
        memory.events("1")
    assert not path.exists()


def test_a_replaced_log_is_refused(memory):
    memory.log_event("1", "note", summary="first")
    path = memory.event_log.database.path
    _remove_log(path)
    other = EventStore(path)  # e.g. another process that started a new, empty log meanwhile
    other.add({"spec": "001-auth-design", "type": "note", "at": "2026-01-01T00:00:00Z"})
    with pytest.raises(EventLogMissing, match="replaced"):
        memory.log_event("1", "note", summary="into the wrong file")
    assert _stored(path) == 1


def test_a_wiped_data_dir_under_a_running_server_answers_503_to_every_post(memory, client):
    assert (
        client.post("/events", json={"spec": "1", "type": "note"}, headers=AUTH).status_code == 201
    )
    data_dir = memory.settings.data_dir
    shutil.rmtree(data_dir)
    answers = [
        client.post(
            "/events", json={"spec": "1", "type": "note", "summary": f"lost {i}"}, headers=AUTH
        )
        for i in range(40)
    ]
    assert {r.status_code for r in answers} == {503}
    assert {r.json()["error"]["code"] for r in answers} == {"event_log_missing"}
    acknowledged = sum(r.status_code == 201 for r in answers)
    assert acknowledged == 0 == _stored(memory.event_log.database.path)
    assert not memory.event_log.database.path.exists()
    # Reads of the log say so too; everything else keeps working.
    assert client.get("/events", headers=AUTH).json()["error"]["code"] == "event_log_missing"
    assert client.get("/specs/001").status_code == 200
    assert client.post("/context", json={"specs": ["001"], "budget": 2000}).status_code == 200


def test_idempotency_keys_live_in_the_log_and_are_refused_with_it(memory, client):
    etag = client.get("/specs/001").headers["etag"]
    memory.log_event("1", "note")
    _remove_log(memory.event_log.database.path)
    keyed = {**AUTH, "If-Match": etag, "Idempotency-Key": "k-1"}
    refused = client.patch("/specs/001", json={"priority": "low"}, headers=keyed)
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "event_log_missing"
    # A write without a key needs no log: the spec file is the source of truth.
    plain = client.patch("/specs/001", json={"priority": "low"}, headers={**AUTH, "If-Match": etag})
    assert plain.status_code == 200


def test_a_log_present_at_start_is_pinned_before_its_first_use(tiny_specs, tmp_path):
    SpecMemory(tiny_specs, tmp_path / "data").log_event("1", "note", summary="from before")
    serving = SpecMemory(tiny_specs, tmp_path / "data")
    _remove_log(serving.event_log.database.path)
    with pytest.raises(EventLogMissing):
        serving.log_event("1", "note", summary="first of this process")


def test_a_restarted_process_starts_a_new_log(memory, tiny_specs, tmp_path):
    memory.log_event("1", "note")
    _remove_log(memory.event_log.database.path)
    restarted = SpecMemory(tiny_specs, tmp_path / "data")
    restarted.log_event("1", "note", summary="new log")
    assert [e["summary"] for e in restarted.events("1")] == ["new log"]


def test_mcp_log_event_is_a_tool_error_once_the_log_is_gone(memory):
    memory.log_event("1", "note")
    _remove_log(memory.event_log.database.path)

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            return await client.call_tool("log_event", {"spec": "1", "type": "note"})

    result = anyio.run(scenario)
    assert result.is_error
    assert "[event_log_missing]" in result.content[0].text
    assert not memory.event_log.database.path.exists()


def test_a_log_dir_that_cannot_be_created_is_a_clear_503(tiny_specs, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the log dir should be\n")
    monkeypatch.setenv(EVENTS_DIR_ENV, str(blocker / "log"))
    memory = SpecMemory(tiny_specs, tmp_path / "data")
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as client:
        answer = client.post("/events", json={"spec": "1", "type": "note"}, headers=AUTH)
        assert client.get("/events").json()["events"] == []  # reads of no log: nothing to list
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "event_log_unavailable"
    assert EVENTS_DIR_ENV in answer.json()["error"]["message"]
