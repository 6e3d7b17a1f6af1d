"""One embedder for every project of a server, which embeds a query once for all of them.

Each project's SpecMemory would load its own copy of the model (about 90 MB each) and embed a
search's query again for every project it asks; this wrapper is handed to all of them instead.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

__all__ = ["SharedEmbedder"]

REMEMBERED_QUERIES = 256


class SharedEmbedder:
    def __init__(self, inner: Any, remembered: int = REMEMBERED_QUERIES):
        self._inner = inner
        self._remembered = remembered
        self._queries: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def embed_query(self, text: str) -> Any:
        with self._lock:
            if text in self._queries:
                self._queries.move_to_end(text)
                return self._queries[text].copy()
        vector = self._inner.embed_query(text)
        with self._lock:
            self._queries[text] = vector
            while len(self._queries) > self._remembered:
                self._queries.popitem(last=False)
        return vector.copy()

    def __getattr__(self, name: str) -> Any:  # everything else is the model's own
        return getattr(self._inner, name)
