"""The history of intent from git, on a repository the test builds (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.cli import cli

pytestmark = pytest.mark.skipif(
    subprocess.run(["git", "--version"], capture_output=True).returncode != 0,
    reason="git is not installed",
)

README = """---
status: planned
created: 2026-01-05
---
# Authentication

## Overview
How agents authenticate.
"""


def _git(repo: Path, *args: str, when: str = "2026-01-05T10:00:00Z") -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_AUTHOR_DATE": when,
        "GIT_COMMITTER_DATE": when,
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _commit(repo: Path, message: str, when: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message, when=when)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    spec = root / "specs" / "001-auth"
    spec.mkdir(parents=True)
    _git(root, "init", "-q", "-b", "main")
    (spec / "README.md").write_text(README, encoding="utf-8")
    (root / "specs" / "002-other").mkdir()
    (root / "specs" / "002-other" / "README.md").write_text("# Other\n", encoding="utf-8")
    _commit(root, "Add the auth spec", "2026-01-05T10:00:00Z")
    text = README.replace("status: planned", "status: in-progress").replace(
        "How agents authenticate.\n", "How agents authenticate.\n\n## Decision\nBearer tokens.\n"
    )
    (spec / "README.md").write_text(text, encoding="utf-8")
    _commit(root, "Start the auth work, record the decision", "2026-01-06T10:00:00Z")
    (root / "src").mkdir()
    (root / "src" / "auth.py").write_text("TOKEN = 'bearer'\n", encoding="utf-8")
    _commit(root, "Implement bearer tokens (spec 001)", "2026-01-07T10:00:00Z")
    return root


def _memory(repo: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(repo / "specs", tmp_path / "data", embedder=FakeEmbedder())


def test_a_specs_history_has_its_commits_and_what_they_changed(repo, tmp_path):
    history = _memory(repo, tmp_path).history("001")
    commits = [item for item in history if item["kind"] == "commit"]
    assert [c["subject"] for c in commits] == [
        "Implement bearer tokens (spec 001)",
        "Start the auth work, record the decision",
        "Add the auth spec",
    ]
    cites, change, created = commits
    assert cites["cites"] is True and "files" not in cites
    assert change["changes"] == {
        "fields": {"status": "in-progress"},
        "sections_added": ["Decision"],
    }
    assert change["files"] == ["001-auth/README.md"] and change["author"] == "Ada"
    assert created["changes"]["sections_added"] == ["Overview"]
    assert len(change["sha"]) == 40


def test_since_takes_a_date_or_a_commit(repo, tmp_path):
    memory = _memory(repo, tmp_path)
    by_date = memory.history("001", since="2026-01-06")
    assert [c["subject"] for c in by_date if c["kind"] == "commit"][-1].startswith("Start")
    by_ref = memory.history("001", since="HEAD~1")
    assert {c["subject"] for c in by_ref if c["kind"] == "commit"} == {
        "Implement bearer tokens (spec 001)",
        "Start the auth work, record the decision",
    }
    from ingest.errors import InvalidInput

    with pytest.raises(InvalidInput, match="since"):
        memory.history("001", since="no-such-ref")


def test_a_warm_memory_sees_a_new_commit(repo, tmp_path):
    memory = _memory(repo, tmp_path)
    assert len([c for c in memory.history("2") if c["kind"] == "commit"]) == 1
    (repo / "specs" / "002-other" / "README.md").write_text("# Other\n\n## Plan\n", "utf-8")
    _commit(repo, "Plan the other spec", "2026-01-08T10:00:00Z")
    subjects = [c["subject"] for c in memory.history("2") if c["kind"] == "commit"]
    assert subjects[0] == "Plan the other spec"


def test_the_cli_bundles_and_http_show_commits(repo, tmp_path):
    memory = _memory(repo, tmp_path)
    bundle = memory.context(specs=["001"], budget=2000)
    assert "Implement bearer tokens" in bundle.rendered
    args = ["--specs-dir", str(repo / "specs"), "--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(cli, [*args, "history", "001", "--since", "HEAD~1", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert len([i for i in json.loads(result.output)["history"] if i["kind"] == "commit"]) == 2
    text = CliRunner().invoke(cli, [*args, "history", "001"]).output
    assert "status: in-progress; + Decision" in text


def test_without_git_history_or_with_a_shallow_clone_nothing_breaks(repo, tmp_path):
    plain = tmp_path / "plain"  # the same specs, in no work tree
    plain.mkdir()
    subprocess.run(["cp", "-r", str(repo / "specs"), str(plain / "specs")], check=True)
    assert [i for i in _memory(plain, tmp_path).history("001") if i["kind"] == "commit"] == []
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)],
        check=True,
        capture_output=True,
    )
    commits = [i for i in _memory(shallow, tmp_path).history("001") if i["kind"] == "commit"]
    assert [c["subject"] for c in commits] == ["Implement bearer tokens (spec 001)"]
