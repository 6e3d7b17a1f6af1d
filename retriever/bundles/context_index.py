"""Lexical relevance of sections to a query, for choosing what of a spec a bundle shows.

The search index ranks specs; a bundle also needs to know WHICH sections of a spec bear on the
query, and which decision sections elsewhere in the corpus do. BM25 over `##` sections (the same
analyzer as search) answers both in a few milliseconds and needs no model, so bundles work on a
plain checkout with no index too: then it also ranks the seed specs (best section + 0.3 x second,
the spec score the corpus study chose).

Built once per catalog version (the content hashes of every spec) and reused while nothing changes;
a new version borrows the encoded terms of every unchanged spec from the last one built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.specs.graph import graph_of
from ingest.specs.model import Spec
from ingest.specs.store import Catalog

from ..ranking.fusion import spec_scores
from ..ranking.lexical_rank import BM25Index
from ..ranking.terms import terms
from .context_sections import Section, spec_sections

__all__ = ["SectionIndex", "SectionScore", "catalog_key", "section_index", "spec_version"]

SECOND_SECTION_WEIGHT = 0.3


@dataclass(frozen=True)
class SectionScore:
    section: Section
    score: float


def spec_version(spec: Spec) -> tuple:
    """Changes whenever one of the spec's files does, or is renamed or moved."""
    files = tuple((f.name, f.content_hash) for f in spec.sub_files)
    return (spec.dir_name, spec.content_hash, files)


def catalog_key(catalog: Catalog) -> tuple:
    """Changes whenever any spec file's content does: the version of everything derived here."""
    return tuple(spec_version(spec) for spec in catalog)


class SectionIndex:
    _bm25: BM25Index

    def __init__(self, catalog: Catalog, previous: SectionIndex | None = None):
        """`previous`, the index of an earlier catalog, lends the encoded terms of every spec
        version the two share: after one write only that spec's sections are analyzed."""
        self.sections: list[Section] = []
        self.by_spec: dict[str, range] = {}
        self._versions: dict[tuple, range] = {}
        documents: list[np.ndarray | list[str]] = []
        lent = previous._versions if previous is not None else {}
        for spec in catalog:
            start = len(self.sections)
            self.sections.extend(spec_sections(spec))
            span = self.by_spec[spec.dir_name] = range(start, len(self.sections))
            version = spec_version(spec)
            self._versions[version] = span
            old = lent.get(version)
            if previous is not None and old is not None:
                documents.extend(previous._bm25.encoded[i] for i in old)
            else:
                documents.extend(_section_terms(spec))
        base = previous._bm25 if previous is not None else BM25Index([])
        self._bm25 = base.rebuilt(documents)
        # Specs with at least one section, in index order, and where their sections start.
        self._ranked = [name for name, span in self.by_spec.items() if len(span)]
        self._starts = np.array([self.by_spec[n].start for n in self._ranked], dtype=np.int64)
        # Which sections record a decision, and each section's spec: top_decisions filters the
        # whole corpus on every bundle, so both are arrays, not per-section Python checks.
        self._decisions = np.array([s.records_decision for s in self.sections], dtype=bool)
        names = list(self.by_spec)
        self._spec_ids = {name: i for i, name in enumerate(names)}
        self._section_spec = np.repeat(
            np.arange(len(names), dtype=np.int32),
            [len(span) for span in self.by_spec.values()],
        )
        self.graph = graph_of(catalog)  # cached with the sections: same version

    def scores(self, query: str) -> np.ndarray:
        return self._bm25.scores(terms(query))

    def spec_section_scores(self, scores: np.ndarray, spec: str) -> list[float]:
        span = self.by_spec.get(spec)
        return [] if span is None else scores[span.start : span.stop].tolist()

    def rank_specs(self, scores: np.ndarray, limit: int) -> list[tuple[str, float]]:
        """Specs by best section + SECOND_SECTION_WEIGHT x second best; only those that match."""
        if not len(self._starts):
            return []
        combined = spec_scores(scores.astype(np.float32), self._starts, SECOND_SECTION_WEIGHT)
        best = np.maximum.reduceat(scores, self._starts)
        order = sorted(
            (i for i in np.flatnonzero(best > 0)), key=lambda i: (-combined[i], self._ranked[i])
        )
        return [(self._ranked[i], float(combined[i])) for i in order[:limit]]

    def top_decisions(
        self,
        scores: np.ndarray,
        *,
        exclude: Sequence[str] = (),
        limit: int = 5,
        min_share: float = 0.0,
    ) -> list[SectionScore]:
        """The best sections recording a decision outside the `exclude`d specs, with scores at
        least `min_share` of the best score any section got (so weak matches stay out)."""
        if not len(scores) or float(scores.max()) <= 0:
            return []
        floor = max(float(scores.max()) * min_share, 1e-9)
        eligible = self._decisions & (scores >= floor)
        skipped = [self._spec_ids[name] for name in exclude if name in self._spec_ids]
        if skipped:
            blocked = np.zeros(len(self._spec_ids), dtype=bool)
            blocked[skipped] = True
            eligible &= ~blocked[self._section_spec]
        rows = np.flatnonzero(eligible)
        # Best first; equal scores in corpus order, as a stable sort of every section gave.
        rows = rows[np.argsort(-scores[rows], kind="stable")][:limit]
        return [SectionScore(self.sections[i], float(scores[i])) for i in rows]


def _section_terms(spec: Spec) -> tuple[list[str], ...]:
    """Index terms of each section, analyzed once per spec version: after one spec changes, the
    index is rebuilt from the others' terms (analysis is most of the build)."""

    def analyze() -> tuple[list[str], ...]:
        # Each section is indexed with its spec's name and title, as search's chunk headers
        # are: a section of the "auth" spec is about auth even when its words do not say so.
        about = f"{spec.dir_name.replace('-', ' ')} {spec.title}"
        return tuple(terms(f"{about} {s.heading} {s.text}") for s in spec_sections(spec))

    return spec.derive("section_terms", analyze)


def section_index(catalog: Catalog) -> SectionIndex:
    """The SectionIndex of this catalog version, built on first use and kept with the catalog
    (its `derived`), so it lives and dies with the version; the service hands out the same
    Catalog object until a file changes."""
    return catalog.derive("section_index", lambda: SectionIndex(catalog))
