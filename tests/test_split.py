"""Splitting `##` sections into a sub-spec file: fences respected, links left, nothing lost."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest import atomic
from ingest.authoring.split import default_file_name, find_sections, split_spec
from ingest.errors import InvalidInput, StaleWrite, UnsafeReference
from ingest.specs.store import SpecStore
from retriever.cli import cli
from retriever.service import SpecMemory
from tests.conftest import write_spec

README = """
---
status: planned
tags: [ui]
---
# Search UI

## Overview
A page to search specs.

## Design
Two panes.

### Storage
```md
## Not a heading: inside a fence
```

## Plan
- [ ] build it

## Notes
Last words.
"""


@pytest.fixture
def spec_root(tmp_path: Path) -> Path:
    root = tmp_path / "specs"
    write_spec(root, "003-search-ui", README)
    return root


def _memory(root: Path) -> SpecMemory:
    return SpecMemory(root, root.parent / "data")


def _text(root: Path, name: str) -> str:
    return (root / "003-search-ui" / name).read_text(encoding="utf-8")


def test_split_moves_sections_with_subheadings_and_fences(spec_root):
    spec = _memory(spec_root).split_spec("3", ["design", "## Notes"])
    readme = _text(spec_root, "README.md")
    assert readme == textwrap.dedent(
        """\
        ---
        status: planned
        tags: [ui]
        ---
        # Search UI

        ## Overview
        A page to search specs.

        ## Design

        See [Design](DESIGN.md).

        ## Plan
        - [ ] build it

        ## Notes

        See [Notes](DESIGN.md).
        """
    )
    assert _text(spec_root, "DESIGN.md") == textwrap.dedent(
        """\
        # Design: Search UI

        ## Design
        Two panes.

        ### Storage
        ```md
        ## Not a heading: inside a fence
        ```

        ## Notes
        Last words.
        """
    )
    assert [f.name for f in spec.sub_files] == ["DESIGN.md"]
    assert spec.summary()["changes"] == [
        {"field": "sections", "moved": ["Design", "Notes"], "into": "DESIGN.md", "appended": False}
    ]


def test_split_never_loses_text(spec_root):
    original = _text(spec_root, "README.md")
    _memory(spec_root).split_spec("3", ["Plan"], into="work-items")
    moved = _text(spec_root, "work-items.md")
    for line in original.splitlines():
        assert line in _text(spec_root, "README.md") or line in moved


def test_existing_file_refused_unless_it_is_the_into_target(spec_root):
    (spec_root / "003-search-ui" / "DESIGN.md").write_text("# Design\n\nKept.\n", encoding="utf-8")
    memory = _memory(spec_root)
    before = _text(spec_root, "README.md")
    with pytest.raises(InvalidInput, match="already exists"):
        memory.split_spec("3", ["Design"])
    assert _text(spec_root, "README.md") == before
    memory.split_spec("3", ["Design"], into="DESIGN.md")
    design = _text(spec_root, "DESIGN.md")
    assert design.startswith("# Design\n\nKept.\n\n## Design\nTwo panes.\n")


@pytest.mark.parametrize("into", ["../evil.md", "/tmp/evil.md", "README.md", "readme", "a/b.md"])
def test_into_must_be_a_plain_file_name(spec_root, into):
    with pytest.raises(UnsafeReference):
        _memory(spec_root).split_spec("3", ["Design"], into=into)


def test_symlinked_into_target_refused(tmp_path, spec_root):
    outside = tmp_path / "outside.md"
    outside.write_text("# outside\n", encoding="utf-8")
    (spec_root / "003-search-ui" / "EVIL.md").symlink_to(outside)
    with pytest.raises(UnsafeReference):
        _memory(spec_root).split_spec("3", ["Design"], into="EVIL.md")
    assert outside.read_text(encoding="utf-8") == "# outside\n"


def test_unknown_heading_lists_the_sections(spec_root):
    with pytest.raises(InvalidInput, match=r"Overview; Design; Plan; Notes"):
        _memory(spec_root).split_spec("3", ["Storage"])  # a ### heading is not a section
    with pytest.raises(InvalidInput, match="Not a heading"):
        _memory(spec_root).split_spec("3", ["Not a heading: inside a fence"])


def test_stale_hash_refused(spec_root):
    with pytest.raises(StaleWrite):
        _memory(spec_root).split_spec("3", ["Design"], expected_hash="0000000000000000")
    assert not (spec_root / "003-search-ui" / "DESIGN.md").exists()


def test_crlf_readme_stays_crlf(tmp_path):
    root = tmp_path / "specs"
    directory = root / "001-win"
    directory.mkdir(parents=True)
    text = "---\r\nstatus: planned\r\n---\r\n# Win\r\n\r\n## Design\r\nA.\r\n\r\n## Plan\r\nB.\r\n"
    (directory / "README.md").write_bytes(text.encode())
    _memory(root).split_spec("1", ["Design"])
    readme = (directory / "README.md").read_bytes()
    assert readme == (
        b"---\r\nstatus: planned\r\n---\r\n# Win\r\n\r\n## Design\r\n\r\n"
        b"See [Design](DESIGN.md).\r\n\r\n## Plan\r\nB.\r\n"
    )
    assert (directory / "DESIGN.md").read_bytes() == b"# Design: Win\r\n\r\n## Design\r\nA.\r\n"


@pytest.mark.parametrize(
    ("heading", "name"),
    [
        ("Design", "DESIGN.md"),
        ("Implementation plan", "IMPLEMENTATION-PLAN.md"),
        ("–", "SECTIONS.md"),
    ],
)
def test_default_file_name(heading, name):
    assert default_file_name(heading) == name


def test_cli_split(spec_root):
    base = ["--specs-dir", str(spec_root), "--data-dir", str(spec_root.parent / "data")]
    result = CliRunner().invoke(cli, [*base, "split", "3", "--section", "Plan", "-o", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["changes"][0]["into"] == "PLAN.md"
    assert len(data["files_written"]) == 2
    result = CliRunner().invoke(cli, [*base, "split", "3", "--section", "Plan"])
    assert result.exit_code == 1
    assert "error: section: 'Plan'" in result.output and "already split out" in result.output


def test_split_last_section_of_every_corpus_spec_moves_exact_bytes(
    corpus_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(atomic, "DURABLE", False)  # hundreds of rewrites; fsync is not the point
    store = SpecStore(corpus_copy)
    catalog = store.scan()
    split = 0
    for spec in catalog.specs[::2]:  # every other spec: the same shapes, half the time
        original = spec.readme.path.read_bytes()
        lines = original.decode("utf-8").split("\n")
        sections = find_sections([line.rstrip("\r") for line in lines])
        target = f"SPLIT-{spec.number}.md"
        if len(sections) < 2 or (spec.path / target).exists():
            continue
        last = sections[-1]
        duplicate = sum(s.heading.casefold() == last.heading.casefold() for s in sections) > 1
        if duplicate:
            continue
        written = split_spec(
            store, tmp_path / "data", catalog, spec.dir_name, [last.heading], target
        )
        moved = (spec.path / target).read_bytes().decode("utf-8")
        section_text = "\n".join(lines[last.start : last.end]).rstrip("\r\n \t")
        assert section_text in moved, spec.dir_name
        readme = spec.readme.path.read_bytes().decode("utf-8")
        assert readme.startswith("\n".join(lines[: last.start + 1])), spec.dir_name
        assert written.meta == spec.meta
        split += 1
    assert split > 100
