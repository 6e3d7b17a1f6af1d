"""The event log's semantics on both engines: the same tests against SQLite and a real PostgreSQL
server (issue 15, spec 093). Events, full-text search, attribution's file lookup, bundles'
recent history, idempotency keys racing across threads, Devlog's batches, and the HTTP app with
`SPECMEM_EVENTS_URL` set."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from ingest.config import Settings
from ingest.errors import InvalidInput
from retriever import SpecMemory
from retriever.devlog import DevlogEvent, DevlogLog
from retriever.events import EventLogUnavailable, EventStore, PostgresDatabase, normalize_event
from retriever.http import create_app
from retriever.http.idempotency import IdempotencyKeyInUse, IdempotencyKeys


@pytest.fixture(params=["sqlite", "postgresql"])
def log(request, tmp_path):
    """A fresh, empty event log on each engine."""
    if request.param == "sqlite":
        return tmp_path / "events.sqlite"
    server = request.getfixturevalue("postgres")
    return PostgresDatabase(server.create_database(server.fresh_name()))


def _event(spec: str, kind: str = "note", **fields):
    return normalize_event(spec, kind, fields)


def test_events_come_back_newest_first_with_their_fields(log):
    store = EventStore(log)
    first = store.add(_event("001-a", summary="first", at="2026-01-01T00:00:00Z", data={"n": 1}))
    second = store.add(_event("001-a", summary="second", at="2026-01-02T00:00:00Z"))
    store.add(_event("002-b", summary="elsewhere", at="2026-01-03T00:00:00Z"))
    listed = store.list(spec="001-a")
    assert [e["summary"] for e in listed] == ["second", "first"]
    assert listed[1] == first and listed[0] == second
    assert first["data"] == {"n": 1} and first["files_changed"] == []
    assert [e["spec"] for e in store.list(limit=1, offset=2)] == ["001-a"]
    assert store.list(limit=2**63 - 1, offset=2**63 - 1) == []


def test_every_query_word_must_appear_case_and_accents_folded(log):
    store = EventStore(log)
    store.add(_event("001-a", summary="Café migration finished", files_changed=["src/db/pool.py"]))
    store.add(_event("001-a", summary="migration started"))
    assert [e["summary"] for e in store.list(query="MIGRATION finished")] == [
        "Café migration finished"
    ]
    assert len(store.list(query="migration")) == 2
    assert len(store.list(query="pool")) == 1  # a word of a changed file's path
    assert store.list(query="absent") == []
    assert store.list(query="!!!") == []
    assert len(store.list(query="migration", event_type="note")) == 2
    assert store.list(query="migration", event_type="commit") == []


def test_files_named_by_events_and_recent_history_per_spec(log):
    store = EventStore(log)
    for n in range(5):
        store.add(_event("001-a", summary=f"a{n}", at=f"2026-01-0{n + 1}T00:00:00Z"))
    store.add(_event("002-b", summary="b", files_changed=["src/x.py", "docs/y.md"]))
    store.add(_event("003-c", summary="c", files_changed=["src/x.py"]))
    assert store.specs_naming(["src/x.py", "docs/y.md", "none"]) == {
        "src/x.py": {"002-b", "003-c"},
        "docs/y.md": {"002-b"},
    }
    recent = store.recent_by_spec(["001-a", "002-b", "009-none"], 2)
    assert [e["summary"] for e in recent["001-a"]] == ["a4", "a3"]
    assert set(recent) == {"001-a", "002-b"}


def test_text_either_engine_cannot_store_is_refused_naming_the_field():
    with pytest.raises(InvalidInput, match="summary"):
        _event("001-a", summary="a\x00b")
    with pytest.raises(InvalidInput, match=r"files_changed\[0\]"):
        _event("001-a", files_changed=["a\x00b"])
    _event("001-a", data={"bytes": "a\x00b"})  # inside JSON it is an escape, stored as text


def test_an_idempotency_key_taken_by_eight_threads_at_once_goes_to_one(log):
    keys = IdempotencyKeys(log)
    barrier = threading.Barrier(8)

    def take():
        barrier.wait()
        try:
            return keys.claim("k", "f") is None
        except IdempotencyKeyInUse:
            return False

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda _: take(), range(8)))
    assert won.count(True) == 1
    keys.complete("k", 200, {"ok": True}, {"ETag": '"1"'})
    replay = keys.claim("k", "f")
    assert (replay.status, replay.body, replay.headers) == (200, {"ok": True}, {"ETag": '"1"'})


def test_a_keyed_event_is_stored_once_however_often_it_is_sent(log):
    store = EventStore(log)
    keys = IdempotencyKeys(store.database)
    stored = [store.add(_event("001-a"), within=keys.keyed_event("e", "f")) for _ in range(3)]
    assert stored[0] == stored[1] == stored[2]
    assert len(store.list()) == 1


def test_devlog_batches_are_stored_once_and_linked(log):
    store = EventStore(log)
    devlog = DevlogLog(store)
    batch = [
        DevlogEvent(
            id=f"ev-{n}",
            timestamp="2026-11-30T10:15:02.123456789Z",
            eventType="file_write",
            agentId="claude-code",
            agentVersion="1",
            sessionId="s-1",
            projectId=1,
            data={"filePath": "src/x.py"},
        )
        for n in range(3)
    ]
    assert devlog.store(batch)["stored"] == 3
    assert devlog.store(batch)["duplicates"] == 3
    assert devlog.sessions() == ["s-1"]
    assert devlog.work("s-1").files == ["src/x.py"]
    assert devlog.link("s-1", "001-a", 0.9, {"why": "test"}) == 3
    assert devlog.links()["s-1"]["spec"] == "001-a"
    assert {e["spec"] for e in store.list()} == {"001-a"}


def test_the_app_keeps_events_in_postgresql_when_the_url_names_it(
    postgres, tiny_specs, tmp_path, monkeypatch
):
    url = postgres.create_database(postgres.fresh_name())
    monkeypatch.setenv("SPECMEM_EVENTS_URL", url)
    monkeypatch.setenv("SPECMEM_API_TOKEN", "engines-token-0123456789")
    settings = Settings.load(specs_dir=tiny_specs, data_dir=tmp_path / "data")
    assert settings.events_url == url
    memory = SpecMemory(settings=settings, embedder=_fake_embedder())
    with TestClient(create_app(memory)) as client:
        sent = {"type": "agent.finished", "summary": "done in postgres"}
        headers = {"Idempotency-Key": "one", "Authorization": "Bearer engines-token-0123456789"}
        first = client.post("/events", json={"spec": "1", **sent}, headers=headers)
        again = client.post("/events", json={"spec": "1", **sent}, headers=headers)
        assert first.status_code == 201, first.text
        assert again.json() == first.json()
        listed = client.get("/events", params={"q": "postgres"}, headers=headers).json()
    assert [e["summary"] for e in _items(listed)] == ["done in postgres"]
    assert not (tmp_path / "data" / "events.sqlite").exists()
    assert EventStore(PostgresDatabase(url)).list()[0]["summary"] == "done in postgres"


def test_a_server_that_is_not_there_is_a_503_naming_the_log_without_its_password():
    database = PostgresDatabase("postgresql://me:secret@127.0.0.1:1/none?connect_timeout=1")
    database._open_pool().timeout = 2.0  # keep the wait for a connection short here
    with pytest.raises(EventLogUnavailable) as caught:
        EventStore(database).list()
    assert "me:***@127.0.0.1:1" in str(caught.value) and "secret" not in str(caught.value)


def test_a_url_that_is_not_postgresql_is_refused_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("SPECMEM_EVENTS_URL", "mysql://me:secret@host/db")
    with pytest.raises(InvalidInput, match="SPECMEM_EVENTS_URL") as caught:
        Settings.load(specs_dir=tmp_path)
    assert "secret" not in str(caught.value)


def _fake_embedder():
    from ingest.index.embedding import FakeEmbedder

    return FakeEmbedder()


def _items(listed):
    return listed["events"] if isinstance(listed, dict) else listed
