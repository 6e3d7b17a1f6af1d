"""Embedders behind one small Protocol. (Contract: the real sentence-transformers embedder is
filled in by the embedding work; FakeEmbedder serves fast unit tests that do not care which
vectors they get.)"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Embedder", "FakeEmbedder"]


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in the index; a different name forces a full re-index
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One L2-normalized float32 vector."""
        ...

    def count_model_tokens(self, text: str) -> int:
        """Word pieces in the model's own tokenizer (its window is counted in these)."""
        ...


class FakeEmbedder:
    """Deterministic bag-of-words hashing vectors: similar words give similar vectors, no model."""

    def __init__(self, dimension: int = 64, name: str = "fake-hashing-embedder"):
        self.name = name
        self.dimension = dimension
        self.calls = 0  # how many texts were embedded: tests assert on re-embedding

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in text.lower().split():
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_model_tokens(self, text: str) -> int:
        return len(text.split())
