"""Attribution: which spec governs a commit, a session, a branch (issue 13, specs/085)."""

from __future__ import annotations

import datetime as dt
import json

import anyio
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.errors import InvalidInput
from ingest.index.embedding import FakeEmbedder
from ingest.specs.store import SpecStore
from retriever import SpecMemory
from retriever.attribution.evidence import attribute_work, routine_change
from retriever.attribution.references import branch_references, text_references
from retriever.cli import cli
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server
from retriever.request_model import AttributionRequest, built

from .conftest import write_spec


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Implement spec 354: the thing", ["354"]),
        ("Spec #372 follow-up", ["372"]),
        ("fix spec-314 regression", ["314"]),
        ("spec(049): expand validation", ["49"]),
        ("Docs(specs/018): update CLI design", ["18"]),
        ("Add verification reports for specs 307 and 308", ["307", "308"]),
        ("Merge pull request #72 from org/copilot/implement-spec-97-99", ["97", "99"]),
        ("Merge pull request #61 from org/copilot/implement-spec-82-phase-1-2", ["82"]),
        ("specs: add 045 (Unified Dashboard); reference 045 in 043 launch plan", ["45", "43"]),
        ("Mark spec 084 as complete", ["84"]),
    ],
)
def test_the_forms_real_commits_use_are_read(text, numbers):
    assert [r.ref for r in text_references(text)] == numbers


@pytest.mark.parametrize(
    "text",
    [
        "Merge pull request #18 from org/feature-x",
        "chore: release v0.2.19",
        "0.2.19",
        "Create @leanspec/ui-components package (Phase 1-2)",
        "updated 3 files on 2025-11-01",
        "bump lodash from 4.17.20 to 4.17.21",
    ],
)
def test_numbers_that_name_no_spec_are_not_references(text):
    assert text_references(text) == []


def test_dir_names_and_branches_are_references():
    assert [r.ref for r in text_references("notes for 045-api-redesign")] == ["045-api-redesign"]
    assert [r.ref for r in branch_references("feature/045-api-redesign")] == ["045-api-redesign"]
    assert [r.ref for r in branch_references("copilot/implement-spec-75")] == ["75"]
    assert branch_references("main") == []


@pytest.mark.parametrize(
    ("message", "files"),
    [
        ("chore: release v0.2.27", ["CHANGELOG.md", "package.json"]),
        ("0.2.19", ["package.json"]),
        ("Bump version to 0.1.1 in package.json", ["package.json"]),
        ("chore(deps): update dependencies", ["pnpm-lock.yaml", "package.json"]),
    ],
)
def test_releases_and_bumps_are_routine(message, files):
    assert routine_change(message, files)


def test_a_feature_commit_is_not_routine():
    assert routine_change("Add token refresh before expiry", ["src/auth/refresh.py"]) is None


def _memory(tiny_specs, tmp_path):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.ingest()
    return memory


def _attribute(memory, **fields):
    return memory.attribute(built(AttributionRequest, **fields))


def test_an_explicit_reference_is_decisive_and_says_why(tiny_specs, tmp_path):
    result = _attribute(_memory(tiny_specs, tmp_path), message="Finish spec 2: refresh jitter")
    assert not result.abstained
    first = result.specs[0]
    assert first.spec == "002-token-refresh" and first.confidence >= 0.9
    assert first.evidence[0].kind == "reference" and "spec 2" in first.evidence[0].detail


def test_files_under_a_spec_dir_name_it(tiny_specs, tmp_path):
    result = _attribute(
        _memory(tiny_specs, tmp_path), files=["specs/003-search-ui/DESIGN.md", "web/app.ts"]
    )
    assert result.specs[0].spec == "003-search-ui" and not result.abstained
    assert [e.kind for e in result.specs[0].evidence] == ["own-dir"]


def test_a_path_the_spec_mentions_is_weak_evidence(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "001-cli", "# CLI\n\nThe entry point is `src/cli/main.ts`.\n")
    write_spec(root, "002-docs", "# Docs\n\nNothing about code.\n")
    catalog = SpecStore(root).scan()
    result = attribute_work(catalog, files=["packages/app/src/cli/main.ts"])
    assert result.specs[0].spec == "001-cli"
    assert result.specs[0].evidence[0].kind == "mentioned-path"
    assert result.abstained  # a mentioned path alone is not confident


def test_files_that_events_linked_to_a_spec_are_evidence(tiny_specs, tmp_path):
    memory = _memory(tiny_specs, tmp_path)
    memory.log_event("001", "session", summary="auth work", files_changed=["src/auth/bearer.py"])
    result = _attribute(memory, files=["src/auth/bearer.py"])
    assert result.specs[0].spec == "001-auth-design"
    assert result.specs[0].evidence[0].kind == "linked-path"


def test_a_release_abstains_and_a_reference_still_wins_over_it(tiny_specs, tmp_path):
    memory = _memory(tiny_specs, tmp_path)
    release = _attribute(memory, message="chore: release v1.4.0", files=["CHANGELOG.md"])
    assert release.abstained and "release" in release.reason
    cited = _attribute(memory, message="release v1.4.0: ships spec 001")
    assert not cited.abstained and cited.specs[0].spec == "001-auth-design"


def test_a_spec_created_after_the_work_cannot_be_found_by_text(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "001-old", "---\ncreated: 2025-01-01\n---\n# Refresh tokens\n\nRefresh.\n")
    write_spec(root, "002-new", "---\ncreated: 2025-06-01\n---\n# Refresh tokens v2\n\nRefresh.\n")
    catalog = SpecStore(root).scan()

    def search(text, limit):
        return [("002-new", 3.0), ("001-old", 1.0)]

    at = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    result = attribute_work(catalog, message="refresh tokens", search=search, at=at)
    assert [s.spec for s in result.specs] == ["001-old"]
    # Named explicitly, it still counts: the reference is the author's word.
    named = attribute_work(catalog, message="spec 2: refresh", search=search, at=at)
    assert named.specs[0].spec == "002-new"


def test_without_an_index_the_answer_says_text_was_not_matched(tiny_specs, tmp_path):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    result = _attribute(memory, message="bearer tokens for agents")
    assert result.notes and "not matched" in result.notes[0]


def test_nothing_to_attribute_is_refused_naming_what_is_needed():
    with pytest.raises(InvalidInput, match="message, files or a branch"):
        built(AttributionRequest, message="  ")
    with pytest.raises(InvalidInput, match="ISO 8601"):
        built(AttributionRequest, message="x", at="yesterday")


def test_every_door_answers_the_same_attribution(tiny_specs, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECMEM_MODEL", "fake")  # the CLI builds its own SpecMemory
    memory = SpecMemory(tiny_specs, tmp_path / "data")
    memory.ingest()
    body = {"message": "Finish spec 2", "files": ["specs/002-token-refresh/README.md"]}
    expected = memory.attribute(AttributionRequest(**body)).to_dict()
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        http = client.post("/attribute", json=body).json()
        refused = client.post("/attribute", json={"message": "x", "sha": "abc"})

    async def scenario():
        async with Client(build_mcp_server(memory)) as session:
            result = await session.call_tool("attribute_work", body)
            return result.structured_content

    mcp = anyio.run(scenario)
    args = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "attribute"]
    cli_answer = CliRunner().invoke(
        cli, [*args, body["message"], "--file", body["files"][0], "-o", "json"]
    )
    assert http == expected == mcp == json.loads(cli_answer.output)
    assert refused.status_code == 422 and "sha" in refused.text


def test_batch_answers_each_line_and_a_broken_line_stops_no_other(tiny_specs, tmp_path):
    _memory(tiny_specs, tmp_path)
    lines = tmp_path / "work.jsonl"
    lines.write_text(
        json.dumps({"id": "a", "message": "spec 1 follow-up"})
        + "\n{not json\n"
        + json.dumps({"id": "c", "message": "x", "sha": "abc"})
        + "\n\n"
        + json.dumps({"id": "d", "message": "chore: release v2.0.0", "files": ["package.json"]})
        + "\n",
        encoding="utf-8",
    )
    args = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "attribute"]
    result = CliRunner().invoke(cli, [*args, "--batch", str(lines)])
    answers = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1
    assert [a["line"] for a in answers] == [1, 2, 3, 5]
    assert answers[0]["id"] == "a" and answers[0]["specs"][0]["spec"] == "001-auth-design"
    assert answers[1]["error"]["message"].startswith("line 2:")
    assert "sha" in answers[2]["error"]["message"] and answers[2]["id"] == "c"
    assert answers[3]["abstained"] is True
