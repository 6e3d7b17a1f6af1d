"""The idempotency-key table on its own: claim, replay, reuse, in-flight, crashed claims."""

from __future__ import annotations

import threading

import pytest

from ingest.errors import InvalidInput
from retriever.http import idempotency
from retriever.http.idempotency import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    IdempotencyKeys,
    request_fingerprint,
)


@pytest.fixture
def keys(tmp_path):
    return IdempotencyKeys(tmp_path / "events.sqlite")


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


def test_a_crashed_claim_is_taken_over(keys, monkeypatch):
    keys.claim("k", "f1")
    now = idempotency.time.time()
    monkeypatch.setattr(idempotency.time, "time", lambda: now + idempotency.STALE_CLAIM_SECONDS + 1)
    assert keys.claim("k", "f1") is None


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
