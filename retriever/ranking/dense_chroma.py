"""Dense candidates from Chroma's own HNSW index, for an index too large to copy into every
process (issue 15, spec 094).

The in-process matrix (retriever.ranking.dense) is faster per query at every size measured: no
round trip, and faiss's inverted lists past 30,000 chunks. What it costs is memory and start-up:
every worker holds every vector (1.5 KB a chunk) and fetches them all before its first dense
answer. With a Chroma server (SPECMEM_CHROMA_URL) and an index of at least `CHROMA_MIN_CHUNKS`
chunks, the warm index therefore holds no vectors: each query asks the collection for its
`CANDIDATES` nearest chunks, with the exact cosine Chroma computed for each. The contract is
DenseIndex's shortlist: those chunks score, every other chunk gets -inf (no dense vote), and
the rows come back sorted for the sparse spec aggregation. A metadata filter becomes a `where`
on the spec names it lets through, so Chroma's filtered search fills the shortlist from
eligible chunks only; a filter that lets most of a large index through is applied instead to a
shortlist fetched deeper in proportion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CANDIDATES", "CHROMA_MIN_CHUNKS", "ChromaDense", "uses_chroma"]

# Where the in-process matrix stops being the better choice; the measurement is spec 094's.
CHROMA_MIN_CHUNKS = 200_000
CANDIDATES = 1_000  # as the in-process IVF shortlist: the two paths rank the same depth
# A filter that lets through more specs than this, and at least this share of the chunks, is
# applied to an over-fetched shortlist instead of being sent as a `where` clause.
MAX_WHERE_SPECS = 1_000
MIN_SHARE_UNFILTERED = 0.25


def uses_chroma(backend: str, chroma_url: str | None, chunks: int) -> bool:
    """Whether dense retrieval asks Chroma: always for "chroma" (the embedded store too), never
    for "memory", and for "auto" on a Chroma server once the index is large."""
    if backend == "chroma":
        return True
    return backend == "auto" and bool(chroma_url) and chunks >= CHROMA_MIN_CHUNKS


class ChromaDense:
    """DenseIndex's `search` over a Chroma collection; rows in the warm index's chunk order.
    `spec_names` and `spec_of` (each row's position in `spec_names`) are the warm index's own."""

    def __init__(
        self,
        store: Any,
        ids: Sequence[str],
        spec_names: Sequence[str],
        spec_of: np.ndarray,
        *,
        candidates: int = CANDIDATES,
    ):
        self.store = store
        self.row = {chunk_id: row for row, chunk_id in enumerate(ids)}
        self.spec_names = spec_names
        self.spec_of = spec_of
        self.candidates = candidates

    def __len__(self) -> int:
        return len(self.row)

    def search(
        self, query: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        out = np.full(len(self.row), -np.inf, dtype=np.float32)
        where: dict[str, Any] | None = None
        limit = min(self.candidates, len(self.row))
        if mask is not None:
            rows = np.flatnonzero(mask)
            passing = np.bincount(self.spec_of[rows], minlength=len(self.spec_names))
            names = sorted(self.spec_names[int(i)] for i in np.flatnonzero(passing))
            if not names:
                return out, np.zeros(0, dtype=np.int64)
            share = len(rows) / len(self.row)
            if len(names) > MAX_WHERE_SPECS and share >= MIN_SHARE_UNFILTERED:
                # A `where` naming thousands of specs costs the server more than reading a
                # few times the shortlist and dropping what the filter refuses.
                limit = min(len(self.row), math.ceil(self.candidates / share))
            else:
                where = {"spec": names[0]} if len(names) == 1 else {"spec": {"$in": names}}
                limit = min(self.candidates, len(rows))
        found: list[int] = []
        if limit < 1:
            return out, np.zeros(0, dtype=np.int64)
        for chunk_id, score in self.store.nearest(query, limit, where):
            row = self.row.get(chunk_id)  # a chunk of a newer ingest: not in this generation
            if row is not None and (mask is None or mask[row]):
                out[row] = score
                found.append(row)
        return out, np.sort(np.asarray(found, dtype=np.int64))
