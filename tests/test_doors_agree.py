"""Every door builds the same requests and answers in the same shapes (issue 12)."""

from __future__ import annotations

import json

import anyio
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server

PAGE = {"specs", "total", "limit", "offset", "next_offset"}


def test_list_pages_have_one_shape_over_http_mcp_and_the_cli(tiny_specs, tmp_path):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        http = client.get("/specs", params={"limit": 2, "offset": 0}).json()
        last = client.get("/specs", params={"limit": 2, "offset": 2}).json()

    async def scenario():
        async with Client(build_mcp_server(memory)) as session:
            result = await session.call_tool("list_specs", {"limit": 2})
            return result.structured_content

    mcp = anyio.run(scenario)
    cli_answer = CliRunner().invoke(
        cli,
        [
            "--specs-dir",
            str(tiny_specs),
            "--data-dir",
            str(tmp_path / "data"),
            "list",
            "-o",
            "json",
        ],
    )
    listed = json.loads(cli_answer.output)
    for page in (http, mcp, listed):
        assert set(page) >= PAGE, page
        assert page["total"] == 3
    assert (http["limit"], http["next_offset"], last["next_offset"]) == (2, 2, None)
    assert (mcp["limit"], mcp["next_offset"]) == (2, 2)
    assert (listed["limit"], listed["next_offset"], len(listed["specs"])) == (None, None, 3)
    assert [s["spec"] for s in http["specs"]] == [s["spec"] for s in mcp["specs"]]


def test_a_context_budget_is_refused_with_the_same_sentence_at_every_door(tiny_specs, tmp_path):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    sentence = "budget must be at least 100 tokens"
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        http = client.post("/context", json={"query": "tokens", "budget": 50})
        too_big = client.post("/context", json={"query": "tokens", "budget": 150_000})

    async def scenario():
        async with Client(build_mcp_server(memory)) as session:
            return await session.call_tool("get_context", {"query": "tokens", "budget": 50})

    mcp = anyio.run(scenario)
    args = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "context"]
    small = CliRunner().invoke(cli, [*args, "tokens", "--budget", "50"])
    big = CliRunner().invoke(cli, [*args, "tokens", "--budget", "150000"])
    assert http.status_code == 422 and sentence in http.text
    assert too_big.status_code == 422 and "at most 100,000 tokens" in too_big.text
    assert mcp.is_error and "100" in mcp.content[0].text
    assert small.exit_code == 1 and sentence in small.stderr
    assert big.exit_code == 1 and "at most 100,000 tokens" in big.stderr


def test_an_unknown_query_parameter_is_refused_naming_it_as_an_unknown_field_is(
    tiny_specs, tmp_path
):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.ingest()
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        typo = client.get("/search", params={"q": "tokens", "limt": 5})
        fine = client.get("/search", params={"q": "tokens", "limit": 5, "tag": "auth"})
        listed = client.get("/specs", params={"status": "complete", "archived": "true"})
        health = client.get("/health", params={"verbose": 1})
    assert typo.status_code == 422
    assert typo.json()["error"]["code"] == "invalid_input"
    assert "limt" in typo.json()["error"]["message"] and "limit" in typo.json()["error"]["message"]
    assert fine.status_code == 200 and listed.status_code == 200
    assert health.status_code == 422


class Recording(SpecMemory):
    """Keeps the request object each write arrived with, then writes as usual."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.requests: list[object] = []

    def update_spec(self, ref, change, **kwargs):
        self.requests.append(change)
        return super().update_spec(ref, change, **kwargs)

    def create_spec(self, new):
        self.requests.append(new)
        return super().create_spec(new)


def test_every_door_hands_the_service_the_same_write_request(tiny_specs, tmp_path):
    memory = Recording(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    token = "t" * 20
    auth = {"Authorization": f"Bearer {token}"}

    def current() -> str:
        return memory.get_spec("002").content_hash

    with TestClient(create_app(memory, token=token, mount_mcp=False)) as client:
        client.patch(
            "/specs/002",
            json={"status": "in-progress", "tags": {"add": ["x"]}},
            headers={**auth, "If-Match": f'"{current()}"'},
        ).raise_for_status()
        client.post("/specs", json={"title": "From HTTP", "tags": ["a"]}, headers=auth)

    async def scenario():
        async with Client(build_mcp_server(memory)) as session:
            await session.call_tool(
                "update_spec",
                {
                    "spec": "002",
                    "expected_hash": current(),
                    "status": "complete",
                    "add_tags": ["y"],
                },
            )
            await session.call_tool("create_spec", {"title": "From MCP", "tags": ["a"]})

    anyio.run(scenario)
    changes = [type(r).__name__ for r in memory.requests]
    assert changes == ["SpecChange", "NewSpec", "SpecChange", "NewSpec"]
    http_change, _, mcp_change, _ = memory.requests
    assert http_change == SpecChange(status="in-progress", add_tags=("x",))
    assert mcp_change == SpecChange(status="complete", add_tags=("y",))
    assert memory.requests[1] == NewSpec(title="From HTTP", tags=("a",))
    assert memory.requests[3] == NewSpec(title="From MCP", tags=("a",))


def test_a_change_past_its_limit_is_refused_at_every_door_and_nothing_is_written(
    tiny_specs, tmp_path
):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    token = "t" * 20
    before = memory.get_spec("002").content_hash
    tags = [f"t{i}" for i in range(101)]
    with TestClient(create_app(memory, token=token, mount_mcp=False)) as client:
        http = client.patch(
            "/specs/002",
            json={"tags": {"add": tags}},
            headers={"Authorization": f"Bearer {token}", "If-Match": f'"{before}"'},
        )

    async def scenario():
        async with Client(build_mcp_server(memory)) as session:
            return await session.call_tool(
                "update_spec", {"spec": "002", "expected_hash": before, "add_tags": tags}
            )

    mcp = anyio.run(scenario)
    args = ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "update", "002"]
    cli_answer = CliRunner().invoke(cli, [*args, *[f"--add-tag={t}" for t in tags]])
    assert http.status_code == 422
    assert mcp.is_error and "at most 100" in mcp.content[0].text
    assert cli_answer.exit_code == 1 and "at most 100" in cli_answer.stderr
    assert memory.get_spec("002").content_hash == before
