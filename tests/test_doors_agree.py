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
