"""A sub-spec file edited in place, to the same size, as an editor saves it (issue 11, class 8):
the next read sees the new text through every door that shows file contents: HTTP
`GET /specs/X?files=true`, the MCP resource `spec://ID/FILE`, MCP `get_spec include_files`, and
`count_tokens` (HTTP, MCP, Python API). Each door first reads the old text, so the catalog is
warm when the file changes under it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from mcp import Client

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server

OLD = "# Search UI design\n\n## Layout\nTwo panes.\n"
NEW = "# Search UI design\n\n## Layout\nFour tabs.\n"  # same length, other words and tokens
assert len(OLD) == len(NEW)


@pytest.fixture
def memory(tiny_specs: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())


@pytest.fixture
def client(memory: SpecMemory) -> Iterator[TestClient]:
    with TestClient(create_app(memory, mount_mcp=False)) as test_client:
        yield test_client


def edit_in_place(path: Path, text: str, *, keep_mtime: bool = False) -> None:
    """Rewrite the same inode (open, truncate, write), as vim's `:w` with `backupcopy=yes`."""
    before = path.stat()
    with open(path, "r+", encoding="utf-8") as handle:
        handle.seek(0)
        handle.write(text)
        handle.truncate()
    after = path.stat()
    assert after.st_ino == before.st_ino
    assert keep_mtime or after.st_size == before.st_size
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def design_of(tiny_specs: Path) -> Path:
    path = tiny_specs / "003-search-ui" / "DESIGN.md"
    assert path.read_text(encoding="utf-8") == OLD
    return path


def mcp(memory: SpecMemory, call: Callable[[Client], Any]) -> Any:
    async def scenario() -> Any:
        async with Client(build_mcp_server(memory)) as client:
            return await call(client)

    return anyio.run(scenario)


def files_text(spec: dict[str, Any]) -> str:
    return json.dumps(spec["files"])


def test_http_spec_with_files(client: TestClient, tiny_specs: Path) -> None:
    design = design_of(tiny_specs)
    assert "Two panes" in files_text(client.get("/specs/3?files=true").json())
    edit_in_place(design, NEW)
    fresh = files_text(client.get("/specs/3?files=true").json())
    assert "Four tabs" in fresh and "Two panes" not in fresh


def test_mcp_resource_of_a_sub_spec_file(memory: SpecMemory, tiny_specs: Path) -> None:
    design = design_of(tiny_specs)

    async def read(client: Client) -> str:
        return (await client.read_resource("spec://3/DESIGN.md")).contents[0].text

    assert "Two panes" in mcp(memory, read)
    edit_in_place(design, NEW)
    assert "Four tabs" in mcp(memory, read)


def test_mcp_get_spec_include_files(memory: SpecMemory, tiny_specs: Path) -> None:
    design = design_of(tiny_specs)

    async def get(client: Client) -> str:
        result = await client.call_tool("get_spec", {"spec": "3", "include_files": True})
        assert not result.is_error, result.content
        return json.dumps(result.structured_content or result.content[0].text)

    assert "Two panes" in mcp(memory, get)
    edit_in_place(design, NEW)
    fresh = mcp(memory, get)
    assert "Four tabs" in fresh and "Two panes" not in fresh


def _design_tokens(report: dict[str, Any]) -> dict[str, Any]:
    return next(f for f in report["files"] if f["file"].endswith("DESIGN.md"))


def test_count_tokens_through_http_mcp_and_python(
    memory: SpecMemory, client: TestClient, tiny_specs: Path
) -> None:
    design = design_of(tiny_specs)

    async def count(client: Client) -> dict[str, Any]:
        result = await client.call_tool("count_tokens", {"target": "3"})
        assert not result.is_error, result.content
        return result.structured_content or json.loads(result.content[0].text)

    def readings() -> list[dict[str, Any]]:
        return [
            _design_tokens(memory.count_tokens("3")),
            _design_tokens(client.get("/specs/3/tokens").json()),
            _design_tokens(mcp(memory, count)),
        ]

    old = readings()
    edit_in_place(design, NEW)
    new = readings()
    # "Two panes." and "Four tabs." differ in tokens; the section list names the new text.
    for before, after in zip(old, new, strict=True):
        assert json.dumps(before) != json.dumps(after), "count_tokens kept the old text"
    assert (
        memory.count_tokens("003-search-ui/DESIGN.md")["files"][0]["tokens"] == (new[0]["tokens"])
    )


def test_an_edit_that_keeps_the_mtime_is_still_seen_once_the_size_changes(
    client: TestClient, tiny_specs: Path
) -> None:
    """The change detector is stat-based (mtime, size): an edit that restores the mtime and keeps
    the size is invisible by design, like to `make`; any other edit is seen."""
    design = design_of(tiny_specs)
    client.get("/specs/3?files=true")
    edit_in_place(design, NEW + "More.\n", keep_mtime=True)
    assert "More." in files_text(client.get("/specs/3?files=true").json())
