"""The ingest: bring the index in the data dir up to date with the specs dir, incrementally and
crash-safely.

1. Stat every markdown file of every spec dir and compare (mtime, size) with what SQLite
   recorded; only specs whose stats differ are read, and only those whose bytes differ are parsed
   and chunked. A no-op run therefore reads no file and never loads the model.
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

`SPECMEM_INGEST_CRASH_AT=<point>` (tests only) SIGKILLs the process at a named point; see
CRASH_POINTS.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .chunking import Chunk, chunk_spec
from .config import Settings
from .embedding import Embedder
from .errors import BackendUnavailable, SpecNotFound, SpecParseError
from .layout import IndexLayout, Manifest
from .lexical import FileState, LexicalIndex, SpecRecord, SpecUpdate
from .model import Spec, parse_dir_name
from .store import SpecStore, check_reference, content_hash

__all__ = [
    "CRASH_POINTS",
    "EMBED_BATCH",
    "IngestSummary",
    "Progress",
    "run_ingest",
]

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
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {spec, path, reason}
    embedded: int = 0  # chunks embedded in this run (the rest kept their vectors)
    chunks_removed: int = 0
    reconciled: bool = False  # a previous run had been interrupted and was repaired
    full: bool = False
    seconds: float = 0.0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _DiskSpec:
    name: str
    directory: Path
    archived: bool
    files: dict[str, tuple[int, int]]  # relative path -> (mtime_ns, size)


def _crash_point(name: str) -> None:
    if os.environ.get("SPECMEM_INGEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _scan_disk(store: SpecStore) -> dict[str, _DiskSpec]:
    """Every spec dir and the stats of its markdown files; the first of a duplicated name wins,
    as in SpecStore.scan."""
    found: dict[str, _DiskSpec] = {}
    root = store.root
    for directory, archived in store.spec_dirs():
        if directory.name in found:
            continue
        files: dict[str, tuple[int, int]] = {}
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".md") and entry.is_file():
                        stat = entry.stat()
                        relative = Path(entry.path).relative_to(root).as_posix()
                        files[relative] = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            pass  # unreadable dir: loading it reports why
        found[directory.name] = _DiskSpec(directory.name, directory, archived, files)
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
        matches = [
            n for n in known if text.isdigit() and (parse_dir_name(n) or (-1,))[0] == int(text)
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
        self.layout = IndexLayout(settings.data_dir).ensure()
        self.store = SpecStore(settings.specs_dir)
        self.embedder_factory = embedder_factory
        self._embedder: Embedder | None = None
        self.progress = progress
        self.lexical = LexicalIndex(self.layout.lexical_path)
        self._vectors: Any = None
        self.summary = IngestSummary()

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

    def ensure_manifest(self, full: bool) -> tuple[Manifest, bool]:
        """The manifest this run writes under; rebuilds both stores when the model changed."""
        embedder = self.embedder
        wanted = Manifest(
            model=embedder.name,
            dimension=int(embedder.dimension),
            vector_backend=self.settings.chroma_url or "embedded",
        )
        current = self.layout.read_manifest()
        if (
            not full
            and current is not None
            and current.compatible_with(wanted.model, wanted.dimension)
            and current.vector_backend == wanted.vector_backend
        ):
            return current, False
        # Rebuild. The manifest goes first: a crash from here on leaves "no index", which the
        # next run rebuilds again, never a half-rebuilt index that claims a model.
        self.layout.remove_manifest()
        self.lexical.clear()
        from .vectors import VectorStore

        store = VectorStore.open(self.layout, self.settings.chroma_url)
        store.drop()
        store.collection(wanted)
        self._vectors = store
        self.layout.write_manifest(wanted)
        return wanted, True

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
            self.summary.skipped.append(
                {"spec": on_disk.name, "path": err.path, "reason": err.reason}
            )
            return None
        loaded = {"README.md": spec.readme.content_hash}
        loaded.update({f.name: f.content_hash for f in spec.sub_files})
        files = []
        for relative, (mtime, size) in on_disk.files.items():
            name = Path(relative).name
            digest = loaded.get(name) or _file_hash(self.store.root / relative)
            files.append(FileState(relative, on_disk.name, mtime, size, digest))
            if name not in loaded:
                reason = next(
                    (p.reason for p in spec.load_problems if Path(p.path).name == name),
                    "could not be read",
                )
                self.summary.skipped.append(
                    {
                        "spec": on_disk.name,
                        "path": str(self.store.root / relative),
                        "reason": reason,
                    }
                )
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
) -> IngestSummary:
    """Bring the index up to date; see the module docstring for the order of writes."""
    started = time.perf_counter()
    layout = IndexLayout(settings.data_dir).ensure()
    try:
        with FileLock(str(layout.lock_path), timeout=LOCK_TIMEOUT_SECONDS):
            run = _Run(settings, embedder_factory, progress)
            try:
                _ingest(run, full, specs)
            finally:
                run.lexical.close()
    except Timeout:
        raise BackendUnavailable(
            f"another ingest holds {layout.lock_path} for over {LOCK_TIMEOUT_SECONDS:g} s"
        ) from None
    run.summary.seconds = round(time.perf_counter() - started, 3)
    return run.summary


def _ingest(run: _Run, full: bool, refs: Sequence[str] | None) -> None:
    summary = run.summary
    manifest, rebuilt = run.ensure_manifest(full)
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
