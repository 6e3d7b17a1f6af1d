"""The query embedding on a worker thread while the caller ranks lexically.

A hybrid search needs the query vector only for its dense half. The embedding (onnxruntime,
which releases the GIL) and the lexical half (BM25 over every chunk, aggregated to specs) are
independent, so running them side by side takes the lexical half off the latency: at ten times
the LeanSpec corpus that half costs ~1.7 ms, and side by side a search took ~1.2 ms less
(specs/091). The CPU spent is the same; a server whose cores are all busy loses nothing but a
thread hand-off, and when every worker is taken the embedding runs inline as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # the service imports this at start; numpy loads with the first search
    import numpy as np

__all__ = ["EmbeddingOverlap", "Vector"]

Vector = Callable[[], "np.ndarray"]  # the query vector, once it is needed
T = TypeVar("T")


class EmbeddingOverlap:
    """Starts query embeddings on up to `workers` threads (created on first use)."""

    def __init__(self, workers: int = 2):
        self._workers = workers
        self._free = threading.Semaphore(workers)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def start(self, embed: Callable[[str], T], query: str) -> Callable[[], T]:
        """The vector of `query` (or whatever `embed` makes of it: the dense half's answer when
        that waits on a server), being computed; calling the result waits for it (and raises
        what `embed` raised)."""
        pool = self._running_pool()
        if pool is not None and self._free.acquire(blocking=False):
            try:
                return pool.submit(self._embed, embed, query).result
            except RuntimeError:  # closed in the meantime
                self._free.release()
        vector = embed(query)
        return lambda: vector

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)

    def _running_pool(self) -> ThreadPoolExecutor | None:
        with self._lock:
            if self._pool is None and not self._closed:
                self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="specmem-embed")
            return self._pool

    def _embed(self, embed: Callable[[str], T], query: str) -> T:
        try:
            return embed(query)
        finally:
            self._free.release()
