"""`specmem serve --projects FILE` as served: a real process with the real model, a project added
to the file while it runs is indexed and searched with no restart, and one removed is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import REPO, write_spec
from tests.live_server import free_port, stop_process
from tests.test_projects import make_folders

TOKEN = "projects-served-token-0123456789"


def wait_for(check: Callable[[], Any], what: str, server: subprocess.Popen, log: Path) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()}")
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within 120 s; server log: {log.read_text()}")


def test_projects_come_and_go_under_a_running_server(tmp_path: Path):
    make_folders(tmp_path)
    config = tmp_path / "projects.toml"
    config.write_text('[projects.web]\nspecs = "web/specs"\n')
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, SPECMEM_API_TOKEN=TOKEN, ANONYMIZED_TELEMETRY="False")
    env["PYTHONPATH"] = str(REPO)
    for name in ("SPECMEM_MODEL", "SPECMEM_CHROMA_URL", "SPECMEM_SPECS_DIR", "SPECMEM_DATA_DIR"):
        env.pop(name, None)
    log = tmp_path / "serve.log"
    command = [str(Path(sys.executable).with_name("specmem")), "serve", "--port", str(port)]
    with log.open("wb") as err:
        server = subprocess.Popen(
            [*command, "--projects", str(config)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:

        def hits(query: str) -> list[dict[str, Any]]:
            answer = httpx.get(f"{base}/search", params={"q": query}, timeout=30)
            return answer.json()["results"] if answer.status_code == 200 else []

        # Nobody ran an ingest: the server builds the missing index itself, in the background.
        first = wait_for(lambda: hits("login form"), "web indexed", server, log)
        assert first[0]["project"] == "web" and first[0]["spec"] == "001-login-page"

        config.write_text(
            '[projects.web]\nspecs = "web/specs"\n[projects.api]\nspecs = "api/specs"\n'
        )
        found = wait_for(
            lambda: [h for h in hits("signed webhook deliveries") if h["project"] == "api"],
            "api added and indexed",
            server,
            log,
        )
        assert found[0]["spec"] == "007-webhooks"

        async def over_mcp() -> Any:
            async with (
                httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
                ) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
            ):
                return await client.call_tool("get_spec", {"spec": "api:007"})

        tool = anyio.run(over_mcp)
        assert tool.structured_content["project"] == "api"

        write_spec(
            tmp_path / "api" / "specs", "008-quotas", "# Quotas\n\nMonthly request quotas.\n"
        )
        config.write_text('[projects.api]\nspecs = "api/specs"\n')
        gone = wait_for(
            lambda: (
                httpx.get(f"{base}/search", params={"q": "x", "project": "web"}).status_code == 404
            ),
            "web removed",
            server,
            log,
        )
        assert gone
        health = httpx.get(f"{base}/health").json()
        assert list(health["projects"]) == ["api"]
        assert health["projects"]["api"]["specs"] == 3  # a spec added on disk is seen too
    finally:
        stop_process(server)
