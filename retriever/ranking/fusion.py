"""From chunk scores to spec scores, and from several methods' spec scores to one.

Pure numpy functions over arrays aligned with the warm index: chunks are grouped by spec, each
spec's chunks contiguous, `starts[i]` the first chunk of spec i (every spec has at least one chunk).
A chunk excluded by a filter carries -inf and so never counts.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["best_chunks", "combine", "rrf", "sparse_spec_scores", "spec_scores", "zscore"]

NEG_INF = np.float32(-np.inf)


def spec_scores(
    chunk_scores: np.ndarray, starts: np.ndarray, second_weight: float = 0.3
) -> np.ndarray:
    """Score each spec as its best chunk plus `second_weight` times its second-best chunk.

    The best chunk says how well the spec answers; the second rewards a spec that is about the
    query in more than one place (the corpus study found this beat max alone and sum of top 3).
    A missing or negative second chunk adds nothing. Specs with no eligible chunk get -inf.
    """
    if chunk_scores.size == 0:
        return np.zeros(0, dtype=np.float32)
    counts = np.diff(np.append(starts, chunk_scores.size))
    best = np.maximum.reduceat(chunk_scores, starts)
    at_best = chunk_scores >= np.repeat(best, counts)
    ties = np.add.reduceat(at_best.astype(np.int32), starts)
    second = np.maximum.reduceat(np.where(at_best, NEG_INF, chunk_scores), starts)
    second = np.where(ties >= 2, best, second)
    second = np.where(np.isfinite(second), np.maximum(second, 0.0), 0.0)
    return np.where(np.isfinite(best), best + second_weight * second, NEG_INF).astype(np.float32)


def sparse_spec_scores(
    chunk_scores: np.ndarray,
    rows: np.ndarray,
    spec_of: np.ndarray,
    specs: int,
    background: float,
    second_weight: float = 0.3,
) -> np.ndarray:
    """`spec_scores` when only `rows` (ascending chunk positions) can score above `background`,
    the score every other chunk has: 0 for BM25 (a chunk no query term occurs in), -inf for a
    dense shortlist. A spec with no such row gets what a spec of background chunks gets (0, or
    -inf). Equal to `spec_scores` value for value, in time proportional to `rows`: past 30k
    chunks most of a query's chunks are background. `specs` is how many specs there are."""
    owners = spec_of[rows]
    groups = np.flatnonzero(np.diff(owners, prepend=-1))
    out = np.full(specs, background, dtype=np.float32)
    if len(rows):
        out[owners[groups]] = spec_scores(chunk_scores[rows], groups, second_weight)
    return out


def best_chunks(chunk_scores: np.ndarray, starts: np.ndarray, specs: np.ndarray) -> list[int]:
    """The index of the best chunk of each spec in `specs` (the snippet a hit shows)."""
    ends = np.append(starts[1:], chunk_scores.size)
    return [int(starts[s] + np.argmax(chunk_scores[starts[s] : ends[s]])) for s in specs]


def zscore(values: np.ndarray) -> np.ndarray:
    """Standardize the finite values (mean 0, std 1); -inf stays -inf.

    Methods score on different scales (BM25 is unbounded, cosine lies in [-1, 1]); standardizing
    each over the eligible specs lets one weight mean the same thing for every query.
    """
    finite = np.isfinite(values)
    out = np.full(values.shape, NEG_INF, dtype=np.float32)
    if not finite.any():
        return out
    kept = values[finite]
    spread = float(kept.std())
    out[finite] = (kept - kept.mean()) / spread if spread > 0 else 0.0
    return out


def combine(components: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted sum of z-scored components; a component missing for a spec (-inf) adds nothing,
    and a spec every weighted component misses stays -inf."""
    total: np.ndarray | None = None
    scored: np.ndarray | None = None
    for name, weight in weights.items():
        if not weight:
            continue
        part = zscore(components[name])
        finite = np.isfinite(part)
        contribution = np.where(finite, np.float32(weight) * part, np.float32(0.0))
        total = contribution if total is None else total + contribution
        scored = finite if scored is None else scored | finite
    if total is None or scored is None:
        raise ValueError("no component has a weight")
    return np.where(scored, total, NEG_INF).astype(np.float32)


def rrf(components: Mapping[str, np.ndarray], k: float = 60.0) -> np.ndarray:
    """Reciprocal-rank fusion, kept as the baseline the weighted z-score fusion is measured against."""
    total = None
    for values in components.values():
        order = np.argsort(-values, kind="stable")
        ranks = np.empty_like(order)
        ranks[order] = np.arange(1, len(values) + 1)
        part = np.where(np.isfinite(values), 1.0 / (k + ranks), 0.0)
        total = part if total is None else total + part
    if total is None:
        raise ValueError("rrf needs at least one component")
    return total.astype(np.float32)
