"""A sub-spec file in a sub-folder (`research/evals.md`) through every door: search, context
bundles, `view --files`, tokens, validate, HTTP, and a server's catalog noticing an edit to it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app

from .conftest import write_spec

EVALS = """\
# Evals of the search page

## Results
The zanzibar quokka layout beat the two-pane layout in every recall study.
"""


@pytest.fixture
def specs(tiny_specs: Path) -> Path:
    evals = tiny_specs / "003-search-ui" / "research" / "evals.md"
    evals.parent.mkdir()
    evals.write_text(EVALS, encoding="utf-8")
    write_spec(
        tiny_specs / "_archived",
        "009-old-search",
        "---\nstatus: complete\n---\n# Old search\n\n## Overview\nA list, no panes.\n",
    )
    return tiny_specs


@pytest.fixture
def memory(specs: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(specs, tmp_path / "data", embedder=FakeEmbedder())


def _cli(specs: Path, *args: str):
    data = specs.parent / "data"
    return CliRunner().invoke(cli, ["--specs-dir", str(specs), "--data-dir", str(data), *args])


def test_search_shows_the_nested_file_as_the_snippet(memory: SpecMemory):
    memory.ingest()
    (hit,) = memory.search("zanzibar quokka", mode="lexical", limit=1)
    assert hit.spec == "003-search-ui"
    assert hit.snippet is not None and hit.snippet.file == "research/evals.md"
    assert hit.snippet.chunk_id.startswith("003-search-ui/research/evals.md#")
    assert hit.snippet.lines == (3, 4)


def test_a_context_bundle_names_the_nested_file_of_its_sections(memory: SpecMemory):
    bundle = memory.context("zanzibar quokka recall study", budget=2000)
    item = next(item for item in bundle.items if item.spec == "003-search-ui")
    results = next(s for s in item.sections if s["heading"] == "Results")
    assert (results["file"], results["lines"]) == ("research/evals.md", [3, 4])
    assert "From research/evals.md:" in item.text


def test_view_files_and_tokens_show_the_nested_file(specs: Path):
    view = _cli(specs, "view", "3", "--files")
    assert view.exit_code == 0, view.output
    assert "---- research/evals.md ----" in view.output and "zanzibar quokka" in view.output
    data = json.loads(_cli(specs, "view", "3", "-o", "json", "--files").output)
    assert data["sub_files"] == ["DESIGN.md", "research/evals.md"]
    assert data["files"]["research/evals.md"] == EVALS
    tokens = json.loads(_cli(specs, "tokens", "3", "-o", "json").output)
    assert [f["file"] for f in tokens["files"]] == ["README.md", "DESIGN.md", "research/evals.md"]
    by_path = json.loads(
        _cli(specs, "tokens", "003-search-ui/research/evals.md", "-o", "json").output
    )
    assert by_path["spec"] == "003-search-ui"


def test_an_archived_spec_in_underscore_archived_lists_and_resolves(specs: Path):
    listed = json.loads(_cli(specs, "list", "--archived", "-o", "json").output)
    old = next(s for s in listed["specs"] if s["spec"] == "009-old-search")
    assert old["archived"] is True
    plain = json.loads(_cli(specs, "list", "-o", "json").output)
    assert "009-old-search" not in {s["spec"] for s in plain["specs"]}
    assert _cli(specs, "view", "9").exit_code == 0


def test_validate_names_a_broken_nested_file(specs: Path):
    broken = specs / "003-search-ui" / "research" / "broken.md"
    broken.write_bytes(b"\x00binary")
    report = json.loads(_cli(specs, "validate", "3", "-o", "json").output)
    (problem,) = [p for p in report["problems"] if p["path"].endswith("research/broken.md")]
    assert (problem["code"], problem["severity"], problem["spec"]) == (
        "file-binary",
        "error",
        "003-search-ui",
    )


def test_validate_warns_about_what_the_walk_leaves_out(specs: Path, monkeypatch):
    from ingest.specs import store

    monkeypatch.setattr(store, "MAX_FOLDER_DEPTH", 0)
    spec_dir = specs / "003-search-ui"
    (spec_dir / "loop").symlink_to(spec_dir, target_is_directory=True)
    report = json.loads(_cli(specs, "validate", "3", "-o", "json").output)
    codes = {Path(p["path"]).name: (p["code"], p["severity"]) for p in report["problems"]}
    assert codes["research"] == ("files-over-limit", "warning")
    assert codes["loop"] == ("files-over-limit", "warning")  # the depth bound comes first
    monkeypatch.setattr(store, "MAX_FOLDER_DEPTH", 4)
    report = json.loads(_cli(specs, "validate", "3", "-o", "json").output)
    codes = {Path(p["path"]).name: (p["code"], p["severity"]) for p in report["problems"]}
    assert codes == {"loop": ("folder-link-loop", "warning")}
    assert report["ok"] is True


def test_http_serves_the_nested_file(memory: SpecMemory):
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        body = client.get("/specs/3", params={"files": "true"}).json()
    assert body["files"]["research/evals.md"] == EVALS


def test_the_catalog_notices_an_edit_to_a_nested_file(memory: SpecMemory, specs: Path):
    evals = specs / "003-search-ui" / "research" / "evals.md"
    assert "zanzibar" in _file(memory, "research/evals.md")
    stat = evals.stat()
    evals.write_text(EVALS.replace("zanzibar", "madagascar"), encoding="utf-8")
    # Same size, and an mtime the test sets: only the nested file's stat says it changed.
    os.utime(evals, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert "madagascar" in _file(memory, "research/evals.md")
    notes = specs / "003-search-ui" / "research" / "more" / "notes.md"
    notes.parent.mkdir()
    notes.write_text("# Notes\n", encoding="utf-8")
    assert "research/more/notes.md" in [f.name for f in memory.get_spec("3").sub_files]


def _file(memory: SpecMemory, name: str) -> str:
    return next(f.text for f in memory.get_spec("3").sub_files if f.name == name)
