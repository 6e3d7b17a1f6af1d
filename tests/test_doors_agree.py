"""Every door answers a page of specs in the same shape (issue 12)."""

from __future__ import annotations

import json

import anyio
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.embedding import FakeEmbedder
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
