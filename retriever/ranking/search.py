"""Spec search: lexical and dense retrieval over chunks, fused, aggregated to one hit per spec.

    query -> analyzed terms ----> BM25 over chunks ------------\
          -> identifiers -------> BM25 over chunk identifiers --+-> spec scores per method
          -> query vector ------> cosine over chunks -----------+   (best + 0.3 x second),
                                                                |   z-scored, weighted sum
    metadata filters -> chunk mask (applied first) -------------/   -> top `limit` specs

Filters mask chunks before anything is ranked, so a filtered query still returns up to `limit`
matching specs. The ranking design and its measured numbers are recorded in specs/050 (the
pipeline) and specs/051 (the fusion and the identifier signal, measured on every dev corpus).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ingest.errors import InvalidInput

from .dense_chroma import ChromaDense
from .fusion import combine, rrf, sparse_spec_scores, spec_scores
from .overlap import EmbeddingOverlap, Vector
from .query import analyze_query
from .warm_index import WarmIndex

# The dense half's answer for one query, once it is needed: chunk scores and shortlist rows.
DenseAnswer = Callable[[], "tuple[np.ndarray, np.ndarray | None]"]

__all__ = ["MODES", "RankingParams", "SearchHit", "Snippet", "rank_specs", "search_index"]

MODES = ("hybrid", "lexical", "dense")
FUSIONS = ("rrf", "zscore")
SNIPPET_CHARS = 600


@dataclass(frozen=True)
class RankingParams:
    """The knobs of the ranking; the defaults are the settings chosen on every dev corpus
    (specs/051, which supersedes the RRF choice of specs/050)."""

    fusion: str = "zscore"  # a weighted sum of standardized scores; or "rrf" (specs/050)
    rrf_k: float = 10.0
    # zscore fusion's weights; lexical and dense also weigh the snippet's choice within a spec.
    lexical_weight: float = 0.7
    dense_weight: float = 0.3
    identifier_weight: float = 0.1
    second_weight: float = 0.3

    def __post_init__(self) -> None:
        # Refused where they are set, by name: a NaN or negative weight would rank silently
        # wrong, and all-zero weights would fail deep in the fusion.
        if self.fusion not in FUSIONS:
            raise InvalidInput(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if not (math.isfinite(self.rrf_k) and self.rrf_k > 0):
            raise InvalidInput(f"rrf_k must be a finite number above 0, got {self.rrf_k!r}")
        weights = ("lexical_weight", "dense_weight", "identifier_weight", "second_weight")
        for name in weights:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInput(f"{name} must be a finite number >= 0, got {value!r}")
        if not (self.lexical_weight or self.dense_weight or self.identifier_weight):
            raise InvalidInput(
                "lexical_weight, dense_weight and identifier_weight are all 0: nothing would rank"
            )


@dataclass(frozen=True)
class Snippet:
    file: str
    heading_path: tuple[str, ...]
    lines: tuple[int, int]
    text: str
    chunk_id: str
    section_kind: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "heading_path": list(self.heading_path),
            "lines": list(self.lines),
            "text": self.text,
            "chunk_id": self.chunk_id,
            "section_kind": self.section_kind,
        }


@dataclass(frozen=True)
class SearchHit:
    """One spec in a ranked answer: its score, why (components), and its best-matching section."""

    spec: str
    title: str
    status: str | None
    priority: str | None
    tags: tuple[str, ...]
    rank: int
    score: float
    components: dict[str, float | None]
    snippet: Snippet | None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "spec": self.spec,
            "title": self.title,
            "status": self.status,
            "priority": self.priority,
            "tags": list(self.tags),
            "score": round(self.score, 6),
            "components": {
                name: None if value is None else round(value, 6)
                for name, value in self.components.items()
            },
            "snippet": self.snippet.to_dict() if self.snippet else None,
            **self.extra,
        }


@dataclass
class Ranking:
    """Spec-level scores of one query, before the top-k cut (what eval and experiments read)."""

    fused: np.ndarray
    components: dict[str, np.ndarray]
    chunk_scores: dict[str, np.ndarray]

    def order(self, limit: int) -> np.ndarray:
        eligible = np.flatnonzero(np.isfinite(self.fused))
        if len(eligible) > limit:
            top = np.argpartition(-self.fused[eligible], limit - 1)[:limit]
            eligible = eligible[top]
        # Ties (e.g. no term matched) fall back to spec order so results are deterministic.
        return eligible[np.lexsort((eligible, -self.fused[eligible]))]


def rank_specs(
    index: WarmIndex,
    query: str,
    query_vector: np.ndarray | Vector | None,
    *,
    mode: str = "hybrid",
    chunk_mask: np.ndarray | None = None,
    params: RankingParams = RankingParams(),
    dense_answer: DenseAnswer | None = None,
) -> Ranking:
    """`dense_answer`, when given, is the dense half already under way (search_index): what
    `index.dense.search` returns for the query's vector and `chunk_mask`."""
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    chunk_scores: dict[str, np.ndarray] = {}
    if mode in ("hybrid", "lexical"):
        analyzed = analyze_query(query)
        chunk_scores["lexical"] = index.bm25.scores(analyzed.terms, analyzed.weights)
        # Always present (zero when the query names no identifier), so every hit of a mode
        # reports the same components.
        chunk_scores["identifier"] = index.identifiers.scores(analyzed.identifiers)
    if chunk_mask is not None:
        chunk_scores = {
            name: np.where(chunk_mask, values, -np.inf) for name, values in chunk_scores.items()
        }
    # The lexical methods' spec scores first: an embedding started beside this call (overlap)
    # runs meanwhile, and the vector is asked for only when the dense half needs it.
    aggregated = {
        name: _spec_level(index, np.asarray(values, dtype=np.float32), params, chunk_mask)
        for name, values in chunk_scores.items()
        if name != "identifier" or analyzed.identifiers
    }
    if mode in ("hybrid", "dense"):
        if dense_answer is not None:
            dense, shortlist = dense_answer()
        elif query_vector is None or index.dense is None:
            raise InvalidInput("dense ranking needs the query vector and the index's vectors")
        else:
            vector = query_vector() if callable(query_vector) else query_vector
            dense, shortlist = index.dense.search(vector, chunk_mask)
        chunk_scores["dense"] = dense
        aggregated["dense"] = _spec_level(
            index, np.asarray(dense, dtype=np.float32), params, chunk_mask, shortlist
        )
    # In the order of chunk_scores: the fusion sums its components in this order.
    components = {name: aggregated[name] for name in chunk_scores if name in aggregated}
    if "identifier" in chunk_scores and "identifier" not in components:
        # No identifier in the query: zero for every spec a filter lets through, computed
        # without aggregating a chunk array of zeros.
        components["identifier"] = np.zeros(len(index.starts), dtype=np.float32)
        if chunk_mask is not None:
            passes = np.logical_or.reduceat(chunk_mask, index.starts)
            components["identifier"][~passes] = -np.inf
    fused = _fuse(components, params).astype(np.float32)
    if mode == "lexical":
        # Lexical alone has nothing to say about a spec no query word or identifier occurs in:
        # ranking it among zeros would answer a miss with arbitrary specs (issue 14).
        matched = (components["lexical"] > 0) | (components["identifier"] > 0)
        fused = np.where(matched, fused, -np.inf).astype(np.float32)
    return Ranking(fused, components, chunk_scores)


SPARSE_SHARE = 0.25  # below this share of chunks off the background, aggregate just those


def _spec_level(
    index: WarmIndex,
    values: np.ndarray,
    params: RankingParams,
    chunk_mask: np.ndarray | None,
    shortlist: np.ndarray | None = None,
) -> np.ndarray:
    """Spec scores of one method's chunk scores: over the chunks that scored, when those are
    few (a dense shortlist, whose rows the dense index gives; BM25 for a query of rare words),
    else over every chunk."""
    if shortlist is not None:
        return sparse_spec_scores(
            values, shortlist, index.spec_of, len(index.starts), -np.inf, params.second_weight
        )
    if not len(values):
        return spec_scores(values, index.starts, params.second_weight)
    if chunk_mask is None and np.count_nonzero(values) < SPARSE_SHARE * len(values):
        # Counting first: finding the rows costs four times as much, and most queries touch
        # more than the share.
        rows = np.flatnonzero(values)
        if (values[rows] > 0).all():  # a background of 0 (BM25): no -inf, no negative score
            return sparse_spec_scores(
                values, rows, index.spec_of, len(index.starts), 0.0, params.second_weight
            )
    return spec_scores(values, index.starts, params.second_weight)


def _floored(components: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dense scores with the floor filled in: above the exact limit (retriever.ranking.dense) a spec
    outside the shortlist has no dense score, yet it ranks below every shortlisted one; left
    missing, the fusion would judge it on its lexical score alone and lift it over specs that
    both methods found."""
    dense = components.get("dense")
    lexical = components.get("lexical")
    if dense is None or lexical is None or np.isfinite(dense).all():
        return components
    finite = np.isfinite(dense)
    floor = float(dense[finite].min()) if finite.any() else 0.0
    filled = np.where(~finite & np.isfinite(lexical), floor, dense)
    return {**components, "dense": filled.astype(np.float32)}


def _fuse(components: dict[str, np.ndarray], params: RankingParams) -> np.ndarray:
    if len(components) == 1:
        return next(iter(components.values()))
    if params.fusion == "zscore":
        # Standardized scores keep how decisive each method is for this query: a lexical match
        # far above the rest stays first, where a rank-based fusion let an off-topic dense
        # ranking sink it (specs/051).
        weights = {
            "lexical": params.lexical_weight,
            "dense": params.dense_weight,
            "identifier": params.identifier_weight,
        }
        present = {name: weights[name] for name in components}
        if not any(present.values()):
            raise InvalidInput(
                f"every method this mode ranks by ({', '.join(present)}) has weight 0: "
                "nothing would rank"
            )
        return combine(_floored(components), present)
    # A spec no query word (or identifier) occurs in has no lexical rank to vote with: a rank
    # among zero scores is noise.
    votes = {
        name: values if name == "dense" else np.where(values > 0, values, -np.inf)
        for name, values in components.items()
        if name != "identifier" or params.identifier_weight
    }
    if "lexical" not in components:
        return rrf(votes, params.rrf_k)
    eligible = np.isfinite(components["lexical"])
    return np.where(eligible, rrf(votes, params.rrf_k), -np.inf)


def search_index(
    index: WarmIndex,
    query: str,
    *,
    embed_query: Callable[[str], np.ndarray] | None,
    limit: int = 10,
    status: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    priority: Sequence[str] | None = None,
    mode: str = "hybrid",
    params: RankingParams = RankingParams(),
    overlap: EmbeddingOverlap | None = None,
) -> list[SearchHit]:
    """The top `limit` specs for `query` among those passing the filters, best first. With
    `overlap`, a hybrid query's embedding runs beside its lexical half."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("query must be a non-empty string")
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    if mode not in MODES:
        raise InvalidInput(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if len(index) == 0:
        return []
    spec_mask = index.spec_mask(set(status or ()), set(tags or ()), set(priority or ()))
    if not spec_mask.any():
        return []
    chunk_mask = None if spec_mask.all() else index.chunk_mask(spec_mask)
    vector: np.ndarray | Vector | None = None
    answer: DenseAnswer | None = None
    if mode != "lexical":
        if embed_query is None:
            raise InvalidInput(f"mode {mode!r} needs an embedder")
        # The dense half alone has nothing to do meanwhile: only a hybrid query overlaps.
        use = overlap if mode == "hybrid" else None
        dense, embed = index.dense, embed_query
        if use is not None and isinstance(dense, ChromaDense):
            # Chroma's answer waits on a round trip: it too runs beside the lexical half.
            answer = use.start(lambda text: dense.search(embed(text), chunk_mask), query)
        elif use is not None:
            vector = use.start(embed_query, query)
        else:
            vector = embed_query(query)
    ranking = rank_specs(
        index, query, vector, mode=mode, chunk_mask=chunk_mask, params=params, dense_answer=answer
    )
    return [
        _hit(index, ranking, int(position), rank, params)
        for rank, position in enumerate(ranking.order(limit), start=1)
    ]


def _hit(
    index: WarmIndex, ranking: Ranking, position: int, rank: int, params: RankingParams
) -> SearchHit:
    info = index.specs[position]
    start = int(index.starts[position])
    end = start + int(index.counts[position])
    chunk = index.chunks[start + _best_chunk_offset(ranking, start, end, params)]
    # A method that did not score this spec (dense outside the two-stage shortlist) reports None:
    # -inf is not JSON.
    components: dict[str, float | None] = {}
    for name, values in ranking.components.items():
        value = float(values[position])
        components[name] = value if math.isfinite(value) else None
    components["fused"] = float(ranking.fused[position])
    text = chunk.text if len(chunk.text) <= SNIPPET_CHARS else chunk.text[:SNIPPET_CHARS] + "…"
    snippet = Snippet(
        file=chunk.file,
        heading_path=chunk.heading_path,
        lines=(chunk.line_start, chunk.line_end),
        text=text,
        chunk_id=chunk.id,
        section_kind=chunk.section_kind,
    )
    return SearchHit(
        spec=info.name,
        title=info.title,
        status=info.status,
        priority=info.priority,
        tags=info.tags,
        rank=rank,
        score=float(ranking.fused[position]),
        components=components,
        snippet=snippet,
    )


def _best_chunk_offset(ranking: Ranking, start: int, end: int, params: RankingParams) -> int:
    """The spec's chunk that best matches: lexical and dense scores, each scaled by its best
    value within the spec, weighed as the z-score fusion weighs them."""
    total = np.zeros(end - start, dtype=np.float32)
    for name, weight in (("lexical", params.lexical_weight), ("dense", params.dense_weight)):
        values = ranking.chunk_scores.get(name)
        if values is None or not weight:
            continue
        local = values[start:end]
        local = np.where(local == -np.inf, np.float32(0.0), local)  # unscored counts as 0
        top = float(local.max())
        if top > 0:
            total += (weight / top) * local
    return int(np.argmax(total))
