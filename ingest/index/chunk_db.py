"""The SQLite half of the index: every chunk with all its fields, and the bookkeeping that makes
ingest incremental (file stat + hash, spec metadata, generation). Lexical ranking itself is in
memory (retriever.ranking.warm_index, retriever.ranking.lexical_rank); this is the chunk database it loads.

SQLite is the index of record for WHAT is indexed: a chunk exists when its row does. Chroma
holds the vectors of those ids and may briefly hold more (written before this commit) or fewer
(a crash); `ingest.index.pipeline` reconciles the two. Readers should therefore take the chunk ids from
here and fetch vectors by id (`VectorStore.get_vectors`), and can use `generation()` to notice
that an ingest committed something new.

Read API (for retriever/): `all_chunks()`, `chunk_order()`, `chunks_by_id(ids)`, `chunks_of(spec)`,
`spec_records()`, `generation()`. Readers open it with `readonly=True`: no schema, no WAL switch,
no file created, so a server on a read-only data dir can read it (spec 043).

SQLite's own failures never leave this module raw (`sqlite_errors`): a file that is not a
database, is corrupt or lacks the tables is IndexDamaged naming it; a full disk DiskFull; a
read-only or unopenable one StorageUnavailable; a lock held too long BackendUnavailable.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import storage_errors
from ..errors import (
    IndexDamaged,
)
from .chunking import Chunk
from .layout import connect_sqlite_readonly, sqlite_error

__all__ = [
    "ChunkDatabase",
    "FileState",
    "SpecRecord",
    "SpecUpdate",
    "sqlite_errors",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,           -- relative to the specs dir: "045-x/README.md"
    spec TEXT NOT NULL,
    mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_spec ON files (spec);
CREATE TABLE IF NOT EXISTS specs (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL,              -- README content hash: the spec's version
    title TEXT NOT NULL,
    status TEXT,
    priority TEXT,
    tags TEXT NOT NULL,              -- JSON list
    parent TEXT,
    depends_on TEXT NOT NULL,        -- JSON list
    archived INTEGER NOT NULL,
    path TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    file TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    heading_path TEXT NOT NULL,      -- JSON list
    section_kind TEXT NOT NULL,
    text TEXT NOT NULL,
    header TEXT NOT NULL,
    line_start INTEGER NOT NULL,
    line_end INTEGER NOT NULL,
    tokens INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT,
    priority TEXT,
    tags TEXT NOT NULL,              -- JSON list
    model_tokens INTEGER NOT NULL
);
-- Covering: readers list every chunk's id and lines in order without touching the texts.
DROP INDEX IF EXISTS chunks_by_spec;
CREATE INDEX IF NOT EXISTS chunks_in_order ON chunks (spec, ordinal, id, line_start, line_end);
-- An FTS5 table over header and text was filled by every ingest and never queried (issue 12):
-- an index written before that is left without it at its next write, no rebuild needed.
DROP TABLE IF EXISTS chunks_fts;
"""

_CHUNK_COLUMNS = (
    "id, spec, file, ordinal, heading_path, section_kind, text, header, line_start, line_end, "
    "tokens, content_hash, title, status, priority, tags, model_tokens"
)
_IN_BATCH = 500  # ids per `IN (...)`: well under SQLite's default limit of 32,766 variables
_TABLES = ("meta", "files", "specs", "chunks")


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Raise SQLite's failures on `path` as the SpecmemErrors they mean (see `sqlite_error`);
    a row whose JSON cannot be decoded is damage too."""
    try:
        yield
    except sqlite3.Error as err:
        meaning = sqlite_error(err, path)
        if meaning is None:
            raise
        raise meaning from None
    except json.JSONDecodeError as err:
        raise IndexDamaged(str(path), f"holds a row that is not valid JSON ({err})") from None


@dataclass(frozen=True)
class FileState:
    """What a file looked like when it was indexed; stat first, hash when the stat differs."""

    path: str
    spec: str
    mtime_ns: int
    size: int
    hash: str


@dataclass(frozen=True)
class SpecRecord:
    """Spec-level metadata as indexed (filters and hits read it without parsing the spec)."""

    name: str
    hash: str
    title: str
    status: str | None
    priority: str | None
    tags: tuple[str, ...]
    parent: str | None
    depends_on: tuple[str, ...]
    archived: bool
    path: str


def _chunk_row(chunk: Chunk) -> tuple[Any, ...]:
    return (
        chunk.id,
        chunk.spec,
        chunk.file,
        chunk.ordinal,
        json.dumps(list(chunk.heading_path)),
        chunk.section_kind,
        chunk.text,
        chunk.header,
        chunk.line_start,
        chunk.line_end,
        chunk.tokens,
        chunk.content_hash,
        chunk.title,
        chunk.status,
        chunk.priority,
        json.dumps(list(chunk.tags)),
        chunk.model_tokens,
    )


def _chunk_of(row: Sequence[Any]) -> Chunk:
    # _CHUNK_COLUMNS is in the order of Chunk's fields; only the JSON lists need decoding.
    values = list(row)
    values[4] = tuple(json.loads(values[4]))
    values[15] = tuple(json.loads(values[15]))
    return Chunk(*values)


@dataclass
class SpecUpdate:
    """Everything one spec contributes to the index, replaced as a unit."""

    record: SpecRecord
    chunks: list[Chunk]
    files: list[FileState]


class ChunkDatabase:
    """One SQLite database in WAL mode. Thread-safe through one lock around one connection.

    `readonly=True` (readers) opens an existing database without writing anything and checks
    that it has the index's tables; the default (ingest) creates the schema."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._lock = threading.RLock()
        with sqlite_errors(self.path):
            if readonly:
                self._db = connect_sqlite_readonly(self.path)
                self._check_tables()
                return
            with storage_errors(self.path.parent, "create"):
                self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT), so a
            # whole ingest step commits atomically or not at all.
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a kill
                self._db.execute("PRAGMA busy_timeout=5000")
                self._db.executescript(_SCHEMA)
            except BaseException:
                self._db.close()
                raise

    def _check_tables(self) -> None:
        try:
            found = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        except BaseException:
            self._db.close()
            raise
        missing = [table for table in _TABLES if table not in found]
        if missing:
            self._db.close()
            raise IndexDamaged(str(self.path), f"lacks the index's tables ({', '.join(missing)})")

    @contextlib.contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with SQLite's failures raised as what they mean."""
        with self._lock, sqlite_errors(self.path):
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[ChunkDatabase]:
        """Every read inside sees one committed state, however many ingests commit meanwhile: a
        WAL read transaction, with the connection lock held so no other thread's statement runs
        inside it. Readers that read several tables use it instead of retrying until nothing
        moved, which under a stream of status callbacks may never happen."""
        with self._using() as db:
            db.execute("BEGIN")
            try:
                yield self
            finally:
                db.execute("COMMIT")  # read-only: only ends the snapshot

    def __enter__(self) -> ChunkDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta ------------------------------------------------------------------------------------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self._using():
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self._using():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def generation(self) -> int:
        """Increases with every committed change: readers rebuild their caches when it moves."""
        value = self.get_meta("generation", "0") or "0"
        if not value.isdigit():
            raise IndexDamaged(str(self.path), f"its generation is {value[:40]!r}, not a number")
        return int(value)

    @property
    def build(self) -> str:
        """The build id of the index this database belongs to (ingest.index.layout); "" if none."""
        return self.get_meta("build", "") or ""

    def set_build(self, build: str) -> None:
        self.set_meta("build", build)

    @property
    def dirty(self) -> bool:
        """True from before an ingest writes vectors until both stores agree again."""
        return self.get_meta("dirty") == "1"

    def mark_dirty(self, dirty: bool) -> None:
        self.set_meta("dirty", "1" if dirty else "0")

    # -- bookkeeping -----------------------------------------------------------------------------

    def file_states(self) -> dict[str, FileState]:
        with self._using():
            rows = self._db.execute("SELECT path, spec, mtime_ns, size, hash FROM files").fetchall()
        return {row[0]: FileState(*row) for row in rows}

    def spec_records(self) -> dict[str, SpecRecord]:
        with self._using():
            rows = self._db.execute(
                "SELECT name, hash, title, status, priority, tags, parent, depends_on, archived, "
                "path FROM specs ORDER BY name"
            ).fetchall()
            return {
                row[0]: SpecRecord(
                    name=row[0],
                    hash=row[1],
                    title=row[2],
                    status=row[3],
                    priority=row[4],
                    tags=tuple(json.loads(row[5])),
                    parent=row[6],
                    depends_on=tuple(json.loads(row[7])),
                    archived=bool(row[8]),
                    path=row[9],
                )
                for row in rows
            }

    def chunk_ids(self, spec: str | None = None) -> set[str]:
        with self._using():
            if spec is None:
                rows = self._db.execute("SELECT id FROM chunks").fetchall()
            else:
                rows = self._db.execute("SELECT id FROM chunks WHERE spec = ?", (spec,)).fetchall()
        return {row[0] for row in rows}

    def chunk_ids_by_spec(self) -> dict[str, set[str]]:
        result: dict[str, set[str]] = {}
        with self._using():
            for chunk_id, spec in self._db.execute("SELECT id, spec FROM chunks"):
                result.setdefault(spec, set()).add(chunk_id)
        return result

    def commit(
        self,
        updates: Iterable[SpecUpdate],
        removed_specs: Iterable[str] = (),
        touched_files: Iterable[FileState] = (),
        *,
        clear_dirty: bool = False,
    ) -> int:
        """Replace the given specs, drop the removed ones and refresh touched files' stats, in
        ONE transaction; returns the new generation."""
        with self._using():
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for name in removed_specs:
                    self._drop_spec(name)
                for update in updates:
                    self._drop_spec(update.record.name)
                    self._insert_spec(update)
                db.executemany(
                    "INSERT OR REPLACE INTO files (path, spec, mtime_ns, size, hash) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(f.path, f.spec, f.mtime_ns, f.size, f.hash) for f in touched_files],
                )
                generation = self.generation() + 1
                self.set_meta("generation", str(generation))
                if clear_dirty:
                    self.mark_dirty(False)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return generation

    def forget_specs(self, names: Iterable[str]) -> None:
        """Drop specs' file stats so the next ingest re-reads and re-embeds them."""
        with self._using():
            self._db.executemany("DELETE FROM files WHERE spec = ?", [(n,) for n in names])

    def clear(self) -> None:
        """Empty every table (a full rebuild), in one transaction."""
        with self._using():
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            for table in ("files", "specs", "chunks"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key != 'generation'")
            db.execute("COMMIT")

    def _drop_spec(self, name: str) -> None:
        db = self._db
        db.execute("DELETE FROM chunks WHERE spec = ?", (name,))
        db.execute("DELETE FROM specs WHERE name = ?", (name,))
        db.execute("DELETE FROM files WHERE spec = ?", (name,))

    def _insert_spec(self, update: SpecUpdate) -> None:
        db = self._db
        record = update.record
        db.execute(
            "INSERT INTO specs (name, hash, title, status, priority, tags, parent, depends_on, "
            "archived, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.name,
                record.hash,
                record.title,
                record.status,
                record.priority,
                json.dumps(list(record.tags)),
                record.parent,
                json.dumps(list(record.depends_on)),
                int(record.archived),
                record.path,
            ),
        )
        placeholders = ", ".join("?" * 17)
        db.executemany(
            f"INSERT INTO chunks ({_CHUNK_COLUMNS}) VALUES ({placeholders})",
            [_chunk_row(chunk) for chunk in update.chunks],
        )
        db.executemany(
            "INSERT OR REPLACE INTO files (path, spec, mtime_ns, size, hash) VALUES (?, ?, ?, ?, ?)",
            [(f.path, f.spec, f.mtime_ns, f.size, f.hash) for f in update.files],
        )

    # -- reading ---------------------------------------------------------------------------------

    def all_chunks(self) -> list[Chunk]:
        """Every chunk, grouped by spec in name order, in reading order within a spec."""
        with self._using():
            rows = self._db.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks ORDER BY spec, ordinal"
            ).fetchall()
            return [_chunk_of(row) for row in rows]

    def chunk_order(self) -> list[tuple[str, int, int]]:
        """(chunk id, line_start, line_end) of every chunk in `all_chunks` order, without the
        texts: what a reader compares with its copy to fetch only the chunks that changed. The
        lines are there because they move without changing the id (a transition appended to the
        frontmatter shifts the whole body)."""
        with self._using():
            return self._db.execute(
                "SELECT id, line_start, line_end FROM chunks ORDER BY spec, ordinal"
            ).fetchall()

    def chunks_by_id(self, ids: Sequence[str]) -> list[Chunk]:
        """The chunks with these ids that exist (in no particular order)."""
        found: list[Chunk] = []
        wanted = list(ids)
        with self._using():
            for start in range(0, len(wanted), _IN_BATCH):
                batch = wanted[start : start + _IN_BATCH]
                marks = ",".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", batch
                ).fetchall()
                found.extend(_chunk_of(row) for row in rows)
        return found

    def chunks_of(self, spec: str) -> list[Chunk]:
        with self._using():
            rows = self._db.execute(
                f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE spec = ? ORDER BY ordinal", (spec,)
            ).fetchall()
            return [_chunk_of(row) for row in rows]

    def count_chunks(self) -> int:
        with self._using():
            return int(self._db.execute("SELECT count(*) FROM chunks").fetchone()[0])
