"""Keep the index current after a write, without ever making the write wait on an ingest.

The file is the source of truth and it was written: ANY failure of the re-index (Chroma down, a
damaged or unreadable index, a full disk, the index held by a running `specmem ingest`, a bug)
becomes a "not re-indexed" warning on the written spec, never an error of the write, which would
make a retry fail on its own stale hash (specs 082, 043). A spec that could not be re-indexed is
remembered and goes along with the next re-index. Once the index was found held by another
process, writes skip the re-index for a moment instead of each waiting for it in turn (spec 076).
Skipped altogether when nothing was ever indexed: a checkout without an index stays index-free.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ingest.errors import Busy, SpecmemError
from ingest.index.layout import IndexLayout
from ingest.specs.model import Spec

__all__ = ["INDEX_BUSY_BACKOFF_SECONDS", "IndexFollower"]

log = logging.getLogger(__name__)

# Forty writes during an ingest would otherwise each wait for the index lock, one after another.
INDEX_BUSY_BACKOFF_SECONDS = 1.0


class IndexFollower:
    def __init__(self, layout: IndexLayout, reindex: Callable[[list[str]], None]):
        """`reindex(names)` re-indexes those specs with bounded waits, Busy past them."""
        self.layout = layout
        self._reindex = reindex
        self._lock = threading.Lock()
        self._unindexed: set[str] = set()
        self._busy_until = 0.0  # time.monotonic() before which no re-index is tried

    def index_exists(self) -> bool:
        """Whether an ingest ever completed here: it writes the manifest (ingest.index.layout).

        Locks and the event log also live in the data dir, so its mere existence says nothing.
        Anything at the manifest's path counts, a directory or garbage too: a damaged index is
        an index, and reading it must say so (IndexDamaged), not pretend there is none.
        """
        return self.layout.manifest_path.exists()

    def after_write(self, spec: Spec) -> None:
        if not self.index_exists():
            return
        with self._lock:
            names = sorted(self._unindexed | {spec.dir_name})
            self._unindexed.difference_update(names)
            busy = time.monotonic() < self._busy_until
        try:
            if busy:
                raise Busy("another process (a running `specmem ingest`) holds the index")
            self._reindex(names)
        except SpecmemError as err:
            self._remember(names, busy=isinstance(err, Busy))
            spec.warnings.append(f"not re-indexed: {err.code}: {err}")
        except Exception as err:
            log.exception("re-index after writing %s failed", spec.dir_name)
            self._remember(names, busy=False)
            spec.warnings.append(
                f"not re-indexed: internal_error: {type(err).__name__}; the file was "
                "written, and `specmem ingest` brings the index up to date"
            )

    def _remember(self, names: list[str], *, busy: bool) -> None:
        with self._lock:
            self._unindexed.update(names)
            if busy:
                self._busy_until = max(
                    self._busy_until, time.monotonic() + INDEX_BUSY_BACKOFF_SECONDS
                )
