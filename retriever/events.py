"""Activity events: what agents and tools did on a spec, kept durably beside the index.

An observability tool (Devlog) or an orchestrator reports `{spec, type, agent, session_id, summary,
files_changed, at, data}`; specmem stores it in the event log, `events.sqlite` (SQLite in WAL
mode, so readers never wait for the one writer), keeps a full-text index over the summary and the
changed files, and hands the events to `SpecMemory.history` so context bundles can show what
happened. The same file holds the HTTP idempotency keys (retriever.http.idempotency), so that an
event and the key that asked for it commit in one transaction.

Events are a log, not a cache (spec 084). The log lives in `$SPECMEM_EVENTS_DIR` when that is set,
else in the data dir beside the index, which `ingest --full` rebuilds around it without touching
it. A process remembers which file it opened (device and inode, pinned by an open descriptor) and
refuses every later operation with `event_log_missing` once that file is deleted or replaced:
acknowledging events into a file nobody will read again, or re-creating an empty log under a
running server, would lose history without a word. Each thread (uvicorn's workers, the MCP
server's) gets its own connection to the file, kept open; `BEGIN IMMEDIATE` serializes writers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ingest.config import Settings
from ingest.errors import BackendUnavailable, InvalidInput
from ingest.index.layout import IndexLayout

__all__ = [
    "EVENTS_DIR_ENV",
    "EVENT_FIELDS",
    "EventHook",
    "EventLogMissing",
    "EventLogUnavailable",
    "EventStore",
    "Unreadable",
    "WalDatabase",
    "event_log_path",
    "insert_event",
    "normalize_event",
    "parse_timestamp",
    "utc_now",
]

EVENT_FIELDS = ("type", "agent", "session_id", "summary", "files_changed", "at", "data")
EVENTS_DIR_ENV = "SPECMEM_EVENTS_DIR"
MAX_SUMMARY_CHARS = 10_000
MAX_TEXT_CHARS = 200
MAX_PATH_CHARS = 4_096
MAX_FILES = 1_000
MAX_DATA_BYTES = 64 * 1024
MAX_DATA_DEPTH = 32
# SQLite integers are signed 64-bit: a larger LIMIT/OFFSET (schemathesis sent offset=2**63) raised
# OverflowError, a 500; past this bound there are no rows anyway. Integers in `data` are held to
# the same range: every consumer of the log (SQLite's JSON functions, JavaScript clients at 2**53
# and beyond, Python past 4,300 digits) reads a larger one differently or not at all.
_SQLITE_MAX_INT = 2**63 - 1
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:/-]{0,63}")
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


class EventLogMissing(BackendUnavailable):
    """The log this process opened was deleted or replaced underneath it (HTTP 503)."""

    code = "event_log_missing"


class EventLogUnavailable(BackendUnavailable):
    """SQLite could not read or write the log: disk full, read-only, locked too long (HTTP 503)."""

    code = "event_log_unavailable"


def event_log_path(settings: Settings) -> Path:
    """`$SPECMEM_EVENTS_DIR/events.sqlite` when set, else `<data_dir>/events.sqlite`."""
    return IndexLayout(settings.data_dir).event_log_path(settings.events_dir)


def utc_now() -> str:
    return _format(dt.datetime.now(dt.UTC))


def _format(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Unreadable:
    """A JSON value the parser could not turn into a Python one, such as an integer past the
    4,300 digits Python converts (retriever.http.routes_events): kept as a placeholder so that
    validation can name the field it sits in, then refused."""

    def __init__(self, description: str):
        self.description = description

    def __repr__(self) -> str:
        return self.description


class _OutOfRange(Exception):
    """A timestamp that reads but cannot be expressed in UTC (year 1 or 9999 plus an offset)."""


def _utc_moment(value: object) -> dt.datetime | None:
    """`value` as an aware UTC datetime; None if it is no timestamp, _OutOfRange if it is one
    that UTC cannot hold."""
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
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise _OutOfRange from None


def parse_timestamp(value: object) -> dt.datetime | None:
    """An aware UTC datetime for an ISO 8601 string or date (naive means UTC); None if unreadable,
    including a moment outside what UTC can hold. Never raises: history sorts by it."""
    try:
        return _utc_moment(value)
    except _OutOfRange:
        return None


def _shown(value: object) -> str:
    """`value` for an error message: short, and safe for an integer of any length (repr() of one
    past 4,300 digits raises)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        if value.bit_length() < 13_000:  # under Python's 4,300-digit limit for str()
            return f"an integer of {len(str(abs(value)))} digits"
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # a foreign object's repr is not ours to trust
        text = f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def _check_text(text: str, name: str) -> str:
    """SQLite stores UTF-8: a lone surrogate (valid in a JSON string) cannot be written."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"event field '{name}' is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    return text


def _optional_text(fields: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"event field '{name}' must be a string, not {type(value).__name__}")
    value = _check_text(value, name).strip()
    if len(value) > limit:
        raise InvalidInput(f"event field '{name}' is {len(value)} characters, over {limit}")
    return value or None


def _key_path(path: str, key: str) -> str:
    shown = key if len(key) <= 40 else key[:37] + "..."
    return f"{path}.{shown}" if shown.isidentifier() else f"{path}[{json.dumps(shown)}]"


def _check_json(value: object, name: str) -> None:
    """Refuse what a later reader of the log could not take back: NaN and infinities (Python's
    json writes them, JSON has none), integers past 64 bits, text that is not UTF-8, values of
    other types, nesting past MAX_DATA_DEPTH. Iterative, so depth cannot exhaust the stack."""
    stack: list[tuple[object, str, int]] = [(value, name, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DATA_DEPTH:
            raise InvalidInput(f"event field '{path}' nests deeper than {MAX_DATA_DEPTH} levels")
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, Unreadable):
            raise InvalidInput(
                f"event field '{path}' is {item.description}, which cannot be stored"
            )
        if isinstance(item, int):
            if not -_SQLITE_MAX_INT <= item <= _SQLITE_MAX_INT:
                raise InvalidInput(
                    f"event field '{path}' is {_shown(item)}, outside the signed 64-bit range; "
                    "send it as a string"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(f"event field '{path}' is {item!r}; JSON has no NaN or infinity")
        elif isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise InvalidInput(f"event field '{path}' has a key that is not a string")
                _check_text(key, path)
                stack.append((sub, _key_path(path, key), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
        else:
            raise InvalidInput(
                f"event field '{path}' holds a {type(item).__name__}, which is not a JSON value"
            )


def _event_time(raw: object) -> str:
    if raw is None or raw == "":
        return utc_now()
    try:
        moment = _utc_moment(raw)
    except _OutOfRange:
        raise InvalidInput(
            f"event field 'at' is {_shown(raw)}, outside years 0001-9999 once converted to UTC"
        ) from None
    if moment is None:
        raise InvalidInput(f"event field 'at' must be an ISO 8601 timestamp, got {_shown(raw)}")
    return _format(moment)


def _files(raw: object) -> list[str]:
    files = raw or []
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list | tuple) or not all(isinstance(f, str) for f in files):
        raise InvalidInput("event field 'files_changed' must be a list of file paths")
    if len(files) > MAX_FILES:
        raise InvalidInput(
            f"event field 'files_changed' lists {len(files)} files, over {MAX_FILES}"
        )
    kept = []
    for i, path in enumerate(files):
        path = _check_text(path, f"files_changed[{i}]").strip()
        if len(path) > MAX_PATH_CHARS:
            raise InvalidInput(
                f"event field 'files_changed[{i}]' is {len(path)} characters, over {MAX_PATH_CHARS}"
            )
        if path:
            kept.append(path)
    return kept


def normalize_event(spec: str, event_type: object, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check and canonicalize one event; raises InvalidInput naming the field at fault.

    What comes back can be stored, read back and rendered as JSON by every door: a value that
    would be accepted now and break a later read is refused here instead.
    """
    unknown = sorted(str(name) for name in set(fields) - set(EVENT_FIELDS) - {"spec"})
    if unknown:
        raise InvalidInput(
            f"unknown event field(s) {', '.join(unknown)}; allowed: {', '.join(EVENT_FIELDS)}"
        )
    if not isinstance(event_type, str) or not _TYPE.fullmatch(event_type):
        raise InvalidInput(
            f"event field 'type' must be a short name such as 'commit' or 'agent.finished' "
            f"(letters, digits, _ . : / -; at most 64), got {_shown(event_type)}"
        )
    files = _files(fields.get("files_changed"))
    data = fields.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInput("event field 'data' must be a JSON object")
    _check_json(data, "data")
    data_json = json.dumps(data, ensure_ascii=False, sort_keys=True, allow_nan=False)
    if len(data_json.encode()) > MAX_DATA_BYTES:
        raise InvalidInput(f"event field 'data' is over {MAX_DATA_BYTES} bytes as JSON")
    return {
        "spec": spec,
        "type": event_type,
        "agent": _optional_text(fields, "agent", MAX_TEXT_CHARS),
        "session_id": _optional_text(fields, "session_id", MAX_TEXT_CHARS),
        "summary": _optional_text(fields, "summary", MAX_SUMMARY_CHARS) or "",
        "files_changed": files,
        "at": _event_time(fields.get("at")),
        "data": json.loads(data_json),
    }


def _fts_query(text: str) -> str | None:
    """User text as an FTS5 query: every word must appear (quoted, so no FTS syntax leaks in)."""
    words = _WORD.findall(text)
    if not words:
        return None
    return " ".join('"' + word.replace('"', '""') + '"' for word in words[:32])


def _stored_json(text: str) -> Any:
    # Most events carry no files and no data: those need no parser (a bundle reads ~40 rows).
    if text == "[]":
        return []
    if text == "{}":
        return {}
    # Rows written before NaN and infinity were refused hold them; read them as null, which is
    # what every JSON encoder downstream would need them to be.
    return json.loads(text, parse_constant=lambda _: None)


def _row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "spec": row["spec"] or None,  # none yet: a Devlog event whose session is not linked
        "type": row["type"],
        "agent": row["agent"],
        "session_id": row["session_id"],
        "summary": row["summary"],
        "files_changed": _stored_json(row["files_changed"]),
        "at": row["at"],
        "data": _stored_json(row["data"]),
        "recorded_at": row["recorded_at"],
    }


Setup = Callable[[sqlite3.Connection], object]
_Events = list[dict[str, Any]]  # named outside EventStore, whose `list` method shadows the type


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class WalDatabase:
    """One SQLite file in WAL mode, with one connection per thread that stays open, and the
    identity (device, inode) of the file this object first found or created.

    Closing a database's last connection makes SQLite checkpoint and delete the WAL, a sync to
    disk every time; with connections kept open a write is a WAL append. Per thread, because a
    sqlite3 connection must not be shared between threads; readers never wait for the writer.

    Nothing is created until the first write: `reader()` yields None while no file exists. Once
    a file has been seen, a descriptor stays open on it, so its inode cannot be reused, and every
    operation checks that the path still names that inode; when it does not, EventLogMissing.
    """

    def __init__(self, path: str | Path, schema: str = ""):
        self.path = Path(path)
        self._local = threading.local()
        self._guard = threading.Lock()
        self._setups: list[Setup] = []
        if schema:
            self.require(lambda conn: conn.executescript(schema))
        self._identity: tuple[int, int] | None = None
        self._pin(_identity(self.path))

    def _pin(self, identity: tuple[int, int] | None) -> None:
        if identity is None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) != identity:
            os.close(fd)  # replaced between the two calls: pin nothing, the next open decides
            return
        self._identity = identity
        weakref.finalize(self, os.close, fd)

    def require(self, setup: Setup) -> None:
        """Run `setup` (CREATE TABLE IF NOT EXISTS, migrations) on each connection before use."""
        self._setups.append(setup)

    def check(self) -> None:
        """EventLogMissing unless the path still names the file this object opened."""
        if self._identity is None:
            return
        now = _identity(self.path)
        if now != self._identity:
            what = "deleted" if now is None else "replaced by another file"
            raise EventLogMissing(
                f"the event log {self.path} was {what} while specmem was running; refusing to "
                "record or read events that would be lost. Restore the file and restart "
                "specmem, or restart it to begin a new, empty log"
            )

    def _open(self, create: bool) -> sqlite3.Connection | None:
        with self._guard:
            first = self._identity is None
            try:
                if first and create:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
                else:
                    # mode=rw: a read creates nothing, and no file is ever created again where
                    # the one this process used has gone.
                    uri = f"file:{quote(str(self.path))}?mode=rw"
                    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
            except (OSError, sqlite3.Error) as err:
                self.check()
                if first and not create and not self.path.exists():
                    return None
                raise EventLogUnavailable(
                    f"cannot open the event log {self.path}: {err}; {EVENTS_DIR_ENV} moves it"
                ) from None
            if first:
                self._pin(_identity(self.path))
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _thread_connection(self, create: bool) -> sqlite3.Connection | None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open(create)
            if conn is None:
                return None
            self._local.conn = conn
            self._local.ready = 0
        self.check()
        while self._local.ready < len(self._setups):
            self._setups[self._local.ready](conn)
            self._local.ready += 1
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's autocommit connection, creating the file on first use; `BEGIN
        IMMEDIATE` for a write transaction (or use `transaction()`)."""
        with _sqlite_errors(self.path):
            conn = self._thread_connection(create=True)
            if conn is None:  # create=True opens or raises; this keeps the type checker honest
                raise EventLogUnavailable(f"cannot open the event log {self.path}")
            yield conn

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection | None]:
        """This thread's connection, or None while there is no file: a read creates nothing."""
        with _sqlite_errors(self.path):
            yield self._thread_connection(create=False)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that counts only if the file is still the log when it commits:
        a commit into a deleted file is reported as EventLogMissing, not as success."""
        with self.connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
            self.check()


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as err:
        if isinstance(err, sqlite3.ProgrammingError | sqlite3.IntegrityError):
            raise
        raise EventLogUnavailable(f"the event log {path} cannot be used: {err}") from None


class EventHook(Protocol):
    """Work done in the transaction that stores an event (retriever.http.idempotency's keys)."""

    def before(self, conn: sqlite3.Connection) -> dict[str, Any] | None:
        """An event already stored for this request: store nothing and return it instead."""

    def after(self, conn: sqlite3.Connection, stored: dict[str, Any]) -> None:
        """Record whatever must commit together with `stored`."""


class EventStore:
    """The `events` table of the event log and its full-text index."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.database = WalDatabase(self.path, _SCHEMA)

    def connect(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self.database.connection()

    def add(self, event: Mapping[str, Any], *, within: EventHook | None = None) -> dict[str, Any]:
        """Store a normalized event (see `normalize_event`); returns it with its id.

        `within` runs in the same transaction: its `before` may return an event stored earlier
        (then nothing is inserted), its `after` sees the stored row before the commit.
        """
        recorded = utc_now()
        with self.database.transaction() as conn:
            if within is not None:
                earlier = within.before(conn)
                if earlier is not None:
                    return earlier
            event_id = insert_event(conn, event, recorded)
            stored = _row(conn.execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone())
            if within is not None:
                within.after(conn, stored)
        return stored

    def specs_naming(self, files: Sequence[str]) -> dict[str, set[str]]:
        """Each of `files` that an event names in `files_changed`, to the specs of those events
        (attribution's linked-path evidence)."""
        found: dict[str, set[str]] = {}
        wanted = [*dict.fromkeys(files)]
        with self.database.reader() as conn:
            if conn is None or not wanted:
                return found
            # Bound parameters are at most 999 on older SQLite builds; a request holds 1,000.
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                rows = conn.execute(
                    "SELECT DISTINCT e.spec, f.value FROM events e, json_each(e.files_changed) f "
                    f"WHERE f.value IN ({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                for spec, path in rows:
                    found.setdefault(path, set()).add(spec)
        return found

    def list(
        self,
        *,
        spec: str | None = None,
        query: str | None = None,
        event_type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Events newest first, optionally for one spec, of one type, matching every query word.
        No log yet means no events (and no file is created)."""
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
        with self.database.reader() as conn:
            if conn is None:
                return []
            bounds = [min(max(0, n), _SQLITE_MAX_INT) for n in (limit, offset)]
            rows = conn.execute(sql, [*params, *bounds]).fetchall()
        return [_row(r) for r in rows]

    def recent_by_spec(self, specs: Sequence[str], limit: int) -> dict[str, _Events]:
        """The `limit` newest events of each of `specs`, in one query: a context bundle asks for
        twenty specs' history at once (spec 077). Specs without events are left out."""
        found: dict[str, _Events] = {}
        names = [*dict.fromkeys(specs)]
        if not names:
            return found
        with self.database.reader() as conn:
            if conn is None:
                return found
            bound = min(max(0, limit), _SQLITE_MAX_INT)
            rows = conn.execute(_recent_sql(len(names)), [*names, bound]).fetchall()
        for row in rows:
            found.setdefault(row["spec"], []).append(_row(row))
        return found


def insert_event(conn: sqlite3.Connection, event: Mapping[str, Any], recorded: str) -> int:
    """Insert a normalized event and its full-text row inside the caller's transaction; its id.
    The one place rows enter `events`: EventStore.add and Devlog's batches (retriever.devlog)."""
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
            json.dumps(
                event.get("data") or {}, ensure_ascii=False, sort_keys=True, allow_nan=False
            ),
            recorded,
        ),
    )
    event_id = int(cursor.lastrowid or 0)
    conn.execute(
        "INSERT INTO events_fts (rowid, summary, type, files) VALUES (?, ?, ?, ?)",
        (
            event_id,
            event.get("summary") or "",
            event["type"],
            " ".join(event.get("files_changed") or []),
        ),
    )
    return event_id


def _recent_sql(count: int) -> str:
    marks = ", ".join("?" * count)
    return (
        "SELECT * FROM (SELECT e.*, ROW_NUMBER() OVER (PARTITION BY e.spec "
        f"ORDER BY e.at DESC, e.id DESC) AS nth FROM events e WHERE e.spec IN ({marks})) "
        "WHERE nth <= ? ORDER BY spec, nth"
    )
