"""A LeanSpec project made with its own config and templates works unchanged (issue 13)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from retriever import SpecMemory
from retriever.cli import cli

from .conftest import write_spec

# LeanSpec's own .lean-spec/config.json (codervisor/lean-spec), and a template in its style.
CONFIG = {
    "template": "spec-template.md",
    "templates": {"default": "spec-template.md"},
    "specsDir": "specs",
    "structure": {
        "pattern": "flat",
        "prefix": "",
        "dateFormat": "YYYYMMDD",
        "sequenceDigits": 3,
        "defaultFile": "README.md",
    },
    "features": {"aiAgents": True},
    "frontmatter": {"custom": {"issue": "string", "superseded-by": "string"}},
    "variables": {"project": "lean-spec", "team": "Core Development"},
}
TEMPLATE = """---
status: planned
created: '{date}'
tags: []
priority: medium
---

# {name}

> **Status**: {status} · **Priority**: {priority} · **Created**: {date}

**Project**: {project}
**Team**: {team}

## Overview
"""


def _project(tmp_path, config=CONFIG):
    root = tmp_path / "project"
    (root / ".lean-spec" / "templates").mkdir(parents=True)
    (root / ".lean-spec" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (root / ".lean-spec" / "templates" / "spec-template.md").write_text(TEMPLATE, encoding="utf-8")
    write_spec(root / "specs", "001-first", "---\nstatus: planned\n---\n# First\n")
    return root


def test_create_uses_the_projects_default_template_from_the_project_dir(tmp_path, monkeypatch):
    root = _project(tmp_path)
    monkeypatch.chdir(root)  # no --specs-dir: the config says where the specs are
    result = CliRunner().invoke(cli, ["create", "Token refresh", "--priority", "high"])
    assert result.exit_code == 0, result.output + result.stderr
    text = (root / "specs" / "002-token-refresh" / "README.md").read_text(encoding="utf-8")
    assert "# Token refresh" in text
    assert "**Status**: planned · **Priority**: high" in text
    assert "**Project**: lean-spec" in text and "**Team**: Core Development" in text
    spec = SpecMemory(root / "specs").get_spec("002")
    assert spec.meta.priority == "high" and spec.meta.created


def test_templates_are_named_as_lean_spec_names_them(tmp_path, monkeypatch):
    root = _project(tmp_path)
    monkeypatch.chdir(root)
    listed = json.loads(CliRunner().invoke(cli, ["templates", "-o", "json"]).output)
    names = {t["name"]: t["source"] for t in listed["templates"]}
    assert names["spec-template"] == "lean-spec" and names["default"] == "lean-spec"
    for name in ("spec-template", "spec-template.md"):
        result = CliRunner().invoke(cli, ["create", f"Via {name}", "--template", name])
        assert result.exit_code == 0, result.output + result.stderr


def test_sequence_digits_set_the_width_of_a_new_number(tmp_path, monkeypatch):
    root = _project(tmp_path, {**CONFIG, "structure": {**CONFIG["structure"], "sequenceDigits": 4}})
    monkeypatch.chdir(root)
    assert CliRunner().invoke(cli, ["create", "Wide"]).exit_code == 0
    assert (root / "specs" / "0002-wide" / "README.md").is_file()


@pytest.mark.parametrize(
    ("structure", "field"),
    [
        ({"defaultFile": "SPEC.md"}, "structure.defaultFile"),
        ({"pattern": "nested"}, "structure.pattern"),
        ({"sequenceDigits": 0}, "structure.sequenceDigits"),
    ],
)
def test_a_setting_specmem_cannot_honour_is_refused_by_name(
    tmp_path, monkeypatch, structure, field
):
    root = _project(tmp_path, {**CONFIG, "structure": {**CONFIG["structure"], **structure}})
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 1
    assert ".lean-spec/config.json" in result.stderr and field in result.stderr


def test_a_broken_config_names_its_line(tmp_path, monkeypatch):
    root = _project(tmp_path)
    (root / ".lean-spec" / "config.json").write_text('{"specsDir": "specs",\n}', encoding="utf-8")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 1 and ".lean-spec/config.json:2" in result.stderr


def test_a_date_grouped_project_is_read_and_created_into(tmp_path, monkeypatch):
    structure = {**CONFIG["structure"], "pattern": "date-grouped"}
    root = _project(tmp_path, {**CONFIG, "structure": structure})
    write_spec(root / "specs" / "20251101", "002-grouped", "---\nstatus: planned\n---\n# Grouped\n")
    monkeypatch.chdir(root)
    listed = json.loads(CliRunner().invoke(cli, ["list", "-o", "json"]).output)
    assert [s["spec"] for s in listed["specs"]] == ["001-first", "002-grouped"]
    assert listed["problems"] == []  # the date folder is a place specs live, not a stray folder
    result = CliRunner().invoke(cli, ["create", "Third", "-o", "json"])
    assert result.exit_code == 0, result.output + result.stderr
    created = json.loads(result.output)
    assert created["spec"] == "003-third"
    days = [p.name for p in (root / "specs").iterdir() if p.name.isdigit()]
    assert any((root / "specs" / day / "003-third" / "README.md").is_file() for day in days)
    spec = SpecMemory(root / "specs").get_spec("2")
    assert spec.dir_name == "002-grouped"


def test_blocked_and_cancelled_are_written_only_where_the_project_declares_them(
    tmp_path, monkeypatch
):
    root = _project(tmp_path)
    monkeypatch.chdir(root)
    refused = CliRunner().invoke(cli, ["update", "001", "--status", "blocked"])
    assert refused.exit_code == 1
    assert "not declared" in refused.stderr and "planned" in refused.stderr
    config = {**CONFIG, "statuses": ["blocked", "cancelled"]}
    (root / ".lean-spec" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    done = CliRunner().invoke(cli, ["update", "001", "--status", "blocked"])
    assert done.exit_code == 0, done.stderr
    board = json.loads(CliRunner().invoke(cli, ["board", "-o", "json"]).output)
    assert "001-first" in json.dumps(board.get("blocked") or board)
    listed = json.loads(
        CliRunner().invoke(cli, ["list", "--status", "blocked", "-o", "json"]).output
    )
    assert [s["spec"] for s in listed["specs"]] == ["001-first"]
    made = CliRunner().invoke(
        cli, ["create", "Stopped", "--status", "cancelled", "--assignee", "ada"]
    )
    assert made.exit_code == 0, made.stderr
    spec = SpecMemory(root / "specs").get_spec("002")
    assert (spec.meta.status, spec.meta.assignee) == ("cancelled", "ada")


def test_a_spec_already_blocked_reads_without_a_problem(tmp_path, monkeypatch):
    root = _project(tmp_path)
    write_spec(root / "specs", "002-stuck", "---\nstatus: blocked\n---\n# Stuck\n")
    spec = SpecMemory(root / "specs").get_spec("002")
    assert spec.meta.status == "blocked" and not spec.meta.problems
    bad = {**CONFIG, "statuses": ["paused"]}
    (root / ".lean-spec" / "config.json").write_text(json.dumps(bad), encoding="utf-8")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 1 and "statuses" in result.stderr


def test_supersedes_links_are_read_shown_and_marked(tiny_specs, tmp_path):
    from ingest.index.embedding import FakeEmbedder

    write_spec(
        tiny_specs,
        "004-auth-v2",
        "---\nstatus: planned\nsupersedes: [001]\nrelated_to: [003]\n---\n# Authentication v2\n\n"
        "## Decision\nShort-lived bearer tokens for agents.\n",
    )
    write_spec(
        tiny_specs,
        "005-old-search",
        "---\nstatus: complete\nsuperseded-by: 003\n---\n# Old search\n",
    )
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    old = memory.dependencies("001")
    assert old["superseded_by"] == ["004-auth-v2"]
    assert memory.dependencies("004")["supersedes"] == ["001-auth-design"]
    assert "003-search-ui" in memory.dependencies("004")["related"]
    assert memory.dependencies("003")["supersedes"] == ["005-old-search"]
    memory.ingest()
    hits = {hit.spec: hit for hit in memory.search("bearer tokens agents authenticate", limit=5)}
    assert hits["001-auth-design"].to_dict()["superseded_by"] == ["004-auth-v2"]
    bundle = memory.context(specs=["001"], budget=2000)
    assert "superseded by 004-auth-v2" in bundle.rendered
    args = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "deps", "001"]
    assert "superseded by: 004-auth-v2" in CliRunner().invoke(cli, args).output
