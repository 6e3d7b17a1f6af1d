"""validate_catalog: each problem with its file, line, severity and stable code."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.index.tokens import count_tokens
from ingest.specs.graph import SpecGraph
from ingest.specs.store import SpecStore
from ingest.specs.validate import (
    CODES,
    SEVERITIES,
    ValidationReport,
    file_token_counts,
    find_stray_files,
    frontmatter_key_lines,
    validate_catalog,
)
from retriever import SpecMemory

from .conftest import write_spec


def _report(root: Path, **kwargs) -> ValidationReport:
    catalog = SpecStore(root).scan()
    counts = file_token_counts(catalog, count_tokens)
    return validate_catalog(
        catalog, token_counts=counts, stray_files=find_stray_files(catalog), **kwargs
    )


def _codes(report: ValidationReport) -> dict[str, list]:
    found: dict[str, list] = {}
    for problem in report.problems:
        found.setdefault(problem.code, []).append(problem)
    return found


def test_every_code_has_a_known_severity():
    assert all(severity in SEVERITIES for severity, _ in CODES.values())


def test_a_clean_catalog_is_ok(tiny_specs: Path):
    report = _report(tiny_specs, threshold=3500)
    assert report.problems == []
    assert report.ok and not report.failed(strict=True)
    assert report.to_dict() == {
        "ok": True,
        "errors": 0,
        "warnings": 0,
        "checked": 3,
        "problems": [],
    }


def test_key_lines_come_from_the_yaml_text():
    text = "---\n# a comment\nstatus: draft\n'priority': high\ntags:\n  - x\ndepends_on: [1]\n---\n# T\n"
    assert frontmatter_key_lines(text) == {
        "status": 3,
        "priority": 4,
        "tags": 5,
        "depends_on": 7,
    }
    assert frontmatter_key_lines("# no frontmatter\n") == {}


def test_field_problems_carry_the_line_of_their_key(tmp_path: Path):
    write_spec(
        tmp_path,
        "001-odd",
        """
        ---
        created: 2025-01-01
        status: someday
        priority: whenever
        ---
        # Odd
        """,
    )
    write_spec(tmp_path, "002-no-status", "---\npriority: low\n---\n# No status\n")
    write_spec(tmp_path, "003-no-frontmatter", "# Just a title\n")
    write_spec(tmp_path, "004-no-title", "---\nstatus: draft\n---\nText without a heading.\n")
    codes = _codes(_report(tmp_path))
    status = codes["status-unknown"][0]
    assert (status.severity, status.spec, status.line) == ("error", "001-odd", 3)
    assert status.path.endswith("001-odd/README.md")
    assert "someday" in status.message
    priority = codes["priority-unknown"][0]
    assert (priority.severity, priority.line) == ("warning", 4)
    assert codes["frontmatter-missing"][0].spec == "003-no-frontmatter"
    # No frontmatter is one problem, not also a missing status.
    assert [p.spec for p in codes["status-missing"]] == ["002-no-status"]
    assert codes["title-missing"][0].spec == "004-no-title"


def test_links_dangling_ambiguous_and_self(tmp_path: Path):
    write_spec(tmp_path, "001-a", "---\nstatus: draft\n---\n# A\n")
    write_spec(tmp_path, "002-b", "---\nstatus: draft\n---\n# B\n")
    write_spec(tmp_path, "002-c", "---\nstatus: draft\n---\n# C\n")
    write_spec(
        tmp_path,
        "003-d",
        """
        ---
        status: draft
        depends_on:
          - 001-a
          - 999-gone
          - '2'
          - ../../etc
        related: [404-nowhere]
        parent: 003-d
        ---
        # D
        """,
    )
    report = _report(tmp_path)
    codes = _codes(report)
    dangling = {p.message: p for p in codes["reference-dangling"]}
    assert dangling["depends_on '999-gone' names no spec"].line == 5
    assert dangling["depends_on '../../etc' names no spec"].line == 7
    ambiguous = codes["reference-ambiguous"][0]
    assert ambiguous.line == 6 and "002-b, 002-c" in ambiguous.message
    assert codes["related-dangling"][0].severity == "warning"
    assert codes["reference-self"][0].line == 9
    duplicates = codes["number-duplicate"]
    assert sorted(p.spec for p in duplicates) == ["002-b", "002-c"]
    assert all(p.severity == "warning" for p in duplicates)
    assert report.failed()


def test_cycles_are_reported_at_the_dependency_line_and_rotated_for_one_spec(tmp_path: Path):
    write_spec(tmp_path, "001-a", "---\nstatus: draft\ndepends_on: ['2']\n---\n# A\n")
    write_spec(tmp_path, "002-b", "---\nstatus: draft\ndepends_on:\n- 001-a\n---\n# B\n")
    (cycle,) = _codes(_report(tmp_path))["dependency-cycle"]
    assert (cycle.spec, cycle.line) == ("001-a", 3)
    assert cycle.message == "cycle: 001-a -> 002-b -> 001-a"
    (only,) = _report(tmp_path, only="002-b").problems
    assert (only.spec, only.line, only.message) == ("002-b", 4, "cycle: 002-b -> 001-a -> 002-b")


def test_token_threshold_is_per_file_and_stray_files_are_info(tiny_specs: Path):
    (tiny_specs / "003-search-ui" / "DESIGN.md").write_text("# Big\n\n" + "word " * 400)
    (tiny_specs / "003-search-ui" / "notes.yml").write_text("a: 1\n")
    (tiny_specs / "003-search-ui" / ".hidden").write_text("x")
    report = _report(tiny_specs, threshold=300)
    codes = _codes(report)
    (big,) = codes["tokens-over-threshold"]
    assert big.path.endswith("DESIGN.md") and "300-token threshold" in big.message
    (stray,) = codes["stray-file"]
    assert stray.severity == "info" and stray.path.endswith("notes.yml")
    assert not report.failed() and report.failed(strict=True)
    assert report.to_dict(strict=True)["ok"] is False


def test_token_counts_are_cached_by_content_hash(tiny_specs: Path):
    catalog = SpecStore(tiny_specs).scan()
    calls: list[str] = []

    def count(text: str) -> int:
        calls.append(text)
        return len(text)

    cache: dict[str, int] = {}
    first = file_token_counts(catalog, count, cache)
    second = file_token_counts(catalog, count, cache)
    assert first == second and len(calls) == 4  # 3 READMEs + DESIGN.md, counted once
    assert list(file_token_counts(catalog, count, only="001-auth-design")) == [
        str(tiny_specs / "001-auth-design" / "README.md")
    ]


def test_service_validate_one_spec_and_unknown_ref(tiny_specs: Path):
    memory = SpecMemory(tiny_specs, tiny_specs.parent / "data")
    write_spec(tiny_specs, "004-bad", "---\nstatus: [draft\n---\n# Bad\n")
    report = memory.validate("4")
    (problem,) = report.problems
    assert (problem.code, problem.line, problem.spec) == ("yaml-invalid", 2, "004-bad")
    assert memory.validate("1").problems == []
    from ingest.errors import SpecNotFound

    with pytest.raises(SpecNotFound):
        memory.validate("77")


def test_corpus_reports_duplicates_cycles_and_dangling(corpus_specs: Path):
    catalog = SpecStore(corpus_specs).scan()
    report = validate_catalog(catalog, SpecGraph.from_catalog(catalog))
    codes = _codes(report)
    assert sorted(p.spec for p in codes["number-duplicate"]) == [
        "038-flat-structure-migration",
        "038-mcp-frontmatter-bug-fix",
        "039-simplify-viewer-commands",
        "039-template-variable-sync",
    ]
    cycles = {p.message for p in codes["dependency-cycle"]}
    for other in ("185-ui-components-extraction", "186-rust-http-server", "187-vite-spa-migration"):
        assert (
            f"cycle: 184-ui-packages-consolidation -> {other} -> 184-ui-packages-consolidation"
            in cycles
        )
    dangling = codes["reference-dangling"]
    assert len(dangling) == 37
    assert all(p.line is not None and p.path.endswith("README.md") for p in dangling)
    assert report.failed()


def test_missing_readme_and_broken_sub_spec_are_named(tiny_specs: Path):
    (tiny_specs / "005-empty-dir").mkdir()
    (tiny_specs / "003-search-ui" / "NOTES.md").write_bytes(b"# Notes\n\x00\x00")
    codes = _codes(_report(tiny_specs))
    (missing,) = codes["readme-missing"]
    assert (missing.spec, missing.path) == (
        "005-empty-dir",
        str(tiny_specs / "005-empty-dir" / "README.md"),
    )
    (binary,) = codes["file-binary"]
    assert (binary.spec, Path(binary.path).name) == ("003-search-ui", "NOTES.md")


def test_validate_refuses_a_specs_dir_that_does_not_exist(tmp_path: Path):
    from ingest.errors import InvalidInput

    with pytest.raises(InvalidInput, match="does not exist"):
        SpecMemory(tmp_path / "nope", tmp_path / "data").validate()


_readme_bytes = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.sampled_from(
            [
                "---\n",
                "status: draft\n",
                "status: [x\n",
                "depends_on: ['1', 999]\n",
                "parent: 002-b\n",
                "related: ../x\n",
                "created: 2025-13-45\n",
                "a: &a [1]\nb: *a\n",
                "# Title\n",
                "## Part\n",
                "```\n",
                "\ufeff",
                "text\n",
            ]
        ),
        max_size=10,
    ).map(lambda parts: "".join(parts).encode()),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_readme_bytes, min_size=1, max_size=3))
def test_scan_and_validate_never_raise_on_arbitrary_readmes(readmes: list[bytes]):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "specs"
        for index, data in enumerate(readmes, start=1):
            (root / f"{index:03d}-s").mkdir(parents=True)
            (root / f"{index:03d}-s" / "README.md").write_bytes(data)
        catalog = SpecStore(root).scan()
        assert len(catalog.specs) + len(catalog.broken) == len(readmes)
        report = validate_catalog(
            catalog, token_counts=file_token_counts(catalog, len), threshold=50
        )
        assert all(p.code in CODES and p.path for p in report.problems)


def test_reference_lines_match_whole_items_not_substrings(tmp_path: Path):
    write_spec(tmp_path, "012-x", "---\nstatus: draft\n---\n# X\n")
    write_spec(
        tmp_path, "013-y", "---\nstatus: draft\ndepends_on:\n  - '12'\n  - \"2\"\n---\n# Y\n"
    )
    (dangling,) = _codes(_report(tmp_path))["reference-dangling"]
    assert (dangling.line, dangling.message) == (5, "depends_on '2' names no spec")


def test_impossible_dates_are_a_warning_at_their_key(tmp_path: Path):
    write_spec(
        tmp_path,
        "001-dates",
        "---\nstatus: draft\ncreated: 2025-13-45\nupdated_at: 2025-12-26T06:32:10.153066442Z\n---\n# D\n",
    )
    (problem,) = _report(tmp_path).problems
    assert (problem.code, problem.severity, problem.line) == ("date-invalid", "warning", 3)
    assert "'2025-13-45'" in problem.message
