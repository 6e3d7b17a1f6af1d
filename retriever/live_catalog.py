"""The one owner of a SpecMemory's catalog: the specs as they are on disk now.

A read gets the cached Catalog while a stat-only fingerprint of the specs dir is unchanged, and
a rescan otherwise (one at a time; the others wait for it rather than scanning too). A write
swaps the spec it wrote into the cached catalog instead of rescanning every spec (~0.4 s on 300
specs), but only when nothing else changed on disk. The lock covers reference swaps only: no
disk walk, scan or parse runs under it, so a read never waits for a write's disk work (spec 076).
"""

from __future__ import annotations

import logging
import threading

from ingest.model import Spec
from ingest.store import Catalog, SpecStore, content_hash
from ingest.writes import catalog_with

__all__ = ["LiveCatalog"]

log = logging.getLogger(__name__)


class LiveCatalog:
    def __init__(self, store: SpecStore):
        self.store = store
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._fingerprint: tuple | None = None

    def fingerprint(self) -> tuple:
        """Cheap change detector: which spec dirs and markdown files exist, sub-folders included,
        and each file's (mtime, size). Stats only, the same walk the ingest compares. Each entry
        starts with the spec's name: a write compares the entries of every other spec. The
        last entry is the folders that are not specs (aliases, misnamed), so `list` reports one
        as soon as it appears (spec 008)."""
        specs = tuple(
            (state.name, str(state.directory), tuple(sorted(state.files.items())))
            for state in self.store.file_states()
        )
        others = tuple(str(problem) for problem in self.store.listing().problems)
        return (*specs, ("", "", others))

    def current(self, refresh: bool = False) -> Catalog:
        """All specs as they are on disk now, rescanned only when a file changed."""
        fingerprint = self.fingerprint()
        with self._lock:
            catalog, known = self._catalog, self._fingerprint
        if not refresh and catalog is not None and fingerprint == known:
            return catalog
        with self._scan_lock:
            with self._lock:
                catalog, known = self._catalog, self._fingerprint
            if not refresh and catalog is not None and fingerprint == known:
                return catalog  # another thread rescanned while this one waited
            # The fingerprint is taken before the scan: a change during the scan shows as a
            # mismatch next time and rescans, it is never mistaken for the state scanned.
            fingerprint = self.fingerprint()
            fresh = self.store.scan()
            with self._lock:
                self._catalog, self._fingerprint = fresh, fingerprint
            return fresh

    def after_write(self, spec: Spec) -> None:
        """Make the next read see `spec` as written. Never raises: the file is written by now,
        and a catalog that cannot be patched is dropped, so the next read rescans (spec 043)."""
        try:
            self._patch(spec)
        except Exception:
            log.exception("catalog refresh after writing %s failed", spec.dir_name)
            with self._lock:
                self._catalog = self._fingerprint = None

    def _patch(self, spec: Spec) -> None:
        """Swap the written spec in when the disk shows no other change since the last scan and
        the README still is what the write left; otherwise rescan everything. The swap happens
        only if no one swapped the catalog meanwhile."""
        with self._lock:
            catalog, before = self._catalog, self._fingerprint
        now = self.fingerprint()
        others_unchanged = (
            catalog is not None
            and before is not None
            and [e for e in before if e[0] != spec.dir_name]
            == [e for e in now if e[0] != spec.dir_name]
        )
        duplicate = catalog is not None and any(
            p.spec == spec.dir_name and p.reason.startswith("duplicate") for p in catalog.problems
        )
        try:
            current = content_hash(spec.readme.path.read_bytes())
        except OSError:
            current = None
        if (
            catalog is not None
            and others_unchanged
            and not duplicate
            and current == spec.content_hash
        ):
            swapped = catalog_with(catalog, spec)
            with self._lock:
                if self._catalog is catalog:
                    self._catalog, self._fingerprint = swapped, now
                    return
        self.current(refresh=True)
