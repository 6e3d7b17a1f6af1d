"""Deep and wide spec graphs through every door (spec 074).

A 5,000-deep depends_on chain (each spec also the parent of the one before it), a ring of the same
length, and a wide fan-out (one hub with 1,500 dependents, all of them needed by one spec), through
the graph itself, the CLI (`deps` tree, mermaid and JSON, `validate`, `update`'s cycle refusal),
HTTP (`/specs/{id}/dependencies`, `/context`, `/validate`) and an in-memory MCP client
(`spec_dependencies`, `get_context`, `validate_specs`). Before spec 074 a chain about 140 deep
answered 500 over HTTP and MCP, and the CLI's `deps` died of RecursionError.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.specs.graph import MAX_CYCLES, Link, SpecGraph
from retriever import SpecMemory
from retriever.cli import cli
from retriever.dependencies import MAX_TREE_DEPTH, MAX_TREE_NODES
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server

DEPTH = 5_000
FAN = 1_500
TOKEN = "deep-graphs-token-0123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _write(root: Path, name: str, front: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "README.md").write_text(
        f"---\nstatus: planned\n{front}---\n# {name}\n\n## Overview\nPart of a big graph.\n",
        encoding="utf-8",
    )


def _chain_name(i: int) -> str:
    return f"{i:04d}-c{i}"


def write_chain(root: Path, length: int, *, ring: bool = False) -> None:
    """`0001` depends on `0002` ... on `length`; each spec's parent is the next one too. A ring
    closes it: the last depends on the first."""
    for i in range(1, length + 1):
        nxt = i + 1 if i < length else (1 if ring else None)
        front = f"depends_on: ['{_chain_name(nxt)}']\nparent: '{_chain_name(nxt)}'\n" if nxt else ""
        _write(root, _chain_name(i), front)


def write_fan(root: Path, width: int, top_needs: int | None = None) -> None:
    """`0001-hub` is needed by `1001`..`1000+width`, and `0002-top` needs all of those (or the
    first `top_needs`: a frontmatter block has a size limit)."""
    _write(root, "0001-hub", "")
    leaves = [f"{1000 + i:04d}-leaf{i}" for i in range(1, width + 1)]
    for leaf in leaves:
        _write(root, leaf, "depends_on: ['0001-hub']\n")
    listed = "".join(f"\n  - '{leaf}'" for leaf in leaves[:top_needs])
    _write(root, "0002-top", f"depends_on:{listed}\n")


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("chain") / "specs"
    write_chain(root, DEPTH)
    return root


@pytest.fixture(scope="module")
def fan(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fan") / "specs"
    write_fan(root, FAN)
    return root


@pytest.fixture(scope="module")
def chain_memory(chain: Path) -> SpecMemory:
    return SpecMemory(chain, chain.parent / "data")


@pytest.fixture(scope="module")
def fan_memory(fan: Path) -> SpecMemory:
    return SpecMemory(fan, fan.parent / "data")


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    """Every walk must be iterative: with the recursion limit this low, a recursive one over a
    5,000-deep chain fails at once."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)


def cli_run(root: Path, *args: str) -> Any:
    return CliRunner().invoke(
        cli, ["--specs-dir", str(root), "--data-dir", str(root.parent / "data"), *args]
    )


def tree_entries(tree: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        for node in stack.pop():
            yield node
            stack.append(node.get("children") or [])


def tree_depth(tree: list[dict[str, Any]]) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        nodes, level = stack.pop()
        for node in nodes:
            deepest = max(deepest, level)
            if node.get("children"):
                stack.append((node["children"], level + 1))
    return deepest


# -- the graph itself ----------------------------------------------------------------------------


def _graph(edges: list[tuple[str, str]]) -> SpecGraph:
    return SpecGraph([Link(a, "depends_on", b, b) for a, b in edges])


def _brute_force_cycles(edges: list[tuple[str, str]]) -> list[list[str]]:
    """Every elementary cycle, by trying every simple path from each smallest start."""
    out: dict[str, list[str]] = {}
    for a, b in edges:
        out.setdefault(a, []).append(b)
    found = set()
    for start in sorted(out):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in out.get(node, []):
                if nxt == start:
                    found.add(tuple(path))
                elif nxt > start and nxt not in path:
                    stack.append((nxt, [*path, nxt]))
    return [list(c) for c in sorted(found)]


@pytest.mark.parametrize("seed", range(60))
def test_cycles_match_a_brute_force_enumeration(seed):
    rng = random.Random(seed)
    names = [f"{i:03d}" for i in range(rng.randint(2, 8))]
    edges = [(a, b) for a in names for b in names if a != b and rng.random() < 0.35]
    graph = _graph(edges)
    expected = _brute_force_cycles(edges)
    assert graph.cycles(limit=10**6) == expected
    for name in names:
        assert graph.cycles_through(name, limit=10**6) == [c for c in expected if name in c]


def test_long_cycles_are_found_and_dense_clusters_are_bounded(low_recursion_limit):
    ring = [f"{i:05d}" for i in range(20_000)]
    graph = _graph([(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))])
    (cycle,) = graph.cycles()
    assert cycle == ring  # the old search gave up past 64 specs and found none
    assert graph.cycles_through(ring[12_345]) == [ring]
    # 30 specs that all depend on each other hold more cycles than atoms in the sun.
    dense = [f"{i:02d}" for i in range(30)]
    graph = _graph([(a, b) for a in dense for b in dense if a != b])
    assert len(graph.cycles()) == MAX_CYCLES
    assert len(graph.cycles_through("17")) == MAX_CYCLES
    # and a dense web with no cycle at all (every spec on all later ones) costs nothing.
    graph = _graph([(a, b) for a in dense for b in dense if a < b])
    assert graph.cycles() == []


def test_walks_reach_and_parent_chains_are_iterative(chain_memory, low_recursion_limit):
    graph = SpecGraph.from_catalog(chain_memory.catalog())
    far = graph.walk(_chain_name(1), "upstream")
    assert len(far) == DEPTH - 1 and far[-1] == (_chain_name(DEPTH), DEPTH - 1)
    reached = graph.reach(_chain_name(DEPTH), "downstream", depth=3)
    assert reached[-1] == (_chain_name(DEPTH - 3), 3, _chain_name(DEPTH - 2))
    ancestors = graph.ancestors(_chain_name(1))
    assert len(ancestors) == DEPTH - 1 and ancestors[0] == _chain_name(2)
    assert graph.would_cycle(_chain_name(DEPTH), _chain_name(1)) is not None
    assert graph.cycles() == []


# -- the CLI -------------------------------------------------------------------------------------


def test_cli_deps_on_a_5000_deep_chain(chain):
    tree = cli_run(chain, "deps", "1")
    assert tree.exit_code == 0, tree.output[-2000:]
    lines = tree.output.splitlines()
    assert lines[2] == f"  └── {_chain_name(2)}  [planned]"
    assert f"(deeper: run deps on {_chain_name(MAX_TREE_DEPTH + 1)})" in tree.output
    assert f"of {DEPTH - 1} specs in all" in tree.output
    assert len(lines) < MAX_TREE_DEPTH + 10

    data = json.loads(cli_run(chain, "deps", "2500", "--depth", "9999", "-o", "json").output)
    assert data["reachable"] == {"upstream": DEPTH - 2500, "downstream": 2499}
    assert tree_depth(data["upstream"]) == tree_depth(data["downstream"]) == MAX_TREE_DEPTH
    assert len(data["edges"]) == 2 * MAX_TREE_DEPTH
    assert data["parent"] == _chain_name(2501) and data["children"] == [_chain_name(2499)]

    mermaid = cli_run(chain, "deps", str(DEPTH), "--downstream", "--format", "mermaid")
    assert mermaid.exit_code == 0
    assert f"s_{_chain_name(DEPTH).replace('-', '_')} focus" in mermaid.output
    assert "%% downstream: cut at the tree bounds, 4999 specs in all" in mermaid.output


def test_cli_cycle_refusal_and_validate_on_5000_deep_chains(chain, tmp_path):
    refused = cli_run(chain, "update", str(DEPTH), "--add-dep", "1")
    assert refused.exit_code == 1 and "would close the cycle" in refused.output
    assert "Traceback" not in refused.output

    ring = tmp_path / "ring"
    write_chain(ring, DEPTH, ring=True)
    result = cli_run(ring, "validate", "-o", "json")
    assert result.exit_code == 1
    (problem,) = [
        p for p in json.loads(result.output)["problems"] if p["code"] == "dependency-cycle"
    ]
    assert problem["spec"] == _chain_name(1)
    assert problem["message"].count(" -> ") == DEPTH  # the whole ring, back to its start


# -- HTTP and MCP --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain_client(chain_memory) -> Iterator[TestClient]:
    app = create_app(chain_memory, token=TOKEN, mount_mcp=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_http_dependencies_context_and_validate_on_a_5000_deep_chain(chain_client):
    for ref, params in (
        ("1", {}),
        ("2500", {"depth": 20}),
        (str(DEPTH), {"direction": "downstream"}),
    ):
        response = chain_client.get(f"/specs/{ref}/dependencies", params=params)
        assert response.status_code == 200, response.text[:500]
        report = response.json()
        for side in ("upstream", "downstream"):
            if report.get(side):
                assert tree_depth(report[side]) == min(params.get("depth", 99), MAX_TREE_DEPTH)
    bundle = chain_client.post("/context", json={"specs": ["1"], "depth": 5, "budget": 3000})
    assert bundle.status_code == 200
    assert {item["spec"] for item in bundle.json()["items"]} >= {_chain_name(i) for i in (1, 2, 6)}
    assert chain_client.get("/validate").json()["ok"] is True


def test_mcp_tools_on_a_5000_deep_chain(chain_memory):
    async def scenario() -> list[Any]:
        async with Client(build_mcp_server(chain_memory)) as client:
            return [
                await client.call_tool("spec_dependencies", {"spec": "1"}),
                await client.call_tool(
                    "spec_dependencies", {"spec": str(DEPTH), "direction": "downstream"}
                ),
                await client.call_tool("get_context", {"specs": ["2500"], "depth": 5}),
                await client.call_tool("validate_specs", {}),
            ]

    results = anyio.run(scenario)
    assert not any(r.is_error for r in results), [r.content[0].text[:300] for r in results]
    upstream = results[0].structured_content
    assert upstream["reachable"]["upstream"] == DEPTH - 1
    assert tree_depth(upstream["upstream"]) == MAX_TREE_DEPTH
    assert results[3].structured_content["checked"] == DEPTH


def test_a_wide_fan_out_is_bounded_and_says_what_it_left_out(fan_memory, fan):
    with TestClient(create_app(fan_memory, token=TOKEN, mount_mcp=False)) as client:
        top = client.get("/specs/0002-top/dependencies").json()
        hub = client.get("/specs/0001-hub/dependencies", params={"direction": "downstream"}).json()
        bundle = client.post("/context", json={"specs": ["0001-hub"], "budget": 2000})
    assert top["reachable"]["upstream"] == FAN + 1
    for report, side in ((top, "upstream"), (hub, "downstream")):
        entries = list(tree_entries(report[side]))
        assert len(entries) == MAX_TREE_NODES
        assert len(report[side]) + report[f"{side}_omitted"] == FAN
    assert bundle.status_code == 200 and bundle.json()["tokens"] <= 2000

    text = cli_run(fan, "deps", "0002-top", "--upstream")
    assert text.exit_code == 0
    assert f"... {FAN - len(top['upstream'])} more not shown" in text.output

    async def scenario() -> Any:
        async with Client(build_mcp_server(fan_memory)) as client:
            return await client.call_tool("spec_dependencies", {"spec": "0002-top"})

    result = anyio.run(scenario)
    assert not result.is_error
    capped = result.structured_content
    # The MCP result keeps at most 100 per list; the count of what is missing stays whole.
    assert len(capped["upstream"]) + capped["upstream_omitted"] == FAN
