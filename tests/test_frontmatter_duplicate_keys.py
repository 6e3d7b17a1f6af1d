"""A key written twice in frontmatter is broken YAML: the file is reported with the key and both
file lines, as LeanSpec's own parsers (js-yaml, serde_yaml) refuse it, instead of the last value
silently winning. Spec 083 records why this is an error and not a warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.errors import SpecParseError
from ingest.specs.frontmatter import parse_yaml
from ingest.specs.store import SpecStore
from retriever.cli import cli
from tests.conftest import write_spec

TWO_STATUSES = """
---
status: planned
created: 2025-11-02
tags: [cache]
status: complete
---
# Result cache

## Overview
Cache search results.
"""


def parse_error(yaml_text: str, first_line: int = 2) -> SpecParseError:
    with pytest.raises(SpecParseError) as caught:
        parse_yaml(yaml_text, "specs/004-x/README.md", first_line)
    return caught.value


def test_a_top_level_key_twice_names_the_key_and_both_file_lines():
    err = parse_error("status: planned\ntags: [a]\nstatus: complete\n", first_line=5)
    assert err.line == 7
    assert "duplicate key 'status' on lines 5 and 7" in err.reason
    assert err.reason.startswith("invalid YAML frontmatter")  # validate reports it as yaml-invalid


def test_a_key_twice_in_a_nested_mapping_is_refused_too():
    text = (
        "status: complete\ntransitions:\n  - status: planned\n    at: 2025-01-01\n    status: x\n"
    )
    err = parse_error(text)
    assert err.line == 6
    assert "duplicate key 'status' on lines 4 and 6" in err.reason


@pytest.mark.parametrize(
    "yaml_text",
    [
        "status: planned\n'status': complete\n",  # quoted and plain are the same key
        'status: planned\n"status": complete\n',
        "meta: {a: 1, a: 2}\n",  # flow mappings too
        "created: 2025-01-01\ncreated: 2025-01-01\n",  # even with the same value
    ],
)
def test_a_key_spelled_twice_is_a_duplicate(yaml_text: str):
    assert "duplicate key" in parse_error(yaml_text).reason


def test_keys_that_only_clash_once_read_as_text_are_refused():
    err = parse_error('1: one\n"1": also one\n')
    assert "duplicate key '1'" in err.reason


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        # The same key in sibling mappings is not a duplicate.
        (
            "transitions:\n  - status: planned\n  - status: complete\n",
            {"transitions": [{"status": "planned"}, {"status": "complete"}]},
        ),
        # A merge key's values may be overridden: that is what merging is for.
        ("<<: {priority: low, tags: [a]}\npriority: high\n", {"priority": "high", "tags": ["a"]}),
        ("status: planned\nStatus: complete\n", {"status": "planned", "Status": "complete"}),
    ],
)
def test_what_is_not_a_duplicate_still_parses(yaml_text: str, expected: dict):
    assert parse_yaml(yaml_text, "README.md") == expected


def test_a_merge_does_not_hide_a_duplicate_among_the_mappings_own_keys():
    err = parse_error("<<: {tags: [a]}\npriority: low\npriority: high\n")
    assert "duplicate key 'priority' on lines 3 and 4" in err.reason


def test_the_real_corpus_has_no_duplicate_keys_so_every_spec_still_loads(corpus_specs: Path):
    catalog = SpecStore(corpus_specs).scan()
    assert not [p for p in catalog.problems if "duplicate key" in p.reason]


# -- through the CLI ----------------------------------------------------------------------------


@pytest.fixture
def specs_with_a_duplicate(tiny_specs: Path) -> Path:
    write_spec(tiny_specs, "004-result-cache", TWO_STATUSES)
    return tiny_specs


def run(root: Path, *args: str):
    return CliRunner().invoke(cli, ["--specs-dir", str(root), *args])


def readme(root: Path) -> str:
    return str(root / "004-result-cache" / "README.md")


def test_list_skips_the_spec_and_names_the_key_and_lines(specs_with_a_duplicate: Path):
    result = run(specs_with_a_duplicate, "list", "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {spec["spec"] for spec in data["specs"]} == {
        "001-auth-design",
        "002-token-refresh",
        "003-search-ui",
    }
    (problem,) = [p for p in data["problems"] if p["spec"] == "004-result-cache"]
    assert problem["path"] == "004-result-cache/README.md"  # relative in JSON (spec 074)
    assert problem["line"] == 5
    assert "duplicate key 'status' on lines 2 and 5" in problem["reason"]


def test_validate_reports_it_as_an_error_at_the_second_line(specs_with_a_duplicate: Path):
    result = run(specs_with_a_duplicate, "validate", "-o", "json")
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    (problem,) = [p for p in problems if p["spec"] == "004-result-cache"]
    assert (problem["severity"], problem["code"], problem["line"]) == ("error", "yaml-invalid", 5)
    assert "duplicate key 'status' on lines 2 and 5" in problem["message"]

    text = run(specs_with_a_duplicate, "validate", "4")
    assert text.exit_code == 1
    assert f"{readme(specs_with_a_duplicate)}:5: error [yaml-invalid]" in text.output
    assert "duplicate key 'status'" in text.output


def test_once_the_duplicate_is_removed_the_spec_loads(specs_with_a_duplicate: Path):
    path = Path(readme(specs_with_a_duplicate))
    path.write_text(path.read_text().replace("status: planned\n", "", 1))
    data = json.loads(run(specs_with_a_duplicate, "list", "-o", "json").output)
    (spec,) = [s for s in data["specs"] if s["spec"] == "004-result-cache"]
    assert spec["status"] == "complete"
    assert not data["problems"]
