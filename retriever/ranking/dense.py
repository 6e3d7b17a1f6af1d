"""Cosine similarity of a query vector with every chunk vector, exact or in two stages.

Scoring is one matrix-vector product over L2-normalized float32 rows. It is memory-bound: the
LeanSpec corpus (9k chunks x 384 floats, 14 MB) takes about 2-4 ms, but ten times that corpus
(140 MB per query) takes ~30 ms on one core. Above `exact_limit` chunks the index therefore keeps
a PCA projection of the rows (64 dimensions: a fifth of the bytes), ranks all chunks on it, and
re-scores the best `candidates` exactly; the others get no dense score (-inf), i.e. no dense vote,
which only ever concerns chunks far below any spec's best.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DenseIndex"]

EXACT_LIMIT = 30_000
PROJECTED_DIMENSIONS = 64
CANDIDATES = 2_000
PCA_SAMPLE = 20_000


class DenseIndex:
    def __init__(
        self,
        vectors: np.ndarray,
        *,
        exact_limit: int = EXACT_LIMIT,
        dimensions: int = PROJECTED_DIMENSIONS,
        candidates: int = CANDIDATES,
    ):
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.candidates = candidates
        self.exact_limit = exact_limit
        self.basis: np.ndarray | None = None
        self.projected: np.ndarray | None = None
        rows, width = self.vectors.shape if self.vectors.ndim == 2 else (0, 0)
        if rows > exact_limit and width > dimensions:
            # The constant q.mean shifts every score alike, so projecting centred rows keeps the
            # order of q.v; a sample is enough to find the main directions.
            step = max(1, rows // PCA_SAMPLE)
            sample = self.vectors[::step]
            centred = sample - sample.mean(axis=0)
            _, _, components = np.linalg.svd(centred, full_matrices=False)
            self.basis = np.ascontiguousarray(components[:dimensions].T, dtype=np.float32)
            self.projected = np.ascontiguousarray(self.vectors @ self.basis)

    def __len__(self) -> int:
        return len(self.vectors)

    def scores(self, query: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Cosine of every chunk with `query`; -inf for chunks masked out or not shortlisted."""
        query = np.asarray(query, dtype=np.float32)
        eligible = len(self.vectors) if mask is None else int(mask.sum())
        if self.projected is None or self.basis is None or eligible <= self.exact_limit:
            if mask is None:
                return self.vectors @ query
            out = np.full(len(self.vectors), -np.inf, dtype=np.float32)
            rows = np.flatnonzero(mask)
            out[rows] = self.vectors[rows] @ query
            return out
        approximate = self.projected @ (self.basis.T @ query)
        if mask is not None:
            approximate = np.where(mask, approximate, -np.inf)
        keep = min(self.candidates, eligible)
        shortlist = np.argpartition(-approximate, keep - 1)[:keep]
        out = np.full(len(self.vectors), -np.inf, dtype=np.float32)
        out[shortlist] = self.vectors[shortlist] @ query
        return out
