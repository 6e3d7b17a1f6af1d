"""Broken input on a copy of the real corpus: every other spec still loads, and each broken file is
named with its path and reason (and line, for YAML) by `list`, `view` and `validate`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from retriever.cli import cli

CORPUS_SPECS = 304

ALIAS_BOMB = """---
status: draft
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
---
# Billion laughs
"""

# spec dir -> (code validate must report, reason fragment list must show, line or None)
BROKEN = {
    "010-commands-refactor": ("yaml-invalid", "a flow sequence started on line 3", 4),
    "011-test-results": ("file-empty", "empty file", None),
    "013-custom-spec-templates": ("file-binary", "binary file", None),
    "014-complete-custom-frontmatter": ("file-not-utf8", "not valid UTF-8", 4),
    "015-npm-publishing": ("yaml-invalid", "aliases are not allowed", 4),
    "999-escape": ("outside-specs-dir", "resolves outside the specs dir", None),
}
BOM_SPEC = "012-sub-spec-files"


def _readme(root: Path, name: str) -> Path:
    return root / name / "README.md"


@pytest.fixture(scope="module")
def broken_corpus(corpus_specs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the corpus with seven kinds of damage, shared by the tests of this module."""
    base = tmp_path_factory.mktemp("broken")
    root = base / "specs"
    shutil.copytree(corpus_specs, root, symlinks=True)
    _readme(root, "010-commands-refactor").write_text(
        "---\nstatus: complete\ntags: [cli, refactor\npriority: high\n---\n# Commands\n"
    )
    _readme(root, "011-test-results").write_text("")
    _readme(root, "013-custom-spec-templates").write_bytes(b"\x00\x01\x02PNG\x00" * 50)
    original = _readme(root, "014-complete-custom-frontmatter").read_bytes()
    lines = original.split(b"\n")
    lines[3] = b"priority: \xff\xfe high"
    _readme(root, "014-complete-custom-frontmatter").write_bytes(b"\n".join(lines))
    _readme(root, "015-npm-publishing").write_text(ALIAS_BOMB)
    bom = _readme(root, BOM_SPEC)
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    outside = base / "outside" / "999-escape"
    outside.mkdir(parents=True)
    (outside / "README.md").write_text("---\nstatus: draft\n---\n# Secret escape\n")
    (root / "999-escape").symlink_to(outside, target_is_directory=True)
    return root


def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--specs-dir", str(root), *args])


def test_list_still_lists_every_other_spec_and_names_the_broken_files(broken_corpus: Path):
    result = run(broken_corpus, "list", "--archived", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    listed = {spec["spec"] for spec in data["specs"]}
    broken_in_corpus = len(BROKEN) - 1  # 999-escape is an extra directory, not a damaged one
    assert data["count"] == len(listed) == CORPUS_SPECS - broken_in_corpus
    assert BOM_SPEC in listed
    assert not listed & set(BROKEN)
    problems = {p["spec"]: p for p in data["problems"]}
    for name, (_code, reason, line) in BROKEN.items():
        problem = problems[name]
        assert reason in problem["reason"], name
        assert problem["path"].startswith(f"{name}"), name  # relative to the specs dir (spec 074)
        if line is not None:
            assert problem["line"] == line, name
    assert "byte-order mark" in problems[BOM_SPEC]["reason"]


def test_list_text_warns_on_stderr_and_filters_with_aliases(broken_corpus: Path):
    alias = run(broken_corpus, "list", "--status", "completed")
    canonical = run(broken_corpus, "list", "--status", "complete")
    assert alias.exit_code == canonical.exit_code == 0
    assert alias.stdout == canonical.stdout
    assert alias.stdout.splitlines()[-1].endswith(" specs")
    warned = alias.stderr
    assert f"warning: {_readme(broken_corpus, '011-test-results')}: empty file" in warned
    assert str(broken_corpus / "999-escape") in warned


def test_view_of_a_good_spec_works_and_a_broken_one_says_why(broken_corpus: Path):
    good = run(broken_corpus, "view", "045", "-o", "json")
    assert good.exit_code == 0
    assert json.loads(good.output)["spec"] == "045-unified-dashboard"
    bom = run(broken_corpus, "view", "12", "-o", "json")
    assert json.loads(bom.output)["status"] == "archived"
    bad = run(broken_corpus, "view", "10")
    assert bad.exit_code == 1
    assert "error: 010-commands-refactor/README.md:4:" in bad.output  # relative (spec 074)
    escape = run(broken_corpus, "view", "999")
    assert escape.exit_code == 1 and "Secret escape" not in escape.output


def test_validate_reports_each_broken_file_with_path_code_and_line(broken_corpus: Path):
    result = run(broken_corpus, "validate", "-o", "json")
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    for name, (code, _reason, line) in BROKEN.items():
        (problem,) = [p for p in problems if p["spec"] == name and p["code"] == code]
        assert problem["severity"] == "error"
        assert problem["path"].startswith(f"{name}")  # relative to the specs dir (spec 074)
        assert problem["line"] == line, name
    (bom,) = [p for p in problems if p["spec"] == BOM_SPEC and p["code"] == "bom"]
    assert (bom["severity"], bom["path"]) == ("warning", f"{BOM_SPEC}/README.md")
    assert not any(p["code"] == "file-unreadable" for p in problems)


def test_validate_one_broken_spec_by_number(broken_corpus: Path):
    result = run(broken_corpus, "validate", "15")
    assert result.exit_code == 1
    assert (
        f"{_readme(broken_corpus, '015-npm-publishing')}:4: error [yaml-invalid]" in result.output
    )
    assert "1 errors" in result.output


def test_impossible_dates_and_odd_values_do_not_hide_the_corpus(corpus_copy: Path):
    readme = _readme(corpus_copy, "045-unified-dashboard")
    text = readme.read_text()
    readme.write_text(text.replace("created:", "created: 2025-13-45\nold_created:", 1))
    _readme(corpus_copy, "046-stats-dashboard-refactor").write_text(
        "---\nstatus: complete\ntransitions: 5\ntags: {a: 1}\npriority: !!int zz\n---\n# Odd\n"
    )
    data = json.loads(run(corpus_copy, "list", "--archived", "-o", "json").output)
    assert data["count"] == CORPUS_SPECS - 1
    assert any(p["spec"] == "046-stats-dashboard-refactor" for p in data["problems"])
    view = json.loads(run(corpus_copy, "view", "45", "-o", "json").output)
    assert view["created"] == "2025-13-45"
