"""agent-relay's command lines, from its AGENTS.md, with `specmem` in place of `lean-spec`
(issue 13): each one runs and means what it means there."""

from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner

from retriever import SpecMemory
from retriever.cli import cli

# The lines of agent-relay's AGENTS.md ("Discovery", "Essential", "Token Management" and the
# status workflow), in the order an agent runs them.
AGENTS_MD_LINES = [
    "stats",
    "board",
    'search "token refresh"',
    "list",
    "list --tag=auth",
    "deps 002",
    "view 002",
    "view 002 --raw",
    "open 002",
    "files 003",
    "update 002 --priority high",
    "update 002 --tags auth,tokens,jitter",
    "tokens 002",
    "tokens",
    "update 002 --status in-progress --assignee yourname",
    "update 002 --status complete",
    'create "Audit log"',
    "archive 001",
]


@pytest.fixture
def run(tiny_specs, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    SpecMemory(tiny_specs, tmp_path / "data").ingest()
    base = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data")]

    def invoke(line: str, *extra: str):
        result = CliRunner().invoke(cli, [*base, *shlex.split(line), *extra])
        assert result.exit_code == 0, f"specmem {line}: {result.output}{result.stderr}"
        return result

    return invoke


def test_every_line_of_agent_relays_agents_md_runs(run):
    for line in AGENTS_MD_LINES:
        run(line)


def test_the_lines_mean_what_they_mean_for_lean_spec(run, tiny_specs):
    assert json.loads(run("stats", "-o", "json").output)["total"] == 3
    listed = json.loads(run("list --tag=auth", "-o", "json").output)
    assert {s["spec"] for s in listed["specs"]} == {"001-auth-design", "002-token-refresh"}
    raw = run("view 002 --raw").output
    assert raw == (tiny_specs / "002-token-refresh" / "README.md").read_text(encoding="utf-8")
    assert run("open 002").output.strip().endswith("002-token-refresh/README.md")  # no terminal
    files = json.loads(run("files 003", "-o", "json").output)["files"]
    assert [f["file"] for f in files] == ["README.md", "DESIGN.md"]
    # --tags names the whole list, as lean-spec's does.
    run("update 002 --tags tokens,jitter")
    spec = SpecMemory(tiny_specs).get_spec("002")
    assert spec.meta.tags == ["tokens", "jitter"]
    run("update 002 --tags tokens,jitter")  # already so: no change, no error
    run("update 002 --status in-progress --assignee yourname")
    spec = SpecMemory(tiny_specs).get_spec("002")
    assert (spec.meta.status, spec.meta.assignee) == ("in-progress", "yourname")
    every = json.loads(run("tokens", "-o", "json").output)
    assert {row["spec"] for row in every["specs"]} == {
        "001-auth-design",
        "002-token-refresh",
        "003-search-ui",
    }
    assert every["total"] == sum(row["tokens"] for row in every["specs"])


def test_an_assignee_is_one_line_of_visible_text(tiny_specs, tmp_path):
    base = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data")]
    for bad in ("", "two\nlines", "x" * 101):
        result = CliRunner().invoke(cli, [*base, "update", "002", "--assignee", bad])
        assert result.exit_code == 1 and "assignee" in result.stderr, bad
