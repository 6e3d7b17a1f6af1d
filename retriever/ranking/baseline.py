"""The plain-BM25 baseline that evaluations compare against; never a search mode.

The corpus README (../shared/corpora/README.md) publishes figures for "plain BM25 over ~200-token
chunks with a `dir | title` header, best chunk". This rebuilds that method over the chunks of one
warm index generation, so a comparison shows what specmem's own ranking adds over the obvious
thing: Okapi BM25 (k1 1.2, b 0.75) over `"{spec dir} | {title}\\n{chunk text}"`, tokens the
lowercase runs of `[a-z0-9]`, no stemming, no stopwords, and a spec scored by its best chunk.

Nothing here is cached: the caller that asks for the baseline holds it for as long as the index
generation it was built from is the one it evaluates.
"""

from __future__ import annotations

import re

import numpy as np

from .lexical_rank import BM25Index
from .warm_index import ChunkRecord, WarmIndex

__all__ = ["PlainBM25", "baseline_document", "baseline_tokens"]

_TOKEN = re.compile(r"[a-z0-9]+")
K1 = 1.2
B = 0.75


def baseline_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def baseline_document(chunk: ChunkRecord, title: str) -> str:
    return f"{chunk.spec} | {title}\n{chunk.text}"


class PlainBM25:
    """The baseline over one warm index: `rank(query, limit)` gives spec dir names, best first."""

    def __init__(self, index: WarmIndex):
        titles = {info.name: info.title for info in index.specs}
        self.generation = index.generation
        self.spec_names = list(index.spec_names)
        self._starts = index.starts
        self._bm25 = BM25Index(
            [baseline_tokens(baseline_document(c, titles[c.spec])) for c in index.chunks],
            k1=K1,
            b=B,
        )

    def spec_scores(self, query: str) -> np.ndarray:
        """Each spec's best chunk score (0.0 where no query token occurs)."""
        if not self.spec_names:
            return np.zeros(0, dtype=np.float32)
        chunk_scores = self._bm25.scores(baseline_tokens(query))
        return np.maximum.reduceat(chunk_scores, self._starts)

    def rank(self, query: str, limit: int) -> list[str]:
        """The `limit` best specs that share a token with the query; ties in spec order."""
        scores = self.spec_scores(query)
        matched = np.flatnonzero(scores > 0)
        order = matched[np.lexsort((matched, -scores[matched]))]
        return [self.spec_names[int(i)] for i in order[:limit]]
