"""The budget packer: pure, deterministic, never over capacity, fills the gap with a cut piece."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from retriever.bundles.packing import MIN_CUT_TOKENS, Step, pack


def test_takes_best_value_per_token_first_and_skips_what_no_longer_fits():
    steps = [
        Step("big", tokens=80, value=1.0),  # 0.0125 per token
        Step("dense", tokens=10, value=0.5),  # 0.05
        Step("mid", tokens=30, value=0.6),  # 0.02
    ]
    plan = pack(steps, capacity=50, min_cut=1000)
    assert plan.taken == ["dense", "mid"]
    assert plan.used == 40


def test_a_piece_brings_its_summary_when_the_summary_alone_was_not_worth_it():
    steps = [
        Step("summary", tokens=20, value=0.01),
        Step("section", tokens=20, value=1.0, requires="summary"),
    ]
    plan = pack(steps, capacity=40)
    assert plan.taken == ["summary", "section"]


def test_a_piece_whose_summary_does_not_fit_with_it_is_left_out():
    steps = [
        Step("summary", tokens=30, value=0.01),
        Step("section", tokens=20, value=1.0, requires="summary"),
    ]
    assert pack(steps, capacity=40, min_cut=1000).taken == ["summary"]
    assert pack(steps, capacity=25, min_cut=1000).taken == []


def test_the_gap_is_filled_by_cutting_the_best_piece_that_did_not_fit():
    steps = [
        Step("a", tokens=60, value=0.6, divisible=True),
        Step("b", tokens=100, value=0.9, divisible=True),
    ]
    plan = pack(steps, capacity=120)
    assert plan.taken == ["a"]
    assert plan.cut == {"b": 60}
    assert plan.used == 120


def test_no_cut_smaller_than_the_minimum_or_than_the_piece_header():
    steps = [
        Step("a", tokens=100, value=1.0),
        Step("b", tokens=100, value=0.9, divisible=True, min_tokens=30),
    ]
    plan = pack(steps, capacity=100 + 30 + MIN_CUT_TOKENS - 1)
    assert plan.cut == {}


def test_ties_go_to_the_key_so_every_run_packs_the_same():
    steps = [Step(key, tokens=10, value=1.0) for key in ("c", "a", "b")]
    assert pack(steps, capacity=20).taken == ["a", "b"]


@st.composite
def step_sets(draw):
    count = draw(st.integers(1, 30))
    steps: list[Step] = []
    for index in range(count):
        requires = None
        roots = [s.key for s in steps if s.requires is None]  # as bundles: one level, summaries
        if roots and draw(st.booleans()):
            requires = draw(st.sampled_from(roots))
        steps.append(
            Step(
                f"s{index:02d}",
                tokens=draw(st.integers(1, 400)),
                value=draw(st.floats(0, 1)),
                requires=requires,
                divisible=draw(st.booleans()),
                min_tokens=draw(st.integers(0, 40)),
            )
        )
    return steps


@settings(max_examples=100, deadline=None, derandomize=True)
@given(step_sets(), st.integers(0, 3000))
def test_never_over_capacity_and_every_requirement_is_in(steps, capacity):
    plan = pack(steps, capacity)
    by_key = {s.key: s for s in steps}
    whole = sum(by_key[k].tokens for k in plan.taken)
    assert whole + sum(plan.cut.values()) == plan.used <= capacity
    chosen = plan.chosen()
    for key in chosen:
        required = by_key[key].requires
        assert required is None or required in plan.taken
    for key, room in plan.cut.items():
        assert by_key[key].divisible and room < by_key[key].tokens
        assert room >= by_key[key].min_tokens + MIN_CUT_TOKENS
    assert pack(steps, capacity) == plan
