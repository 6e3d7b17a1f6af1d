"""Loopback is judged by address and tokens must be usable (spec 074): through `specmem serve`
(CliRunner, uvicorn.run captured), the app it builds, and a real uvicorn bound to 127.0.0.2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.errors import InvalidInput
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app
from retriever.http.security import MIN_TOKEN_LENGTH, is_loopback, token_problem
from retriever.http.server import serving_options
from tests.live_server import serve_in_thread

GOOD_TOKEN = "loopback-token-0123456789"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("127.255.255.254", True),
        ("127.1", True),  # what inet_aton and every resolver read as 127.0.0.1
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("127.example.com", False),  # a name that merely starts with "127."
        ("127.0.0.1.example.invalid", False),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("::ffff:10.1.2.3", False),
        ("no-such-host.invalid", False),  # unresolvable: never taken for loopback
        ("", False),
    ],
)
def test_loopback_is_judged_by_address(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("t", "use at least 16"),
        ("s3cret", "use at least 16"),
        ("x" * (MIN_TOKEN_LENGTH - 1), "use at least 16"),
        (f"{GOOD_TOKEN}\n", "whitespace"),
        (f" {GOOD_TOKEN}", "whitespace"),
        (f"{GOOD_TOKEN}\t", "whitespace"),
        ("loopback token 0123456789", "visible ASCII"),
        ("loopback-tökén-0123456789", "visible ASCII"),
        ("loopback-token\x00123456789", "visible ASCII"),
    ],
)
def test_unusable_tokens_are_named_without_echoing_them(token, reason):
    problem = token_problem(token)
    assert problem is not None and reason in problem
    if len(token) > 3:
        assert token.strip() not in problem


def test_usable_tokens_pass():
    assert token_problem(None) is None
    assert token_problem("x" * MIN_TOKEN_LENGTH) is None
    assert token_problem("Az09!#$%&'*+-.^_`|~/=" + "x" * 4) is None


def serve(root: Path, monkeypatch, *args: str, token: str | None = None) -> tuple[Any, dict]:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, **kw))
    if token is None:
        monkeypatch.delenv("SPECMEM_API_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SPECMEM_API_TOKEN", token)
    result = CliRunner().invoke(
        cli, ["--specs-dir", str(root), "--data-dir", str(root.parent / "data"), "serve", *args]
    )
    return result, captured


@pytest.mark.parametrize("token", [f"{GOOD_TOKEN}\n", "t", "short-token", f"{GOOD_TOKEN} "])
def test_serve_refuses_an_unusable_token_before_starting(tiny_specs, monkeypatch, token):
    result, captured = serve(tiny_specs, monkeypatch, token=token)
    assert result.exit_code == 2 and captured == {}
    assert "refusing to serve: SPECMEM_API_TOKEN" in result.output
    if len(token) > 3:
        assert token.strip() not in result.output


def test_a_name_that_starts_with_127_is_not_loopback(tiny_specs, monkeypatch):
    result, captured = serve(tiny_specs, monkeypatch, "--host", "127.example.com")
    assert result.exit_code == 2 and captured == {}
    assert "without a token" in result.output
    result, captured = serve(tiny_specs, monkeypatch, "--host", "127.example.com", token=GOOD_TOKEN)
    assert result.exit_code == 0, result.output
    with TestClient(captured["app"], base_url="http://127.example.com:8765") as client:
        assert client.get("/specs").status_code == 401  # reads need the token off loopback
        assert client.get("/specs", headers={"Authorization": f"Bearer {GOOD_TOKEN}"}).is_success


def test_any_loopback_address_is_served_and_its_host_accepted(tiny_specs, monkeypatch):
    result, captured = serve(tiny_specs, monkeypatch, "--host", "127.0.0.2", token=GOOD_TOKEN)
    assert result.exit_code == 0, result.output
    assert captured["host"] == "127.0.0.2" and "http" in captured
    with TestClient(captured["app"], base_url="http://127.0.0.2:8765") as client:
        assert client.get("/specs").status_code == 200  # loopback: reads are open
        for host in ("127.0.0.2:8765", "127.0.0.1", "localhost:8765", "[::1]:8765", "127.0.0.2"):
            assert client.get("/specs", headers={"Host": host}).status_code == 200, host
        for host in ("evil.example", "127.0.0.2.evil.example", "127.example.com:8765", ""):
            refused = client.get("/specs", headers={"Host": host})
            assert refused.status_code == 400, host
            assert refused.json()["error"]["code"] == "invalid_host"
        for origin in (
            "http://evil.example",
            "null",
            "http://[::1",
            "http://127.0.0.2.evil.example",
        ):
            refused = client.get("/specs", headers={"Origin": origin})
            assert refused.status_code == 403, origin
            assert refused.json()["error"]["code"] == "invalid_origin"
        same = client.get("/specs", headers={"Origin": "http://127.0.0.2:8765"})
        assert same.status_code == 200
        write = client.post(
            "/events",
            json={"spec": "1", "type": "note"},
            headers={"Authorization": f"Bearer {GOOD_TOKEN}"},
        )
        assert write.status_code == 201


def test_a_real_server_on_127_0_0_2_answers_http_and_mcp(tiny_specs, tmp_path):
    memory = SpecMemory(tiny_specs, tmp_path / "data")
    app = create_app(
        memory, token=GOOD_TOKEN, host="127.0.0.2", loopback_names=["localhost", "127.0.0.2"]
    )
    headers = {"Authorization": f"Bearer {GOOD_TOKEN}"}

    async def mcp_tools(url: str) -> set[str]:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
        ):
            return {tool.name for tool in (await client.list_tools()).tools}

    with serve_in_thread(app, host="127.0.0.2", **serving_options()) as url:
        assert url.startswith("http://127.0.0.2:")
        assert httpx.get(f"{url}/specs/1").status_code == 200
        assert "get_spec" in anyio.run(mcp_tools, url)
        evil = httpx.get(f"{url}/health", headers={"Host": "evil.example"})
        assert evil.status_code == 400 and evil.json()["error"]["code"] == "invalid_host"


def test_the_app_refuses_an_unusable_configured_token(tiny_specs, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECMEM_API_TOKEN", f"{GOOD_TOKEN}\n")
    with pytest.raises(InvalidInput, match="whitespace"):
        create_app(SpecMemory(tiny_specs, tmp_path / "data"), mount_mcp=False)
    monkeypatch.setenv("SPECMEM_API_TOKEN", "s3cret")
    with pytest.raises(InvalidInput, match="at least 16"):
        create_app(SpecMemory(tiny_specs, tmp_path / "data"), mount_mcp=False)
    # A token handed over in code is the caller's; only one no client could send is refused.
    with pytest.raises(InvalidInput, match="whitespace"):
        create_app(SpecMemory(tiny_specs, tmp_path / "data"), token="abc ", mount_mcp=False)
