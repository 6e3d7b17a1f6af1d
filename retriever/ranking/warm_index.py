"""The read path's in-memory copy of one index generation: chunks grouped by spec, BM25 postings
and the dense vectors as one numpy matrix (or, for an index past the size where that stops
paying, a handle on Chroma's ANN index: retriever.ranking.dense_chroma).

Chroma and SQLite stay the stores of record. Querying them per search costs tens of milliseconds
(a Chroma query plus a SQL round trip for the chunk rows); holding ~9k chunks x 384 floats (14 MB for LeanSpec) in
memory makes a hybrid search a few milliseconds plus the query embedding. A new copy is made when
the index generation changes, so it never serves a mix of two index states; it borrows what did
not change from the old one (retriever.ranking.warm_loader).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dense import DenseIndex
from .dense_chroma import ChromaDense
from .heap import release_freed_memory
from .identifiers import identifiers
from .lexical_rank import BM25Index
from .terms import terms

# Builds a dense index over vectors kept elsewhere, from the chunk ids in row order, the spec
# names and each row's spec (WarmIndex.spec_names, WarmIndex.spec_of).
RemoteDense = Callable[[list[str], list[str], np.ndarray], ChromaDense]
# Below this, a build's garbage is a few MB and trimming the heap is not worth the walk over it.
TRIM_AFTER_CHUNKS = 20_000

__all__ = [
    "ChunkRecord",
    "SpecInfo",
    "WarmIndex",
    "build_warm_index",
    "lexical_document",
    "spec_infos",
]


@dataclass(frozen=True)
class ChunkRecord:
    """What ranking needs of one chunk (a subset of ingest.index.chunking.Chunk)."""

    id: str
    spec: str
    file: str
    heading_path: tuple[str, ...]
    section_kind: str
    text: str
    header: str
    line_start: int
    line_end: int

    @property
    def embed_text(self) -> str:
        return f"{self.header}\n\n{self.text}"

    @classmethod
    def of(cls, chunk: Any) -> ChunkRecord:
        """From an ingest Chunk, or anything with the same attributes."""
        return cls(
            id=chunk.id,
            spec=chunk.spec,
            file=chunk.file,
            heading_path=tuple(chunk.heading_path),
            section_kind=chunk.section_kind,
            text=chunk.text,
            header=chunk.header,
            line_start=int(chunk.line_start),
            line_end=int(chunk.line_end),
        )


@dataclass(frozen=True)
class SpecInfo:
    """Spec-level metadata as indexed: what filters test and hits show."""

    name: str
    title: str = ""
    status: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = ()
    parent: str | None = None
    depends_on: tuple[str, ...] = field(default_factory=tuple)


def lexical_document(chunk: ChunkRecord) -> list[str]:
    """The terms BM25 indexes for a chunk: header and text, plus the header's first line (spec
    number, slug words and title) once more.

    A chunk's own words rarely say which spec they belong to, and the title is the most condensed
    statement of a spec's subject, so the title field weighs double (BM25F-style field weighting
    by repetition). On the dev queries this moved lexical MRR@10 from 0.903 to 0.925 and held
    across every k1/b/second-chunk setting tried (specs/050).
    """
    identity = chunk.header.split("\n", 1)[0]
    return terms(chunk.embed_text) + terms(identity)


def identifier_document(chunk: ChunkRecord) -> list[str]:
    """The identifiers (retriever.ranking.identifiers) of a chunk's header and text, whole."""
    return identifiers(chunk.embed_text)


def _postings(
    chunks: Sequence[ChunkRecord],
    document: Callable[[ChunkRecord], list[str]],
    previous: tuple[Sequence[ChunkRecord], BM25Index] | None = None,
) -> BM25Index:
    """BM25 postings over `document(chunk)` for every chunk; `previous`, an older copy's chunks
    and its postings of the same field, lends the encoded documents of the chunks both share."""
    if previous is None:
        return BM25Index(document(chunk) for chunk in chunks)
    old_chunks, old_index = previous
    codes = dict(zip((c.id for c in old_chunks), old_index.encoded, strict=True))
    return old_index.rebuilt([codes[c.id] if c.id in codes else document(c) for c in chunks])


class WarmIndex:
    """Chunks sorted so each spec's chunks are contiguous, with everything ranking reads."""

    def __init__(
        self,
        chunks: Sequence[ChunkRecord],
        vectors: np.ndarray | None,
        specs: Mapping[str, SpecInfo],
        generation: object = None,
        previous: WarmIndex | None = None,
        remote: RemoteDense | None = None,
    ):
        """`previous`, an older copy of the same index, lends its analyzed text for the chunks
        it shares with this one: after an edit only the edited spec's chunks are analyzed.
        `remote`, given no vectors, builds the dense index over a store that keeps them
        (retriever.ranking.dense_chroma) in this index's row order."""
        if vectors is not None and len(vectors) != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].spec, i))
        self.chunks = [chunks[i] for i in order]
        self.vectors = (
            np.ascontiguousarray(vectors[order], dtype=np.float32) if vectors is not None else None
        )
        self.generation = generation
        names: list[str] = []
        starts: list[int] = []
        for position, chunk in enumerate(self.chunks):
            if not names or names[-1] != chunk.spec:
                names.append(chunk.spec)
                starts.append(position)
        self.spec_names = names
        self.spec_position = {name: i for i, name in enumerate(names)}
        self.starts = np.array(starts, dtype=np.int64)
        self.counts = np.diff(np.append(self.starts, len(self.chunks)))
        self.spec_of = np.repeat(np.arange(len(names), dtype=np.int64), self.counts)
        self.specs = [specs.get(name) or SpecInfo(name) for name in names]
        if previous is None:
            self.bm25 = _postings(self.chunks, lexical_document)
            self.identifiers = _postings(self.chunks, identifier_document)
        else:
            self.bm25 = _postings(self.chunks, lexical_document, (previous.chunks, previous.bm25))
            self.identifiers = _postings(
                self.chunks, identifier_document, (previous.chunks, previous.identifiers)
            )
        self.dense: DenseIndex | ChromaDense | None = None
        if self.vectors is not None:
            self.dense = DenseIndex(self.vectors)
        elif remote is not None:
            self.dense = remote([c.id for c in self.chunks], self.spec_names, self.spec_of)
        if len(self.chunks) >= TRIM_AFTER_CHUNKS:
            release_freed_memory()  # the build's garbage, not kept at its peak (retriever.ranking.heap)

    def with_specs(
        self,
        specs: Mapping[str, SpecInfo],
        generation: object,
        chunks: Sequence[ChunkRecord] | None = None,
    ) -> WarmIndex:
        """This index with new spec metadata: for a generation whose chunk ids are exactly these
        (a status or priority change), where text, postings and vectors all carry over.
        `chunks`, the same ids in the same order, may give chunks new line ranges."""
        if chunks is not None and [c.id for c in chunks] != [c.id for c in self.chunks]:
            raise ValueError("with_specs needs the same chunk ids in the same order")
        copy = object.__new__(WarmIndex)
        copy.__dict__.update(self.__dict__)
        copy.specs = [specs.get(name) or SpecInfo(name) for name in self.spec_names]
        copy.generation = generation
        if chunks is not None:
            copy.chunks = list(chunks)
        return copy

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def has_vectors(self) -> bool:
        """Whether dense ranking can run: vectors in memory, or a store that holds them."""
        return self.dense is not None and len(self.chunks) > 0

    def spec_mask(
        self,
        status: set[str] | None = None,
        tags: set[str] | None = None,
        priority: set[str] | None = None,
    ) -> np.ndarray:
        """Which specs pass the metadata filters (all of `tags` must be present)."""
        mask = np.ones(len(self.specs), dtype=bool)
        if not (status or tags or priority):
            return mask
        for i, info in enumerate(self.specs):
            if (
                (status and (info.status or "") not in status)
                or (priority and (info.priority or "") not in priority)
                or (tags and not tags.issubset(info.tags))
            ):
                mask[i] = False
        return mask

    def chunk_mask(self, spec_mask: np.ndarray) -> np.ndarray:
        return np.repeat(spec_mask, self.counts)


def build_warm_index(
    chunks: Sequence[Any],
    vectors: np.ndarray | None,
    catalog: Any = None,
    generation: object = None,
    spec_records: Mapping[str, Any] | None = None,
    previous: WarmIndex | None = None,
    remote: RemoteDense | None = None,
) -> WarmIndex:
    """A WarmIndex from indexed chunks (ingest Chunks or records with the same fields).

    Spec metadata comes from `spec_records` (the index's own spec table) when given, else from the
    chunks: either way as indexed, so filters agree with the text that was ranked. Parent and
    depends_on are resolved to dir names through `catalog` when given. `previous` is an older
    copy whose analyzed text is reused (WarmIndex).
    """
    specs = spec_infos(chunks, catalog, spec_records)
    records = [c if isinstance(c, ChunkRecord) else ChunkRecord.of(c) for c in chunks]
    return WarmIndex(records, vectors, specs, generation, previous, remote)


def spec_infos(
    chunks: Sequence[Any], catalog: Any = None, spec_records: Mapping[str, Any] | None = None
) -> dict[str, SpecInfo]:
    """The SpecInfo of every spec that has chunks (see build_warm_index for the sources)."""
    specs: dict[str, SpecInfo] = {}
    for chunk in chunks:
        if chunk.spec in specs:
            continue
        source = (spec_records or {}).get(chunk.spec, chunk)
        parent = getattr(source, "parent", None)
        depends = tuple(getattr(source, "depends_on", ()) or ())
        if catalog is not None:
            parent = catalog.try_resolve(parent) if parent else None
            depends = tuple(name for name in map(catalog.try_resolve, depends) if name)
        specs[chunk.spec] = SpecInfo(
            name=chunk.spec,
            title=getattr(source, "title", "") or "",
            status=getattr(source, "status", None),
            priority=getattr(source, "priority", None),
            tags=tuple(getattr(source, "tags", ()) or ()),
            parent=parent,
            depends_on=depends,
        )
    return specs
