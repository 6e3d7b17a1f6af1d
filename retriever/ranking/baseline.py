"""The plain-BM25 baselines that evaluations compare against; never a search mode.

The corpus README (../shared/corpora/README.md) publishes figures for "plain BM25 over ~200-token
chunks with a `dir | title` header, best chunk". Two readings of that method, both over one warm
index generation, so a comparison shows what specmem's own ranking adds over the obvious thing:
Okapi BM25 (k1 1.2, b 0.75) over `"{spec dir} | {title}\\n{text}"`, tokens the lowercase runs of
`[a-z0-9]`, no stemming, no stopwords, and a spec scored by its best document.

- `bm25`: a document is one of specmem's own chunks (a section, split where long);
- `bm25-windows`: a document is a window of WINDOW_WORDS words of the spec's text, cut with no
  regard to its headings. This is the stronger of the two on the corpora here, and the bar the
  held-out judging measures against, so it is the one a ranking change has to beat.

Nothing here is cached: the caller that asks for the baseline holds it for as long as the index
generation it was built from is the one it evaluates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from .lexical_rank import BM25Index
from .warm_index import ChunkRecord, WarmIndex

__all__ = ["WINDOW_WORDS", "PlainBM25", "baseline_document", "baseline_tokens", "spec_windows"]

_TOKEN = re.compile(r"[a-z0-9]+")
K1 = 1.2
B = 0.75
WINDOW_WORDS = 200


def baseline_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def baseline_document(chunk: ChunkRecord, title: str) -> str:
    return f"{chunk.spec} | {title}\n{chunk.text}"


def spec_windows(chunks: Sequence[ChunkRecord], words: int = WINDOW_WORDS) -> list[str]:
    """One spec's text (its chunks in index order) cut into runs of `words` words; at least one,
    so that a spec with no text still has a document to score its header."""
    flat = " ".join(chunk.text for chunk in chunks).split()
    return [" ".join(flat[i : i + words]) for i in range(0, len(flat), words)] or [""]


class PlainBM25:
    """A baseline over one warm index: `rank(query, limit)` gives spec dir names, best first.
    `windows` (a word count) scores windows of the spec's text instead of its chunks."""

    def __init__(self, index: WarmIndex, windows: int | None = None):
        titles = {info.name: info.title for info in index.specs}
        self.generation = index.generation
        self.spec_names = list(index.spec_names)
        if windows is None:
            self._starts = index.starts
            documents = [baseline_document(c, titles[c.spec]) for c in index.chunks]
        else:
            starts, documents = [], []
            for name, start, count in zip(self.spec_names, index.starts, index.counts, strict=True):
                starts.append(len(documents))
                chunks = index.chunks[int(start) : int(start + count)]
                documents += [
                    f"{name} | {titles[name]}\n{text}" for text in spec_windows(chunks, windows)
                ]
            self._starts = np.array(starts, dtype=np.int64)
        self._bm25 = BM25Index([baseline_tokens(d) for d in documents], k1=K1, b=B)

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
