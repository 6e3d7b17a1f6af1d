"""Ways an index in a data dir gets damaged (issue 11, class 3), for the damage and write tests.

Each maps a name to (function of the data dir, the file the error must name). The kinds are
what an operator meets: a manifest that is garbage, a lexical.sqlite cut short, overwritten,
emptied, replaced by a directory or by another build's database, and a Chroma store whose
SQLite file is garbage, cut short, emptied, gone, or whose directory became a file.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from ingest.index.layout import IndexLayout
from ingest.index.vectors import forget_embedded

Damage = Callable[[Path], None]


def _noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _replace_with_dir(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    path.mkdir()
    (path / "stray").write_text("x")


def _keep_header_scramble_rest(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(_noise(size - 100, 7))


def _other_database(path: Path) -> None:
    """A valid SQLite file with the right tables but none of this build's rows or marks, as a
    restore of some other copy would leave."""
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    path.unlink()
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE files (path TEXT PRIMARY KEY, spec TEXT, mtime_ns INT, size INT,"
            " hash TEXT);"
            "CREATE TABLE specs (name TEXT PRIMARY KEY);"
            "CREATE TABLE chunks (id TEXT PRIMARY KEY);"
            "CREATE VIRTUAL TABLE chunks_fts USING fts5 (id, spec, header, text);"
        )
    db.close()


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def _chroma(data: Path, apply: Callable[[Path], object]) -> None:
    """Damage `chroma/chroma.sqlite3`. The readers' vector cache goes too: while it matches the
    index, search needs no Chroma at all (retriever.ranking.warm_loader), so the damage would only show
    at the next write that changes chunks."""
    (data / "search-vectors.npz").unlink(missing_ok=True)
    apply(data / "chroma" / "chroma.sqlite3")


def _lexical(data: Path) -> Path:
    path = data / "lexical.sqlite"
    # Fold the WAL into the file first, so that the damage is to what a reader reads.
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    return path


DAMAGES: dict[str, tuple[Damage, str]] = {
    "manifest-garbage": (lambda d: (d / "manifest.json").write_text("{garbage"), "manifest.json"),
    "manifest-not-an-object": (
        lambda d: (d / "manifest.json").write_text("[1, 2]"),
        "manifest.json",
    ),
    "manifest-wrong-types": (
        lambda d: (d / "manifest.json").write_text('{"model": 3, "dimension": "x"}'),
        "manifest.json",
    ),
    "manifest-empty": (lambda d: (d / "manifest.json").write_bytes(b""), "manifest.json"),
    "manifest-directory": (lambda d: _replace_with_dir(d / "manifest.json"), "manifest.json"),
    "lexical-first-100-bytes": (lambda d: _truncate(_lexical(d), 100), "lexical.sqlite"),
    "lexical-random-bytes": (
        lambda d: _lexical(d).write_bytes(_noise(8192, 1)),
        "lexical.sqlite",
    ),
    "lexical-zero-length": (lambda d: _truncate(_lexical(d), 0), "lexical.sqlite"),
    "lexical-directory": (lambda d: _replace_with_dir(_lexical(d)), "lexical.sqlite"),
    "lexical-header-kept-rest-scrambled": (
        lambda d: _keep_header_scramble_rest(_lexical(d)),
        "lexical.sqlite",
    ),
    "lexical-another-database": (lambda d: _other_database(_lexical(d)), "lexical.sqlite"),
    "lexical-deleted": (lambda d: _lexical(d).unlink(), "lexical.sqlite"),
    "chroma-sqlite-random-bytes": (
        lambda d: _chroma(d, lambda f: f.write_bytes(_noise(8192, 2))),
        "chroma",
    ),
    "chroma-sqlite-first-100-bytes": (lambda d: _chroma(d, lambda f: _truncate(f, 100)), "chroma"),
    "chroma-sqlite-zero-length": (lambda d: _chroma(d, lambda f: _truncate(f, 0)), "chroma"),
    "chroma-sqlite-deleted": (lambda d: _chroma(d, Path.unlink), "chroma"),
    "chroma-dir-is-a-file": (
        lambda d: _chroma(d, lambda f: (shutil.rmtree(f.parent), f.parent.write_bytes(b"x"))),
        "chroma",
    ),
}


def damage(data: Path, kind: str) -> str:
    """Apply damage `kind` to the index in `data`; the file name its error must mention."""
    apply, names = DAMAGES[kind]
    apply(data)
    # Chroma caches one client per path per process, with its files open: forget it, so that
    # the next reader in this test process opens the files as a new process would.
    forget_embedded(IndexLayout(data))
    return names


def log_identity(path: Path) -> tuple[int, list[tuple]]:
    """(inode, rows) of the event log: what "never touched" compares. Not its bytes: SQLite
    moves the WAL into the file whenever a connection closes."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        rows = [row for table in sorted(tables) for row in db.execute(f'SELECT * FROM "{table}"')]
    db.close()
    return os.stat(path).st_ino, rows
