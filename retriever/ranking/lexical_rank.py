"""BM25 over chunks, held in memory as postings arrays.

The chunk database (ingest/index/chunk_db.py) holds the chunk texts of record; ranking reads them once
per index generation and keeps term statistics here, because scoring every chunk with numpy is a
few milliseconds even on a corpus ten times LeanSpec's, needs no SQL round trip per query, and lets
the analyzer (retriever.ranking.terms) stem and split identifiers the way queries need.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["BM25Index", "Documents"]

VOCABULARY_SLACK = 2.0  # compact the vocabulary when it holds over twice the terms in use


class BM25Index:
    """Okapi BM25 scores of every document for a bag of query terms.

    Documents are given as term lists (already analyzed). `scores` returns one float per document,
    0.0 where no query term occurs.

    Each document is also kept encoded (term ids into `vocabulary`), so that after an edit the
    next index is built from the unchanged documents' codes plus the new documents' terms
    (`rebuilt`) instead of analyzing and encoding every document again.
    """

    def __init__(self, documents: Iterable[Sequence[str]], k1: float = 1.2, b: float = 0.75):
        """`documents` may be a generator: each is encoded as it comes, so the term lists of a
        large corpus are never all alive at once."""
        vocabulary: dict[str, int] = {}
        self._build(vocabulary, [_encode(doc, vocabulary) for doc in documents], k1, b)

    def rebuilt(self, documents: Sequence[np.ndarray | Sequence[str]]) -> BM25Index:
        """A new index over `documents`: each either a code array of THIS index (`encoded[i]`,
        reused as is) or a list of terms (encoded now). This index is left unchanged."""
        vocabulary = dict(self.vocabulary)
        encoded = [
            doc if isinstance(doc, np.ndarray) else _encode(doc, vocabulary) for doc in documents
        ]
        index = BM25Index.__new__(BM25Index)
        index._build(vocabulary, encoded, self.k1, self.b)
        return index

    @property
    def encoded(self) -> Documents:
        """Each document's term ids, as views of one flat array (`Documents`)."""
        return Documents(self._codes, self._offsets)

    def _build(
        self, vocabulary: dict[str, int], encoded: list[np.ndarray], k1: float, b: float
    ) -> None:
        lengths64 = np.array([len(doc) for doc in encoded], dtype=np.int64)
        # One flat array of every document's codes, not an array per document: at 100x LeanSpec
        # the per-array headers alone were ~100 MB of a worker's memory. uint16 while the
        # vocabulary fits, which halves the rest.
        dtype = np.uint16 if len(vocabulary) <= np.iinfo(np.uint16).max + 1 else np.int32
        codes = np.concatenate(encoded).astype(dtype) if encoded else np.zeros(0, dtype=dtype)
        del encoded
        if len(vocabulary) > VOCABULARY_SLACK * max(1, len(np.unique(codes))):
            # Terms of edited-away documents stay in the vocabulary; drop them once they
            # dominate, so a long-running server's vocabulary does not grow with every edit.
            vocabulary, codes = _compact(vocabulary, codes)
        self._codes = codes
        self._offsets = np.concatenate(([0], np.cumsum(lengths64)))
        self.k1 = k1
        self.b = b
        self.vocabulary = vocabulary
        self.size = len(lengths64)
        lengths = lengths64.astype(np.float32)
        self.lengths = lengths
        average = float(lengths.mean()) if self.size else 0.0
        # The length normalization per document does not depend on the query: precompute it.
        self._norm = k1 * (1.0 - b + b * lengths / average) if average else np.full(self.size, k1)
        # Postings via one sort of (term, document) keys instead of a Counter per document:
        # building the index is on the path of the first search after every ingest.
        size = max(self.size, 1)
        doc_ids = np.repeat(np.arange(self.size, dtype=np.int64), lengths64)
        keys, tf = np.unique(codes.astype(np.int64) * size + doc_ids, return_counts=True)
        key_terms = keys // size
        key_docs = (keys % size).astype(np.int32)
        tf = tf.astype(np.float32)
        # Terms that occur, and where each one's postings start and end.
        starts = np.flatnonzero(np.diff(key_terms, prepend=-1))
        ends = np.append(starts[1:], len(keys))[: len(starts)]
        used = key_terms[starts]
        df = (ends - starts).astype(np.float64)
        # BM25's "+1" variant: never negative, so a term in most chunks still adds a little.
        idf = np.log(1.0 + (self.size - df + 0.5) / (df + 0.5))
        # Each posting's BM25 term-frequency part, which does not depend on the query: a query
        # then costs one multiply-add per posting (half the time on a corpus ten times LeanSpec's).
        impact = (tf * (k1 + 1.0) / (tf + self._norm[key_docs])).astype(np.float32)
        names = list(vocabulary)  # ids are assigned in insertion order: names[id] is the term
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._idf: dict[str, float] = {}
        for term_id, lo, hi, weight in zip(
            used.tolist(), starts.tolist(), ends.tolist(), idf.tolist(), strict=True
        ):
            term = names[term_id]
            self._postings[term] = (key_docs[lo:hi], impact[lo:hi])
            self._idf[term] = weight

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
            ids, impact = posting
            weight = self._idf[term] * repeats * (weights.get(term, 1.0) if weights else 1.0)
            total[ids] += np.float32(weight) * impact
        return total


def _encode(document: Sequence[str], vocabulary: dict[str, int]) -> np.ndarray:
    """The document's term ids, adding new terms to `vocabulary`."""
    for term in sorted(set(document).difference(vocabulary)):  # sorted: ids independent of hashing
        vocabulary[term] = len(vocabulary)
    return np.array(list(map(vocabulary.__getitem__, document)), dtype=np.int32)


class Documents(Sequence[np.ndarray]):
    """The documents' codes as a sequence of arrays, each a view of the one flat array (what
    `rebuilt` takes back for a document that did not change)."""

    def __init__(self, codes: np.ndarray, offsets: np.ndarray):
        self._codes, self._offsets = codes, offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._codes[self._offsets[i] : self._offsets[i + 1]]


def _compact(vocabulary: dict[str, int], codes: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """The vocabulary of the terms in use only, ids renumbered from 0, and the codes to match."""
    names = list(vocabulary)
    used = np.unique(codes)
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[used] = np.arange(len(used), dtype=np.int64)
    compacted = {names[term_id]: new for new, term_id in enumerate(used.tolist())}
    return compacted, remap[codes].astype(codes.dtype)
