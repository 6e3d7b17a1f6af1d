"""fusion.sparse_spec_scores equals fusion.spec_scores value for value (specs/090): the search
takes it whenever few chunks scored, so any difference would change rankings."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from retriever.ranking.fusion import sparse_spec_scores, spec_scores


def _layout(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.cumsum([0, *counts[:-1]]).astype(np.int64)
    spec_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return starts, spec_of


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(1, 6), min_size=1, max_size=12),
    seed=st.integers(0, 2**31 - 1),
    share=st.floats(0.0, 1.0),
    background=st.sampled_from([0.0, -np.inf]),
)
def test_sparse_equals_full(counts, seed, share, background):
    starts, spec_of = _layout(counts)
    rng = np.random.default_rng(seed)
    size = int(sum(counts))
    scored = rng.random(size) < share
    # Ties on purpose: a spec's best and second best may be equal.
    values = np.where(scored, rng.integers(1, 4, size).astype(np.float32), np.float32(background))
    rows = np.flatnonzero(scored)
    sparse = sparse_spec_scores(values, rows, spec_of, len(counts), background, 0.3)
    assert np.array_equal(sparse, spec_scores(values, starts, 0.3))
