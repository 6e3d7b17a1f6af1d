"""Activity events: what agents and tools did on a spec, kept durably beside the index.

An observability tool (Devlog) or an orchestrator reports `{spec, type, agent, session_id, summary,
files_changed, at, data}`; specmem stores it in `<data_dir>/events.sqlite` (SQLite in WAL mode, so
readers never wait for the one writer), keeps a full-text index over the summary and the changed
files, and hands the events to `SpecMemory.history` so context bundles can show what happened.

Events are a log, not a cache: unlike the vector and lexical indexes, `ingest --full` never
rebuilds or clears them. Each thread (uvicorn's workers, the MCP server's) gets its own
connection to the file, kept open; `BEGIN IMMEDIATE` serializes the writers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ingest.errors import InvalidInput

__all__ = [
    "EVENT_FIELDS",
    "EventStore",
    "WalDatabase",
    "merge_history",
    "normalize_event",
    "parse_timestamp",
    "utc_now",
]

EVENT_FIELDS = ("type", "agent", "session_id", "summary", "files_changed", "at", "data")
MAX_SUMMARY_CHARS = 10_000
MAX_TEXT_CHARS = 200
MAX_FILES = 1_000
MAX_DATA_BYTES = 64 * 1024
# SQLite integers are signed 64-bit: a larger LIMIT/OFFSET (schemathesis sent offset=2**63) raised
# OverflowError, a 500; past this bound there are no rows anyway.
_SQLITE_MAX_INT = 2**63 - 1
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:/-]{0,63}$")
_WORD = re.compile(r"\w+", re.UNICODE)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    spec TEXT NOT NULL,
    type TEXT NOT NULL,
    agent TEXT,
    session_id TEXT,
    summary TEXT NOT NULL DEFAULT '',
    files_changed TEXT NOT NULL DEFAULT '[]',
    at TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_spec ON events (spec, at DESC, id DESC);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5 (summary, type, files);
"""


def utc_now() -> str:
    return _format(dt.datetime.now(dt.UTC))


def _format(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_timestamp(value: object) -> dt.datetime | None:
    """An aware UTC datetime for an ISO 8601 string or date (naive means UTC); None if unreadable."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _optional_text(fields: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"event field {name!r} must be a string, not {type(value).__name__}")
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"event field {name!r} is {len(value)} characters, over {limit}")
    return value or None


def normalize_event(spec: str, event_type: object, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check and canonicalize one event; raises InvalidInput naming the field at fault."""
    unknown = sorted(set(fields) - set(EVENT_FIELDS) - {"spec"})
    if unknown:
        raise InvalidInput(
            f"unknown event field(s) {', '.join(unknown)}; allowed: {', '.join(EVENT_FIELDS)}"
        )
    if not isinstance(event_type, str) or not _TYPE.match(event_type):
        raise InvalidInput(
            f"event field 'type' must be a short name such as 'commit' or 'agent.finished' "
            f"(letters, digits, _ . : / -; at most 64), got {event_type!r}"
        )
    files = fields.get("files_changed") or []
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list | tuple) or not all(isinstance(f, str) for f in files):
        raise InvalidInput("event field 'files_changed' must be a list of file paths")
    if len(files) > MAX_FILES:
        raise InvalidInput(
            f"event field 'files_changed' lists {len(files)} files, over {MAX_FILES}"
        )
    data = fields.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInput("event field 'data' must be a JSON object")
    try:
        data_json = json.dumps(data, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"event field 'data' is not JSON-serializable: {err}") from None
    if len(data_json.encode()) > MAX_DATA_BYTES:
        raise InvalidInput(f"event field 'data' is over {MAX_DATA_BYTES} bytes as JSON")
    raw_at = fields.get("at")
    if raw_at is None or raw_at == "":
        at = utc_now()
    else:
        moment = parse_timestamp(raw_at)
        if moment is None:
            raise InvalidInput(f"event field 'at' must be an ISO 8601 timestamp, got {raw_at!r}")
        at = _format(moment)
    return {
        "spec": spec,
        "type": event_type,
        "agent": _optional_text(fields, "agent", MAX_TEXT_CHARS),
        "session_id": _optional_text(fields, "session_id", MAX_TEXT_CHARS),
        "summary": _optional_text(fields, "summary", MAX_SUMMARY_CHARS) or "",
        "files_changed": [f.strip() for f in files if f.strip()],
        "at": at,
        "data": json.loads(data_json),
    }


def _fts_query(text: str) -> str | None:
    """User text as an FTS5 query: every word must appear (quoted, so no FTS syntax leaks in)."""
    words = _WORD.findall(text)
    if not words:
        return None
    return " ".join('"' + word.replace('"', '""') + '"' for word in words[:32])


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "spec": row["spec"],
        "type": row["type"],
        "agent": row["agent"],
        "session_id": row["session_id"],
        "summary": row["summary"],
        "files_changed": json.loads(row["files_changed"]),
        "at": row["at"],
        "data": json.loads(row["data"]),
        "recorded_at": row["recorded_at"],
    }


class WalDatabase:
    """One SQLite file in WAL mode, with one connection per thread that stays open.

    Closing a database's last connection makes SQLite checkpoint and delete the WAL, a sync to
    disk every time; with connections kept open a write is a WAL append. Per thread, because a
    sqlite3 connection must not be shared between threads; readers never wait for the writer.
    """

    def __init__(self, path: str | Path, schema: str = ""):
        self.path = Path(path)
        self._local = threading.local()
        if schema:
            with self.connection() as conn:
                conn.executescript(schema)

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's autocommit connection; `BEGIN IMMEDIATE` for a write transaction."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        yield conn


class EventStore:
    """The `events` table of `<data_dir>/events.sqlite` and its full-text index."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.database = WalDatabase(self.path, _SCHEMA)

    def connect(self):
        return self.database.connection()

    def add(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Store a normalized event (see `normalize_event`); returns it with its id."""
        recorded = utc_now()
        with self.connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(
                    "INSERT INTO events (spec, type, agent, session_id, summary, files_changed,"
                    " at, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event["spec"],
                        event["type"],
                        event.get("agent"),
                        event.get("session_id"),
                        event.get("summary") or "",
                        json.dumps(list(event.get("files_changed") or []), ensure_ascii=False),
                        event["at"],
                        json.dumps(event.get("data") or {}, ensure_ascii=False, sort_keys=True),
                        recorded,
                    ),
                )
                event_id = cursor.lastrowid
                conn.execute(
                    "INSERT INTO events_fts (rowid, summary, type, files) VALUES (?, ?, ?, ?)",
                    (
                        event_id,
                        event.get("summary") or "",
                        event["type"],
                        " ".join(event.get("files_changed") or []),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            row = conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        return _row(row)

    def list(
        self,
        *,
        spec: str | None = None,
        query: str | None = None,
        event_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Events newest first, optionally for one spec, of one type, matching every query word."""
        clauses, params = [], []
        if spec is not None:
            clauses.append("e.spec = ?")
            params.append(spec)
        if event_type:
            clauses.append("e.type = ?")
            params.append(event_type)
        if query is not None and query.strip():
            match = _fts_query(query)
            if match is None:
                return []
            clauses.append("e.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)")
            params.append(match)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT e.* FROM events e {where} ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?"
        with self.connect() as conn:
            bounds = [min(max(0, n), _SQLITE_MAX_INT) for n in (limit, offset)]
            rows = conn.execute(sql, [*params, *bounds]).fetchall()
        return [_row(r) for r in rows]


def merge_history(
    transitions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]], limit: int
) -> list[dict[str, Any]]:
    """Transitions (from the frontmatter) and events (from the log) in one list, newest first.

    Timestamps come from different writers in different shapes (`2025-11-05`, `...Z`, offsets),
    so items are ordered by their parsed UTC moment; unreadable ones sort last.
    """
    items: list[dict[str, Any]] = [
        {"kind": "transition", "at": t.get("at") or None, "status": t.get("status")}
        for t in transitions
    ]
    items.extend({"kind": "event", **event} for event in events)
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)

    def moment(item: dict[str, Any]) -> dt.datetime:
        return parse_timestamp(item.get("at")) or oldest

    # Ties on the moment go to the later item: frontmatter lists transitions oldest first.
    ordered = sorted(enumerate(items), key=lambda pair: (moment(pair[1]), pair[0]), reverse=True)
    return [item for _, item in ordered][: max(0, limit)]
