"""What lives in the data dir, and the manifest that says which model built the index.

    <data dir>/                   default `.specmem` beside the specs dir
    ├── manifest.json             format, model name, dimension, build id (written atomically)
    ├── lexical.sqlite            chunks, file/spec hash bookkeeping (the chunk database)
    ├── chroma/                   the embedded ChromaDB (absent when SPECMEM_CHROMA_URL is set)
    ├── search-vectors.npz        the readers' copy of the vectors (retriever.ranking.warm_loader)
    ├── ingest.lock, locks/       one ingest at a time per data dir; per-spec write locks
    └── events.sqlite             the activity log (not a cache; `ingest --full` keeps it)

The manifest is the cheap answer to "was this index built by my model?": a reader compares it
before touching either store (IndexMismatch otherwise), and an ingest with another model
rebuilds both stores instead of mixing vectors from two models in one collection.

The index is the first four entries (`index_paths`) and nothing else: a rebuild removes exactly
those, without opening them, so a damaged file can never stop its own rebuild, and whatever else
lives in the data dir (the event log, locks) is never touched (spec 043). The manifest's `build`
id is also written into lexical.sqlite and the Chroma collection: parts of different builds
(a store replaced, emptied or restored from elsewhere) are damage, not an index.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import (
    BackendUnavailable,
    DiskFull,
    IndexDamaged,
    IndexMismatch,
    SpecmemError,
    StorageUnavailable,
)

EVENT_LOG = "events.sqlite"

__all__ = [
    "COLLECTION_NAME",
    "EVENT_LOG",
    "INDEX_FORMAT",
    "SQLITE_ERROR",
    "VECTOR_CACHE",
    "IndexLayout",
    "Manifest",
    "check_manifest",
    "connect_sqlite_readonly",
    "manifest_metadata",
    "new_build_id",
    "sqlite_damage",
    "sqlite_error",
]

# Bump when the stored shape or the chunking rules change: an index of another format is
# rebuilt, exactly as one of another model is. 2: the chunk header leaves out the status (spec
# 032); without the bump, specs unchanged since a format-1 ingest would keep status headers.
INDEX_FORMAT = 2
COLLECTION_NAME = "specmem_chunks"
VECTOR_CACHE = "search-vectors.npz"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def new_build_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    format: int = INDEX_FORMAT
    collection: str = COLLECTION_NAME
    vector_backend: str = "embedded"  # "embedded" or the Chroma server URL
    build: str = ""  # shared by the stores of one build; "" in indexes made before spec 043
    # False from the start of a rebuild until its first unscoped run finishes: readers keep the
    # last whole copy meanwhile instead of an empty or partial index (spec 076).
    complete: bool = True

    def compatible_with(self, model: str, dimension: int) -> bool:
        return self.model == model and self.dimension == dimension and self.format == INDEX_FORMAT

    def describe(self) -> str:
        return f"model {self.model!r} ({self.dimension} dimensions, index format {self.format})"


@dataclass(frozen=True)
class IndexLayout:
    data_dir: Path

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.json"

    def event_log_path(self, events_dir: Path | None = None) -> Path:
        """The activity log: not part of the index (no rebuild touches it), in the data dir
        unless `events_dir` (Settings.events_dir, SPECMEM_EVENTS_DIR) moves it (spec 084)."""
        return (events_dir or self.data_dir) / EVENT_LOG

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical.sqlite"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "ingest.lock"

    def ensure(self) -> IndexLayout:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self

    @property
    def chroma_database(self) -> Path:
        return self.chroma_dir / "chroma.sqlite3"

    @property
    def vector_cache_path(self) -> Path:
        return self.data_dir / VECTOR_CACHE

    def index_paths(self) -> list[Path]:
        """Every path that is part of the index, and only those (SQLite's side files too)."""
        lexical = self.lexical_path
        sides = [lexical.with_name(lexical.name + side) for side in ("-wal", "-shm", "-journal")]
        return [self.manifest_path, lexical, *sides, self.chroma_dir, self.vector_cache_path]

    def writable(self) -> bool:
        """Whether this process may create files in the data dir (False on a read-only mount,
        which access(2) reports even to root)."""
        return os.access(self.data_dir, os.W_OK)

    def read_manifest(self) -> Manifest | None:
        """The manifest, or None when no index was ever completed here; IndexDamaged when
        something is there that is not a manifest."""
        path = self.manifest_path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except (IsADirectoryError, NotADirectoryError) as err:
            raise IndexDamaged(str(path), f"cannot be read ({err.strerror})") from None
        except OSError as err:
            raise StorageUnavailable(f"cannot read {path}: {err.strerror}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"a JSON {type(data).__name__}, not an object")
            model, dimension = data["model"], data["dimension"]
            if not isinstance(model, str) or not model:
                raise TypeError("`model` is not a name")
            if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
                raise TypeError("`dimension` is not a positive integer")
            complete = data.get("complete", True)
            if not isinstance(complete, bool):
                raise TypeError("`complete` is not true or false")
            return Manifest(
                complete=complete,
                model=model,
                dimension=dimension,
                format=int(data.get("format", 0)),
                collection=str(data.get("collection", COLLECTION_NAME)),
                vector_backend=str(data.get("vector_backend", "embedded")),
                build=str(data.get("build", "")),
            )
        except (ValueError, KeyError, TypeError, OverflowError) as err:
            reason = f"missing {err}" if isinstance(err, KeyError) else str(err)
            raise IndexDamaged(str(path), f"not a readable index manifest ({reason})") from None

    def write_manifest(self, manifest: Manifest) -> None:
        """Atomically: a crash leaves the old manifest or the new one, never half of one."""
        self.ensure()
        text = json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n"
        fd, temp = tempfile.mkstemp(prefix=".manifest-", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.manifest_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def remove_index(self, *, embedded_chroma: bool = True) -> list[str]:
        """Delete every part of the index, whatever each has become (a file, a directory, a
        link, garbage), without opening any: the manifest first, so that a crash midway leaves
        "no index", which the next ingest rebuilds. `embedded_chroma=False` keeps `chroma/`
        (a Chroma server holds the vectors then; there is nothing local to remove). Returns
        the paths removed."""
        removed = []
        for path in self.index_paths():
            if path == self.chroma_dir and not embedded_chroma:
                continue
            if _remove(path):
                removed.append(str(path))
        return removed


def check_manifest(layout: IndexLayout, model: str, dimension: int) -> Manifest | None:
    """For readers: the manifest if it matches `model`, None when there is no index yet;
    IndexMismatch when another model (or index format) built it."""
    manifest = layout.read_manifest()
    if manifest is not None and not manifest.compatible_with(model, dimension):
        raise IndexMismatch(
            f"the index in {layout.data_dir} was built with {manifest.describe()}, but "
            f"specmem is configured for model {model!r} ({dimension} dimensions, index format "
            f"{INDEX_FORMAT}); run `specmem ingest` to rebuild it with the configured model"
        )
    return manifest


# SQLite's primary result codes (the low byte of an extended code).
SQLITE_ERROR, _SQLITE_PERM, _SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY = 1, 3, 5, 6, 8
_SQLITE_IOERR, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN, _SQLITE_NOTADB = 10, 11, 13, 14, 26


def sqlite_error(err: sqlite3.Error, path: Path) -> SpecmemError | None:
    """What a SQLite failure on the database at `path` means, or None for a programming error
    (bad SQL), which must stay visible as one."""
    code = (getattr(err, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(err)
    if code in (_SQLITE_CORRUPT, _SQLITE_NOTADB) or "malformed" in text:
        return IndexDamaged(str(path), f"not a readable SQLite database ({text})")
    if code == SQLITE_ERROR and ("no such table" in text or "no such column" in text):
        return IndexDamaged(str(path), f"lacks the index's tables ({text})")
    if code == _SQLITE_FULL:
        return DiskFull(f"cannot write {path}: the disk is full ({text})")
    if code == _SQLITE_CANTOPEN and path.exists() and not path.is_file():
        return IndexDamaged(str(path), "is not a file")
    if code in (_SQLITE_READONLY, _SQLITE_PERM, _SQLITE_IOERR, _SQLITE_CANTOPEN):
        if _no_space_left(path):  # SQLite says "disk I/O error" when it cannot map the WAL index
            return DiskFull(f"cannot write {path}: the disk is full ({text})")
        return StorageUnavailable(f"cannot use {path}: {text}")
    if code in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return BackendUnavailable(f"{path} is locked by another process ({text})")
    return None


def _no_space_left(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def _remove(path: Path) -> bool:
    """Remove a file or a whole tree. A tree is first renamed aside (one atomic step), because
    another process may still be writing into it (a reader's Chroma compacts as it reads), and
    the rebuild must not fail on, or reuse, what that process writes meanwhile."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(mode):
        path.unlink()
        return True
    aside = path.with_name(f".{path.name}.removed-{uuid.uuid4().hex[:8]}")
    os.rename(path, aside)
    for _ in range(3):
        shutil.rmtree(aside, ignore_errors=True)
        if not os.path.lexists(aside):
            break
    return True


def sqlite_damage(path: Path, *, deep: bool = False) -> str | None:
    """Why `path` cannot be a SQLite database, or None when it can be one, judged without
    writing: missing, not a regular file, empty, shorter than its own header says (truncated),
    no SQLite header; with `deep`, opened read-only and checked page by page (`PRAGMA
    quick_check`, ~6 ms per MB). A hot WAL or journal beside it makes the size rules moot. A
    disk that cannot be read or is full raises (StorageUnavailable, DiskFull): that is no
    reason to throw the index away."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return "is missing"
    except NotADirectoryError:
        return "is missing (a parent is not a directory)"
    if not stat.S_ISREG(info.st_mode):
        return "is not a file"
    if info.st_size == 0:
        return "is empty (0 bytes)"
    try:
        with open(path, "rb") as handle:
            header = handle.read(100)
    except OSError as err:
        raise StorageUnavailable(f"cannot read {path}: {err.strerror}") from None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        return "is not a SQLite database (no SQLite header)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return "is not a SQLite database (impossible page size)"
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96]
    hot = any(
        os.path.exists(f"{path}{side}") and os.path.getsize(f"{path}{side}") > 0
        for side in ("-wal", "-journal")
    )
    if not hot and header_valid and pages and info.st_size < pages * page_size:
        return f"is truncated ({info.st_size} bytes; its header says {pages * page_size})"
    if deep:
        try:
            db = connect_sqlite_readonly(path)
            try:
                rows = db.execute("PRAGMA quick_check").fetchall()
            finally:
                db.close()
        except sqlite3.DatabaseError as err:
            meaning = sqlite_error(err, path)
            if meaning is not None and not isinstance(meaning, IndexDamaged):
                raise meaning from None  # a full or refusing disk is not damage: no rebuild
            return f"is not a readable SQLite database ({err})"
        if rows != [("ok",)]:
            return f"fails SQLite's integrity check ({rows[0][0]})"
    return None


def connect_sqlite_readonly(path: Path) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, plus `immutable=1` when the directory is not
    writable (SQLite could not create the WAL's shared-memory file there; nothing can change
    the file on such a mount either)."""
    uri = f"file:{quote(str(Path(path).absolute()))}?mode=ro"
    if not os.access(Path(path).parent, os.W_OK):
        uri += "&immutable=1"
    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout=5000")  # a checkpoint in progress is waited for, not an error
    return db


def manifest_metadata(manifest: Manifest) -> dict[str, Any]:
    """The manifest as Chroma collection metadata (scalars only)."""
    return {
        "specmem_model": manifest.model,
        "specmem_dimension": manifest.dimension,
        "specmem_format": manifest.format,
    }
