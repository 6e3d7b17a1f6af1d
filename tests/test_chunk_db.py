"""The SQLite store on its own: replace-by-spec transactions, FTS5 search and filters, meta."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.index.chunk_db import ChunkDatabase, FileState, SpecRecord, SpecUpdate
from ingest.index.chunking import Chunk


def chunk(spec: str, ordinal: int, text: str, status: str = "planned") -> Chunk:
    return Chunk(
        id=f"{spec}/README.md#{ordinal:012d}",
        spec=spec,
        file="README.md",
        ordinal=ordinal,
        heading_path=("Design", "Storage"),
        section_kind="design",
        text=text,
        header=f"{spec}: title\nDesign > Storage\nstatus: {status}",
        line_start=ordinal * 10 + 1,
        line_end=ordinal * 10 + 9,
        tokens=len(text.split()),
        content_hash=f"{ordinal:016d}",
        title="title",
        status=status,
        priority="high",
        tags=("storage", "sqlite"),
        model_tokens=len(text.split()) + 3,
    )


def update(spec: str, *texts: str, status: str = "planned") -> SpecUpdate:
    record = SpecRecord(
        spec, "hash", "title", status, "high", ("a",), None, ("001-x",), False, spec
    )
    files = [FileState(f"{spec}/README.md", spec, 1, 2, "h")]
    return SpecUpdate(record, [chunk(spec, i, t, status) for i, t in enumerate(texts)], files)


@pytest.fixture
def index(tmp_path: Path) -> ChunkDatabase:
    with ChunkDatabase(tmp_path / "lexical.sqlite") as opened:
        yield opened


def test_round_trip_keeps_every_chunk_field(index: ChunkDatabase) -> None:
    written = update("001-store", "SQLite holds chunks", "Chroma holds vectors")
    assert index.commit([written]) == 1
    assert index.all_chunks() == written.chunks
    assert index.chunks_of("001-store")[1].text == "Chroma holds vectors"
    assert index.spec_records()["001-store"].depends_on == ("001-x",)
    assert set(index.file_states()) == {"001-store/README.md"}


def test_replacing_and_removing_specs_is_transactional(index: ChunkDatabase) -> None:
    index.commit([update("001-a", "alpha words"), update("002-b", "beta words")])
    index.commit([update("001-a", "gamma words")], removed_specs=["002-b"])
    assert [c.text for c in index.all_chunks()] == ["gamma words"]
    assert index.generation() == 2
    with pytest.raises(RuntimeError):
        index.commit([update("003-c", "delta")], removed_specs=RaisingIterable())
    assert index.chunk_ids() == {"001-a/README.md#000000000000"}  # rolled back


class RaisingIterable:
    def __iter__(self):
        raise RuntimeError("boom")


def test_no_full_text_table_is_kept(index: ChunkDatabase, tmp_path) -> None:
    """The FTS5 table was filled on every ingest and never queried (issue 12); an index
    written before loses it at its next write."""
    import sqlite3

    index.commit([update("001-a", "token budget packing")])
    tables = {
        row[0] for row in index._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    assert not any(name.startswith("chunks_fts") for name in tables), tables
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE VIRTUAL TABLE chunks_fts USING fts5 (id, text)")
    ChunkDatabase(old).close()
    with sqlite3.connect(old) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert not any(name.startswith("chunks_fts") for name in names), names


def test_dirty_mark_and_clear(index: ChunkDatabase) -> None:
    index.commit([update("001-a", "alpha")])
    index.mark_dirty(True)
    assert index.dirty
    index.forget_specs(["001-a"])
    assert index.file_states() == {}
    index.clear()
    assert index.count_chunks() == 0 and not index.dirty and index.generation() == 1
