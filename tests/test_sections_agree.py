"""Every module that needs headings agrees with ingest.specs.sections on what a heading is.

The title (store, validate, split), the `##` sections (split, `specmem tokens`, context bundles)
all come from parse_blocks, so a `## ` line inside a ```` fence holding ```, inside a `~~~`
fence, or indented four spaces is never a heading anywhere, and a `# ` inside a fence before the
real title is never the title.
"""

from __future__ import annotations

import textwrap
from itertools import pairwise
from pathlib import Path

import pytest

from ingest.authoring.split import find_sections
from ingest.errors import InvalidInput
from ingest.index.tokens import section_tokens
from ingest.specs.sections import document_title, split_lines, top_sections
from ingest.specs.store import SpecStore
from ingest.specs.validate import validate_catalog
from retriever.bundles.context_sections import PREAMBLE, spec_sections
from retriever.service import SpecMemory
from tests.conftest import write_spec

FRONTMATTER = "---\nstatus: planned\ncreated: 2026-01-02\n---\n"

# name -> (body, its title or None, its `##` headings)
DOCUMENTS: dict[str, tuple[str, str | None, list[str]]] = {
    "backtick-fence-holding-a-shorter-one": (
        """
        # Title

        ## One
        ````md
        ```
        ## Not a heading
        ```
        ## Still not a heading
        ````

        ## Two
        Words.
        """,
        "Title",
        ["One", "Two"],
    ),
    "tilde-fence": (
        """
        # Title

        ## One
        ~~~
        ```python
        ## Not a heading
        ~~~

        ## Two
        Words.
        """,
        "Title",
        ["One", "Two"],
    ),
    "closing-fence-never-has-an-info-string": (
        """
        # Title

        ## One
        ```
        ```bash
        ## Not a heading
        ```

        ## Two
        Words.
        """,
        "Title",
        ["One", "Two"],
    ),
    "heading-indented-four-spaces-is-code": (
        """
        Intro.

            # Not the title

        # Title

        ## One
        Words.

            ## Not a heading

        ## Two
        Words.
        """,
        "Title",
        ["One", "Two"],
    ),
    "title-after-a-fenced-block": (
        """
        ````
        ```
        # Not the title
        ```
        ````

        # Real Title

        ## One
        Words.
        """,
        "Real Title",
        ["One"],
    ),
    "only-hash-line-is-inside-a-fence": (
        """
        ````
        ```
        # Not the title
        ```
        ````

        ## One
        Words.
        """,
        None,
        ["One"],
    ),
    "no-title": (
        """
        Just words, no title.

        ## One
        Words.
        """,
        None,
        ["One"],
    ),
    "a-later-hash-heading-is-a-section": (
        """
        # Title

        ## One
        Words.

        # Appendix
        More words.
        """,
        "Title",
        ["One", "Appendix"],
    ),
}
CASES = sorted(DOCUMENTS)
DIR = "007-edge"


def _body(name: str) -> str:
    return textwrap.dedent(DOCUMENTS[name][0]).lstrip("\n")


def _spec_root(tmp_path: Path, name: str) -> Path:
    root = tmp_path / "specs"
    write_spec(root, DIR, FRONTMATTER + _body(name))
    return root


@pytest.mark.parametrize("name", CASES)
def test_the_shared_helpers(name):
    _, title, headings = DOCUMENTS[name]
    lines = split_lines(_body(name))
    assert document_title(lines) == title
    sections = top_sections(lines)
    assert [s.heading for s in sections] == ["", *headings]
    assert sections[0].start == 0 and sections[-1].end == len(lines)
    for before, after in pairwise(sections):
        assert before.end == after.start  # every line in exactly one section
    for section in sections[1:]:
        assert lines[section.start].lstrip("#").strip() == section.heading


@pytest.mark.parametrize("name", CASES)
def test_store_title(tmp_path, name):
    title = DOCUMENTS[name][1]
    (spec,) = SpecStore(_spec_root(tmp_path, name)).scan().specs
    assert spec.title == (title or DIR)


@pytest.mark.parametrize("name", CASES)
def test_validate_title_missing(tmp_path, name):
    title = DOCUMENTS[name][1]
    report = validate_catalog(SpecStore(_spec_root(tmp_path, name)).scan())
    missing = [p for p in report.problems if p.code == "title-missing"]
    assert bool(missing) == (title is None)


@pytest.mark.parametrize("name", CASES)
def test_section_tokens(name):
    headings = DOCUMENTS[name][2]
    text = FRONTMATTER + _body(name)
    found = section_tokens(text, first_line=1)
    assert [s.heading for s in found] == ["(preamble)", *headings]
    file_lines = text.split("\n")
    for section in found[1:]:
        assert file_lines[section.line - 1].lstrip("#").strip() == section.heading
    assert sum(s.tokens for s in found) >= len(text.split()) // 2  # every part is counted


def test_section_tokens_ignores_yaml_comments_and_counts_the_frontmatter():
    text = "---\n# a YAML comment\nstatus: planned\n---\n# Title\n\n## One\nWords.\n"
    found = section_tokens(text, first_line=10)
    assert [(s.heading, s.line) for s in found] == [("(preamble)", 10), ("One", 16)]


@pytest.mark.parametrize("name", CASES)
def test_split_finds_the_same_sections(name):
    headings = DOCUMENTS[name][2]
    lines = split_lines(_body(name))
    assert [s.heading for s in find_sections(lines)] == headings


def test_split_without_sections_says_so():
    assert find_sections(["# Title", "", "Words."]) == []  # raised ValueError before


@pytest.mark.parametrize("name", ["title-after-a-fenced-block", "no-title", "tilde-fence"])
def test_split_names_the_sub_spec_after_the_title(tmp_path, name):
    title = DOCUMENTS[name][1]
    root = _spec_root(tmp_path, name)
    SpecMemory(root, tmp_path / "data").split_spec("7", ["One"], into="PART")
    part = (root / DIR / "PART.md").read_text(encoding="utf-8")
    assert part.split("\n", 1)[0] == f"# One: {title or DIR}"


def test_split_of_a_readme_without_sections_is_invalid_input(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, DIR, FRONTMATTER + "# Title\n\nNo sections.\n")
    with pytest.raises(InvalidInput, match="no `##` section"):
        SpecMemory(root, tmp_path / "data").split_spec("7", ["One"])


@pytest.mark.parametrize("name", CASES)
def test_context_sections(tmp_path, name):
    headings = DOCUMENTS[name][2]
    (spec,) = SpecStore(_spec_root(tmp_path, name)).scan().specs
    found = [s.heading for s in spec_sections(spec) if s.heading != PREAMBLE]
    assert found == headings
