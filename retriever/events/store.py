"""The `events` table and its full-text index, on whichever engine holds the log."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from ingest.config import Settings
from ingest.index.layout import IndexLayout

from .dialects import DIALECTS, EVENT_COLUMNS
from .postgres_log import PostgresDatabase
from .records import MAX_INT, event_row, query_words, utc_now
from .sqlite_log import WalDatabase

_Events = list[dict[str, Any]]  # named outside EventStore, whose `list` method shadows the type


class EventDatabase(Protocol):
    """What every store in the log needs of its engine (sqlite_log, postgres_log)."""

    dialect: str

    @property
    def where(self) -> str: ...

    def exists(self) -> bool: ...

    def require(self, setup: Any) -> None: ...

    def check(self) -> None: ...

    def connection(self) -> contextlib.AbstractContextManager[Any]: ...

    def reader(self) -> contextlib.AbstractContextManager[Any]: ...

    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...


def event_log_path(settings: Settings) -> Path:
    """`$SPECMEM_EVENTS_DIR/events.sqlite` when set, else `<data_dir>/events.sqlite`."""
    return IndexLayout(settings.data_dir).event_log_path(settings.events_dir)


def open_event_log(settings: Settings) -> EventDatabase:
    """The PostgreSQL database `SPECMEM_EVENTS_URL` names, else the SQLite file."""
    if settings.events_url:
        return PostgresDatabase(settings.events_url)
    return WalDatabase(event_log_path(settings))


def as_database(log: str | Path | EventDatabase) -> EventDatabase:
    return WalDatabase(log) if isinstance(log, str | Path) else log


class EventHook(Protocol):
    """Work done in the transaction that stores an event (retriever.http.idempotency's keys)."""

    def before(self, conn: Any) -> dict[str, Any] | None:
        """An event already stored for this request: store nothing and return it instead."""

    def after(self, conn: Any, stored: dict[str, Any]) -> None:
        """Record whatever must commit together with `stored`."""


class EventStore:
    """The `events` table of the event log and its full-text index."""

    def __init__(self, log: str | Path | EventDatabase):
        self.database = as_database(log)
        self.sql = DIALECTS[self.database.dialect]
        self.database.require(lambda conn: conn.executescript(self.sql.schema))

    def connect(self) -> contextlib.AbstractContextManager[Any]:
        return self.database.connection()

    def insert(self, conn: Any, event: Mapping[str, Any], recorded: str) -> int:
        """Insert a normalized event and its full-text row inside the caller's transaction; its
        id. The one place rows enter `events`: `add` and Devlog's batches (retriever.devlog)."""
        return self.sql.insert(conn, event, recorded)

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
            event_id = self.insert(conn, event, recorded)
            row = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events e WHERE e.id = ?", (event_id,)
            ).fetchone()
            stored = event_row(row)
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
                rows = conn.execute(self.sql.naming_files(len(part)), part).fetchall()
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
        clauses: list[str] = []
        params: list[Any] = []
        if spec is not None:
            clauses.append("e.spec = ?")
            params.append(spec)
        if event_type:
            clauses.append("e.type = ?")
            params.append(event_type)
        if query is not None and query.strip():
            words = query_words(query)
            if not words:
                return []
            clause, values = self.sql.matching(words)
            clauses.append(clause)
            params.extend(values)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {EVENT_COLUMNS} FROM events e {where}"
            " ORDER BY e.at DESC, e.id DESC LIMIT ? OFFSET ?"
        )
        with self.database.reader() as conn:
            if conn is None:
                return []
            bounds = [min(max(0, n), MAX_INT) for n in (limit, offset)]
            rows = conn.execute(sql, [*params, *bounds]).fetchall()
        return [event_row(r) for r in rows]

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
            bound = min(max(0, limit), MAX_INT)
            rows = conn.execute(_recent_sql(len(names)), [*names, bound]).fetchall()
        for row in rows:
            found.setdefault(row["spec"], []).append(event_row(row))
        return found


def _recent_sql(count: int) -> str:
    marks = ", ".join("?" * count)
    return (
        f"SELECT * FROM (SELECT {EVENT_COLUMNS}, ROW_NUMBER() OVER (PARTITION BY e.spec "
        f"ORDER BY e.at DESC, e.id DESC) AS nth FROM events e WHERE e.spec IN ({marks})) AS ranked "
        "WHERE nth <= ? ORDER BY spec, nth"
    )
