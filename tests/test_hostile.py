"""Hostile input through every front door: the CLI (CliRunner), HTTP (ASGI) and MCP (an in-memory
client session), all over one corpus seeded with hostile files.

Each hostile file or request gets a clear error or is skipped with a report naming it; after each
one a normal request still succeeds; and nothing outside the specs and data dirs is read (the
secret behind an escaping symlink never shows up) or written (the outside dir is byte-identical
and the scratch root has no new entries).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server
from tests.conftest import write_spec
from tests.test_http_query import SPECS

TOKEN = "hostile-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "TOP-SECRET-OUTSIDE-THE-SPECS-DIR"
ONE_MB_QUERY = ("token refresh " * 80_000)[: 1024 * 1024]
ALIAS_BOMB = """---
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
status: planned
---
# Alias bomb
"""
# Each hostile spec dir and the words its problem report must contain (None: loads fine).
HOSTILE = {
    "010-broken-yaml": "010-broken-yaml",
    "011-alias-bomb": "alias",
    "012-huge": "limit",
    "013-binary": "013-binary",
    "014-latin1": "014-latin1",
    "015-bom": None,
    "016-symlink-out": "016-symlink-out",
}


def _tree_digest(root: Path) -> dict[str, str]:
    """Every file under root (not following links) with its sha256: the outside must not change."""
    digest = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            digest[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def _seed(root: Path) -> None:
    specs = root / "specs"
    for name, text in SPECS.items():
        write_spec(specs, name, text)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text(f"---\nstatus: planned\n---\n# {SECRET}\n\n{SECRET}\n")
    write_spec(specs, "010-broken-yaml", "---\nstatus: [planned\ntags: {a: \n---\n# Broken\n")
    write_spec(specs, "011-alias-bomb", ALIAS_BOMB)
    huge = specs / "012-huge"
    huge.mkdir()
    with (huge / "README.md").open("wb") as handle:
        handle.write(b"---\nstatus: planned\n---\n# Huge\n\n")
        line = b"All work and no play makes a dull spec. " * 25 + b"\n"
        for _ in range(50 * 1024 * 1024 // len(line) + 1):
            handle.write(line)
    binary = specs / "013-binary"
    binary.mkdir()
    (binary / "README.md").write_bytes(bytes(range(256)) * 64 + b"\x00\xff\xfe" * 100)
    latin = specs / "014-latin1"
    latin.mkdir()
    (latin / "README.md").write_bytes(
        "---\nstatus: planned\n---\n# Caf\xe9 d\xe9cision\n".encode("latin-1")
    )
    bom = specs / "015-bom"
    bom.mkdir()
    (bom / "README.md").write_bytes(
        b"\xef\xbb\xbf---\nstatus: planned\ntags: [bom]\n---\n# Byte order mark\n\nStill a spec.\n"
    )
    escaping = specs / "016-symlink-out"
    escaping.mkdir()
    (escaping / "README.md").symlink_to(outside / "secret.md")
    # A whole spec dir that is a link out, and a sub-spec file that links out.
    (specs / "017-dir-link-out").symlink_to(outside, target_is_directory=True)
    (specs / "001-auth-design" / "LEAK.md").symlink_to(outside / "secret.md")
    # A sub-folder that links out, and a file deeper down that does.
    (specs / "003-search-ui" / "research").symlink_to(outside, target_is_directory=True)
    (specs / "003-search-ui" / "notes").mkdir()
    (specs / "003-search-ui" / "notes" / "LEAK.md").symlink_to(outside / "secret.md")
    # Hostile sub-spec files beside a good README: the spec loads, the files are its problems.
    (specs / "002-token-refresh" / "BLOB.md").write_bytes(bytes(range(256)) * 10)
    (specs / "002-token-refresh" / "LATIN.md").write_bytes("caf\xe9".encode("latin-1"))


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("hostile")
    _seed(root)
    outside_before = _tree_digest(root / "outside")
    entries_before = sorted(p.name for p in root.iterdir())
    SpecMemory(root / "specs", root / "data", embedder=FakeEmbedder()).ingest()
    yield root
    # Whatever ran against it, nothing outside specs/ and data/ was written or created.
    assert _tree_digest(root / "outside") == outside_before
    assert sorted(p.name for p in root.iterdir()) == sorted({*entries_before, "data"})


@pytest.fixture(scope="module")
def memory(hostile_root: Path) -> SpecMemory:
    return SpecMemory(hostile_root / "specs", hostile_root / "data", embedder=FakeEmbedder())


def _no_secret(payload: Any) -> None:
    text = payload if isinstance(payload, str) else json.dumps(payload, default=str)
    assert SECRET not in text


# -- the service sees the hostile files as problems, never as content ----------------------------


def test_every_hostile_file_is_a_named_problem_and_the_good_specs_load(memory: SpecMemory):
    catalog = memory.catalog(refresh=True)
    names = {spec.dir_name for spec in catalog}
    assert {"001-auth-design", "002-token-refresh", "003-search-ui", "015-bom"} <= names
    problems = " ".join(str(problem) for problem in catalog.problems)
    for name, words in HOSTILE.items():
        if words is None:
            continue
        assert name not in names, f"{name} loaded as a spec"
        assert name in problems, f"{name} has no problem report: {problems}"
    assert "alias" in problems.lower()
    assert "limit" in problems
    _no_secret(problems)
    _no_secret([spec.to_dict(with_files=True) for spec in catalog])


def test_hostile_sub_spec_files_are_problems_of_a_spec_that_still_loads(memory: SpecMemory):
    catalog = memory.catalog(refresh=True)
    leak, blob = catalog.get("001-auth-design"), catalog.get("002-token-refresh")
    assert not leak.sub_files and not blob.sub_files
    assert "LEAK.md: refused: the file resolves outside" in str(leak.load_problems[0])
    reasons = " ".join(str(problem) for problem in blob.load_problems)
    assert "BLOB.md: binary file" in reasons and "LATIN.md:1: not valid UTF-8" in reasons
    nested = catalog.get("003-search-ui")
    assert [f.name for f in nested.sub_files] == []
    reasons = " ".join(str(problem) for problem in nested.load_problems)
    assert "research: refused: the directory resolves outside" in reasons
    assert "notes/LEAK.md: refused: the file resolves outside" in reasons


def test_the_index_holds_nothing_from_outside(memory: SpecMemory):
    hits = memory.search(SECRET, mode="lexical", limit=50)
    _no_secret([hit.__dict__ if hasattr(hit, "__dict__") else hit for hit in hits])
    bundle = memory.context(SECRET, budget=4000)
    _no_secret([str(item) for item in bundle.items])


# -- CLI ----------------------------------------------------------------------------------------


def _cli(root: Path, *args: str):
    runner = CliRunner()
    env = {"SPECMEM_SPECS_DIR": str(root / "specs"), "SPECMEM_DATA_DIR": str(root / "data")}
    return runner.invoke(cli, list(args), env=env)


CLI_HOSTILE = [
    ["view", "../outside/secret"],
    ["view", str(Path("/etc/passwd"))],
    ["view", "016-symlink-out"],
    ["view", "017-dir-link-out"],
    ["view", "012-huge"],
    ["tokens", "../outside/secret.md"],
    ["tokens", "/etc/passwd"],
    ["context", "token", "--budget", "0"],
    ["context", "token", "--budget", "-5"],
    ["update", "001", "--add-dep", "../../outside"],
    ["update", "001", "--status", "definitely-not-a-status"],
    ["update", "/etc/passwd", "--status", "planned"],
    ["search", "x", "--no-such-flag"],
]


@pytest.mark.parametrize("args", CLI_HOSTILE, ids=lambda args: " ".join(args)[:40])
def test_cli_refuses_hostile_input_clearly_and_keeps_working(hostile_root: Path, args):
    result = _cli(hostile_root, *args)
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = (result.output + (result.stderr if result.stderr_bytes else "")).strip()
    assert "error" in message.lower(), message
    _no_secret(message)
    assert _cli(hostile_root, "view", "001").exit_code == 0


def test_cli_ingest_skips_each_hostile_spec_with_its_reason(hostile_root: Path, monkeypatch):
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    result = _cli(hostile_root, "ingest")
    assert result.exit_code == 0, result.output
    report = result.output + result.stderr
    for name, words in HOSTILE.items():
        if words is not None:
            assert f"skipped {name}" in report, report
    assert "outside the specs dir" in report and "over the" in report
    _no_secret(report)


def test_cli_huge_query_and_huge_budget_answer(hostile_root: Path):
    search = _cli(hostile_root, "search", ONE_MB_QUERY[:200_000], "--limit", "3")
    assert search.exit_code in (0, 1, 2), search.output
    assert "Traceback" not in search.output
    big = _cli(hostile_root, "context", "token refresh", "--budget", str(10**9))
    assert big.exit_code == 0 or "budget" in big.output.lower()
    _no_secret(big.output)
    assert _cli(hostile_root, "list").exit_code == 0


# -- HTTP ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(memory: SpecMemory) -> Iterator[TestClient]:
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as test_client:
        yield test_client


HTTP_HOSTILE: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/specs/..%2Foutside%2Fsecret", {}),
    ("GET", "/specs/%2Fetc%2Fpasswd", {}),
    ("GET", "/specs/016-symlink-out", {}),
    ("GET", "/specs/017-dir-link-out", {}),
    ("GET", "/specs/012-huge", {}),
    ("GET", "/specs/013-binary/tokens", {}),
    ("GET", "/search", {"params": {"q": ONE_MB_QUERY[:4_000]}}),
    ("POST", "/context", {"json": {"query": ONE_MB_QUERY}}),
    ("POST", "/context", {"json": {"query": "token", "budget": 0}}),
    ("POST", "/context", {"json": {"query": "token", "budget": -1}}),
    ("POST", "/context", {"json": {"query": "token", "budget": 10**9}}),
    ("POST", "/context", {"json": {"query": "token", "surprise": True}}),
    (
        "POST",
        "/context",
        {"content": b"\xff\xfe not json", "headers": {"content-type": "application/json"}},
    ),
    (
        "POST",
        "/context",
        {"content": b"x" * (3 * 1024 * 1024), "headers": {"content-type": "application/json"}},
    ),
    ("POST", "/specs", {"json": {"title": "x", "unknown_field": 1}}),
    ("POST", "/events", {"json": {"spec": "../outside/secret", "type": "note"}}),
    ("GET", "/specs/001/dependencies", {"params": {"depth": -1}}),
    ("GET", "/validate", {"params": {"spec": "/etc/passwd"}}),
]


@pytest.mark.parametrize(
    "method,path,kwargs", HTTP_HOSTILE, ids=[f"{m} {p}"[:40] for m, p, _ in HTTP_HOSTILE]
)
def test_http_answers_hostile_requests_with_a_coded_4xx(client: TestClient, method, path, kwargs):
    headers = {**AUTH, **kwargs.pop("headers", {})} if "headers" in kwargs else AUTH
    response = client.request(method, path, headers=headers, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error"]["code"] and body["error"]["message"]
    _no_secret(response.text)
    assert client.get("/specs/001", headers=AUTH).status_code == 200


def test_http_title_traversal_creates_nothing_outside(client: TestClient, hostile_root: Path):
    # A title is only a slug source: if it is accepted at all, the spec lands inside specs/.
    response = client.post("/specs", json={"title": "../../../evil"}, headers=AUTH)
    if response.status_code == 201:
        path = Path(response.json().get("path", ""))
        assert "evil" in path.name or "evil" in str(path)
        assert not (hostile_root / "evil").exists() and not (hostile_root.parent / "evil").exists()
    else:
        assert 400 <= response.status_code < 500


# -- MCP ----------------------------------------------------------------------------------------


MCP_HOSTILE: list[tuple[str, dict[str, Any]]] = [
    ("get_spec", {"spec": "../outside/secret"}),
    ("get_spec", {"spec": "/etc/passwd"}),
    ("get_spec", {"spec": "016-symlink-out"}),
    ("get_spec", {"spec": "017-dir-link-out"}),
    ("get_spec", {"spec": "013-binary"}),
    ("count_tokens", {"target": "../outside/secret.md"}),
    ("count_tokens", {"target": "/etc/passwd"}),
    ("get_context", {"query": "token", "budget": 0}),
    ("get_context", {"query": "token", "budget": -1}),
    ("get_context", {"query": "token", "budget": 10**9}),
    ("update_spec", {"spec": "001", "add_dependencies": ["../../outside"], "expected_hash": ""}),
    ("log_event", {"spec": "/etc/passwd", "type": "note"}),
    ("no_such_tool", {}),
]


def test_mcp_answers_every_hostile_call_with_a_tool_error_and_keeps_serving(memory: SpecMemory):
    async def scenario() -> list[tuple[str, Any, Any]]:
        outcomes = []
        async with Client(build_mcp_server(memory)) as client:
            current = memory.get_spec("001").readme.content_hash
            for tool, arguments in MCP_HOSTILE:
                if "expected_hash" in arguments:
                    arguments = {**arguments, "expected_hash": current}
                result: Any
                try:
                    result = await client.call_tool(tool, arguments)
                except Exception as err:  # a protocol-level refusal is a clear error too
                    result = err
                follow_up = await client.call_tool("get_spec", {"spec": "001"})
                outcomes.append((tool, result, follow_up))
            search = await client.call_tool("search_specs", {"query": ONE_MB_QUERY, "limit": 3})
            outcomes.append(("search_specs 1MB", search, search))
        return outcomes

    for tool, result, follow_up in anyio.run(scenario):
        assert not follow_up.is_error, (tool, follow_up.content)
        if isinstance(result, Exception):
            assert str(result), tool
            continue
        text = " ".join(getattr(part, "text", "") for part in result.content)
        _no_secret(text)
        if tool != "search_specs 1MB":
            assert result.is_error, (tool, text[:300])
            assert text.strip(), tool


def test_mcp_refuses_an_unknown_argument_and_the_session_goes_on(memory: SpecMemory):
    # As HTTP refuses unknown fields with 422 (spec 083); the session must survive the refusal.
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            odd = await client.call_tool("get_context", {"query": "token", "surprise": True})
            normal = await client.call_tool("get_spec", {"spec": "001"})
            return odd, normal

    odd, normal = anyio.run(scenario)
    assert not normal.is_error
    odd_text = " ".join(getattr(part, "text", "") for part in odd.content)
    assert odd.is_error and "surprise" in odd_text
    _no_secret(odd_text)


def test_mcp_resources_cannot_read_outside(memory: SpecMemory):
    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            outcomes: list[Any] = []
            for uri in (
                "specmem://specs/016-symlink-out/README.md",
                "specmem://specs/001-auth-design/LEAK.md",
                "specmem://specs/001-auth-design/..%2F..%2Foutside%2Fsecret.md",
            ):
                try:
                    outcomes.append(await client.read_resource(uri))
                except Exception as err:
                    outcomes.append(err)
            return outcomes

    for outcome in anyio.run(scenario):
        _no_secret(str(outcome))


def test_environment_was_not_touched(hostile_root: Path):
    # The data dir is the only thing created, and it sits inside the scratch root.
    assert (hostile_root / "data").is_dir()
    assert not any(path.name == ".specmem" for path in hostile_root.parent.iterdir())
    assert os.environ.get("SPECMEM_SPECS_DIR") is None


def test_http_offsets_beyond_sqlite_integers_answer_an_empty_page(client: TestClient):
    # schemathesis found offset=2**63 raising OverflowError in SQLite (a 500) before the clamp.
    client.post("/events", json={"spec": "001", "type": "note"}, headers=AUTH)
    for path in ("/events", "/specs/001/events"):
        response = client.get(path, params={"offset": 2**63, "limit": 5}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert response.json()["events"] == []
    assert client.get("/events", headers=AUTH).json()["events"]
