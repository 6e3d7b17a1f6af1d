"""The one owner of a SpecMemory's catalog: the specs as they are on disk now.

A read gets the cached Catalog while nothing changed on disk, and a rescan otherwise (one at a
time; the others wait for it rather than scanning too). What "nothing changed" costs: on Linux,
one non-blocking read of an inotify descriptor watching every folder a scan reads
(ingest.index.dir_watch), so a warm server's read path walks no directory (spec 077); elsewhere, or
past the watch limits, a stat-only fingerprint of every spec file (12 ms on LeanSpec).

A write swaps the spec it wrote into the cached catalog instead of rescanning every spec (~0.4 s
on 300 specs), but only when nothing else changed on disk. The lock covers reference swaps and
the descriptor read only: no walk, scan or parse runs under it, so a read never waits for a
write's disk work (spec 076).
"""

from __future__ import annotations

import logging
import threading

from ingest.authoring.writes import catalog_with
from ingest.index.dir_watch import EVERYTHING, DirectoryWatch
from ingest.specs.model import Spec
from ingest.specs.store import Catalog, SpecStore, content_hash

__all__ = ["LiveCatalog"]

log = logging.getLogger(__name__)


class LiveCatalog:
    def __init__(self, store: SpecStore):
        self.store = store
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._fingerprint: tuple | None = None  # without a watch: the stats of the last scan
        self._watch = DirectoryWatch.open()
        self._watching = False  # the watch covered every folder of the last scan
        # Batches of events seen, and how many of them the cached catalog's scan began after.
        self._events_seen = 0
        self._events_scanned = 0
        self._patches = 0  # one-spec swaps after writes: a scan begun before one must not win

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
        with self._lock:
            watching = self._watching
        if watching:
            return self._current_watched(refresh)
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
            return self._scan(fingerprint)

    def _current_watched(self, refresh: bool) -> Catalog:
        with self._lock:
            catalog = self._catalog
            if not refresh and catalog is not None and self._fresh():
                return catalog
        with self._scan_lock:
            with self._lock:
                catalog = self._catalog
                if not refresh and catalog is not None and self._fresh():
                    return catalog  # another thread rescanned while this one waited
            return self._scan(None)

    def _fresh(self) -> bool:
        """Under `_lock`: no event since the cached catalog's scan began."""
        assert self._watch is not None
        if self._watch.changes():
            self._events_seen += 1
        return self._events_seen == self._events_scanned

    def _scan(self, fingerprint: tuple | None) -> Catalog:
        """Under `_scan_lock`. With a watch, the folders are watched before the scan reads
        them: a change during the scan is an event, seen by the next read, never lost.

        So the spec dirs are listed twice, once for the watch and once by the scan. One listing
        for both would lose a spec dir created between that listing and its watch; the second
        one costs a directory read per base, and only when something changed."""
        seen = None
        if self._watch is not None:
            watching = self._watch.watch(self.store.watched_folders())
            with self._lock:
                if self._watch.changes():
                    self._events_seen += 1
                seen = self._events_seen if watching else None
        with self._lock:
            patches = self._patches
        if seen is None and fingerprint is None:
            fingerprint = self.fingerprint()  # the watch failed (a limit): stats from now on
        fresh = self.store.scan()
        with self._lock:
            self._catalog, self._fingerprint = fresh, fingerprint
            self._watching = seen is not None
            if seen is not None:
                self._events_scanned = seen
                if self._patches != patches:
                    # A write swapped its spec in while this scan read the disk, and drained its
                    # events: the scan may have read the file before that write, so the next
                    # read must scan again rather than trust this catalog.
                    self._events_seen += 1
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
        now: tuple | None = None
        with self._lock:
            catalog, before, watching = self._catalog, self._fingerprint, self._watching
            if watching:
                assert self._watch is not None
                was_fresh = self._events_seen == self._events_scanned
                changed = self._watch.changes()
                others = changed is EVERYTHING or any(
                    not path.is_relative_to(spec.path) for path in changed
                )
                if others:
                    self._events_seen += 1
                others_unchanged = was_fresh and not others
        if not watching:
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
                    self._catalog = swapped
                    self._patches += 1
                    if not watching:
                        self._fingerprint = now
                    return
        self.current(refresh=True)
