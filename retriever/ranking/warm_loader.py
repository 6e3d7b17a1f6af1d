"""Keep one warm copy of the index per SpecMemory, reloaded only when the index changes.

Each search asks SQLite for the index generation (a counter every ingest commit bumps; one tiny
query) and reuses the in-memory WarmIndex while it has not moved. When it moves, the chunks are
read from SQLite and their vectors fetched by id from Chroma, so the warm copy always matches one
committed generation: never chunks of one ingest with vectors of another.

A new generation costs what changed, not the whole index: only the chunks the previous copy did
not hold are read from SQLite, analyzed and their vectors fetched (ids are content-addressed: same
id, same embedded text, same vector); a status change, which changes no chunk (spec 032), swaps
in the new spec metadata and reuses everything else. The matrix is kept in `search-vectors.npz`
in the data dir for the next process: a one-shot CLI search then skips importing Chroma
altogether. That file is a cache like every other file there, trusted only when its model and
exact chunk id list match the index.

Reading never writes (spec 043): lexical.sqlite is opened read-only, the vector cache is only
written where the data dir is writable, so a server runs on a read-only mount. A damaged index
is IndexDamaged naming the file: a manifest that is not one, a lexical.sqlite that is missing,
is not a database or belongs to another build than the manifest, a Chroma store that cannot be
read or lacks vectors the index lists. After a rebuild (a new lexical.sqlite) the warm copy and
the Chroma client are dropped, so a long-lived server follows `ingest --full` without restarting.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any

import numpy as np

from ingest.config import Settings
from ingest.errors import (
    BackendUnavailable,
    IndexDamaged,
    InvalidInput,
    NoIndex,
    StorageUnavailable,
)
from ingest.index.chunk_db import ChunkDatabase
from ingest.index.layout import VECTOR_CACHE, IndexLayout, Manifest, check_manifest, sqlite_damage
from ingest.index.vectors import VectorCache, VectorStore, forget_embedded

from .dense_chroma import ChromaDense, uses_chroma
from .warm_index import ChunkRecord, RemoteDense, WarmIndex, build_warm_index, spec_infos

__all__ = ["VECTOR_CACHE", "NoIndex", "WarmIndexLoader"]

# An ingest running right now may delete vectors between our two reads; a retry sees its commit.
LOAD_ATTEMPTS = 3


class WarmIndexLoader:
    """The WarmIndex of `settings.data_dir`, checked against the configured embedder's model."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.layout = IndexLayout(settings.data_dir)
        self._lock = threading.Lock()
        self._lexical: ChunkDatabase | None = None
        self._lexical_inode: int | None = None
        self._vectors: VectorStore | None = None
        self._warm: WarmIndex | None = None
        # The last copy loaded from a complete build: what readers get while a rebuild is under
        # way, even after `_warm` was dropped for a replaced database (spec 076).
        self._last_whole: WarmIndex | None = None

    def current(
        self, embedder: Any, catalog: Any = None, *, need_vectors: bool = True
    ) -> WarmIndex:
        """The warm index for the current generation; loads or reloads it when needed.

        `embedder` names the model the index must have been built with (its name and dimension;
        the model itself is not loaded here).
        """
        with self._lock:
            try:
                return self._current(embedder, catalog, need_vectors)
            except (IndexDamaged, BackendUnavailable, StorageUnavailable):
                # A rebuild that replaced the files while this read was under way (its stores
                # vanish between reading the database and fetching vectors, or between the stat
                # and the open) is not damage: one more read sees the new build.
                if self._lexical_inode == _inode(self.layout.lexical_path):
                    raise
                return self._current(embedder, catalog, need_vectors)

    def _current(self, embedder: Any, catalog: Any, need_vectors: bool) -> WarmIndex:
        opened = self._open(embedder)
        if opened is None:
            # A rebuild is under way: keep answering from the last whole build (spec 076).
            warm = self._last_whole
            if warm is not None and (warm.has_vectors or not need_vectors):
                return warm
            raise NoIndex(
                f"the index in {self.layout.data_dir} is being rebuilt: retry when the running "
                "`specmem ingest` finishes (or run it, if an earlier one stopped midway)"
            )
        manifest, lexical = opened
        # The inode too: a rebuilt database counts its generations from 1 again.
        generation = (self._lexical_inode, lexical.generation())
        warm = self._warm
        if (
            warm is not None
            and warm.generation == generation
            and (warm.has_vectors or not need_vectors)
        ):
            return warm
        fresh = self._load(lexical, manifest, catalog, need_vectors)
        self._warm = fresh
        kept = self._last_whole
        if fresh.has_vectors or kept is None or not kept.has_vectors:
            # A copy without vectors (a lexical search) does not replace one that can serve
            # every mode; an older build is a fine stand-in while a rebuild runs.
            self._last_whole = fresh
        return fresh

    def _open(self, embedder: Any) -> tuple[Manifest, ChunkDatabase] | None:
        """The manifest and the lexical.sqlite of one build, or None while a rebuild is under
        way. A rebuild removes the manifest, then the database, creates a new database, then a
        manifest marked incomplete until the build is whole: a reader between two of those
        steps sees them disagree (or the database missing), and one more look tells a rebuild
        in progress from damage. The files of an incomplete build are not even opened, so the
        warm copy of the last whole one survives."""
        for attempt in range(2):
            manifest = check_manifest(self.layout, embedder.name, embedder.dimension)
            if manifest is None and self._last_whole is None:
                raise NoIndex(f"no index in {self.layout.data_dir}: run `specmem ingest` first")
            if manifest is None or not manifest.complete:
                return None
            try:
                lexical = self._open_lexical()
            except IndexDamaged:
                if attempt:
                    raise
                continue
            if not manifest.build or lexical.build == manifest.build:
                return manifest, lexical
        raise IndexDamaged(
            str(self.layout.lexical_path),
            "belongs to another build of the index than manifest.json (replaced or emptied)",
        )

    def close(self) -> None:
        with self._lock:
            if self._lexical is not None:
                self._lexical.close()
            self._lexical = None
            self._vectors = None
            self._warm = self._last_whole = None

    def _open_lexical(self) -> ChunkDatabase:
        # `ingest --full` replaces the database file: reopen when the inode changes, and drop
        # what came from the old build (the warm copy, the Chroma client of a replaced store).
        path = self.layout.lexical_path
        try:
            inode = os.stat(path).st_ino
        except FileNotFoundError:
            raise IndexDamaged(
                str(path), "is missing, though manifest.json says an ingest completed"
            ) from None
        if self._lexical is None or inode != self._lexical_inode:
            problem = sqlite_damage(path)
            if problem:
                raise IndexDamaged(str(path), problem)
            if self._lexical is not None:
                self._lexical.close()
                self._lexical = None
                self._warm = None
                self._drop_vector_store()
            self._lexical = ChunkDatabase(path, readonly=True)
            self._lexical_inode = inode
        return self._lexical

    def _drop_vector_store(self) -> None:
        if self._vectors is not None:
            self._vectors = None
            if not self.settings.chroma_url:
                forget_embedded(self.layout)

    def _load(
        self, lexical: ChunkDatabase, manifest: Any, catalog: Any, need_vectors: bool
    ) -> WarmIndex:
        last_error: InvalidInput | None = None
        stuck = 0  # failed attempts with no commit since the snapshot they read
        for _ in range(LOAD_ATTEMPTS):
            previous = self._warm
            with lexical.snapshot():  # one committed state, however many writes land meanwhile
                generation = (self._lexical_inode, lexical.generation())
                order = lexical.chunk_order()
                records = lexical.spec_records()
                ids = [row[0] for row in order]
                if previous is not None and _same_chunks(previous, ids, need_vectors):
                    chunks = [
                        _at_lines(c, row) for c, row in zip(previous.chunks, order, strict=True)
                    ]
                    infos = spec_infos(chunks, catalog, records)
                    return previous.with_specs(infos, generation, chunks)
                known = {c.id: c for c in previous.chunks} if previous is not None else {}
                missing = [chunk_id for chunk_id in ids if chunk_id not in known]
                fetched = {c.id: ChunkRecord.of(c) for c in lexical.chunks_by_id(missing)}
            chunks = [_at_lines(known.get(row[0]) or fetched[row[0]], row) for row in order]
            remote = self._remote_dense(manifest, len(ids)) if need_vectors else None
            try:
                # Vectors are read by id, and an id's vector never changes (ids are content
                # hashes); only a later ingest deleting some of these ids can fail this, or a
                # client whose cache predates another process's writes (reopened for the retry).
                wanted = need_vectors and chunks and remote is None
                vectors = self._vectors_for(ids, manifest) if wanted else None
            except InvalidInput as err:
                last_error = err
                self._drop_vector_store()
                if lexical.generation() == generation[1]:
                    stuck += 1
                continue
            return build_warm_index(
                chunks,
                vectors,
                catalog,
                generation=generation,
                spec_records=records,
                previous=previous,
                remote=remote,
            )
        if last_error is not None and stuck == LOAD_ATTEMPTS:
            # Nothing committed meanwhile, so no ingest explains the missing vectors.
            raise IndexDamaged(str(self.layout.chroma_dir), str(last_error).split("; run")[0])
        raise last_error or InvalidInput(
            f"the index in {self.layout.data_dir} kept changing while it was read; retry"
        )

    def _remote_dense(self, manifest: Any, chunks: int) -> RemoteDense | None:
        """A builder of the dense index over Chroma's ANN index when that is the configured or
        the chosen path for an index of `chunks` (retriever.ranking.dense_chroma)."""
        settings = self.settings
        if not uses_chroma(settings.dense_backend, settings.chroma_url, chunks):
            return None
        store = self._vector_store(manifest)
        return lambda ids, names, spec_of: ChromaDense(store, ids, names, spec_of)

    def _vectors_for(self, ids: list[str], manifest: Any) -> np.ndarray:
        """Vectors in `ids` order: from the previous copy by id (ids are content-addressed: same
        id, same embedded text, same vector), else from the file cache, else from Chroma."""
        previous = self._warm
        if previous is None or previous.vectors is None:
            cached = self._read_cache(ids, manifest.model)
            if cached is not None:
                return cached
        known: dict[str, np.ndarray] = {}
        if previous is not None and previous.vectors is not None:
            known = {c.id: row for c, row in zip(previous.chunks, previous.vectors, strict=True)}
        missing = [chunk_id for chunk_id in ids if chunk_id not in known]
        if missing:
            fetched = self._vector_store(manifest).get_vectors(missing)
            known.update(zip(missing, fetched, strict=True))
        vectors = np.stack([known[chunk_id] for chunk_id in ids]).astype(np.float32)
        self._write_cache(ids, vectors, manifest.model)
        return vectors

    def _read_cache(self, ids: list[str], model: str) -> np.ndarray | None:
        return VectorCache(self.layout).read(ids, model)

    def _write_cache(self, ids: list[str], vectors: np.ndarray, model: str) -> None:
        VectorCache(self.layout).write(ids, vectors, model)

    def _vector_store(self, manifest: Any) -> VectorStore:
        if self._vectors is None:
            store = VectorStore.open(self.layout, self.settings.chroma_url, existing=True)
            store.collection(manifest, create=False)
            self._vectors = store
        return self._vectors


def _inode(path: Any) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _same_chunks(previous: WarmIndex, ids: list[str], need_vectors: bool) -> bool:
    """Whether `previous` holds exactly these chunk ids in this order (and vectors if needed):
    then a new generation only changed spec metadata or line ranges (spec 032)."""
    return (previous.has_vectors or not need_vectors) and [c.id for c in previous.chunks] == ids


def _at_lines(chunk: ChunkRecord, row: tuple[str, int, int]) -> ChunkRecord:
    """`chunk` with the line range the index now gives it (same id, text moved); `row` is the
    chunk's (id, line_start, line_end) from `chunk_order`."""
    if chunk.line_start == row[1] and chunk.line_end == row[2]:
        return chunk
    return dataclasses.replace(chunk, line_start=row[1], line_end=row[2])
