"""The event log on a PostgreSQL server (`SPECMEM_EVENTS_URL`): for more than one host.

The same tables, the same SQL text and the same transaction semantics as the SQLite log
(retriever.events.sqlite_log), so every store above it (events, idempotency keys, Devlog's
tables) runs unchanged on either:

- Statements are written once, with SQLite's `?` placeholders; the connection turns them into
  psycopg's `%s`. Rows read by position and by column name, as sqlite3.Row does.
- SQLite serializes writers (`BEGIN IMMEDIATE`); here a write transaction first takes one
  transaction-scoped advisory lock, so writers are serialized the same way across every process
  and host that shares the database. A read-then-write such as an idempotency claim cannot race.
- Connections come from a small pool per process, not one per thread: uvicorn runs sync routes
  on forty threads, and forty connections per worker would exhaust the server's limit.
- The schema is server state: each store's setup runs once per process, under the same lock, so
  two processes starting together do not race on CREATE TABLE.

There is no file to lose here, so `check()` has nothing to check: the server's own durability
(and its backups) hold the log.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool

from ingest.errors import InvalidInput

from .errors import EventLogUnavailable

EVENTS_URL_ENV = "SPECMEM_EVENTS_URL"
# pg_advisory_xact_lock's key for "a write to the event log": any fixed 64-bit number that other
# software on the same database is unlikely to choose.
_WRITE_LOCK = 0x5BEC_3E3E_0001
_POOL_SIZE = 8
_WAIT_SECONDS = 30.0
_CONNECT_SECONDS = 10

Setup = Callable[["Connection"], object]


def redacted(url: str) -> str:
    """`url` without its password, for messages and status pages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class Row(tuple[Any, ...]):
    """A result row that reads by position, by unpacking and by column name, as sqlite3.Row."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            key = self._index[key]
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._index)


def _rows(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: n for n, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


class Connection:
    """A pooled psycopg connection that takes the SQLite log's statements as they are written."""

    def __init__(self, raw: psycopg.Connection[Any]):
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if not params:
            return self.raw.execute(sql)
        return self.raw.execute(sql.replace("%", "%%").replace("?", "%s"), list(params))

    def executescript(self, sql: str) -> None:
        self.raw.execute(sql)  # several statements, no parameters: one simple query


class PostgresDatabase:
    """The event log's tables in one PostgreSQL database, through a pool of connections."""

    dialect = "postgresql"

    def __init__(self, url: str):
        self.url = url
        self.where = redacted(url)
        self._guard = threading.Lock()
        self._setups: list[Setup] = []
        self._ready = 0
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None

    def exists(self) -> bool:
        return True

    def require(self, setup: Setup) -> None:
        """Run `setup` (CREATE TABLE IF NOT EXISTS) once in this process before the next use."""
        self._setups.append(setup)

    def check(self) -> None:
        """Nothing to check: a server holds the log, not a file that can vanish underneath."""

    def _open_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        if self._pool is not None:  # every operation asks: no lock once the pool exists
            return self._pool
        with self._guard:
            if self._pool is None:
                pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
                    self.url,
                    min_size=1,
                    max_size=_POOL_SIZE,
                    timeout=_WAIT_SECONDS,
                    open=False,
                    name="specmem-events",
                    kwargs={
                        "autocommit": True,
                        "row_factory": _rows,
                        "connect_timeout": _CONNECT_SECONDS,
                        "application_name": "specmem",
                    },
                )
                pool.open(wait=False)
                weakref.finalize(self, pool.close, 2.0)
                self._pool = pool
            return self._pool

    def _set_up(self, conn: Connection) -> None:
        if self._ready == len(self._setups):
            return
        with self._guard:
            while self._ready < len(self._setups):
                with conn.raw.transaction():
                    conn.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
                    self._setups[self._ready](conn)
                self._ready += 1

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection in autocommit mode, with every store's tables in place."""
        with _postgres_errors(self.where), self._open_pool().connection() as raw:
            conn = Connection(raw)
            self._set_up(conn)
            yield conn

    def reader(self) -> contextlib.AbstractContextManager[Connection]:
        """As `connection()`: there is always a log to read on a server."""
        return self.connection()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction, serialized with every other writer to this database."""
        # A commit that fails on the network raises inside connection(), whose _postgres_errors
        # makes it a 503.
        with self.connection() as conn, conn.raw.transaction():
            conn.execute(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
            yield conn


@contextmanager
def _postgres_errors(where: str) -> Iterator[None]:
    """The server or the network failing is a 503 naming the log; a value the server cannot
    store is the request's fault (the stores check their input, this is the last line); any
    other refused statement is a bug and is raised as it is."""
    try:
        yield
    except psycopg.DataError as err:
        detail = " ".join(str(err).split())
        raise InvalidInput(f"the event log {where} cannot store a value: {detail}") from None
    except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as err:
        detail = " ".join(str(err).split()) or type(err).__name__
        raise EventLogUnavailable(
            f"the event log {where} cannot be used: {detail}; {EVENTS_URL_ENV} names it"
        ) from None
