"""The ingest: bring the index in the data dir up to date with the specs dir, incrementally and
crash-safely.

1. Stat every markdown file of every spec dir, sub-folders included, and compare (mtime, size)
   with what SQLite recorded; only specs whose stats differ are read, and only those whose bytes
   differ are parsed and chunked. A no-op run therefore reads no file and never loads the model.
2. Chunk ids are content-addressed (header + text), so an edited spec re-embeds only the chunks
   whose words changed. A status or priority change re-embeds nothing (the header leaves them
   out, spec 032): the spec's chunk rows are rewritten in SQLite with the new metadata. A tag
   change alters every header and re-embeds the spec.
3. Order of writes, so that a crash at ANY point is repaired by the next run:
   mark SQLite dirty -> upsert new vectors into Chroma -> ONE SQLite transaction replacing the
   chunks, FTS rows and file/spec bookkeeping -> delete vectors no chunk uses -> clear dirty.
   A run that finds the dirty mark reconciles: vectors SQLite does not know are deleted, and specs
   whose vectors are missing are forgotten so they are re-embedded. Both stores are caches of the
   specs dir; `full=True` rebuilds them from nothing.
4. A spec that cannot be read is reported (path + reason) and left out of the index; if an older
   version was indexed, it is dropped, so the index is always a function of the files on disk
   (spec 040).
5. A damaged index (spec 043) never blocks its own rebuild. `full=True` removes every file of the
   index without opening any (ingest.index.layout) and builds anew. A plain run first checks what it
   can without loading Chroma (the manifest parses; both SQLite files are whole, page by page;
   lexical.sqlite belongs to the manifest's build) and rebuilds when any check fails, or when
   damage shows later in the run; `summary.damaged` says which file and why. A run scoped to
   some specs (the re-index after a write, `--spec`, the watcher) raises IndexDamaged instead:
   a status callback must not turn into a minutes-long rebuild.

`SPECMEM_INGEST_CRASH_AT=<point>` (tests only) SIGKILLs the process at a named point; see
CRASH_POINTS.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..atomic import storage_errors
from ..config import Settings
from ..errors import (
    Busy,
    IndexDamaged,
    InvalidInput,
    SpecNotFound,
    SpecParseError,
)
from ..specs.model import Spec, parse_dir_name
from ..specs.store import SpecStore, check_reference, content_hash
from .chunk_db import ChunkDatabase, FileState, SpecRecord, SpecUpdate
from .chunking import Chunk, chunk_spec
from .embedding import Embedder
from .layout import IndexLayout, Manifest, new_build_id, sqlite_damage

__all__ = [
    "CRASH_POINTS",
    "EMBED_BATCH",
    "IngestSummary",
    "Progress",
    "run_ingest",
]

log = logging.getLogger(__name__)

# Texts per embed + write step: big enough that the model's own batching (32) runs full and
# sorted by length, small enough that a crash loses little work and progress moves.
EMBED_BATCH = 512
LOCK_TIMEOUT_SECONDS = 120.0
CRASH_POINTS = ("after-dirty", "after-first-batch", "before-commit", "after-commit")

Progress = Callable[[int, int], None]  # (chunks embedded so far, chunks to embed)


@dataclass
class IngestSummary:
    specs: int = 0  # specs in the index after the run
    chunks: int = 0  # chunks in the index after the run
    added: int = 0  # specs indexed for the first time
    updated: int = 0  # specs re-chunked because their files changed
    removed: int = 0  # specs dropped (deleted, or now unreadable)
    unchanged: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {spec, path, reason, line?}
    embedded: int = 0  # chunks embedded in this run (the rest kept their vectors)
    chunks_removed: int = 0
    reconciled: bool = False  # a previous run had been interrupted and was repaired
    full: bool = False
    damaged: list[dict[str, str]] = field(default_factory=list)  # {path, reason}: why rebuilt
    seconds: float = 0.0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _DiskSpec:
    name: str
    directory: Path
    archived: bool
    prefix: str  # the spec dir relative to the specs dir, POSIX
    files: dict[str, tuple[int, int]]  # path relative to the specs dir -> (mtime_ns, size)

    def file_name(self, relative: str) -> str:
        """The name the spec gives a file: its path relative to the spec dir."""
        return relative[len(self.prefix) + 1 :]


def _crash_point(name: str) -> None:
    if os.environ.get("SPECMEM_INGEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _scan_disk(store: SpecStore) -> dict[str, _DiskSpec]:
    """Every spec dir and the stats of its markdown files; the first of a duplicated name wins,
    as in SpecStore.scan. Files are keyed by their path relative to the specs dir, as the index
    records them."""
    found: dict[str, _DiskSpec] = {}
    for state in store.file_states():
        if state.name in found:
            continue
        prefix = state.directory.relative_to(store.root).as_posix()
        files = {f"{prefix}/{name}": stat for name, stat in state.files.items()}
        found[state.name] = _DiskSpec(state.name, state.directory, state.archived, prefix, files)
    return found


def _scope(refs: Sequence[str], disk: dict[str, _DiskSpec], indexed: set[str]) -> set[str]:
    """The spec names `refs` mean: exact dir names (on disk or only in the index, i.e. deleted),
    or a number exactly one of them has."""
    names: set[str] = set()
    known = set(disk) | indexed
    for ref in refs:
        text = check_reference(ref)
        if text in known:
            names.add(text)
            continue
        number = int(text) if text.isascii() and text.isdigit() else None  # not `٤٥`
        matches = [
            n for n in known if number is not None and (parse_dir_name(n) or (-1,))[0] == number
        ]
        if len(matches) != 1:
            raise SpecNotFound(f"no single spec {text!r} to ingest (matches: {matches or 'none'})")
        names.add(matches[0])
    return names


def _file_hash(path: Path) -> str:
    try:
        return content_hash(path.read_bytes())
    except OSError:
        return "unreadable"


def _record_of(spec: Spec, root: Path) -> SpecRecord:
    return SpecRecord(
        name=spec.dir_name,
        hash=spec.content_hash,
        title=spec.title,
        status=spec.meta.status,
        priority=spec.meta.priority,
        tags=tuple(spec.meta.tags),
        parent=spec.meta.parent,
        depends_on=tuple(spec.meta.depends_on),
        archived=spec.is_archived,
        path=spec.path.relative_to(root).as_posix(),
    )


class _Run:
    """One ingest: holds the stores and the counters while the steps run."""

    def __init__(
        self,
        settings: Settings,
        embedder_factory: Callable[[], Embedder],
        progress: Progress | None,
    ):
        self.settings = settings
        self.layout = IndexLayout(settings.data_dir)
        self.store = SpecStore(settings.specs_dir)
        self.embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.progress = progress
        self._lexical: ChunkDatabase | None = None
        self._vectors: Any = None
        self.summary = IngestSummary()

    @property
    def lexical(self) -> ChunkDatabase:
        if self._lexical is None:
            self._lexical = ChunkDatabase(self.layout.lexical_path)
        return self._lexical

    def close(self) -> None:
        if self._lexical is not None:
            self._lexical.close()
            self._lexical = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self.embedder_factory()
        return self._embedder

    @functools.cached_property
    def count_model_tokens(self) -> Callable[[str], int]:
        # Chunking counts the same lines and headers many times over (it measured ~1.2 calls
        # per distinct text on the corpus, at ~35% of chunking time): memoize for this run.
        return functools.lru_cache(maxsize=1 << 16)(self.embedder.count_model_tokens)

    def vectors(self, manifest: Manifest) -> Any:
        if self._vectors is None:
            from .vectors import VectorStore  # chromadb costs ~2 s to import: only when needed

            store = VectorStore.open(self.layout, self.settings.chroma_url)
            store.collection(manifest)
            self._vectors = store
        return self._vectors

    # -- the model ---------------------------------------------------------------------------

    def ensure_manifest(self, full: bool, scoped: bool) -> tuple[Manifest, bool]:
        """The manifest this run writes under; rebuilds both stores when asked (`full`), when
        the model changed, or when the index is damaged (IndexDamaged instead when `scoped`)."""
        embedder = self.embedder
        wanted = Manifest(
            model=embedder.name,
            dimension=int(embedder.dimension),
            vector_backend=self.settings.chroma_url or "embedded",
        )
        if not full:
            try:
                current = self.check(deep=not scoped)
            except IndexDamaged as damage:
                if scoped:
                    raise
                self.note_damage(damage)
                current = None
            if (
                current is not None
                and current.compatible_with(wanted.model, wanted.dimension)
                and current.vector_backend == wanted.vector_backend
            ):
                return current, False
        return self.rebuild(wanted), True

    def check(self, *, deep: bool) -> Manifest | None:
        """The manifest, after the checks that need no Chroma: IndexDamaged naming the first
        file that fails. `deep` reads both SQLite files page by page (a few ms per MB)."""
        manifest = self.layout.read_manifest()
        if manifest is None:
            return None
        problem = sqlite_damage(self.layout.lexical_path, deep=deep)
        if problem:
            raise IndexDamaged(str(self.layout.lexical_path), problem)
        if manifest.build and self.lexical.build != manifest.build:
            raise IndexDamaged(
                str(self.layout.lexical_path),
                "belongs to another build of the index than manifest.json (replaced or emptied)",
            )
        chroma = self.layout.chroma_dir
        if not self.settings.chroma_url and os.path.lexists(chroma):
            if not chroma.is_dir():
                raise IndexDamaged(str(chroma), "is not a directory")
            problem = sqlite_damage(self.layout.chroma_database, deep=deep)
            if problem:
                raise IndexDamaged(str(self.layout.chroma_database), problem)
        return manifest

    def note_damage(self, damage: IndexDamaged) -> None:
        log.info("rebuilding the index: %s", damage)
        self.summary.damaged.append({"path": damage.path, "reason": damage.reason})

    def rebuild(self, wanted: Manifest) -> Manifest:
        """Remove every file of the index without opening any (ingest.index.layout), then start both
        stores empty under a new build id. The manifest goes first: a crash from here on leaves
        "no index", which the next run rebuilds again, never a half-rebuilt index that claims a
        model. Nothing else in the data dir is touched: not the event log, not the locks."""
        from .vectors import VectorStore, forget_embedded

        self.close()
        self._vectors = None
        embedded = not self.settings.chroma_url
        with storage_errors(self.layout.data_dir, "rebuild the index in"):
            self.layout.remove_index(embedded_chroma=embedded)
            if embedded:
                forget_embedded(self.layout)
            manifest = dataclasses.replace(wanted, build=new_build_id(), complete=False)
            self.lexical.set_build(manifest.build)
            store = VectorStore.open(self.layout, self.settings.chroma_url)
            if not embedded:
                store.drop()  # the server's collection of this data dir
            store.collection(manifest)
            self._vectors = store
            self.layout.write_manifest(manifest)
        return manifest

    # -- repairing an interrupted run --------------------------------------------------------

    def reconcile(self, manifest: Manifest) -> set[str]:
        """Make Chroma hold exactly the ids SQLite has; returns the ids that do have vectors."""
        vectors = self.vectors(manifest)
        in_chroma = vectors.ids()
        by_spec = self.lexical.chunk_ids_by_spec()
        in_sqlite = set().union(*by_spec.values()) if by_spec else set()
        orphans = in_chroma - in_sqlite
        if orphans:
            vectors.delete(sorted(orphans))
        missing = {spec for spec, ids in by_spec.items() if ids - in_chroma}
        if missing:
            self.lexical.forget_specs(missing)
        self.summary.reconciled = True
        return in_chroma & in_sqlite

    # -- the steps ---------------------------------------------------------------------------

    def changed_specs(
        self, disk: dict[str, _DiskSpec], scope: set[str] | None
    ) -> tuple[list[_DiskSpec], list[str], list[FileState]]:
        """(specs to re-read, indexed specs gone from disk, files only touched)."""
        states = self.lexical.file_states()
        by_spec: dict[str, dict[str, FileState]] = {}
        for state in states.values():
            by_spec.setdefault(state.spec, {})[state.path] = state
        indexed = set(self.lexical.spec_records())
        names = scope if scope is not None else set(disk) | indexed
        changed: list[_DiskSpec] = []
        removed: list[str] = []
        touched: list[FileState] = []
        for name in sorted(names):
            on_disk = disk.get(name)
            if on_disk is None:
                if name in indexed:
                    removed.append(name)
                continue
            known = by_spec.get(name, {})
            if name not in indexed or set(known) != set(on_disk.files):
                changed.append(on_disk)
                continue
            stale = [
                p for p, stat in on_disk.files.items() if stat != (known[p].mtime_ns, known[p].size)
            ]
            if not stale:
                self.summary.unchanged += 1
                continue
            fresh = {p: _file_hash(self.store.root / p) for p in stale}
            if all(fresh[p] == known[p].hash for p in stale):
                # Touched, not changed (git checkout, an editor's save without edits).
                touched.extend(FileState(p, name, *on_disk.files[p], fresh[p]) for p in stale)
                self.summary.unchanged += 1
            else:
                changed.append(on_disk)
        return changed, removed, touched

    def load(self, on_disk: _DiskSpec, indexed: set[str]) -> SpecUpdate | None:
        try:
            spec = self.store.load(on_disk.directory, on_disk.archived)
        except SpecParseError as err:
            self.summary.skipped.append(_skipped(on_disk.name, err.path, err.reason, err.line))
            return None
        loaded = {"README.md": spec.readme.content_hash}
        loaded.update({f.name: f.content_hash for f in spec.sub_files})
        files = []
        for relative, (mtime, size) in on_disk.files.items():
            name = on_disk.file_name(relative)
            digest = loaded.get(name) or _file_hash(self.store.root / relative)
            files.append(FileState(relative, on_disk.name, mtime, size, digest))
            if name not in loaded:
                path = on_disk.directory / name
                problem = next((p for p in spec.load_problems if Path(p.path) == path), None)
                reason = problem.reason if problem else "could not be read"
                line = problem.line if problem else None
                where = str(self.store.root / relative)
                self.summary.skipped.append(_skipped(on_disk.name, where, reason, line))
        embedder = self.embedder
        chunks = chunk_spec(
            spec,
            self.count_model_tokens,
            int(getattr(embedder, "max_tokens", 256)),
            encoding=self.settings.encoding,
        )
        if on_disk.name in indexed:
            self.summary.updated += 1
        else:
            self.summary.added += 1
        return SpecUpdate(_record_of(spec, self.store.root), chunks, files)

    def embed(self, manifest: Manifest, chunks: list[Chunk]) -> None:
        """Embed in length-sorted batches and upsert each batch as soon as it is ready."""
        from .vectors import chunk_metadata

        total = len(chunks)
        ordered = sorted(chunks, key=lambda c: len(c.embed_text), reverse=True)
        if self.progress:
            self.progress(0, total)
        vectors = self.vectors(manifest)
        for start in range(0, total, EMBED_BATCH):
            batch = ordered[start : start + EMBED_BATCH]
            embedded = self.embedder.embed_documents([c.embed_text for c in batch])
            vectors.upsert([c.id for c in batch], embedded, [chunk_metadata(c) for c in batch])
            self.summary.embedded += len(batch)
            if start == 0:
                _crash_point("after-first-batch")
            if self.progress:
                self.progress(self.summary.embedded, total)


def run_ingest(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    *,
    full: bool = False,
    specs: Sequence[str] | None = None,
    progress: Progress | None = None,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> IngestSummary:
    """Bring the index up to date; see the module docstring for the order of writes and for
    what a damaged index does. Busy when another process holds the index for `lock_timeout`
    seconds (the re-index after a write waits briefly, spec 076)."""
    started = time.perf_counter()
    layout = IndexLayout(settings.data_dir)
    try:
        with storage_errors(layout.lock_path, "lock the index with"):
            layout.ensure()
            lock = FileLock(str(layout.lock_path), timeout=lock_timeout)
            lock.acquire()
    except Timeout:
        raise Busy(f"another ingest holds {layout.lock_path} for over {lock_timeout:g} s") from None
    try:
        summary = _run_repairing(settings, embedder_factory, full, specs, progress)
    finally:
        lock.release()
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary


def _run_repairing(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    full: bool,
    refs: Sequence[str] | None,
    progress: Progress | None,
) -> IngestSummary:
    """One run; when damage shows up only midway (Chroma's segments, a corrupt page the checks
    did not read), an unscoped run starts over as a rebuild, once."""
    run = _Run(settings, embedder_factory, progress)
    try:
        _ingest(run, full, refs)
        return run.summary
    except IndexDamaged as damage:
        if refs is not None or run.summary.full:
            raise
        damaged = [*run.summary.damaged, {"path": damage.path, "reason": damage.reason}]
        log.info("rebuilding the index: %s", damage)
    finally:
        run.close()
    run = _Run(settings, embedder_factory, progress)
    run.summary.damaged = damaged
    try:
        _ingest(run, True, None)
    finally:
        run.close()
    return run.summary


def _ingest(run: _Run, full: bool, refs: Sequence[str] | None) -> None:
    summary = run.summary
    manifest, rebuilt = run.ensure_manifest(full, scoped=refs is not None)
    summary.full = rebuilt
    summary.model = manifest.model
    lexical = run.lexical
    chroma_lost = (
        not run.settings.chroma_url
        and not run.layout.chroma_dir.exists()
        and lexical.count_chunks() > 0
    )
    with_vectors: set[str] | None = None
    if lexical.dirty or chroma_lost:
        with_vectors = run.reconcile(manifest)

    disk = _scan_disk(run.store)
    indexed = set(lexical.spec_records())
    # After a repair, every spec whose vectors went missing must be re-read, whatever the scope.
    scope = _scope(refs, disk, indexed) if refs is not None and with_vectors is None else None
    changed, removed, touched = run.changed_specs(disk, scope)

    old_ids = lexical.chunk_ids_by_spec()
    updates: list[SpecUpdate] = []
    for on_disk in changed:
        update = run.load(on_disk, indexed)
        if update is not None:
            updates.append(update)
        elif on_disk.name in indexed:
            removed.append(on_disk.name)  # now unreadable: dropped (spec 040)
    summary.removed = len(removed)

    known = (
        with_vectors
        if with_vectors is not None
        else set().union(*old_ids.values())
        if old_ids
        else set()
    )
    new_ids = {c.id for u in updates for c in u.chunks}
    to_embed = [c for u in updates for c in u.chunks if c.id not in known]
    replaced = {u.record.name for u in updates} | set(removed)
    stale = set().union(*(old_ids.get(n, set()) for n in replaced)) - new_ids if replaced else set()
    summary.chunks_removed = len(stale)

    touches_vectors = bool(to_embed or stale or with_vectors is not None)
    if touches_vectors:
        lexical.mark_dirty(True)
        _crash_point("after-dirty")
    if to_embed:
        run.embed(manifest, to_embed)
    elif run.progress:
        run.progress(0, 0)
    _crash_point("before-commit")
    if updates or removed or touched:
        lexical.commit(updates, removed, touched)
    _crash_point("after-commit")
    if stale:
        run.vectors(manifest).delete(sorted(stale))
    if touches_vectors:
        lexical.mark_dirty(False)

    summary.specs = len(lexical.spec_records())
    summary.chunks = lexical.count_chunks()
    if refs is None:
        _refresh_vector_cache(run, manifest)
        if not manifest.complete:
            # Last: a reader that sees `complete` finds the whole build and its vector cache.
            run.layout.write_manifest(dataclasses.replace(manifest, complete=True))


def _refresh_vector_cache(run: _Run, manifest: Manifest) -> None:
    """Leave `search-vectors.npz` matching the index, so that a reader needs no Chroma at all
    (on a read-only copy of the data dir it cannot open one). Unscoped runs only: a status
    callback must not rewrite the matrix. A no-op costs reading the cache's id list."""
    from .vectors import VectorCache

    cache = VectorCache(run.layout)
    if not run.layout.writable():
        return
    ids = [row[0] for row in run.lexical.chunk_order()]
    if cache.ids(manifest.model) == ids:
        return
    try:
        vectors = run.vectors(manifest).get_vectors(ids) if ids else None
    except InvalidInput as err:  # vectors missing: readers will say so; the cache is optional
        log.info("vector cache not refreshed: %s", err)
        return
    if vectors is None:
        import numpy as np

        vectors = np.zeros((0, manifest.dimension), dtype=np.float32)
    cache.write(ids, vectors, manifest.model)


def _skipped(spec: str, path: str, reason: str, line: int | None) -> dict[str, Any]:
    """An entry of IngestSummary.skipped; `line` only when the parser knew it."""
    entry: dict[str, Any] = {"spec": spec, "path": path, "reason": reason}
    if line:
        entry["line"] = line
    return entry
