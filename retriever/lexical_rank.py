"""BM25 over chunks, held in memory as postings arrays.

SQLite FTS5 (ingest/lexical.py) is the lexical index of record; ranking reads its chunk texts once
per index generation and keeps term statistics here, because scoring every chunk with numpy is a
few milliseconds even on a corpus ten times LeanSpec's, needs no SQL round trip per query, and lets
the analyzer (retriever.terms) stem and split identifiers the way queries need.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["BM25Index"]


class BM25Index:
    """Okapi BM25 scores of every document for a bag of query terms.

    Documents are given as term lists (already analyzed). `scores` returns one float per document,
    0.0 where no query term occurs.
    """

    def __init__(self, documents: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        self.k1 = k1
        self.b = b
        self.size = len(documents)
        lengths = np.array([len(doc) for doc in documents], dtype=np.float32)
        self.lengths = lengths
        average = float(lengths.mean()) if self.size else 0.0
        # The length normalization per document does not depend on the query: precompute it.
        self._norm = k1 * (1.0 - b + b * lengths / average) if average else np.full(self.size, k1)
        # Postings via one sort of (term, document) keys instead of a Counter per document:
        # building the index is on the path of the first search after every ingest.
        vocabulary: dict[str, int] = {}
        term_ids = np.fromiter(
            (vocabulary.setdefault(t, len(vocabulary)) for doc in documents for t in doc),
            dtype=np.int64,
        )
        doc_ids = np.repeat(np.arange(self.size, dtype=np.int64), lengths.astype(np.int64))
        keys, tf = np.unique(term_ids * max(self.size, 1) + doc_ids, return_counts=True)
        key_terms = keys // max(self.size, 1)
        key_docs = (keys % max(self.size, 1)).astype(np.int32)
        bounds = np.searchsorted(key_terms, np.arange(len(vocabulary) + 1))
        tf = tf.astype(np.float32)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._idf: dict[str, float] = {}
        for term, index in vocabulary.items():
            lo, hi = bounds[index], bounds[index + 1]
            self._postings[term] = (key_docs[lo:hi], tf[lo:hi])
            df = hi - lo
            # BM25's "+1" variant: never negative, so a term in most chunks still adds a little.
            self._idf[term] = float(np.log(1.0 + (self.size - df + 0.5) / (df + 0.5)))

    def idf(self, term: str) -> float:
        return self._idf.get(term, 0.0)

    def document_frequency(self, term: str) -> int:
        posting = self._postings.get(term)
        return 0 if posting is None else len(posting[0])

    def scores(
        self, query_terms: Iterable[str], weights: dict[str, float] | None = None
    ) -> np.ndarray:
        """BM25 score of every document; a term repeated in the query counts once per repeat."""
        total = np.zeros(self.size, dtype=np.float32)
        for term, repeats in Counter(query_terms).items():
            posting = self._postings.get(term)
            if posting is None:
                continue
            ids, tf = posting
            weight = self._idf[term] * repeats * (weights.get(term, 1.0) if weights else 1.0)
            total[ids] += weight * tf * (self.k1 + 1.0) / (tf + self._norm[ids])
        return total
