"""Keep one warm copy of the index per SpecMemory, reloaded only when the index changes.

Each search asks SQLite for the index generation (a counter every ingest commit bumps; one tiny
query) and reuses the in-memory WarmIndex while it has not moved. When it moves, the chunks are
read from SQLite and their vectors fetched by id from Chroma, so the warm copy always matches one
committed generation: never chunks of one ingest with vectors of another.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ingest.config import Settings
from ingest.errors import InvalidInput
from ingest.layout import IndexLayout, check_manifest
from ingest.lexical import LexicalIndex
from ingest.vectors import VectorStore

from .warm_index import WarmIndex, build_warm_index

__all__ = ["NoIndex", "WarmIndexLoader"]

# An ingest running right now may delete vectors between our two reads; a retry sees its commit.
LOAD_ATTEMPTS = 3


class NoIndex(InvalidInput):
    """Search was asked before any ingest completed in the data dir."""

    code = "no_index"


class WarmIndexLoader:
    """The WarmIndex of `settings.data_dir`, checked against the configured embedder's model."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.layout = IndexLayout(settings.data_dir)
        self._lock = threading.Lock()
        self._lexical: LexicalIndex | None = None
        self._lexical_inode: int | None = None
        self._vectors: VectorStore | None = None
        self._warm: WarmIndex | None = None

    def current(
        self, embedder: Any, catalog: Any = None, *, need_vectors: bool = True
    ) -> WarmIndex:
        """The warm index for the current generation; loads or reloads it when needed.

        `embedder` names the model the index must have been built with (its name and dimension;
        the model itself is not loaded here).
        """
        with self._lock:
            manifest = check_manifest(self.layout, embedder.name, embedder.dimension)
            if manifest is None or not self.layout.lexical_path.is_file():
                raise NoIndex(f"no index in {self.layout.data_dir}: run `specmem ingest` first")
            lexical = self._open_lexical()
            generation = lexical.generation()
            warm = self._warm
            fresh = warm is not None and warm.generation == generation
            if fresh and (warm.has_vectors or not need_vectors):
                return warm
            self._warm = self._load(lexical, manifest, catalog, need_vectors)
            return self._warm

    def close(self) -> None:
        with self._lock:
            if self._lexical is not None:
                self._lexical.close()
            self._lexical = None
            self._vectors = None
            self._warm = None

    def _open_lexical(self) -> LexicalIndex:
        # `ingest --full` may replace the database file: reopen when the inode changes.
        inode = os.stat(self.layout.lexical_path).st_ino
        if self._lexical is None or inode != self._lexical_inode:
            if self._lexical is not None:
                self._lexical.close()
            self._lexical = LexicalIndex(self.layout.lexical_path)
            self._lexical_inode = inode
        return self._lexical

    def _load(
        self, lexical: LexicalIndex, manifest: Any, catalog: Any, need_vectors: bool
    ) -> WarmIndex:
        last_error: InvalidInput | None = None
        for _ in range(LOAD_ATTEMPTS):
            generation = lexical.generation()
            chunks = lexical.all_chunks()
            vectors = None
            if need_vectors and chunks:
                try:
                    vectors = self._vector_store(manifest).get_vectors([c.id for c in chunks])
                except InvalidInput as err:
                    last_error = err
                    continue
            if lexical.generation() != generation:
                continue  # an ingest committed while we read: read the new state
            records = lexical.spec_records()
            return build_warm_index(
                chunks, vectors, catalog, generation=generation, spec_records=records
            )
        raise last_error or InvalidInput(
            f"the index in {self.layout.data_dir} kept changing while it was read; retry"
        )

    def _vector_store(self, manifest: Any) -> VectorStore:
        if self._vectors is None:
            store = VectorStore.open(self.layout, self.settings.chroma_url)
            store.collection(manifest, create=False)
            self._vectors = store
        return self._vectors
