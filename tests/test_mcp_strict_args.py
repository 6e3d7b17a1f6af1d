"""MCP tools refuse arguments they do not declare, through real MCP client sessions.

A misspelt optional argument (`limt=5`) used to be dropped silently and the call ran with the
default; the HTTP API answers 422 for the same mistake. Spec 083 records the decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from retriever.mcp_server import READ_TOOLS, WRITE_TOOLS, build_mcp_server
from tests.live_server import serve_in_thread

TOKEN = "strict-args-token"
SEARCH_ARGS = "accepted: query, limit, status, tags, priority, mode, project)"


@pytest.fixture
def memory(tiny_specs: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())


def error_text(result: Any) -> str:
    assert result.is_error, result.content
    return result.content[0].text


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    return result.structured_content


def test_every_tool_advertises_that_it_takes_no_other_arguments(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in anyio.run(scenario)}
    assert set(tools) == set(READ_TOOLS) | set(WRITE_TOOLS)
    for name, tool in tools.items():
        assert tool.input_schema["additionalProperties"] is False, name
        assert tool.input_schema["properties"], name
    # The rest of the schema is the SDK's, unchanged.
    assert set(tools["update_spec"].input_schema["required"]) == {"spec", "expected_hash"}


def test_a_read_tool_names_the_unknown_and_the_accepted_arguments_then_works(memory):
    memory.ingest()

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            typo = await client.call_tool("search_specs", {"query": "bearer tokens", "limt": 1})
            several = await client.call_tool(
                "search_specs", {"query": "tokens", "limt": 1, "tgs": ["auth"], "colour": "red"}
            )
            page = await client.call_tool("list_specs", {"limit": 1, "ofset": 1})
            after = await client.call_tool("search_specs", {"query": "bearer tokens", "limit": 1})
            return typo, several, page, after

    typo, several, page, after = anyio.run(scenario)
    assert error_text(typo) == (
        "[invalid_input] unknown argument 'limt' for tool 'search_specs'; did you mean 'limit'?"
        f" ({SEARCH_ARGS}"
    )
    text = error_text(several)
    assert "unknown arguments 'limt', 'tgs', 'colour' for tool 'search_specs'" in text
    assert "did you mean 'limit' for 'limt', 'tags' for 'tgs'?" in text
    assert text.endswith(SEARCH_ARGS)
    assert "'ofset'" in error_text(page) and "did you mean 'offset'?" in error_text(page)
    # The same session goes on working, and the limit is honoured again.
    assert len(ok(after)["results"]) == 1


def test_a_write_tool_refuses_before_writing_anything(memory, tiny_specs: Path):
    before = memory.get_spec("1")

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            update = await client.call_tool(
                "update_spec", {"spec": "1", "expected_hash": before.content_hash, "stauts": "x"}
            )
            create = await client.call_tool("create_spec", {"title": "Rate limits", "tag": ["a"]})
            event = await client.call_tool(
                "log_event", {"spec": "1", "type": "note", "sumary": "x"}
            )
            good = await client.call_tool(
                "update_spec",
                {"spec": "1", "expected_hash": before.content_hash, "status": "planned"},
            )
            return update, create, event, good

    update, create, event, good = anyio.run(scenario)
    assert "unknown argument 'stauts' for tool 'update_spec'; did you mean 'status'?" in (
        error_text(update)
    )
    assert "accepted: spec, expected_hash, status, priority, add_tags" in error_text(update)
    assert "unknown argument 'tag' for tool 'create_spec'" in error_text(create)
    assert "did you mean 'summary'?" in error_text(event)
    # Nothing was written by the refused calls: the good update still has the hash it read.
    assert not any(path.name.startswith("004-") for path in tiny_specs.iterdir())
    assert not [event for event in memory.history("1") if event.get("summary") == "x"]
    assert ok(good)["status"] == "planned"


def test_arguments_the_tool_declares_are_still_validated_as_before(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            return await client.call_tool("list_specs", {"limit": 0})

    text = error_text(anyio.run(scenario))
    assert "limit" in text and "unknown argument" not in text


def test_a_read_only_server_still_calls_a_write_tool_unknown(memory):
    async def scenario():
        async with Client(build_mcp_server(memory, allow_writes=False)) as client:
            return await client.call_tool("update_spec", {"spec": "1", "bogus": 1})

    assert "Unknown tool: update_spec" in error_text(anyio.run(scenario))


def test_over_streamable_http_the_same_error_reaches_the_client(memory):
    app = create_app(memory, token=TOKEN)

    async def scenario(url):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            tools = (await client.list_tools()).tools
            typo = await client.call_tool("get_spec", {"spec": "1", "include_file": True})
            good = await client.call_tool("get_spec", {"spec": "1", "include_files": True})
            return tools, typo, good

    with serve_in_thread(app) as url:
        tools, typo, good = anyio.run(scenario, url)
    assert all(tool.input_schema["additionalProperties"] is False for tool in tools)
    assert "unknown argument 'include_file' for tool 'get_spec'" in error_text(typo)
    assert "accepted: spec, include_files, project)" in error_text(typo)
    assert ok(good)["spec"] == "001-auth-design"


def test_lean_spec_mcp_argument_names_are_accepted_where_both_have_the_tool(tiny_specs, tmp_path):
    """A client written for LeanSpec's MCP server (`specPath`, deps `mode`, create's `name`,
    `content`, `dependsOn`, `description`) keeps working against specmem."""
    import anyio
    from mcp import Client

    from ingest.index.embedding import FakeEmbedder
    from retriever import SpecMemory
    from retriever.mcp_server import build_mcp_server

    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())

    async def scenario():
        async with Client(build_mcp_server(memory)) as session:
            view = await session.call_tool("get_spec", {"specPath": "002"})
            deps = await session.call_tool(
                "spec_dependencies", {"specPath": "2", "mode": "upstream"}
            )
            made = await session.call_tool(
                "create_spec",
                {"name": "audit-log", "description": "Who did what.", "dependsOn": ["001"]},
            )
            both = await session.call_tool("get_spec", {"specPath": "002", "spec": "003"})
            return view, deps, made, both

    view, deps, made, both = anyio.run(scenario)
    assert not view.is_error and view.structured_content["spec"] == "002-token-refresh"
    assert not deps.is_error
    assert not made.is_error, made.content[0].text
    created = memory.get_spec("004")
    assert created.title == "audit-log" and created.meta.depends_on == ["001-auth-design"]
    assert "Who did what." in created.body
    assert both.is_error and "specPath" in both.content[0].text
