"""The MCP server through real MCP client sessions: in-memory, stdio subprocess, streamable HTTP."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from retriever.mcp_server import READ_TOOLS, WRITE_TOOLS, build_mcp_server
from tests.live_server import serve_in_thread

TOKEN = "mcp-test-token"


@pytest.fixture
def memory(tiny_specs: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())


def structured(result: Any) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def error_text(result: Any) -> str:
    assert result.is_error
    return result.content[0].text


def skip_if_not_built(result: Any) -> None:
    """Tools over service methods other helpers fill in; they run once those land."""
    if result.is_error and "[not_implemented]" in result.content[0].text:
        pytest.skip("service method not implemented in this build yet")


def run(coroutine_fn, *args):
    return anyio.run(coroutine_fn, *args)


# -- in memory ----------------------------------------------------------------------------------


def test_tools_have_schemas_descriptions_and_annotations(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            return (await client.list_tools()).tools

    tools = {tool.name: tool for tool in run(scenario)}
    assert set(tools) == set(READ_TOOLS) | set(WRITE_TOOLS)
    for name, tool in tools.items():
        assert tool.description and len(tool.description) > 40, name
        assert tool.input_schema["type"] == "object"
        assert tool.annotations.read_only_hint is (name in READ_TOOLS), name
    assert tools["update_spec"].annotations.destructive_hint is True
    assert set(tools["update_spec"].input_schema["required"]) == {"spec", "expected_hash"}
    budget = tools["get_context"].input_schema["properties"]["budget"]
    assert budget["default"] == 8000 and budget["maximum"] == 20000


def test_read_only_server_offers_no_write_tools(memory):
    async def scenario():
        async with Client(build_mcp_server(memory, allow_writes=False)) as client:
            return {tool.name for tool in (await client.list_tools()).tools}

    assert run(scenario) == set(READ_TOOLS)


def test_get_and_list_specs(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            spec = await client.call_tool("get_spec", {"spec": "3", "include_files": True})
            page = await client.call_tool("list_specs", {"limit": 2})
            rest = await client.call_tool("list_specs", {"limit": 2, "offset": 2})
            tagged = await client.call_tool("list_specs", {"tags": ["auth"]})
            return spec, page, rest, tagged

    spec, page, rest, tagged = (structured(r) for r in run(scenario))
    assert spec["spec"] == "003-search-ui" and spec["hash"] == memory.get_spec("3").content_hash
    assert "Two panes" in spec["files"]["DESIGN.md"]
    assert [s["spec"] for s in page["specs"]] == ["001-auth-design", "002-token-refresh"]
    assert page["total"] == 3 and page["next_offset"] == 2
    assert [s["spec"] for s in rest["specs"]] == ["003-search-ui"] and rest["next_offset"] is None
    assert {s["spec"] for s in tagged["specs"]} == {"001-auth-design", "002-token-refresh"}


def test_service_errors_become_tool_errors_with_their_code(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            missing = await client.call_tool("get_spec", {"spec": "999"})
            unsafe = await client.call_tool("get_spec", {"spec": "../etc"})
            bad_event = await client.call_tool("log_event", {"spec": "1", "type": "two words"})
            too_big = await client.call_tool("get_context", {"query": "x", "budget": 50_000})
            return missing, unsafe, bad_event, too_big

    missing, unsafe, bad_event, too_big = run(scenario)
    assert "[spec_not_found]" in error_text(missing)
    assert "[unsafe_reference]" in error_text(unsafe)
    assert "[invalid_input]" in error_text(bad_event)
    assert too_big.is_error


def test_log_event_is_stored_and_in_history(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            return await client.call_tool(
                "log_event",
                {
                    "spec": "2",
                    "type": "session",
                    "summary": "Agent finished the refresh flow",
                    "agent": "claude",
                    "files_changed": ["auth.py"],
                },
            )

    event = structured(run(scenario))
    assert event["spec"] == "002-token-refresh" and event["id"] >= 1
    assert memory.history("2")[0]["summary"] == "Agent finished the refresh flow"


def test_resources_serve_readme_and_sub_spec_files(memory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            templates = (await client.list_resource_templates()).resource_templates
            readme = await client.read_resource("spec://001-auth-design")
            design = await client.read_resource("spec://3/DESIGN.md")
            return templates, readme, design

    templates, readme, design = run(scenario)
    assert {t.uri_template for t in templates} == {"spec://{spec_id}", "spec://{spec_id}/{+file}"}
    assert "# Authentication design" in readme.contents[0].text
    assert "Two panes" in design.contents[0].text


def test_missing_resources_are_errors(memory):
    async def scenario(uri):
        async with Client(build_mcp_server(memory)) as client:
            try:
                await client.read_resource(uri)
            except MCPError as err:
                return str(err)
        return None

    assert "999" in run(scenario, "spec://999")
    assert "DESIGN.md" in run(scenario, "spec://3/NOPE.md")


def test_a_file_in_a_sub_folder_is_a_resource_and_traversal_is_refused(memory, tiny_specs):
    evals = tiny_specs / "003-search-ui" / "research" / "evals.md"
    evals.parent.mkdir()
    evals.write_text("# Evals\n\nThe two-pane layout won.\n")

    async def read(uri):
        async with Client(build_mcp_server(memory)) as client:
            try:
                return (await client.read_resource(uri)).contents[0].text
            except MCPError as err:
                return f"error: {err}"

    assert "two-pane layout won" in run(read, "spec://3/research/evals.md")
    assert "two-pane layout won" in run(read, "spec://003-search-ui/research%2Fevals.md")
    missing = run(read, "spec://3/research/nope.md")
    assert missing.startswith("error:") and "research/evals.md" in missing  # lists the files
    for uri in (
        "spec://3/../001-auth-design/README.md",
        "spec://3/research/../../001-auth-design/README.md",
        "spec://3/research%2F..%2F..%2F001-auth-design%2FREADME.md",
        "spec://3//etc/passwd",
        "spec://3/research\\evals.md",
    ):
        answer = run(read, uri)
        assert answer.startswith("error:"), uri
        assert "How agents authenticate" not in answer and "root:" not in answer, uri


def test_write_and_index_tools(memory):
    """update_spec, create_spec, spec_dependencies, count_tokens, validate_specs, search, context."""

    async def scenario(name, arguments):
        async with Client(build_mcp_server(memory)) as client:
            return await client.call_tool(name, arguments)

    deps = run(scenario, "spec_dependencies", {"spec": "3"})
    skip_if_not_built(deps)
    assert "002-token-refresh" in json.dumps(structured(deps))
    tokens = run(scenario, "count_tokens", {"target": "1"})
    skip_if_not_built(tokens)
    assert structured(tokens)
    report = run(scenario, "validate_specs", {})
    skip_if_not_built(report)
    assert isinstance(structured(report), dict)

    current = memory.get_spec("1").content_hash
    stale = run(
        scenario, "update_spec", {"spec": "1", "expected_hash": "0" * 16, "status": "planned"}
    )
    skip_if_not_built(stale)
    assert "[stale_write]" in error_text(stale) and current in error_text(stale)
    updated = structured(
        run(scenario, "update_spec", {"spec": "1", "expected_hash": current, "status": "planned"})
    )
    assert updated["status"] == "planned" and updated["hash"] != current
    created = run(scenario, "create_spec", {"title": "Rate limits", "tags": ["api"]})
    skip_if_not_built(created)
    assert structured(created)["spec"].startswith("004-")

    indexed = _try_ingest(memory)
    hits = structured(run(scenario, "search_specs", {"query": "bearer tokens", "limit": 3}))
    assert indexed and hits["results"]
    bundle = run(scenario, "get_context", {"query": "token refresh", "budget": 1000})
    skip_if_not_built(bundle)
    index = structured(bundle)
    assert 0 < index["tokens"] <= 1000 and index["items"]
    # The text comes once, as markdown; the items say what is in it and why, without the text.
    assert bundle.content[0].text == index["rendered"]
    assert all("text" not in item and "reason" in item for item in index["items"])


def _try_ingest(memory: SpecMemory) -> bool:
    try:
        memory.ingest()
    except NotImplementedError:
        pytest.skip("ingest not implemented in this build yet")
    return True


# -- stdio subprocess ---------------------------------------------------------------------------


def test_stdio_subprocess_lists_and_calls_tools(tiny_specs, tmp_path):
    specmem = Path(sys.executable).with_name("specmem")
    env = {**os.environ, "SPECMEM_MODEL": "fake", "PYTHONWARNINGS": "ignore"}
    params = StdioServerParameters(
        command=str(specmem),
        args=["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "mcp"],
        env=env,
    )

    async def scenario():
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            spec = await client.call_tool("get_spec", {"spec": "2"})
            listed = await client.call_tool("list_specs", {})
            event = await client.call_tool(
                "log_event", {"spec": "2", "type": "note", "summary": "over stdio"}
            )
            missing = await client.call_tool("get_spec", {"spec": "999"})
            readme = await client.read_resource("spec://2")
            return tools, spec, listed, event, missing, readme

    tools, spec, listed, event, missing, readme = run(scenario)
    assert tools == set(READ_TOOLS) | set(WRITE_TOOLS)
    assert structured(spec)["spec"] == "002-token-refresh"
    assert structured(listed)["total"] == 3
    assert structured(event)["summary"] == "over stdio"
    assert "[spec_not_found]" in error_text(missing)
    assert "# Token refresh" in readme.contents[0].text
    assert SpecMemory(tiny_specs, tmp_path / "data").events("2")[0]["summary"] == "over stdio"


# -- streamable HTTP at /mcp --------------------------------------------------------------------


def test_streamable_http_endpoint_needs_the_token_and_serves_tools(memory):
    app = create_app(memory, token=TOKEN)

    async def scenario(url):
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            tools = {t.name for t in (await client.list_tools()).tools}
            spec = await client.call_tool("get_spec", {"spec": "1"})
            return tools, spec

    with serve_in_thread(app) as url:
        tools, spec = run(scenario, url)
        import httpx

        refused = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert tools == set(READ_TOOLS) | set(WRITE_TOOLS)
    assert structured(spec)["spec"] == "001-auth-design"
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"


def test_streamable_http_without_a_token_is_read_only(memory, monkeypatch):
    monkeypatch.delenv("SPECMEM_API_TOKEN", raising=False)
    app = create_app(memory, token="")

    async def scenario(url):
        async with Client(f"{url}/mcp") as client:
            return {t.name for t in (await client.list_tools()).tools}

    with serve_in_thread(app) as url:
        assert run(scenario, url) == set(READ_TOOLS)


@pytest.mark.slow
def test_get_context_at_the_cap_fits_the_tool_result_limit(corpus_specs, tmp_path):
    """On the real corpus, a 20,000-token bundle must stay under ~25,000 tokens as a tool result."""
    from ingest.index.tokens import count_tokens

    memory = SpecMemory(corpus_specs, tmp_path / "data")

    async def scenario():
        async with Client(build_mcp_server(memory, allow_writes=False)) as client:
            return await client.call_tool(
                "get_context", {"query": "how is spec validation done", "budget": 20_000}
            )

    result = run(scenario)
    assert not result.is_error
    sent = sum(count_tokens(block.text) for block in result.content)
    assert 15_000 < sent < 25_000


def test_a_spec_number_sent_as_a_json_number_names_the_spec(memory):
    """Real clients send {"spec": 1}; it names the spec "1" names (issue 12)."""

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            by_number = await client.call_tool("get_spec", {"spec": 1})
            refused = await client.call_tool("get_spec", {"spec": True})
            return tools, by_number, refused

    tools, by_number, refused = run(scenario)
    assert structured(by_number)["spec"] == "001-auth-design"
    assert refused.is_error
    schema = tools["get_spec"].input_schema["properties"]["spec"]
    assert {"type": "integer"} in schema["anyOf"]


def test_search_and_context_answer_with_the_fields_the_other_doors_give(memory):
    memory.ingest()

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            found = await client.call_tool("search_specs", {"query": "tokens", "mode": "lexical"})
            bundle = await client.call_tool("get_context", {"query": "bearer tokens"})
            return found, bundle

    found, bundle = run(scenario)
    assert structured(found)["mode"] == "lexical"
    items = bundle.structured_content["items"]
    assert items and all("source" in item and "score" in item for item in items)


def test_get_spec_with_files_stays_within_one_bound(tiny_specs, tmp_path):
    from retriever.mcp_server import MAX_BODY_CHARS

    research = tiny_specs / "001-auth-design"
    for n in range(4):
        (research / f"notes-{n}.md").write_text(f"# Notes {n}\n\n" + "word " * 3000)
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            return await client.call_tool("get_spec", {"spec": "1", "include_files": True})

    data = structured(run(scenario))
    shown = len(data["body"]) + sum(len(text) for text in data["files"].values())
    assert shown <= MAX_BODY_CHARS
    assert data["files_left_out"] and set(data["files_left_out"]).isdisjoint(data["files"])
    assert set(data["files"]) | set(data["files_left_out"]) == {f"notes-{n}.md" for n in range(4)}
