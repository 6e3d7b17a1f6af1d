"""Idempotency keys: a retried request with the same `Idempotency-Key` gets the first response.

An orchestrator that reports "spec 045 is complete" and loses the reply will send the callback
again. Without a key that records a second transition. With one, a retry with the same key and
the same request gets the first response back, a reuse of the key for a different request is
refused, and a retry that arrives while the first is still running is told to try again (409)
instead of racing it. Keys live in the event log (`idempotency_keys`, in SQLite or PostgreSQL),
which is not a cache.

Two ways to bind a key to its result, so that a crash between the write and its reply still
answers every retry with the committed result, exactly once (spec 084):

- An event lives in the same database as its key: `KeyedEvent` records the key in the
  transaction that inserts the event. There is no moment at which one exists without the other.
- A spec write replaces a markdown file, which no database transaction covers. The key is claimed
  first (`take`), with an *intent* that lets a later attempt tell whether this one committed:
  the spec and the timestamp its transition will carry. The claim names the process that holds
  it; a retry that finds the claim of a process that no longer exists takes the key over at once
  and gets those intents back (`Claim.interrupted`), so the route can look at the file before
  writing again. A claim whose process is alive is never taken over.

Only successful responses are stored. A request that failed changed nothing, so its key is
released and the client may retry the same key, e.g. after re-reading a stale hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.errors import InvalidInput, SpecmemError

from ..events import EventDatabase
from ..events.store import as_database

__all__ = [
    "CRASH_ENV",
    "CRASH_POINTS",
    "Claim",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReused",
    "IdempotencyKeys",
    "KeyedEvent",
    "KeysPerProject",
    "Replay",
    "crash_point",
    "request_fingerprint",
]

MAX_KEY_CHARS = 255
# A claim whose process cannot be checked (another host shares the log) is taken over after this.
STALE_CLAIM_SECONDS = 120
KEEP_SECONDS = 7 * 24 * 3600
# Tests SIGKILL a real server at these points (as SPECMEM_INGEST_CRASH_AT does for ingest):
# claimed = key claimed, nothing written; write-committed = the write landed, its reply not yet
# stored; event-committed = event and key committed, the reply not yet sent.
CRASH_ENV = "SPECMEM_HTTP_CRASH_AT"
CRASH_POINTS = ("claimed", "write-committed", "event-committed")

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
# INSERT OR REPLACE as both engines spell it: every column the insert names is overwritten.
_REPLACING = (
    " ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, state = excluded.state,"
    " status = excluded.status, body = excluded.body, headers = excluded.headers,"
    " created_at = excluded.created_at, owner = excluded.owner, claim = excluded.claim,"
    " intents = excluded.intents"
)
# The owner of a claim given up with the intents of a crashed attempt still in it.
_RELEASED = "released"
# Added for crash recovery; a log written by an older specmem gets them on first use.
_COLUMNS = {"owner": "TEXT", "claim": "TEXT", "intents": "TEXT NOT NULL DEFAULT '[]'"}


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


# PostgreSQL's REAL is four bytes: epoch seconds need eight.
_POSTGRES_SCHEMA = _SCHEMA.replace("REAL", "DOUBLE PRECISION").replace(
    "    created_at",
    "    owner TEXT,\n    claim TEXT,\n    intents TEXT NOT NULL DEFAULT '[]',\n    created_at",
)


def _setup_sqlite(conn: Any) -> None:
    conn.executescript(_SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(idempotency_keys)")}
    for name, kind in _COLUMNS.items():
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE idempotency_keys ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as err:  # another process added it first
                if "duplicate column" not in str(err):
                    raise


def _setup_postgres(conn: Any) -> None:
    conn.executescript(_POSTGRES_SCHEMA)


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


@dataclass(frozen=True)
class Claim:
    """A key this request now holds. `interrupted`: the intents of earlier attempts whose
    process died holding the key; any of them may have committed."""

    key: str
    token: str
    interrupted: list[dict[str, Any]] = field(default_factory=list)


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


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first); empty where there
    is no such file (another OS, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[-1].split()


def _start_time(pid: int) -> str:
    """When process `pid` started (clock ticks since boot), so that a reused pid is not taken
    for the process that held a claim; empty where /proc does not say."""
    fields = _proc_stat(pid)
    return fields[19] if len(fields) > 19 else ""


def _this_process() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _alive(owner: str | None) -> bool | None:
    """Whether the process named by `owner` still runs; None when this host cannot tell."""
    if owner == _RELEASED:
        return False
    host, _, rest = (owner or "").partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or os.name != "posix":
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return False
    return not started or _start_time(pid) in ("", started)


def _stored(row: Any, key: str, fingerprint: str) -> Replay | None:
    """The response stored under `key` (None: none yet); a different request is refused."""
    if row is not None and row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused(
            f"Idempotency-Key {key!r} was already used for a different request; "
            "use a new key for a new request"
        )
    if row is not None and row["state"] == "done":
        return Replay(row["status"], json.loads(row["body"]), json.loads(row["headers"]))
    return None


def _abandoned(row: Any, now: float) -> bool:
    """Whether a pending claim's holder is gone, so the claim may be taken over."""
    alive = _alive(row["owner"])
    if alive is None:
        return now - row["created_at"] >= STALE_CLAIM_SECONDS
    return not alive


def _in_use(key: str) -> IdempotencyKeyInUse:
    return IdempotencyKeyInUse(
        f"a request with Idempotency-Key {key!r} is still being processed; retry shortly"
    )


class KeysPerProject:
    """Each project's keys live in its own event log (a keyed event is stored in the event's own
    transaction), opened on a project's first keyed request and dropped with its SpecMemory."""

    def __init__(self) -> None:
        self._keys: weakref.WeakKeyDictionary[Any, IdempotencyKeys] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, memory: Any) -> IdempotencyKeys:
        with self._lock:
            keys = self._keys.get(memory)
            if keys is None:
                keys = self._keys[memory] = IdempotencyKeys(memory.event_log.database)
            return keys


class IdempotencyKeys:
    """The `idempotency_keys` table: take a key, then complete or release it."""

    def __init__(self, log: str | Path | EventDatabase):
        self.database = as_database(log)
        postgres = self.database.dialect == "postgresql"
        self.database.require(_setup_postgres if postgres else _setup_sqlite)
        self.owner = _this_process()

    def replay(self, key: str, fingerprint: str) -> Replay | None:
        """The stored response for `key`, without claiming it (None: not answered yet)."""
        _check_key(key)
        with self.database.reader() as conn:
            if conn is None:
                return None
            row = conn.execute("SELECT * FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
        return _stored(row, key, fingerprint)

    def take(
        self, key: str, fingerprint: str, intent: dict[str, Any] | None = None
    ) -> Replay | Claim:
        """The stored Replay when this request already succeeded; else a Claim: the caller now
        holds `key` (do the work, then `complete` or `release`). `intent` is what a later
        attempt needs to tell whether this one committed, should this process die first."""
        _check_key(key)
        now = time.time()
        with self.database.transaction() as conn:
            row = conn.execute("SELECT * FROM idempotency_keys WHERE key = ?", (key,)).fetchone()
            replay = _stored(row, key, fingerprint)
            if replay is not None:
                return replay
            interrupted: list[dict[str, Any]] = []
            if row is not None:
                if not _abandoned(row, now):
                    raise _in_use(key)
                interrupted = json.loads(row["intents"] or "[]")
            token = uuid.uuid4().hex
            intents = [*interrupted, intent] if intent is not None else interrupted
            conn.execute(
                "INSERT INTO idempotency_keys"
                " (key, fingerprint, state, created_at, owner, claim, intents)"
                " VALUES (?, ?, 'pending', ?, ?, ?, ?)" + _REPLACING,
                (key, fingerprint, now, self.owner, token, json.dumps(intents)),
            )
            conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (now - KEEP_SECONDS,))
        return Claim(key, token, interrupted)

    def claim(self, key: str, fingerprint: str) -> Replay | None:
        """`take` without an intent: None when the caller now holds the key."""
        taken = self.take(key, fingerprint)
        return taken if isinstance(taken, Replay) else None

    def complete(self, key: str | Claim, status: int, body: Any, headers: dict[str, str]) -> None:
        name, token = (key.key, key.token) if isinstance(key, Claim) else (key, None)
        with self.database.transaction() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET state = 'done', status = ?, body = ?, headers = ?"
                " WHERE key = ? AND (CAST(? AS TEXT) IS NULL OR claim = ?)",
                (
                    status,
                    json.dumps(body, ensure_ascii=False, default=str),
                    json.dumps(headers),
                    name,
                    token,
                    token,
                ),
            )

    def release(self, key: str | Claim) -> None:
        """Give the key up after a failure. A claim that inherited the intents of a crashed
        attempt keeps them (any of them may have committed), for whoever retries next."""
        name, token = (key.key, key.token) if isinstance(key, Claim) else (key, None)
        with self.database.transaction() as conn:
            if isinstance(key, Claim) and key.interrupted:
                conn.execute(
                    "UPDATE idempotency_keys SET owner = ? WHERE key = ? AND claim = ?",
                    (_RELEASED, name, token),
                )
                return
            conn.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND state = 'pending'"
                " AND (CAST(? AS TEXT) IS NULL OR claim = ?)",
                (name, token, token),
            )

    def keyed_event(self, key: str, fingerprint: str) -> KeyedEvent:
        _check_key(key)
        return KeyedEvent(self, key, fingerprint)


class KeyedEvent:
    """An events.EventHook: the key is recorded, with the event as its response, in the
    transaction that stores the event; a retry finds the event, never a second one."""

    def __init__(self, keys: IdempotencyKeys, key: str, fingerprint: str):
        self.keys = keys
        self.key = key
        self.fingerprint = fingerprint
        self.replayed = False

    def before(self, conn: Any) -> dict[str, Any] | None:
        row = conn.execute("SELECT * FROM idempotency_keys WHERE key = ?", (self.key,)).fetchone()
        replay = _stored(row, self.key, self.fingerprint)
        if replay is not None:
            self.replayed = True
            return replay.body
        if row is not None and not _abandoned(row, time.time()):
            raise _in_use(self.key)
        return None

    def after(self, conn: Any, stored: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO idempotency_keys"
            " (key, fingerprint, state, status, body, headers, created_at, owner, claim, intents)"
            " VALUES (?, ?, 'done', 201, ?, '{}', ?, ?, NULL, '[]')" + _REPLACING,
            (
                self.key,
                self.fingerprint,
                json.dumps(stored, ensure_ascii=False),
                time.time(),
                self.keys.owner,
            ),
        )
