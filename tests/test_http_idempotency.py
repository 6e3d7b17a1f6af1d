"""The idempotency-key table on its own: claim, replay, reuse, in-flight, crashed claims."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest

from ingest.errors import InvalidInput
from retriever.http import idempotency
from retriever.http.idempotency import (
    Claim,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyKeys,
    request_fingerprint,
)


@pytest.fixture
def keys(event_log):
    return IdempotencyKeys(event_log)


def test_fingerprint_ignores_key_order_but_not_path_or_body():
    same = request_fingerprint("patch", "/specs/1", {"a": 1, "b": 2})
    assert same == request_fingerprint("PATCH", "/specs/1", {"b": 2, "a": 1})
    assert same != request_fingerprint("PATCH", "/specs/2", {"a": 1, "b": 2})
    assert same != request_fingerprint("PATCH", "/specs/1", {"a": 1, "b": 3})


def test_claim_complete_then_replay(keys):
    assert keys.claim("k", "f1") is None
    keys.complete("k", 200, {"ok": True}, {"ETag": '"abc"'})
    replay = keys.claim("k", "f1")
    assert (replay.status, replay.body, replay.headers) == (200, {"ok": True}, {"ETag": '"abc"'})


def test_reuse_for_another_request_is_refused(keys):
    keys.claim("k", "f1")
    keys.complete("k", 200, {}, {})
    with pytest.raises(IdempotencyKeyReused):
        keys.claim("k", "f2")


def test_a_retry_while_the_first_runs_is_told_to_wait(keys):
    assert keys.claim("k", "f1") is None
    with pytest.raises(IdempotencyKeyInUse):
        keys.claim("k", "f1")


def test_a_released_key_can_be_claimed_again(keys):
    keys.claim("k", "f1")
    keys.release("k")
    assert keys.claim("k", "f2") is None


def _claimed_by(keys, key: str, owner: str) -> None:
    with keys.database.connection() as conn:
        conn.execute("UPDATE idempotency_keys SET owner = ? WHERE key = ?", (owner, key))


def test_a_claim_whose_process_died_is_taken_over_at_once(keys):
    keys.take("k", "f1", {"at": "2026-01-01T00:00:00.000001Z"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _claimed_by(keys, "k", f"{socket.gethostname()}:{dead.pid}:")
    taken = keys.take("k", "f1", {"at": "2026-01-01T00:00:01.000001Z"})
    assert isinstance(taken, Claim)
    assert taken.interrupted == [{"at": "2026-01-01T00:00:00.000001Z"}]


def test_a_claim_of_a_killed_but_unreaped_process_is_taken_over(keys):
    keys.claim("k", "f1")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.kill()
        deadline = idempotency.time.time() + 10
        while idempotency._proc_stat(child.pid)[:1] != ["Z"]:  # a zombie until we wait()
            assert idempotency.time.time() < deadline
            idempotency.time.sleep(0.01)
        _claimed_by(keys, "k", f"{socket.gethostname()}:{child.pid}:")
        assert keys.claim("k", "f1") is None
    finally:
        child.wait()


def test_a_claim_of_a_live_process_is_never_taken_over(keys, monkeypatch):
    keys.claim("k", "f1")
    now = idempotency.time.time()
    monkeypatch.setattr(idempotency.time, "time", lambda: now + idempotency.STALE_CLAIM_SECONDS + 1)
    with pytest.raises(IdempotencyKeyInUse):
        keys.claim("k", "f1")


def test_a_claim_from_another_host_is_taken_over_once_stale(keys, monkeypatch):
    keys.claim("k", "f1")
    _claimed_by(keys, "k", "elsewhere.example:1234:99")
    with pytest.raises(IdempotencyKeyInUse):
        keys.claim("k", "f1")
    now = idempotency.time.time()
    monkeypatch.setattr(idempotency.time, "time", lambda: now + idempotency.STALE_CLAIM_SECONDS + 1)
    assert keys.claim("k", "f1") is None


def test_a_taken_over_claim_cannot_be_completed_by_its_first_holder(keys):
    first = keys.take("k", "f1")
    _claimed_by(keys, "k", "elsewhere.example:1:1")
    with keys.database.connection() as conn:
        conn.execute("UPDATE idempotency_keys SET created_at = 0 WHERE key = 'k'")
    second = keys.take("k", "f1")
    keys.complete(first, 200, {"by": "first"}, {})
    keys.complete(second, 200, {"by": "second"}, {})
    assert keys.claim("k", "f1").body == {"by": "second"}


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_bad_keys_are_invalid_input(keys, key):
    with pytest.raises(InvalidInput):
        keys.claim(key, "f")


def test_exactly_one_of_many_concurrent_claims_wins(keys):
    outcomes: list[str] = []

    def claim() -> None:
        try:
            outcomes.append("won" if keys.claim("race", "f") is None else "replayed")
        except IdempotencyKeyInUse:
            outcomes.append("busy")

    threads = [threading.Thread(target=claim) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1 and outcomes.count("busy") == 11
