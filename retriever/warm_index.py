"""The read path's in-memory copy of one index generation: chunks grouped by spec, BM25 postings
and the dense vectors as one numpy matrix.

Chroma and SQLite stay the stores of record. Querying them per search costs tens of milliseconds
(a Chroma query plus an FTS5 round trip); holding ~9k chunks x 384 floats (14 MB for LeanSpec) in
memory makes a hybrid search a few milliseconds plus the query embedding. The copy is rebuilt when
the index generation changes, so it never serves a mix of two index states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .lexical_rank import BM25Index
from .terms import terms

__all__ = ["ChunkRecord", "SpecInfo", "WarmIndex"]


@dataclass(frozen=True)
class ChunkRecord:
    """What ranking needs of one chunk (a subset of ingest.chunking.Chunk)."""

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


class WarmIndex:
    """Chunks sorted so each spec's chunks are contiguous, with everything ranking reads."""

    def __init__(
        self,
        chunks: Sequence[ChunkRecord],
        vectors: np.ndarray | None,
        specs: Mapping[str, SpecInfo],
        generation: object = None,
    ):
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
        self.specs = [specs.get(name) or SpecInfo(name) for name in names]
        self.bm25 = BM25Index([terms(chunk.embed_text) for chunk in self.chunks])

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def has_vectors(self) -> bool:
        return self.vectors is not None and len(self.chunks) > 0

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
