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

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.authoring.create import create_spec, list_templates
from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.authoring.split import split_spec
from ingest.authoring.writes import SpecWriter, WrittenSpec
from ingest.config import Settings
from ingest.errors import Busy, InvalidInput
from ingest.index.layout import IndexLayout
from ingest.index.tokens import count_tokens as count_text_tokens
from ingest.specs.frontmatter import (
    KNOWN_STATUSES,
    PRIORITIES,
    canonical_priority,
    canonical_status,
)
from ingest.specs.graph import graph_of
from ingest.specs.model import Spec
from ingest.specs.store import Catalog, SpecStore
from ingest.specs.validate import (
    ValidationReport,
    file_token_counts,
    find_stray_files,
    validate_catalog,
)

from .attribution.evidence import Attribution
from .dependencies import dependency_map, dependency_report
from .devlog import DevlogEvent, DevlogLog
from .events import EventHook, EventStore, normalize_event, open_event_log
from .git_history import GitLog
from .history import merge_history, merge_parsed, since_filter, spec_transitions
from .index_follower import IndexFollower
from .live_catalog import LiveCatalog
from .project_stats import project_stats
from .ranking.overlap import EmbeddingOverlap
from .request_model import QUERY_MAX_CHARS, AttributionRequest
from .token_usage import every_spec_tokens, token_usage
from .write_gate import WriteGate

if TYPE_CHECKING:
    from .evaluation.eval_config import EvalConfig
    from .ranking.search import RankingParams

__all__ = ["SpecMemory"]

log = logging.getLogger(__name__)

# The re-index after a write waits this long for the index (spec 076). Another re-index takes
# 0.1-0.3 s; longer means an ingest is running, which picks the spec up or leaves it to the next
# re-index, and the write answers at once with a "not re-indexed" warning instead of waiting.
REINDEX_WAIT_SECONDS = 2.0
REINDEX_LOCK_SECONDS = 0.5  # for the cross-process index lock: a running `specmem ingest`


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
        # Swaps of cached state only: no disk walk, scan or tokenization runs under it, so a
        # read waits on a write for no longer than a reference copy (spec 076).
        self._lock = threading.RLock()
        self._token_lock = threading.Lock()
        # Ingest embeds for seconds; it gets its own lock so that readers waiting on `_lock` (the
        # catalog, the warm index) are never stalled behind a re-index after a write.
        self._ingest_lock = threading.Lock()
        self.writes = WriteGate()
        self.live_catalog = LiveCatalog(self.store)
        self.index_follower = IndexFollower(IndexLayout(self.settings.data_dir), self._reindex)
        # Opened (pinned) now, not on first use: a log deleted under a running process is then
        # noticed and refused, never silently re-created empty (retriever.events).
        self.event_log = EventStore(open_event_log(self.settings))
        self.devlog = DevlogLog(self.event_log)
        self.git = GitLog(self.settings.specs_dir, self.catalog)
        self._token_counts: dict[str, dict[str, int]] = {}  # encoding -> content hash -> tokens
        self.embedding_overlap = EmbeddingOverlap()  # a hybrid search embeds beside its BM25

    # -- reading specs -------------------------------------------------------------------------

    def catalog(self, refresh: bool = False) -> Catalog:
        """All specs as they are on disk now, rescanned only when a file changed."""
        return self.live_catalog.current(refresh)

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
        statuses = _canonical_set(status, canonical_status, KNOWN_STATUSES, "status")
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
        from ingest.specs.frontmatter import PROJECT_STATUSES, STATUSES

        columns: dict[str, list[Spec]] = {status: [] for status in STATUSES + PROJECT_STATUSES}
        columns["unknown"] = []
        for spec in self.list_specs(include_archived=include_archived):
            columns.get(spec.meta.status or "unknown", columns["unknown"]).append(spec)
        # blocked and cancelled are columns only when a spec is in them: most projects never are.
        return {
            status: specs
            for status, specs in columns.items()
            if specs or status not in ("unknown", *PROJECT_STATUSES)
        }

    def stats(self) -> dict[str, Any]:
        """Project metrics (lean-spec `stats`): specs by status and priority, the commonest tags,
        and the share complete."""
        return project_stats(self.list_specs(include_archived=True), len(self.catalog().problems))

    def all_token_counts(self, *, encoding: str | None = None) -> dict[str, Any]:
        """Tokens of every spec (lean-spec `tokens` with no spec), largest first."""
        return every_spec_tokens(
            self.catalog(),
            encoding=encoding or self.settings.encoding,
            threshold=self.settings.token_threshold,
        )

    # -- writing specs (ingest.authoring.writes) -------------------------------------------------------------
    # Every write takes the spec's file lock, re-reads it, checks `expected_hash` against the file
    # on disk, writes atomically, and returns the spec as written (with its new hash).

    def _writer(self, at: str | None = None) -> SpecWriter:
        if at is None:
            return SpecWriter(self.store, self.settings.data_dir)
        return SpecWriter(self.store, self.settings.data_dir, clock=lambda: at)

    def _written(self, spec: WrittenSpec) -> WrittenSpec:
        """Make reads after a write see it at once (the catalog, the index). The file is
        written by now: neither step may turn the write into an error (specs 043, 082)."""
        if spec.changes:
            self.live_catalog.after_write(spec)
            self.index_follower.after_write(spec)
        return spec

    def create_spec(self, new: NewSpec) -> WrittenSpec:
        """Create `<next number>-<slug>/README.md` from a template (`templates()` lists them)."""
        with self.writes.held():
            spec = create_spec(self.store, self.settings.data_dir, self.catalog(), new)
            return self._written(spec)

    def update_spec(
        self,
        ref: object,
        change: SpecChange,
        *,
        expected_hash: str | None = None,
        at: str | None = None,
    ) -> WrittenSpec:
        """Edit frontmatter lines in place; a status change appends a transition. The result's
        `changes` say what changed (empty when everything already was as asked). `at` stamps
        the transition (default now): an idempotent retry names it in advance, so that after a
        crash it can find whether its write landed (retriever.http.idempotency)."""
        with self.writes.held():
            spec = self._writer(at).update(self.catalog(), ref, change, expected_hash=expected_hash)
            return self._written(spec)

    def archive_spec(
        self, ref: object, *, expected_hash: str | None = None, at: str | None = None
    ) -> WrittenSpec:
        """Set status `archived` (with a transition stamped `at`, default now); the directory
        stays where it is."""
        with self.writes.held():
            return self._written(
                self._writer(at).archive(self.catalog(), ref, expected_hash=expected_hash)
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
        with self.writes.held():
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
        """A ValidationReport (ingest.specs.validate): problems with file, line, severity, code.

        With `ref`, only the problems of that spec (it may be one that failed to load).
        """
        if not self.store.root.is_dir():
            # An empty report would read as "all fine" for a mistyped --specs-dir.
            raise InvalidInput(f"specs dir {self.store.root} does not exist")
        catalog = self.catalog()
        only = catalog.resolve_name(ref) if ref is not None else None
        encoding = self.settings.encoding
        with self._token_lock:  # not `_lock`: tokenizing every file is no short critical section
            cache = self._token_counts.setdefault(encoding, {})
            counts = file_token_counts(
                catalog, lambda text: count_text_tokens(text, encoding), cache, only=only
            )
        return validate_catalog(
            catalog,
            graph_of(catalog),
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
        graph = graph_of(catalog)
        return dependency_report(catalog, graph, name, direction=direction, depth=depth)

    def dependency_graph(self) -> dict[str, Any]:
        """Every spec and its depends_on and parent links, with dangling links and cycles."""
        catalog = self.catalog()
        return dependency_map(catalog, graph_of(catalog))

    def count_tokens(self, target: str, *, encoding: str | None = None) -> dict[str, Any]:
        """Tokens per file and per `##` section of a spec (by reference) or of one file inside the specs dir."""
        return token_usage(
            self.catalog(),
            str(target),
            encoding=encoding or self.settings.encoding,
            threshold=self.settings.token_threshold,
        )

    # -- the index (ingest.index.pipeline) -------------------------------------------------------------

    def ingest(
        self, *, full: bool = False, specs: Sequence[str] | None = None, progress: Any = None
    ) -> Any:
        """Bring the index in the data dir up to date with the specs dir; an IngestSummary.

        `full` rebuilds both stores from nothing, removing the index's files unopened (the event
        log stays); `specs` re-indexes only those specs (names or numbers; a deleted one is
        dropped); `progress(done, total)` hears about embedding. A damaged index is rebuilt by
        an unscoped run (`summary.damaged` says which file and why) and is IndexDamaged for a
        scoped one (ingest.index.pipeline, spec 043).
        """
        from ingest.index.pipeline import run_ingest

        with self._ingest_lock:
            return run_ingest(
                self.settings, self._index_embedder, full=full, specs=specs, progress=progress
            )

    def _reindex(self, names: list[str]) -> None:
        """The re-index after a write, with bounded waits: Busy when this process's re-index lock
        stays taken for REINDEX_WAIT_SECONDS or another process (a running `specmem ingest`) holds
        the index for REINDEX_LOCK_SECONDS. A write never queues behind an ingest (spec 076)."""
        from ingest.index.pipeline import run_ingest

        if not self._ingest_lock.acquire(timeout=REINDEX_WAIT_SECONDS):
            raise Busy(f"another re-index in this process ran for over {REINDEX_WAIT_SECONDS:g} s")
        try:
            run_ingest(
                self.settings, self._index_embedder, specs=names, lock_timeout=REINDEX_LOCK_SECONDS
            )
        finally:
            self._ingest_lock.release()

    def _index_embedder(self) -> Any:
        """The embedder, created on first need: a no-op ingest never creates it twice, and a
        model is only loaded when something is embedded."""
        if self._embedder is None:
            from ingest.index.embedding import load_embedder

            self._embedder = load_embedder(self.settings)
        return self._embedder

    # -- reading the index (retriever.ranking.search, retriever.bundles.context) ---------------------------------

    def search(
        self,
        query: str,
        *,
        limit: int = 10,
        status: Sequence[str] | str | None = None,
        tags: Sequence[str] | str | None = None,
        priority: Sequence[str] | str | None = None,
        mode: str = "hybrid",
        params: RankingParams | None = None,
    ) -> list[Any]:
        """Spec-level SearchHits (retriever.ranking.search), best first: one per spec, with its score,
        the score's components and the best-matching section as a snippet.

        `mode` is "hybrid" (BM25 and embeddings fused), "lexical" (no model is loaded) or
        "dense". Filters (status, all of `tags`, priority) apply inside retrieval, so a filtered
        query still returns up to `limit` matching specs. `params` overrides the ranking's
        settings (retriever.ranking.search.RankingParams; experiments and `eval --compare`). Needs an
        index: run `ingest` first.
        """
        from .ranking.search import RankingParams, search_index

        statuses = _canonical_set(status, canonical_status, KNOWN_STATUSES, "status")
        priorities = _canonical_set(priority, canonical_priority, PRIORITIES, "priority")
        embedder = self._index_embedder()
        index = self._warm_index(embedder, need_vectors=mode != "lexical")
        hits = search_index(
            index,
            query,
            embed_query=embedder.embed_query if mode != "lexical" else None,
            limit=limit,
            status=sorted(statuses),
            tags=sorted(_as_set(tags)),
            priority=sorted(priorities),
            mode=mode,
            params=params or RankingParams(),
            overlap=self.embedding_overlap,
        )
        newer = graph_of(self.catalog()).superseded_by
        for hit in hits:  # a replaced decision is still found, and marked as replaced
            if hit.spec in newer:
                hit.extra["superseded_by"] = list(newer[hit.spec])
        return hits

    def _warm_index(self, embedder: Any, *, need_vectors: bool = True) -> Any:
        """The in-memory copy of the index (retriever.ranking.warm_loader), reloaded when it changes."""
        from .ranking.warm_loader import WarmIndexLoader

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
        retriever.bundles.context.MAX_BUDGET is capped, with a note in the bundle. History is the
        frontmatter transitions, plus linked events once an event log exists.
        """
        from .bundles.context import build_context, search_seed_ranker

        ranker = None
        if query and self.index_follower.index_exists():
            ranker = search_seed_ranker(self.search)
        histories_of = self._histories
        bundle = build_context(
            self.catalog(),
            query,
            specs,
            budget,
            depth,
            seed_ranker=ranker,
            histories_of=histories_of,
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
        params: RankingParams | None = None,
        details: bool = False,
        compare: EvalConfig | str | None = None,
    ) -> dict[str, Any]:
        """Spec-level recall@1/5/10 (and @k), MRR@10 and coverage@10 of `search` over labelled
        queries `{"query", "relevant": [spec refs], "exclude"?: [spec refs], "set"?}`
        (retriever.evaluation.evaluate), overall and per set; refs resolve strictly and an unknown or
        ambiguous one is reported under "problems". `details` adds each query's rank, top
        results and scores.

        `mode` may also be "bm25" or "bm25-windows", the plain-BM25 baselines
        (retriever.ranking.baseline). `compare`, a second configuration
        (retriever.evaluation.eval_config: a mode, a baseline, or "key=value" ranking
        settings on `mode`), is scored on the same queries and reported under "compare" with
        the paired bootstrap difference and its 95% interval."""
        from .evaluation.eval_config import EvalConfig, parse_config
        from .evaluation.evaluate import comparison, evaluate_queries

        base = EvalConfig(mode, params)
        other = parse_config(compare, default_mode=mode) if isinstance(compare, str) else compare
        catalog = self.catalog()
        queries = list(queries)
        report: dict[str, Any] = {"config": base.label}
        report.update(evaluate_queries(queries, self._ranker(base), catalog, k=k, details=True))
        if other is not None:
            against = evaluate_queries(queries, self._ranker(other), catalog, k=k, details=True)
            report["compare"] = comparison(report, against, other.label)
        if not details:
            del report["queries"]
        return report

    def _ranker(self, config: EvalConfig) -> Callable[[str, int], list[str]]:
        """Spec names, best first, as `config` ranks them. A baseline is built here, over the
        index as it is now, and lives as long as the evaluation that asked for it."""
        from .evaluation.eval_config import BASELINES, WINDOWS_BASELINE

        if config.mode in BASELINES:
            from .ranking.baseline import WINDOW_WORDS, PlainBM25

            warm = self._warm_index(self._index_embedder(), need_vectors=False)
            windows = WINDOW_WORDS if config.mode == WINDOWS_BASELINE else None
            return PlainBM25(warm, windows=windows).rank

        def ranked(query: str, limit: int) -> list[str]:
            hits = self.search(query, limit=limit, mode=config.mode, params=config.params)
            return [hit.spec for hit in hits]

        return ranked

    # -- activity events (retriever.events) ------------------------------------------------------

    def _list_events(self, **filters: Any) -> list[dict[str, Any]]:
        # A read never creates the log: a read-only checkout with no events has nothing to list.
        return self.event_log.list(**filters)

    def log_event(
        self, spec: object, type: str, *, within: EventHook | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Record what an agent or tool did on a spec; returns the stored event with its `id`.

        `fields` are any of agent, session_id, summary, files_changed (list of paths), at (ISO 8601,
        default now) and data (a JSON object). Raises SpecNotFound for an unknown spec,
        InvalidInput naming the bad field, and EventLogMissing once the log this process opened
        was deleted or replaced. `within` runs in the event's own transaction (idempotency keys).
        """
        name = self.catalog().resolve_name(spec)
        return self.event_log.add(normalize_event(name, type, fields), within=within)

    def record_devlog(self, batch: Sequence[DevlogEvent]) -> dict[str, Any]:
        """Store Devlog's events whole (an event id stored before is not stored again), then link
        each session they touched to the spec that governs it (specs/086). The events are
        committed before any linking: a link that fails leaves them stored and unlinked."""
        return self.devlog.record(batch, self.attribute)

    def relink_sessions(self) -> list[dict[str, Any]]:
        """Attribute every Devlog session again (after the specs changed); each session's link."""
        return [self.devlog.link_session(s, self.attribute) for s in self.devlog.sessions()]

    def committed_write(self, ref: object) -> WrittenSpec:
        """The spec as it is now, re-indexed as after any write: the answer to an idempotent
        retry whose first attempt wrote the file and died before it could reply."""
        spec = self.get_spec(ref)
        written = WrittenSpec.of(spec, [], [])
        written.warnings = list(spec.warnings)  # the catalog's own list must not grow
        self.index_follower.after_write(written)
        return written

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

    def attribute(self, request: AttributionRequest) -> Attribution:
        """The specs that govern a piece of work (a commit, a session), best first, each with a
        confidence in [0, 1] and its evidence; or abstained when none is confident (a release,
        a dependency bump). Text match uses the index; without one, a note says so."""
        from .attribution.evidence import attribute_work

        catalog = self.catalog()

        def search(text: str, limit: int) -> list[tuple[str, float]]:
            query = text.strip()[:QUERY_MAX_CHARS]
            return [(hit.spec, hit.score) for hit in self.search(query, limit=limit)]

        return attribute_work(
            catalog,
            message=request.message,
            files=request.files,
            branch=request.branch,
            at=request.moment(),
            search=search,
            linked_files=self.event_log.specs_naming(request.files),
            limit=request.limit,
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

    def _histories(self, specs: Sequence[Spec], limit: int = 20) -> dict[str, list[dict[str, Any]]]:
        """`history` of several specs with one query of the event log; a spec with neither
        events nor commits is left out (its transitions are its history)."""
        by_spec = {spec.dir_name: spec for spec in specs}
        # No log file (never made, or wiped under a running server): a bundle goes without
        # events rather than failing, and a read never creates the log.
        recent = (
            self.event_log.recent_by_spec(list(by_spec), limit)
            if self.event_log.database.exists()
            else {}
        )
        commits = {
            name: [commit.to_item() for commit in found[:limit]]
            for name, found in self.git.commits_of(list(by_spec)).items()
        }
        return {
            name: merge_parsed(
                spec_transitions(spec), recent.get(name, []), limit, commits.get(name, [])
            )
            for name, spec in by_spec.items()
            if recent.get(name) or commits.get(name)
        }

    def history(
        self, ref: object, *, limit: int = 100, since: str | None = None
    ) -> list[dict[str, Any]]:
        """Status transitions, linked events and git commits of a spec, newest first.

        Each item has `kind` ("transition", "event" or "commit") and `at`; transitions carry
        `status`, events their fields, commits `sha`, `author`, `subject`, whether the message
        `cites` the spec and what `changes` it made (frontmatter fields, `##` sections added
        or removed). `since` keeps what is at or after a date or time (ISO 8601) or a git
        commit (`HEAD~5`, a tag, a sha). Context bundles use this as the spec's history.
        """
        spec = self.get_spec(ref)
        moment = self.git.moment(since) if since else None
        events = self.events(spec.dir_name, limit=limit if moment is None else 10_000)
        commits = self._commit_items(spec.dir_name)
        items = merge_history(spec.meta.transitions, events, 1_000_000, commits)
        if moment is not None:
            items = since_filter(items, moment)
        return items[: max(0, limit)]

    def _commit_items(self, name: str) -> list[dict[str, Any]]:
        return [commit.to_item() for commit in self.git.commits(name)]


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
