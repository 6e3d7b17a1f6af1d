"""`specmem serve` through click's CliRunner: bind policy, and the app it would run."""

from __future__ import annotations

import uvicorn
from click.testing import CliRunner
from fastapi.testclient import TestClient

from retriever.cli import cli

SECRET = "s3cret-0123456789"  # 16+ characters: shorter tokens are refused at start (spec 074)


def serve(tiny_specs, tmp_path, monkeypatch, *args: str, token: str | None = None):
    captured: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: captured.update(app=app, **kw))
    if token:
        monkeypatch.setenv("SPECMEM_API_TOKEN", token)
    else:
        monkeypatch.delenv("SPECMEM_API_TOKEN", raising=False)
    result = CliRunner().invoke(
        cli,
        ["--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data"), "serve", *args],
    )
    return result, captured


def test_serve_binds_loopback_by_default_and_reads_are_open(tiny_specs, tmp_path, monkeypatch):
    result, captured = serve(tiny_specs, tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert captured["host"] == "127.0.0.1" and captured["port"] == 8765
    assert "read-only" in result.output
    with TestClient(captured["app"], base_url="http://127.0.0.1:8765") as client:
        assert client.get("/specs").status_code == 200
        mcp = client.post("/mcp", json={}, headers={"Accept": "application/json"})
        assert mcp.status_code != 404  # the MCP endpoint is mounted
        # A page that reached us through a rebinding domain sends its own Host header.
        assert client.get("/specs", headers={"Host": "evil.example"}).status_code == 400


def test_serve_refuses_a_public_bind_without_a_token(tiny_specs, tmp_path, monkeypatch):
    result, captured = serve(tiny_specs, tmp_path, monkeypatch, "--host", "0.0.0.0")
    assert result.exit_code == 2
    assert "SPECMEM_API_TOKEN" in result.output
    assert captured == {}


def test_a_public_bind_with_a_token_protects_every_read(tiny_specs, tmp_path, monkeypatch):
    result, captured = serve(
        tiny_specs, tmp_path, monkeypatch, "--host", "0.0.0.0", "--port", "9000", token=SECRET
    )
    assert result.exit_code == 0, result.output
    assert captured["host"] == "0.0.0.0" and captured["port"] == 9000
    with TestClient(captured["app"]) as client:
        assert client.get("/specs").status_code == 401
        assert (
            client.get("/specs", headers={"Authorization": f"Bearer {SECRET}"}).status_code == 200
        )
        assert client.get("/health").status_code == 200


def test_serve_and_mcp_have_help_text():
    runner = CliRunner()
    for command in ("serve", "mcp"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0 and len(result.output) > 200
