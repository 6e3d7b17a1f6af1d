"""Paired bootstrap intervals for the difference between two rankings on the same queries.

Two configurations scored on the same queries give two aligned per-query vectors (a reciprocal
rank, a 0/1 hit). Their difference is judged per query, so the query-to-query spread that both
share cancels out: resample the queries with replacement, take the mean difference of each
resample, and report the 2.5th and 97.5th percentiles of those means. An interval that holds 0
says the queries do not tell the two apart.

When the queries come from several groups (corpora) of different sizes, `strata` resamples within
each group, so every resample keeps each group's share of the pool: the pooled figure stays the
mean over all queries, and its interval reflects only the sampling of queries inside each group,
not a reshuffling of how much of the pool each corpus is.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from ingest.errors import InvalidInput

__all__ = ["RESAMPLES", "SEED", "Difference", "paired_bootstrap"]

RESAMPLES = 10_000
SEED = 0
# Bound the index matrix of one batch of resamples (~16 MB of int64) on large query sets.
_BATCH_CELLS = 2_000_000


@dataclass(frozen=True)
class Difference:
    """Mean of a − b over the queries, and its bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "mean": round(self.mean, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "n": self.n,
        }


def paired_bootstrap(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    strata: Sequence[Hashable] | None = None,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    confidence: float = 0.95,
) -> Difference:
    """The mean of `a - b` and its percentile interval over `resamples` paired resamples.

    A fixed `seed` makes the interval reproducible: the same inputs give the same interval.
    """
    first = np.asarray(a, dtype=np.float64)
    second = np.asarray(b, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise InvalidInput(
            f"paired bootstrap needs two aligned vectors, got {first.shape} and {second.shape}"
        )
    if strata is not None and len(strata) != len(first):
        raise InvalidInput(f"{len(strata)} strata labels for {len(first)} queries")
    if resamples < 1 or not 0 < confidence < 1:
        raise InvalidInput("resamples must be at least 1 and confidence between 0 and 1")
    n = len(first)
    if n == 0:
        return Difference(0.0, 0.0, 0.0, 0)
    diff = first - second
    groups = [np.arange(n)] if strata is None else _groups(strata)
    rng = np.random.default_rng(seed)
    totals = np.zeros(resamples, dtype=np.float64)
    for members in groups:
        values = diff[members]
        batch = max(1, _BATCH_CELLS // len(values))
        for lo in range(0, resamples, batch):
            hi = min(resamples, lo + batch)
            picks = rng.integers(0, len(values), size=(hi - lo, len(values)))
            totals[lo:hi] += values[picks].sum(axis=1)
    means = totals / n
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return Difference(float(diff.mean()), float(low), float(high), n)


def _groups(strata: Sequence[Hashable]) -> list[np.ndarray]:
    members: dict[Hashable, list[int]] = {}
    for position, label in enumerate(strata):
        members.setdefault(label, []).append(position)
    return [np.array(positions) for positions in members.values()]
