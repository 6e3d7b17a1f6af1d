"""SpecMemory: the one service layer. The CLI, the HTTP API and the MCP server are thin wrappers
that parse their input, call a method here, and map `ingest.errors` to their own idiom.

It is also the Python API:

    from retriever import SpecMemory
    memory = SpecMemory("specs")
    memory.ingest()
    for hit in memory.search("how are context bundles packed?"):
        print(hit.spec, hit.score)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest.config import Settings
from ingest.create import create_spec, list_templates
from ingest.errors import BackendUnavailable, InvalidInput
from ingest.frontmatter import PRIORITIES, STATUSES, canonical_priority, canonical_status
from ingest.graph import SpecGraph
from ingest.model import Spec
from ingest.split import split_spec
from ingest.store import Catalog, SpecStore, content_hash
from ingest.tokens import count_tokens as count_text_tokens
from ingest.validate import (
    ValidationReport,
    file_token_counts,
    find_stray_files,
    validate_catalog,
)
from ingest.writes import SpecWriter, WrittenSpec, catalog_with

from .dependencies import dependency_report
from .events import EventStore, merge_history, normalize_event
from .token_usage import token_usage

__all__ = ["SpecMemory"]


class SpecMemory:
    def __init__(
        self,
        specs_dir: str | Path | None = None,
        data_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Any = None,
    ):
        self.settings = settings or Settings.load(specs_dir, data_dir)
        self.store = SpecStore(self.settings.specs_dir)
        self._embedder = embedder
        self._lock = threading.RLock()  # short critical sections over cached state only
        # Ingest embeds for seconds; it gets its own lock so that readers waiting on `_lock` (the
        # catalog, the warm index) are never stalled behind a re-index after a write.
        self._ingest_lock = threading.Lock()
        self._catalog: Catalog | None = None
        self._fingerprint: tuple | None = None
        self._events: EventStore | None = None
        self._token_counts: dict[str, dict[str, int]] = {}  # encoding -> content hash -> tokens

    # -- reading specs -------------------------------------------------------------------------

    def _disk_fingerprint(self) -> tuple:
        """Cheap change detector: the mtimes of the spec dirs and their markdown files."""
        entries = []
        root = self.store.root
        for base in (root, root / "archived"):
            try:
                with os.scandir(base) as it:
                    for entry in it:
                        if entry.is_dir():
                            stat = entry.stat()
                            readme = os.path.join(entry.path, "README.md")
                            try:
                                rstat = os.stat(readme)
                                entries.append(
                                    (entry.name, stat.st_mtime_ns, rstat.st_mtime_ns, rstat.st_size)
                                )
                            except OSError:
                                entries.append((entry.name, stat.st_mtime_ns, 0, 0))
            except OSError:
                continue
        return tuple(sorted(entries))

    def catalog(self, refresh: bool = False) -> Catalog:
        """All specs as they are on disk now, rescanned only when a file changed."""
        with self._lock:
            fingerprint = self._disk_fingerprint()
            if refresh or self._catalog is None or fingerprint != self._fingerprint:
                self._catalog = self.store.scan()
                self._fingerprint = fingerprint
            return self._catalog

    def get_spec(self, ref: object) -> Spec:
        """One spec by directory name or by a number exactly one spec has.

        Raises SpecNotFound, AmbiguousSpecRef (a shared number), UnsafeReference (anything that
        could name a path) or SpecParseError (the spec exists but cannot be read).
        """
        return self.catalog().get(ref)

    def list_specs(
        self,
        status: list[str] | str | None = None,
        tags: list[str] | str | None = None,
        priority: list[str] | str | None = None,
        include_archived: bool = False,
    ) -> list[Spec]:
        """Specs matching every filter given: any of `status`, all of `tags`, any of `priority`.

        Archived specs are left out unless `include_archived` or the status filter asks for them.
        """
        statuses = _canonical_set(status, canonical_status, STATUSES, "status")
        wanted_tags = _as_set(tags)
        priorities = _canonical_set(priority, canonical_priority, PRIORITIES, "priority")
        result = []
        for spec in self.catalog():
            if spec.is_archived and not include_archived and "archived" not in statuses:
                continue
            if statuses and (spec.meta.status or "") not in statuses:
                continue
            if priorities and (spec.meta.priority or "") not in priorities:
                continue
            if wanted_tags and not wanted_tags.issubset(spec.meta.tags):
                continue
            result.append(spec)
        return result

    def board(self, include_archived: bool = False) -> dict[str, list[Spec]]:
        from ingest.frontmatter import STATUSES

        columns: dict[str, list[Spec]] = {status: [] for status in STATUSES}
        columns["unknown"] = []
        for spec in self.list_specs(include_archived=include_archived):
            columns.get(spec.meta.status or "unknown", columns["unknown"]).append(spec)
        return {status: specs for status, specs in columns.items() if specs or status != "unknown"}

    # -- writing specs (ingest.writes) -------------------------------------------------------------
    # Every write takes the spec's file lock, re-reads it, checks `expected_hash` against the file
    # on disk, writes atomically, and returns the spec as written (with its new hash).

    def _writer(self) -> SpecWriter:
        return SpecWriter(self.store, self.settings.data_dir)

    def _written(self, spec: WrittenSpec) -> WrittenSpec:
        """Make reads after a write see it at once (the catalog rescans, the index re-indexes)."""
        if spec.changes:
            self._refresh_catalog_after(spec)
            self._after_write(spec)
        return spec

    def _refresh_catalog_after(self, spec: Spec) -> None:
        """Swap the written spec into the cached catalog instead of rescanning every spec
        (~0.4 s on 300 specs), but only when the disk shows no other change since the last scan
        and the README still is what the write left; otherwise rescan everything."""
        with self._lock:
            catalog, before = self._catalog, self._fingerprint
            now = self._disk_fingerprint()
            others_unchanged = (
                catalog is not None
                and before is not None
                and [e for e in before if e[0] != spec.dir_name]
                == [e for e in now if e[0] != spec.dir_name]
            )
            duplicate = catalog is not None and any(
                p.spec == spec.dir_name and p.reason.startswith("duplicate")
                for p in catalog.problems
            )
            try:
                current = content_hash(spec.readme.path.read_bytes())
            except OSError:
                current = None
            if catalog is None or not others_unchanged or duplicate or current != spec.content_hash:
                self.catalog(refresh=True)
                return
            self._catalog = catalog_with(catalog, spec)
            self._fingerprint = now

    def create_spec(
        self,
        title: str,
        *,
        template: str | None = None,
        status: str = "planned",
        priority: str | None = None,
        tags: Sequence[str] = (),
        depends_on: Sequence[str] = (),
        parent: str | None = None,
        body: str | None = None,
    ) -> WrittenSpec:
        """Create `<next number>-<slug>/README.md` from a template (`templates()` lists them)."""
        spec = create_spec(
            self.store,
            self.settings.data_dir,
            self.catalog(),
            title,
            template=template,
            status=status,
            priority=priority,
            tags=tags,
            depends_on=depends_on,
            parent=parent,
            body=body,
        )
        return self._written(spec)

    def update_spec(
        self,
        ref: object,
        *,
        status: str | None = None,
        priority: str | None = None,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        add_deps: Sequence[str] = (),
        remove_deps: Sequence[str] = (),
        expected_hash: str | None = None,
    ) -> WrittenSpec:
        """Edit frontmatter lines in place; a status change appends a transition. The result's
        `changes` say what changed (empty when everything already was as asked)."""
        spec = self._writer().update(
            self.catalog(),
            ref,
            status=status,
            priority=priority,
            add_tags=add_tags,
            remove_tags=remove_tags,
            add_deps=add_deps,
            remove_deps=remove_deps,
            expected_hash=expected_hash,
        )
        return self._written(spec)

    def archive_spec(self, ref: object, *, expected_hash: str | None = None) -> WrittenSpec:
        """Set status `archived` (with a transition); the directory stays where it is."""
        return self._written(
            self._writer().archive(self.catalog(), ref, expected_hash=expected_hash)
        )

    def split_spec(
        self,
        ref: object,
        sections: Sequence[str],
        into: str | None = None,
        *,
        expected_hash: str | None = None,
    ) -> WrittenSpec:
        """Move `##` sections of the README into a sub-spec file, leaving links in their place."""
        spec = split_spec(
            self.store,
            self.settings.data_dir,
            self.catalog(),
            ref,
            sections,
            into,
            expected_hash=expected_hash,
        )
        return self._written(spec)

    def templates(self) -> list[dict[str, Any]]:
        """The templates `create_spec` can use: name, source (builtin/project) and path."""
        return [template.to_dict() for template in list_templates(self.store.root)]

    # -- inspecting specs ------------------------------------------------------------------------

    def validate(self, ref: object | None = None) -> ValidationReport:
        """A ValidationReport (ingest.validate): problems with file, line, severity, code.

        With `ref`, only the problems of that spec (it may be one that failed to load).
        """
        if not self.store.root.is_dir():
            # An empty report would read as "all fine" for a mistyped --specs-dir.
            raise InvalidInput(f"specs dir {self.store.root} does not exist")
        catalog = self.catalog()
        only = catalog.resolve_name(ref) if ref is not None else None
        encoding = self.settings.encoding
        with self._lock:
            cache = self._token_counts.setdefault(encoding, {})
            counts = file_token_counts(
                catalog, lambda text: count_text_tokens(text, encoding), cache, only=only
            )
        return validate_catalog(
            catalog,
            SpecGraph.from_catalog(catalog),
            counts,
            threshold=self.settings.token_threshold,
            stray_files=find_stray_files(catalog),
            only=only,
        )

    def dependencies(
        self, ref: object, *, direction: str = "both", depth: int | None = None
    ) -> dict[str, Any]:
        """What a spec depends on (upstream) and what depends on it (downstream), as trees,
        with `edges`, dangling links and the cycles it is part of (retriever.dependencies)."""
        catalog = self.catalog()
        name = catalog.resolve_name(ref)
        graph = SpecGraph.from_catalog(catalog)
        return dependency_report(catalog, graph, name, direction=direction, depth=depth)

    def count_tokens(self, target: str, *, encoding: str | None = None) -> dict[str, Any]:
        """Tokens per file and per `##` section of a spec (by reference) or of one file inside the specs dir."""
        return token_usage(
            self.catalog(),
            str(target),
            encoding=encoding or self.settings.encoding,
            threshold=self.settings.token_threshold,
        )

    # -- the index (ingest.pipeline) -------------------------------------------------------------

    def ingest(
        self, *, full: bool = False, specs: Sequence[str] | None = None, progress: Any = None
    ) -> Any:
        """Bring the index in the data dir up to date with the specs dir; an IngestSummary.

        `full` rebuilds both stores from nothing; `specs` re-indexes only those specs (names or
        numbers; a deleted one is dropped); `progress(done, total)` hears about embedding.
        """
        from ingest.pipeline import run_ingest

        with self._ingest_lock:
            return run_ingest(
                self.settings, self._index_embedder, full=full, specs=specs, progress=progress
            )

    def _index_embedder(self) -> Any:
        """The embedder, created on first need: a no-op ingest never creates it twice, and a
        model is only loaded when something is embedded."""
        if self._embedder is None:
            from ingest.embedding import load_embedder

            self._embedder = load_embedder(self.settings)
        return self._embedder

    # -- reading the index (retriever.search, retriever.context) ---------------------------------

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        status: Sequence[str] | str | None = None,
        tags: Sequence[str] | str | None = None,
        priority: Sequence[str] | str | None = None,
        mode: str = "hybrid",
    ) -> list[Any]:
        """Spec-level SearchHits (retriever.search), best first: one per spec, with its score,
        the score's components and the best-matching section as a snippet.

        `mode` is "hybrid" (BM25 and embeddings fused), "lexical" (no model is loaded) or
        "dense". Filters (status, all of `tags`, priority) apply inside retrieval, so a filtered
        query still returns up to `limit` matching specs. Needs an index: run `ingest` first.
        """
        from .search import search_index

        statuses = _canonical_set(status, canonical_status, STATUSES, "status")
        priorities = _canonical_set(priority, canonical_priority, PRIORITIES, "priority")
        embedder = self._index_embedder()
        index = self._warm_index(embedder, need_vectors=mode != "lexical")
        return search_index(
            index,
            query,
            embed_query=embedder.embed_query if mode != "lexical" else None,
            limit=limit,
            status=sorted(statuses),
            tags=sorted(_as_set(tags)),
            priority=sorted(priorities),
            mode=mode,
        )

    def _warm_index(self, embedder: Any, *, need_vectors: bool = True) -> Any:
        """The in-memory copy of the index (retriever.warm_loader), reloaded when it changes."""
        from .warm_loader import WarmIndexLoader

        with self._lock:
            loader = getattr(self, "_warm_loader", None)
            if loader is None:
                loader = self._warm_loader = WarmIndexLoader(self.settings)
        return loader.current(embedder, need_vectors=need_vectors)

    def context(
        self,
        query: str | None = None,
        *,
        specs: Sequence[str] = (),
        budget: int = 4000,
        depth: int = 2,
    ) -> Any:
        """A ContextBundle: items within `budget` tokens, each with its reason, source and tokens.

        Seeds are the specs that rank for `query` (through search when an index exists, else
        lexically over sections) and the `specs` named (resolved strictly); `depth` bounds the
        transitive depends_on expansion. A budget below 1 raises InvalidInput; one above
        retriever.context.MAX_BUDGET is capped, with a note in the bundle. History is the
        frontmatter transitions, plus linked events once an event log exists.
        """
        from .context import build_context, search_seed_ranker

        ranker = None
        if query and self._index_exists():
            ranker = search_seed_ranker(self.search)
        history_of = None  # transitions only; a read never creates the event log
        if (self.settings.data_dir / "events.sqlite").exists():
            history_of = lambda spec: self.history(spec.dir_name, limit=20)  # noqa: E731
        bundle = build_context(
            self.catalog(),
            query,
            specs,
            budget,
            depth,
            seed_ranker=ranker,
            history_of=history_of,
        )
        if query and ranker is None:
            bundle.notes.append("no index: seeds ranked lexically (run `specmem ingest`)")
        return bundle

    def evaluate(
        self,
        queries: Sequence[dict[str, Any]],
        *,
        k: int = 10,
        mode: str = "hybrid",
        details: bool = False,
    ) -> dict[str, Any]:
        """Spec-level recall@1/5/10 (and @k) and MRR@10 of `search` over labelled queries
        `{"query", "relevant": [spec refs]}` (retriever.evaluate); refs resolve strictly and an
        unknown or ambiguous one is reported under "problems". `details` adds each query's rank
        and top results."""
        from .evaluate import evaluate_queries

        def ranked(query: str, limit: int) -> list[str]:
            return [hit.spec for hit in self.search(query, limit=limit, mode=mode)]

        return evaluate_queries(queries, ranked, self.catalog(), k=k, details=details)

    # -- activity events (retriever.events) ------------------------------------------------------

    def _event_store(self) -> EventStore:
        with self._lock:
            if self._events is None:
                self._events = EventStore(self.settings.data_dir / "events.sqlite")
            return self._events

    def _list_events(self, **filters: Any) -> list[dict[str, Any]]:
        # A read never creates the log: a read-only checkout with no events has nothing to list.
        if self._events is None and not (self.settings.data_dir / "events.sqlite").exists():
            return []
        return self._event_store().list(**filters)

    def log_event(self, spec: object, type: str, **fields: Any) -> dict[str, Any]:
        """Record what an agent or tool did on a spec; returns the stored event with its `id`.

        `fields` are any of agent, session_id, summary, files_changed (list of paths), at (ISO 8601,
        default now) and data (a JSON object). Raises SpecNotFound for an unknown spec and
        InvalidInput naming the bad field.
        """
        name = self.catalog().resolve_name(spec)
        return self._event_store().add(normalize_event(name, type, fields))

    def events(
        self,
        ref: object,
        *,
        limit: int = 50,
        offset: int = 0,
        query: str | None = None,
        type: str | None = None,
    ) -> list[dict[str, Any]]:
        """A spec's events, newest first; `query` keeps those whose summary or files match every word."""
        name = self.catalog().resolve_name(ref)
        return self._list_events(
            spec=name, query=query, event_type=type, limit=limit, offset=offset
        )

    def search_events(
        self,
        query: str | None = None,
        *,
        spec: object | None = None,
        type: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Events across all specs (or one), newest first, matching every word of `query`."""
        name = self.catalog().resolve_name(spec) if spec is not None else None
        return self._list_events(
            spec=name, query=query, event_type=type, limit=limit, offset=offset
        )

    def history(self, ref: object, *, limit: int = 100) -> list[dict[str, Any]]:
        """Status transitions and linked events of a spec, newest first.

        Each item has `kind` ("transition" or "event") and `at`; transitions carry `status`,
        events their fields. Context bundles use this as the spec's history.
        """
        spec = self.get_spec(ref)
        return merge_history(spec.meta.transitions, self.events(spec.dir_name, limit=limit), limit)

    # -- keeping the index current after a write -------------------------------------------------

    def _index_exists(self) -> bool:
        """Whether an ingest ever completed here: it writes the manifest last (ingest.layout).

        Locks and the event log also live in the data dir, so its mere existence says nothing.
        """
        return (self.settings.data_dir / "manifest.json").is_file()

    def _after_write(self, spec: Spec) -> Spec:
        """Re-index the spec a write touched, so search and context see it at once.

        Skipped when nothing was ever indexed: a plain checkout without an index stays
        index-free until someone runs `specmem ingest`.
        """
        if self._index_exists():
            try:
                self.ingest(specs=[spec.dir_name])
            except BackendUnavailable as err:
                # The file is the source of truth and it was written: answering with an error
                # would make a retry fail on its own stale hash. The index is a cache that the
                # next ingest or write brings up to date (spec 082).
                spec.warnings.append(f"not re-indexed: {err.code}: {err}")
        return spec


def _canonical_set(
    value: Sequence[str] | str | None, canonical: Any, allowed: tuple[str, ...], name: str
) -> set[str]:
    """Filter values in canonical form (`in_progress` means `in-progress`); unknown ones refused."""
    result = set()
    for item in _as_set(value):
        known = canonical(item)
        if known is None:
            raise InvalidInput(f"unknown {name} {item!r} (expected one of {', '.join(allowed)})")
        result.add(known)
    return result


def _as_set(value: Sequence[str] | str | None) -> set[str]:
    if not value:
        return set()
    items = value.split(",") if isinstance(value, str) else value
    return {item.strip() for item in items if item and item.strip()}
