"""chunk_spec on small hand-written specs: boundaries, line ranges, fences, kinds, ids, headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.index.chunking import Chunk, chunk_header, chunk_spec, classify_heading
from ingest.specs.sections import parse_blocks, split_lines
from ingest.specs.store import SpecStore
from tests.conftest import write_spec


def words(text: str) -> int:
    """A stand-in for the model tokenizer: one token per whitespace-separated word."""
    return len(text.split())


def load(root: Path, name: str):
    return SpecStore(root).scan().get(name)


def source_lines(spec, chunk: Chunk) -> str:
    file = (
        spec.readme
        if chunk.file == "README.md"
        else next(f for f in spec.sub_files if f.name == chunk.file)
    )
    return "\n".join(split_lines(file.text)[chunk.line_start - 1 : chunk.line_end])


def assert_exact_lines(spec, chunks: list[Chunk]) -> None:
    for chunk in chunks:
        source = source_lines(spec, chunk)
        if chunk.line_start == chunk.line_end and chunk.text != source:
            assert chunk.text in source, chunk.id  # a piece of one over-long line
        else:
            assert chunk.text == source, chunk.id


def paragraph(seed: str, count: int) -> str:
    return " ".join(f"{seed}{i}" for i in range(count)) + "."


SPEC = """
---
status: in-progress
priority: high
tags: [ui, dashboard]
---
# Unified Dashboard

Status: in progress. One page for every project.

## Overview
The dashboard shows specs across projects.

## Design
Intro to the design.

### Storage
Specs are read from disk.

### API
One endpoint per view.

## Alternatives
We rejected a TUI because agents cannot see it.

## Empty section

## Test Plan
- unit tests
- an end-to-end run
"""


@pytest.fixture
def spec(tmp_path: Path):
    write_spec(tmp_path, "045-unified-dashboard", SPEC)
    return load(tmp_path, "045-unified-dashboard")


def test_sections_become_chunks_with_exact_lines_and_kinds(spec) -> None:
    chunks = chunk_spec(spec, words)
    assert [c.heading_path for c in chunks] == [
        (),
        ("Overview",),
        ("Design",),
        ("Alternatives",),
        ("Test Plan",),
    ]
    assert [c.section_kind for c in chunks] == [
        "overview",
        "overview",
        "design",
        "decision",
        "test",
    ]
    assert_exact_lines(spec, chunks)
    preamble = chunks[0]
    assert (
        preamble.text == "# Unified Dashboard\n\nStatus: in progress. One page for every project."
    )
    assert (preamble.line_start, preamble.line_end) == (6, 8)
    design = chunks[2]
    assert design.text.startswith("## Design") and design.text.endswith("One endpoint per view.")
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_header_names_spec_title_path_and_tags_but_not_status(spec) -> None:
    design = next(c for c in chunk_spec(spec, words) if c.heading_path == ("Design",))
    # No status: a status callback must not change chunk ids and re-embed the spec (spec 032).
    assert design.header == "045 unified dashboard: Unified Dashboard\nDesign\ntags: ui, dashboard"
    assert design.embed_text == f"{design.header}\n\n{design.text}"
    assert (design.title, design.status, design.priority) == (
        "Unified Dashboard",
        "in-progress",
        "high",
    )
    assert design.tags == ("ui", "dashboard")
    assert design.tokens > 0 and design.model_tokens == words(design.embed_text)


def test_title_only_preamble_is_dropped(tmp_path: Path) -> None:
    write_spec(tmp_path, "001-a", "# Title\n\n## Overview\nText here.\n")
    chunks = chunk_spec(load(tmp_path, "001-a"), words)
    assert [c.heading_path for c in chunks] == [("Overview",)]


def test_a_chunk_never_spans_two_sections(tmp_path: Path) -> None:
    body = "# T\n\n" + "".join(
        f"## Section {n}\n{paragraph('w', 30)}\n\n### Sub {n}\n{paragraph('x', 25)}\n\n"
        for n in range(6)
    )
    write_spec(tmp_path, "002-b", body)
    spec = load(tmp_path, "002-b")
    chunks = chunk_spec(spec, words, max_model_tokens=120, target_model_tokens=100)
    lines = split_lines(spec.readme.text)
    section_of = {}
    for block in parse_blocks(lines):
        for index in range(block.start, block.end):
            section_of[index + 1] = block.section
    for chunk in chunks:
        sections = {
            section_of[n] for n in range(chunk.line_start, chunk.line_end + 1) if n in section_of
        }
        assert len(sections) == 1, chunk.text
    assert_exact_lines(spec, chunks)


def test_long_sections_split_between_paragraphs_and_cut_at_subsections(tmp_path: Path) -> None:
    body = "## Design\n" + "\n\n".join(paragraph(f"p{n}x", 60) for n in range(5))
    body += "\n\n### Storage\n" + paragraph("s", 40) + "\n"
    write_spec(tmp_path, "003-c", body)
    spec = load(tmp_path, "003-c")
    chunks = chunk_spec(spec, words, max_model_tokens=140, target_model_tokens=120)
    assert all(c.model_tokens <= 140 - 2 for c in chunks)
    # Every chunk ends at a paragraph end: no paragraph is cut.
    assert all(c.text.endswith(".") for c in chunks)
    assert chunks[-1].text.startswith("### Storage")
    assert chunks[-1].heading_path == ("Design", "Storage")
    assert_exact_lines(spec, chunks)


def test_code_fence_that_fits_is_never_split(tmp_path: Path) -> None:
    fence = "```python\n" + "\n".join(f"value_{n} = compute({n})" for n in range(25)) + "\n```"
    body = f"## Design\n{paragraph('a', 60)}\n\n{fence}\n\n{paragraph('b', 60)}\n"
    write_spec(tmp_path, "004-d", body)
    spec = load(tmp_path, "004-d")
    chunks = chunk_spec(spec, words, max_model_tokens=140, target_model_tokens=110)
    holding = [c for c in chunks if "```" in c.text]
    assert len(holding) == 1 and holding[0].text.count("```") == 2
    assert_exact_lines(spec, chunks)


def test_fence_hides_headings_and_oversized_fence_splits_on_lines(tmp_path: Path) -> None:
    fence = "```\n## not a heading\n" + "\n".join(f"line {n} of code" for n in range(80)) + "\n```"
    write_spec(tmp_path, "005-e", f"## Example\n{fence}\n")
    spec = load(tmp_path, "005-e")
    chunks = chunk_spec(spec, words, max_model_tokens=100, target_model_tokens=90)
    assert len(chunks) > 1
    assert all(c.heading_path == ("Example",) for c in chunks)
    assert all(c.model_tokens <= 100 - 2 for c in chunks)
    assert_exact_lines(spec, chunks)


def test_overlong_single_line_splits_between_sentences(tmp_path: Path) -> None:
    line = " ".join(f"Sentence {n} has several words in it." for n in range(60))
    write_spec(tmp_path, "006-f", f"## Notes\n{line}\n")
    spec = load(tmp_path, "006-f")
    chunks = chunk_spec(spec, words, max_model_tokens=80, target_model_tokens=70)
    assert len(chunks) > 1
    assert all(c.line_start == c.line_end == 2 for c in chunks[1:])
    assert all(c.text.endswith(".") for c in chunks)
    assert all(c.model_tokens <= 78 for c in chunks)
    assert_exact_lines(spec, chunks)


def test_sub_spec_files_are_chunked_without_their_frontmatter(tmp_path: Path) -> None:
    design = "---\nstatus: draft\n---\n# Design notes\n\n## Layout\nTwo panes.\n"
    write_spec(tmp_path, "007-g", "## Overview\nMain.\n", **{"DESIGN.md": design})
    spec = load(tmp_path, "007-g")
    chunks = chunk_spec(spec, words)
    sub = [c for c in chunks if c.file == "DESIGN.md"]
    assert [c.text for c in sub] == ["## Layout\nTwo panes."]
    assert (sub[0].line_start, sub[0].line_end) == (6, 7)
    assert sub[0].header.splitlines()[1] == "DESIGN.md > Layout"
    assert sub[0].id.startswith("007-g/DESIGN.md#")
    assert chunks[0].file == "README.md" and chunks[-1].file == "DESIGN.md"


def test_ids_are_stable_and_content_addressed(tmp_path: Path) -> None:
    write_spec(tmp_path, "045-unified-dashboard", SPEC)
    first = chunk_spec(load(tmp_path, "045-unified-dashboard"), words)
    again = chunk_spec(load(tmp_path, "045-unified-dashboard"), words)
    assert [c.id for c in first] == [c.id for c in again]
    edited = SPEC.replace("Specs are read from disk.", "Specs are read from disk and cached.")
    write_spec(tmp_path, "045-unified-dashboard", edited)
    after = chunk_spec(load(tmp_path, "045-unified-dashboard"), words)
    changed = {c.id for c in after} - {c.id for c in first}
    assert len(changed) == 1 and next(iter(changed)) in {
        c.id for c in after if c.heading_path == ("Design",)
    }
    chunk = first[1]
    assert chunk.id == f"045-unified-dashboard/README.md#{chunk.content_hash[:12]}"


def test_identical_chunks_get_numbered_ids(tmp_path: Path) -> None:
    write_spec(tmp_path, "008-h", "## Notes\nSame.\n\n## Notes\nSame.\n")
    chunks = chunk_spec(load(tmp_path, "008-h"), words)
    assert len(chunks) == 2
    assert chunks[1].id == chunks[0].id + "~2"


@pytest.mark.parametrize(
    ("heading", "kind"),
    [
        ("Decision", "decision"),
        ("Tradeoffs", "decision"),
        ("Open Questions", "decision"),
        ("Why not X?", "decision"),
        ("Problem Statement", "overview"),
        ("Goals & Non-Goals", "overview"),
        ("Technical Design", "design"),
        ("Architecture", "design"),
        ("Implementation Plan", "plan"),
        ("Phase 2: Rollout", "plan"),
        ("Test Plan", "test"),
        ("Success Criteria", "test"),
        ("References", "notes"),
        ("Open Issues", "notes"),
        ("Latest changes", None),
    ],
)
def test_classify_heading(heading: str, kind: str | None) -> None:
    assert classify_heading(heading) == kind


def test_most_specific_heading_decides_the_kind(tmp_path: Path) -> None:
    body = (
        "## Design\n"
        + paragraph("d", 80)
        + "\n\n### Alternatives Considered\n"
        + paragraph("a", 80)
        + "\n"
    )
    write_spec(tmp_path, "009-i", body)
    chunks = chunk_spec(load(tmp_path, "009-i"), words, target_model_tokens=100)
    assert [c.section_kind for c in chunks] == ["design", "decision"]


def test_preamble_header_has_no_path_line(spec) -> None:
    header = chunk_header(spec, "README.md", ())
    assert header.splitlines()[0] == "045 unified dashboard: Unified Dashboard"
    assert len(header.splitlines()) == 2


markdown_line = st.one_of(
    st.just(""),
    st.just("```"),
    st.sampled_from(["## Design", "### Storage", "# Later", "## Plan"]),
    st.lists(
        st.sampled_from(["alpha", "beta.", "gamma", "- item", "|a|b|"]), min_size=1, max_size=40
    ).map(" ".join),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(markdown_line, min_size=1, max_size=60))
def test_any_markdown_keeps_the_invariants(tmp_path: Path, lines: list[str]) -> None:
    root = tmp_path / "specs"
    (root / "010-any").mkdir(parents=True, exist_ok=True)
    (root / "010-any" / "README.md").write_text(
        "# Any\n\n" + "\n".join(lines) + "\nend\n", encoding="utf-8"
    )
    spec = load(root, "010-any")
    chunks = chunk_spec(spec, words, max_model_tokens=64, target_model_tokens=48)
    assert chunks
    assert all(c.model_tokens <= 64 - 2 for c in chunks)
    assert_exact_lines(spec, chunks)
    assert len({c.id for c in chunks}) == len(chunks)


def test_title_only_spec_has_no_chunks(tmp_path: Path) -> None:
    write_spec(tmp_path, "011-empty", "---\nstatus: draft\n---\n# Only a title\n")
    assert chunk_spec(load(tmp_path, "011-empty"), words) == []


def test_crlf_files_keep_exact_lines_without_carriage_returns(tmp_path: Path) -> None:
    directory = tmp_path / "012-crlf"
    directory.mkdir()
    text = "---\r\nstatus: draft\r\n---\r\n# T\r\n\r\n## Overview\r\nLine one.\r\nLine two.\r\n"
    (directory / "README.md").write_bytes(text.encode())
    chunks = chunk_spec(load(tmp_path, "012-crlf"), words)
    assert [(c.text, c.line_start, c.line_end) for c in chunks] == [
        ("## Overview\nLine one.\nLine two.", 6, 8)
    ]
