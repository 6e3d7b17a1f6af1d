"""Idempotency keys: a retried request with the same `Idempotency-Key` gets the first response.

An orchestrator that reports "spec 045 is complete" and loses the reply will send the callback
again. Without a key that records a second transition. With one, the first request claims the key
in SQLite (same `events.sqlite`, its own table) before doing the work, then stores the response;
a retry with the same key and the same request gets the stored response back, a reuse of the key
for a different request is refused, and a retry that arrives while the first is still running is
told to try again (409) instead of racing it.

Only successful responses are stored. A request that failed changed nothing, so its key is
released and the client may retry the same key, e.g. after re-reading a stale hash.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import InvalidInput, SpecmemError

from ..events import WalDatabase

__all__ = [
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "IdempotencyKeys",
    "Replay",
    "request_fingerprint",
]

MAX_KEY_CHARS = 255
# A claim older than this was left by a crashed request: the key may be taken over.
STALE_CLAIM_SECONDS = 120
KEEP_SECONDS = 7 * 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    body TEXT,
    headers TEXT,
    created_at REAL NOT NULL
);
"""


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"


class IdempotencyKeyInUse(SpecmemError):
    code = "idempotency_key_in_use"


@dataclass(frozen=True)
class Replay:
    """The stored response of the request that first used a key."""

    status: int
    body: Any
    headers: dict[str, str]


def request_fingerprint(method: str, path: str, payload: Any) -> str:
    """What makes two requests "the same": method, path and the canonical JSON of the body."""
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def _check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable characters, got {key[:40]!r}"
        )
    return key


class IdempotencyKeys:
    """The `idempotency_keys` table: claim a key, then complete or release it."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.database = WalDatabase(self.path, _SCHEMA)

    def _connect(self):
        return self.database.connection()

    def claim(self, key: str, fingerprint: str) -> Replay | None:
        """None when the caller now owns `key` (do the work, then `complete` or `release`);
        the stored Replay when this request already succeeded."""
        _check_key(key)
        now = time.time()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT * FROM idempotency_keys WHERE key = ?", (key,)
                ).fetchone()
                if row is not None and row["fingerprint"] != fingerprint:
                    raise IdempotencyKeyReused(
                        f"Idempotency-Key {key!r} was already used for a different request; "
                        "use a new key for a new request"
                    )
                if row is not None and row["state"] == "done":
                    conn.execute("COMMIT")
                    return Replay(
                        row["status"], json.loads(row["body"]), json.loads(row["headers"])
                    )
                if row is not None and now - row["created_at"] < STALE_CLAIM_SECONDS:
                    raise IdempotencyKeyInUse(
                        f"a request with Idempotency-Key {key!r} is still being processed; retry shortly"
                    )
                conn.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, state, created_at)"
                    " VALUES (?, ?, 'pending', ?)",
                    (key, fingerprint, now),
                )
                conn.execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?", (now - KEEP_SECONDS,)
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return None

    def complete(self, key: str, status: int, body: Any, headers: dict[str, str]) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?, body = ?, headers = ?"
                " WHERE key = ?",
                (
                    status,
                    json.dumps(body, ensure_ascii=False, default=str),
                    json.dumps(headers),
                    key,
                ),
            )

    def release(self, key: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE key = ? AND state = 'pending'", (key,))
