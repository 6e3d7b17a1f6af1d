"""The events store and SpecMemory.log_event / events / search_events / history."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from ingest.errors import InvalidInput, SpecNotFound
from retriever import SpecMemory
from retriever.events import normalize_event, parse_timestamp
from retriever.history import merge_history


@pytest.fixture
def memory(tiny_specs, tmp_path):
    return SpecMemory(tiny_specs, tmp_path / "data")


def test_logged_event_is_stored_with_its_fields(memory):
    event = memory.log_event(
        "2",
        "commit",
        agent="claude",
        session_id="s-1",
        summary="Refresh tokens five minutes early",
        files_changed=["src/auth/refresh.py"],
        at="2026-01-02T03:04:05+01:00",
        data={"sha": "abc123"},
    )
    assert event["spec"] == "002-token-refresh"
    assert event["at"] == "2026-01-02T02:04:05.000000Z"
    assert event["id"] >= 1
    [stored] = memory.events("002-token-refresh")
    assert stored == event


@pytest.mark.sqlite_log
def test_events_live_in_a_wal_sqlite_file_in_the_data_dir(memory, tmp_path):
    memory.log_event("1", "note", summary="hello")
    path = tmp_path / "data" / "events.sqlite"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_events_survive_a_new_service_instance(memory, tiny_specs, tmp_path):
    memory.log_event("1", "note", summary="durable")
    again = SpecMemory(tiny_specs, tmp_path / "data")
    assert [e["summary"] for e in again.events("1")] == ["durable"]


def test_unknown_spec_is_refused(memory):
    with pytest.raises(SpecNotFound):
        memory.log_event("999", "note")


@pytest.mark.parametrize(
    ("event_type", "fields", "names"),
    [
        ("", {}, "type"),
        ("has space", {}, "type"),
        ("note", {"files_changed": [1]}, "files_changed"),
        ("note", {"data": [1, 2]}, "data"),
        ("note", {"at": "yesterday"}, "at"),
        ("note", {"agent": 5}, "agent"),
        ("note", {"colour": "red"}, "colour"),
    ],
)
def test_bad_fields_are_named(memory, event_type, fields, names):
    with pytest.raises(InvalidInput, match=names):
        memory.log_event("1", event_type, **fields)


def test_text_search_matches_every_word_across_specs(memory):
    memory.log_event("1", "note", summary="Rotated the signing keys")
    memory.log_event("2", "note", summary="Signing requests with HMAC")
    memory.log_event("3", "commit", summary="Layout tweak", files_changed=["ui/search.tsx"])
    assert {e["spec"] for e in memory.search_events("signing")} == {
        "001-auth-design",
        "002-token-refresh",
    }
    assert [e["spec"] for e in memory.search_events("signing keys")] == ["001-auth-design"]
    assert [e["spec"] for e in memory.search_events("search", type="commit")] == ["003-search-ui"]
    assert memory.search_events('"; DROP TABLE events; --') == []
    assert memory.search_events("signing", spec="2")[0]["spec"] == "002-token-refresh"


def test_events_are_newest_first_and_paginated(memory):
    for day in (3, 1, 2):
        memory.log_event("1", "note", summary=f"day {day}", at=f"2026-01-0{day}")
    assert [e["summary"] for e in memory.events("1")] == ["day 3", "day 2", "day 1"]
    assert [e["summary"] for e in memory.events("1", limit=1, offset=1)] == ["day 2"]


def test_history_merges_transitions_and_events_newest_first(tmp_path):
    from tests.conftest import write_spec

    root = tmp_path / "specs"
    write_spec(
        root,
        "010-feature",
        """
        ---
        status: complete
        transitions:
          - status: in-progress
            at: '2025-11-05T13:35:26.669Z'
          - status: complete
            at: '2025-11-07T07:00:00.000Z'
        ---
        # Feature
        """,
    )
    memory = SpecMemory(root, tmp_path / "data")
    memory.log_event("10", "commit", summary="implemented", at="2025-11-06T00:00:00Z")
    history = memory.history("10")
    assert [(h["kind"], h.get("status") or h.get("summary")) for h in history] == [
        ("transition", "complete"),
        ("event", "implemented"),
        ("transition", "in-progress"),
    ]


def test_merge_history_puts_unreadable_timestamps_last():
    merged = merge_history(
        [{"status": "planned", "at": ""}], [{"summary": "x", "at": "2026-01-01T00:00:00Z"}], 10
    )
    assert [item["kind"] for item in merged] == ["event", "transition"]


def test_parse_timestamp_treats_naive_as_utc():
    assert parse_timestamp("2026-01-01T00:00:00").isoformat() == "2026-01-01T00:00:00+00:00"
    assert parse_timestamp("nonsense") is None


def test_normalize_event_accepts_a_single_file_as_a_string():
    event = normalize_event("001-x", "commit", {"files_changed": "a.py"})
    assert event["files_changed"] == ["a.py"]


def test_concurrent_writers_lose_no_event(memory):
    def log(worker: int) -> None:
        for i in range(10):
            memory.log_event("1", "note", summary=f"worker {worker} item {i}")

    threads = [threading.Thread(target=log, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(memory.events("1", limit=1000)) == 80


@pytest.mark.sqlite_log
def test_reading_events_never_creates_the_log(memory, tmp_path):
    assert memory.events("1") == []
    assert memory.search_events("anything") == []
    assert [item["kind"] for item in memory.history("1")] == []
    assert not (tmp_path / "data" / "events.sqlite").exists()


def test_the_histories_of_many_specs_in_one_query_are_each_specs_history(tiny_specs, tmp_path):
    """Context bundles read every candidate's history at once (spec 077): the same lists."""
    from retriever import SpecMemory

    memory = SpecMemory(tiny_specs, tmp_path / "data")
    for n in range(3):
        memory.log_event("1", "note", summary=f"first {n}", at=f"2025-01-0{n + 1}T00:00:00Z")
    for n in range(25):
        memory.log_event("2", "note", summary=f"second {n}", at=f"2025-02-{n + 1:02d}T00:00:00Z")
    specs = [memory.get_spec(ref) for ref in ("1", "2", "3")]
    together = memory._histories(specs)
    assert set(together) == {"001-auth-design", "002-token-refresh"}  # 003 has no events
    for name, history in together.items():
        assert history == memory.history(name, limit=20)
    assert len(together["002-token-refresh"]) == 20


@pytest.mark.sqlite_log
def test_opening_a_log_another_process_is_still_creating_waits_for_it(tmp_path):
    """Two workers creating the log at once: the second's switch to WAL meets the first's write
    lock while the file is still in rollback mode, which SQLite refuses at once (issue 15)."""
    import threading
    import time

    from retriever.events import EventStore, normalize_event

    path = tmp_path / "events.sqlite"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    first.execute("CREATE TABLE held (x)")
    first.execute("BEGIN IMMEDIATE")
    first.execute("INSERT INTO held VALUES (1)")
    threading.Timer(0.3, lambda: first.execute("COMMIT")).start()
    started = time.monotonic()
    stored = EventStore(path).add(normalize_event("001-a", "note", {"summary": "second"}))
    assert stored["summary"] == "second" and time.monotonic() - started >= 0.25
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first.close()
