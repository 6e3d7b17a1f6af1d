"""How a retry finds what a crashed attempt committed (spec 084), in process and fast: the crash
is an exception raised at the named crash point, where nothing catches it (so neither the answer
is stored nor the key released, as after a SIGKILL), and the claim is then handed to a process that no longer exists.
tests/test_idempotency_crash.py does the same with a real server and a real SIGKILL."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from retriever import SpecMemory
from retriever.http import deps
from retriever.http.idempotency import IdempotencyKeys

TOKEN = "recovery-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Killed(Exception):
    """Stands for SIGKILL: nothing after the crash point runs, no handler cleans up."""


@pytest.fixture(scope="module")
def dead_owner() -> str:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:"


@pytest.fixture
def memory(unindexed_memory: SpecMemory) -> SpecMemory:
    return unindexed_memory  # `client` (tests/conftest.py) serves it with this module's TOKEN


@pytest.fixture
def crash(monkeypatch, memory, dead_owner):
    """crash(point, send): send a request that dies at `point`, leaving its claim to a dead pid."""

    def run(point: str, send):
        def crash_point(name: str) -> None:
            if name == point:
                raise Killed

        monkeypatch.setattr(deps, "crash_point", crash_point)
        with pytest.raises(Killed):
            send()
        monkeypatch.undo()
        with memory.event_log.database.connection() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET owner = ? WHERE state = 'pending'", (dead_owner,)
            )

    return run


def etag(client: TestClient, spec: str) -> str:
    return client.get(f"/specs/{spec}").headers["etag"]


def transitions(memory: SpecMemory, spec: str, status: str) -> int:
    return sum(1 for t in memory.get_spec(spec).meta.transitions if t.get("status") == status)


def test_a_landed_status_write_is_found_by_its_stamp(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k1"}
    crash(
        "write-committed",
        lambda: client.patch("/specs/3", json={"status": "complete"}, headers=headers),
    )
    assert transitions(memory, "3", "complete") == 1
    retry = client.patch("/specs/3", json={"status": "complete"}, headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert transitions(memory, "3", "complete") == 1


def test_a_landed_write_is_answered_even_after_another_writer_moved_on(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k2"}
    crash(
        "write-committed",
        lambda: client.patch("/specs/3", json={"status": "complete"}, headers=headers),
    )
    other = {**AUTH, "If-Match": etag(client, "3")}
    assert (
        client.patch("/specs/3", json={"status": "in-progress"}, headers=other).status_code == 200
    )
    retry = client.patch("/specs/3", json={"status": "complete"}, headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["status"] == "in-progress"  # the spec as it is now; ours is in its history
    assert transitions(memory, "3", "complete") == 1


def test_an_attempt_that_died_before_writing_is_done_by_the_retry(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k3"}
    crash("claimed", lambda: client.patch("/specs/3", json={"status": "complete"}, headers=headers))
    assert transitions(memory, "3", "complete") == 0
    retry = client.patch("/specs/3", json={"status": "complete"}, headers=headers)
    assert retry.status_code == 200 and "idempotent-replayed" not in retry.headers
    assert transitions(memory, "3", "complete") == 1


def test_an_unlanded_write_whose_spec_changed_since_is_stale(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k4"}
    crash("claimed", lambda: client.patch("/specs/3", json={"status": "complete"}, headers=headers))
    other = {**AUTH, "If-Match": etag(client, "3")}
    assert client.patch("/specs/3", json={"priority": "high"}, headers=other).status_code == 200
    retry = client.patch("/specs/3", json={"status": "complete"}, headers=headers)
    assert retry.status_code == 412  # as it would have been had it arrived now: it never landed
    assert transitions(memory, "3", "complete") == 0
    fresh = {**headers, "If-Match": retry.headers["etag"]}  # re-read, same key: allowed
    assert client.patch("/specs/3", json={"status": "complete"}, headers=fresh).status_code == 200
    assert transitions(memory, "3", "complete") == 1


def test_a_crash_while_recovering_is_recovered_too(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k5"}
    patch = {"status": "complete"}
    crash("write-committed", lambda: client.patch("/specs/3", json=patch, headers=headers))
    crash("write-committed", lambda: client.patch("/specs/3", json=patch, headers=headers))
    retry = client.patch("/specs/3", json=patch, headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert transitions(memory, "3", "complete") == 1


def test_a_landed_tag_edit_is_found_by_what_the_spec_says(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "1"), "Idempotency-Key": "k6"}
    patch = {"tags": {"add": ["audited"], "remove": ["security"]}, "priority": "low"}
    crash("write-committed", lambda: client.patch("/specs/1", json=patch, headers=headers))
    retry = client.patch("/specs/1", json=patch, headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert "audited" in retry.json()["tags"] and "security" not in retry.json()["tags"]


def test_a_landed_dependency_edit_is_found(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k7"}
    patch = {"depends_on": {"add": ["1"]}}
    crash("write-committed", lambda: client.patch("/specs/3", json=patch, headers=headers))
    retry = client.patch("/specs/3", json=patch, headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"


def test_a_landed_archive_is_found(client, memory, crash):
    headers = {**AUTH, "If-Match": etag(client, "2"), "Idempotency-Key": "k8"}
    crash("write-committed", lambda: client.post("/specs/2/archive", headers=headers))
    retry = client.post("/specs/2/archive", headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert transitions(memory, "2", "archived") == 1


def test_a_landed_create_is_found_and_not_made_twice(client, memory, crash, tiny_specs):
    before = {p.name for p in tiny_specs.iterdir()}
    headers = {**AUTH, "Idempotency-Key": "k9"}
    crash("write-committed", lambda: client.post("/specs", json={"title": "Once"}, headers=headers))
    retry = client.post("/specs", json={"title": "Once"}, headers=headers)
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert {p.name for p in tiny_specs.iterdir()} - before == {retry.json()["spec"]}


def test_a_claim_held_by_a_live_process_is_409_not_taken_over(client, memory, monkeypatch):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k10"}

    def crash_point(name: str) -> None:
        if name == "write-committed":
            raise Killed

    monkeypatch.setattr(deps, "crash_point", crash_point)
    with pytest.raises(Killed):
        client.patch("/specs/3", json={"status": "complete"}, headers=headers)
    monkeypatch.undo()
    busy = client.patch("/specs/3", json={"status": "complete"}, headers=headers)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "idempotency_key_in_use"


@pytest.mark.sqlite_log
def test_a_log_of_an_older_version_gains_the_new_columns(tmp_path):
    import sqlite3

    path = tmp_path / "events.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,"
            " state TEXT NOT NULL, status INTEGER, body TEXT, headers TEXT,"
            " created_at REAL NOT NULL)"
        )
        conn.execute(
            "INSERT INTO idempotency_keys VALUES ('old', 'f', 'done', 201, ?, '{}', 1e12)",
            (json.dumps({"id": 1}),),
        )
    keys = IdempotencyKeys(path)
    assert keys.claim("old", "f").body == {"id": 1}
    assert keys.claim("new", "f") is None


def test_a_failed_recovery_keeps_the_crashed_attempts_intents(client, memory, crash, monkeypatch):
    headers = {**AUTH, "If-Match": etag(client, "3"), "Idempotency-Key": "k11"}
    patch = {"status": "complete"}
    crash("write-committed", lambda: client.patch("/specs/3", json=patch, headers=headers))

    def broken(ref):
        raise TimeoutError("the re-index could not lock the index")

    monkeypatch.setattr(memory, "committed_write", broken)
    with pytest.raises(TimeoutError):
        client.patch("/specs/3", json=patch, headers=headers)
    monkeypatch.undo()
    retry = client.patch("/specs/3", json=patch, headers=headers)
    assert retry.status_code == 200 and retry.headers["idempotent-replayed"] == "true"
    assert transitions(memory, "3", "complete") == 1
