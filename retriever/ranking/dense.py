"""Cosine similarity of a query vector with every chunk vector: exact, or through an IVF index.

Exact scoring is one matrix-vector product over L2-normalized float32 rows. It is memory-bound:
the LeanSpec corpus (9k chunks x 384 floats, 14 MB) takes well under a millisecond, ten times that
corpus (140 MB per query) ~30 ms on one core. Above `exact_limit` chunks the index therefore asks
faiss's inverted-file index (IndexIVFFlat: the rows grouped around k-means centroids) for the best
`candidates` chunks, scanning only the lists nearest the query; those come back with their exact
inner products and the others get no dense score (-inf), i.e. no dense vote, which only ever
concerns chunks far below any spec's best. Spec 090 chose 16 probes from ten tiled copies of
LeanSpec, whose identical vectors made any shortlist look complete; on distinct vectors
(tests/bench/bench_dense_ann.py, 10x LeanSpec by blending, 197 dev queries) 16 of 299 lists gave
spec-level recall@10 of 0.855 against exact, 64 gave 0.975 and 128 0.994, at 1.2 / 3.5 / 6.8 ms
against 20 ms for the exact product. A third of the lists is therefore probed (spec 094).
"""

from __future__ import annotations

import math

import faiss
import numpy as np

__all__ = ["DenseIndex"]

EXACT_LIMIT = 30_000
CANDIDATES = 1_000
MIN_PROBES = 16
PROBE_SHARE = 1 / 3
TRAINING_ROWS_PER_LIST = 40  # faiss warns below 39 rows a centroid


class DenseIndex:
    def __init__(
        self,
        vectors: np.ndarray,
        *,
        exact_limit: int = EXACT_LIMIT,
        candidates: int = CANDIDATES,
    ):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.candidates = candidates
        self.exact_limit = exact_limit
        self.ann: faiss.IndexIVFFlat | None = None
        rows, width = self.vectors.shape if self.vectors.ndim == 2 else (0, 0)
        if rows > exact_limit and rows > 1 and width:
            # One searching thread: a server answers many queries at once on few cores.
            faiss.omp_set_num_threads(1)
            lists = max(1, int(math.sqrt(rows)))
            ann = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(width), width, lists, faiss.METRIC_INNER_PRODUCT
            )
            step = max(1, rows // (lists * TRAINING_ROWS_PER_LIST))
            ann.train(self.vectors[::step])
            ann.add(self.vectors)
            # A third of the lists (recall, above), at least enough that the shortlist is full
            # twice over, and never fewer than 16.
            per_list = rows / lists
            probes = max(MIN_PROBES, math.ceil(lists * PROBE_SHARE))
            ann.nprobe = min(lists, max(probes, 2 * math.ceil(candidates / per_list)))
            self.ann = ann

    def __len__(self) -> int:
        return len(self.vectors)

    def search(
        self, query: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Cosine of every chunk with `query` (-inf for chunks masked out or not shortlisted),
        and the ascending rows that have a score when those are a shortlist (None when every
        eligible chunk was scored exactly): the spec scores are then aggregated over the
        shortlist alone, without scanning the whole array to find it again."""
        query = np.asarray(query, dtype=np.float32)
        eligible = len(self.vectors) if mask is None else int(mask.sum())
        if self.ann is None or eligible <= self.exact_limit:
            if mask is None:
                return self.vectors @ query, None
            out = np.full(len(self.vectors), -np.inf, dtype=np.float32)
            rows = np.flatnonzero(mask)
            out[rows] = self.vectors[rows] @ query
            return out, None
        params = faiss.SearchParametersIVF()
        params.nprobe = self.ann.nprobe
        if mask is not None:
            bits = np.packbits(mask, bitorder="little")
            params.sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        found, ids = self.ann.search(
            query.reshape(1, -1), min(self.candidates, eligible), params=params
        )
        kept = ids[0] >= 0
        rows, values = ids[0][kept], found[0][kept]
        out = np.full(len(self.vectors), -np.inf, dtype=np.float32)
        out[rows] = values
        return out, np.sort(rows)
