"""The event log in a SQLite file beside the index: the embedded default (one host)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from .errors import EventLogMissing, EventLogUnavailable

EVENTS_DIR_ENV = "SPECMEM_EVENTS_DIR"
# How long a connection waits for another one's lock before the log is reported unavailable.
BUSY_SECONDS = 30.0

Setup = Callable[[sqlite3.Connection], object]


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

    dialect = "sqlite"

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

    @property
    def where(self) -> str:
        """The log as an error message or a status page names it."""
        return str(self.path)

    def exists(self) -> bool:
        """Whether there is a log to read yet (a read never creates one)."""
        return self.path.exists()

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
                    conn = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
                else:
                    # mode=rw: a read creates nothing, and no file is ever created again where
                    # the one this process used has gone.
                    uri = f"file:{quote(str(self.path))}?mode=rw"
                    conn = sqlite3.connect(
                        uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None
                    )
                _use_wal(conn)
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


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting as long as any other lock would be waited for. A switch that
    meets another connection's write lock on a log still in rollback mode (two processes
    creating it at once: `serve --workers 2`) is refused at once, without the busy handler;
    the mode is stored in the file, so once the other one has switched, this is a no-op."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except (sqlite3.OperationalError, sqlite3.DatabaseError) as err:
        if isinstance(err, sqlite3.ProgrammingError | sqlite3.IntegrityError):
            raise
        raise EventLogUnavailable(f"the event log {path} cannot be used: {err}") from None
