"""One bad frontmatter value never takes the others down (issue 11, class 1; spec 025).

A value YAML accepts but that broke later (a timestamp that leaves years 1-9999 once its offset
is applied, NaN or infinity, an integer thousands of digits long, nesting hundreds deep), in a
known or unknown key, at any depth, in `transitions` too, used to crash `list`, `view` of any
spec, `validate`, `ingest`, `ingest --watch` and every HTTP route. Now the integer is a load
problem at its own line; every other kind is read as a safe value with a `value-normalized`
warning; every other spec keeps working, through the CLI, HTTP and the watcher.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ingest.index.embedding import FakeEmbedder
from ingest.index.watch import watch_specs
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ODD = "009-odd-values"

# name -> (frontmatter lines after `status: planned`, the file line to report, expected warning)
NORMALIZED = {
    "created before year 1 in UTC": (
        "created: 0001-01-01 00:00:00+01:00",
        3,
        "read as 0001-01-01T00:00:00Z",
    ),
    "updated_at after year 9999 in UTC": (
        "updated_at: 9999-12-31T23:59:59-05:00",
        3,
        "read as 9999-12-31T23:59:59.999999Z",
    ),
    "quoted ISO text at the edge": (
        "completed_at: '9999-12-31T23:59:59-05:00'",
        3,
        "read as 9999-12-31T23:59:59.999999Z",
    ),
    "NaN in an unknown key": ("score: .nan", 3, "read as the text '.nan'"),
    "infinity deep in a map": (
        "meta:\n  deep:\n    - {x: [1, -.Inf]}",
        3,
        "meta.deep[0].x[1]: -.inf is not a number",
    ),
    "edge timestamp in transitions": (
        "transitions:\n  - status: draft\n    at: 9999-12-31T23:59:59-05:00",
        3,
        "transitions[0].at: 9999-12-31T23:59:59-05:00",
    ),
    "edge text in transitions": (
        "transitions:\n  - status: draft\n    at: '0001-01-01T00:00:00+01:00'",
        3,
        "transitions[0].at: 0001-01-01T00:00:00+01:00",
    ),
    "nesting 500 deep": ("x: " + "[" * 500 + "]" * 500, 3, "nested deeper than 64 levels"),
}
# name -> (frontmatter lines after `status: planned`, the file line the problem names)
REFUSED = {
    "5000-digit integer": ("size: " + "9" * 5000, 3),
    "huge hex integer, nested": ("tags: [a]\nmeta:\n  n: [1, 0x" + "f" * 3000 + "]", 5),
    "huge integer in transitions": ("transitions:\n  - status: draft\n    at: " + "1" * 700, 5),
    "huge integer key": ("? " + "7" * 4400 + "\n: value", 3),
    "base-60 integer": ("t: " + ":".join(["59"] * 800), 3),
}


def odd_readme(lines: str) -> str:
    return f"---\nstatus: planned\n{lines}\n---\n# Odd values\n\n## Overview\nStill a spec.\n"


@pytest.fixture
def specs(tiny_specs: Path) -> Path:
    return tiny_specs


def put_odd(root: Path, lines: str) -> Path:
    readme = root / ODD / "README.md"
    readme.parent.mkdir(exist_ok=True)
    readme.write_text(odd_readme(lines), encoding="utf-8")
    return readme


def run(root: Path, *args: str):
    return CliRunner().invoke(
        cli, ["--specs-dir", str(root), "--data-dir", str(root.parent / "data"), *args]
    )


def test_the_crash_is_gone_where_it_started(specs: Path) -> None:
    put_odd(specs, "created: 0001-01-01 00:00:00+01:00")
    result = run(specs, "list")
    assert result.exit_code == 0, result.output
    assert "001-auth-design" in result.output and ODD in result.output


@pytest.mark.parametrize("case", NORMALIZED)
def test_a_normalized_value_is_a_warning_and_every_command_works(specs: Path, case: str) -> None:
    lines, line, warning = NORMALIZED[case]
    put_odd(specs, lines)
    listing = json.loads(run(specs, "list", "-o", "json").output)
    assert {s["spec"] for s in listing["specs"]} >= {"001-auth-design", ODD}
    assert json.loads(run(specs, "view", "001", "-o", "json").output)["status"] == "complete"
    result = run(specs, "view", "9", "-o", "json")
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert any(warning in w for w in view["warnings"]), view["warnings"]
    json.dumps(view, allow_nan=False)
    report = run(specs, "validate", "-o", "json")
    problems = json.loads(report.output)["problems"]
    mine = [p for p in problems if p["code"] == "value-normalized"]
    assert mine and all(p["severity"] == "warning" for p in mine)
    assert mine[0]["path"].endswith(f"{ODD}/README.md") and mine[0]["line"] == line
    assert warning in mine[0]["message"]
    # Edits go on: a status change, a tag, an archive, each reading back as meant.
    assert run(specs, "update", "9", "--status", "in-progress", "--add-tag", "odd").exit_code == 0
    assert run(specs, "archive", "9").exit_code == 0
    after = json.loads(run(specs, "view", "9", "-o", "json").output)
    assert after["status"] == "archived" and "odd" in after["tags"]
    assert [t["status"] for t in after["transitions"]][-2:] == ["in-progress", "archived"]


@pytest.mark.parametrize("case", REFUSED)
def test_an_unholdable_integer_is_a_load_problem_at_its_line(specs: Path, case: str) -> None:
    lines, line = REFUSED[case]
    put_odd(specs, lines)
    listing = json.loads(run(specs, "list", "-o", "json").output)
    assert len(listing["specs"]) == 3
    (problem,) = [p for p in listing["problems"] if p["spec"] == ODD]
    assert problem["path"].endswith(f"{ODD}/README.md") and problem["line"] == line
    assert "an integer of more than 640 digits" in problem["reason"]
    assert json.loads(run(specs, "view", "002", "-o", "json").output)["spec"] == "002-token-refresh"
    refused = run(specs, "view", "9")
    assert refused.exit_code == 1 and f"README.md:{line}" in refused.output
    assert "Traceback" not in refused.output
    report = run(specs, "validate", "-o", "json")
    assert report.exit_code == 1
    codes = {(p["code"], p["line"]) for p in json.loads(report.output)["problems"]}
    assert ("value-out-of-range", line) in codes
    update = run(specs, "update", "9", "--status", "complete")
    assert update.exit_code == 1 and "Traceback" not in update.output


def test_ingest_indexes_the_others_and_drops_the_refused_one(specs: Path) -> None:
    memory = SpecMemory(specs, specs.parent / "data", embedder=FakeEmbedder())
    put_odd(specs, "score: .nan\ncreated: 0001-01-01 00:00:00+01:00")
    summary = memory.ingest()
    assert summary.specs == 4 and not summary.skipped
    put_odd(specs, "size: " + "9" * 5000)
    summary = memory.ingest()
    assert summary.specs == 3 and summary.removed == 1
    assert [s["spec"] for s in summary.skipped] == [ODD]


# -- HTTP: /health and every route answer JSON, never 500 ------------------------------------


@pytest.fixture
def client(specs: Path) -> Iterator[TestClient]:
    memory = SpecMemory(specs, specs.parent / "data", embedder=FakeEmbedder())
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as test_client:
        yield test_client


# Every normalized kind at once (one transitions key only: a key may appear once).
ALL_ODD = "\n".join(
    lines for name, (lines, _, _) in NORMALIZED.items() if name != "edge text in transitions"
)


@pytest.mark.parametrize("kind", ["normalized", "refused"])
def test_every_route_answers_json(specs: Path, client: TestClient, kind: str) -> None:
    put_odd(specs, ALL_ODD if kind == "normalized" else REFUSED["5000-digit integer"][0])
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    listed = client.get("/specs").json()
    assert listed["total"] == (4 if kind == "normalized" else 3)
    for path in (
        "/specs/001",
        "/specs/2",
        "/specs/3?files=true",
        "/validate",
        "/specs/3/dependencies",
    ):
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
    response = client.get(f"/specs/{ODD}")
    assert response.headers["content-type"].startswith("application/json")
    if kind == "refused":
        assert response.status_code == 422 and "640 digits" in response.json()["error"]["message"]
        return
    assert response.status_code == 200
    body = response.json()
    assert body["frontmatter"]["extra"]["score"] == ".nan"
    assert body["created"] == "0001-01-01T00:00:00Z"
    for path in (f"/specs/{ODD}/history", f"/specs/{ODD}/tokens", f"/specs/{ODD}/dependencies"):
        assert client.get(path).status_code == 200, path
    context = client.post("/context", json={"specs": [ODD], "budget": 800})
    assert context.status_code == 200, context.text
    assert "status → draft" in context.json()["rendered"]
    patch = client.patch(
        f"/specs/{ODD}",
        json={"status": "complete"},
        headers={**AUTH, "If-Match": response.headers["etag"]},
    )
    assert patch.status_code == 200, patch.text
    assert client.get(f"/specs/{ODD}").json()["status"] == "complete"


# -- ingest --watch ------------------------------------------------------------------------------


def test_the_watcher_survives_a_failing_batch_and_picks_up_the_fix(specs: Path) -> None:
    memory = SpecMemory(specs, specs.parent / "data", embedder=FakeEmbedder())
    put_odd(specs, "size: " + "9" * 5000)
    assert [s["spec"] for s in memory.ingest().skipped] == [ODD]
    calls: list[list[str]] = []
    indexed = []
    stop = threading.Event()

    def on_change(names: list[str]) -> None:
        calls.append(names)
        if len(calls) == 1:
            raise RuntimeError("a bug met on one batch")  # not a SpecmemError
        indexed.append(memory.ingest(specs=names))

    watcher = threading.Thread(
        target=watch_specs, args=(specs, on_change), kwargs={"stop_event": stop, "debounce_ms": 100}
    )
    watcher.start()
    try:
        time.sleep(0.5)
        put_odd(specs, "score: .inf")
        _wait_for(lambda: calls)
        time.sleep(0.3)
        put_odd(specs, "score: 1.5")  # the fix
        _wait_for(lambda: indexed and indexed[-1].specs == 4)
        assert watcher.is_alive()
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert indexed[-1].skipped == [] and memory.get_spec(ODD).meta.extra == {"score": 1.5}


def _wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


# -- MCP -----------------------------------------------------------------------------------------


def test_mcp_tools_answer_for_every_spec(specs: Path) -> None:
    from mcp import Client

    from retriever.mcp_server import build_mcp_server

    memory = SpecMemory(specs, specs.parent / "data", embedder=FakeEmbedder())
    put_odd(specs, ALL_ODD)

    async def scenario() -> list[Any]:
        async with Client(build_mcp_server(memory)) as client:
            return [
                await client.call_tool("list_specs", {}),
                await client.call_tool("get_spec", {"spec": ODD}),
                await client.call_tool("get_spec", {"spec": "001"}),
                await client.call_tool("validate_specs", {}),
                await client.call_tool("get_context", {"specs": [ODD], "budget": 800}),
            ]

    results = anyio.run(scenario)
    for result in results:
        assert not result.is_error, result.content
        assert "NaN" not in result.content[0].text and "Infinity" not in result.content[0].text
        json.dumps(result.structured_content, allow_nan=False)
    assert results[1].structured_content["frontmatter"]["extra"]["score"] == ".nan"
    assert "status → draft" in results[4].content[0].text
