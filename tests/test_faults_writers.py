"""Concurrent writers through HTTP, MCP (streamable HTTP) and the CLI at once, on the same specs,
against one live server: no update is lost. HTTP and MCP writers use the If-Match / expected_hash
protocol and retry on a stale hash as a client should; CLI writers run in their own processes
and rely on the per-spec lock. Every tag any writer was told it added must be in the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import anyio
import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from tests.conftest import REPO
from tests.live_server import serve_in_thread
from tests.test_faults import build_corpus

TOKEN = "writers-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TARGETS = ("001-auth-design", "002-token-refresh")
MAX_RETRIES = 200

CLI_WRITER = """
import sys
from retriever.cli import cli
specs, data, prefix, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
targets = ("001-auth-design", "002-token-refresh")
for i in range(count):
    cli.main(["--specs-dir", specs, "--data-dir", data, "update", targets[i % 2],
              "--add-tag", f"{prefix}{i}"], standalone_mode=False)
"""


def _http_writer(url: str, count: int, done: list[str], failures: list[str]) -> None:
    with httpx.Client(base_url=url, headers=AUTH, timeout=60) as http:
        for i in range(count):
            target, tag = TARGETS[i % 2], f"h{i}"
            for _ in range(MAX_RETRIES):
                etag = http.get(f"/specs/{target}").headers["etag"]
                response = http.patch(
                    f"/specs/{target}", json={"tags": {"add": [tag]}}, headers={"If-Match": etag}
                )
                if response.status_code == 200:
                    done.append(tag)
                    break
                if response.status_code != 412:
                    failures.append(f"http {response.status_code} {response.text[:200]}")
                    return
            else:
                failures.append(f"http {tag}: still stale after {MAX_RETRIES} tries")


async def _mcp_writer(url: str, count: int, done: list[str], failures: list[str]) -> None:
    async with (
        httpx2.AsyncClient(headers=AUTH, timeout=60) as http,
        Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client,
    ):
        for i in range(count):
            target, tag = TARGETS[i % 2], f"m{i}"
            for _ in range(MAX_RETRIES):
                spec = await client.call_tool("get_spec", {"spec": target})
                data = spec.structured_content or json.loads(getattr(spec.content[0], "text", "{}"))
                result = await client.call_tool(
                    "update_spec",
                    {"spec": target, "expected_hash": data["hash"], "add_tags": [tag]},
                )
                if not result.is_error:
                    done.append(tag)
                    break
                text = getattr(result.content[0], "text", "")
                if "stale" not in text:
                    failures.append(f"mcp {text[:200]}")
                    return
            else:
                failures.append(f"mcp {tag}: still stale after {MAX_RETRIES} tries")


def run_mixed_writers(tmp: Path, per_writer: int) -> dict[str, list[str]]:
    specs, data = build_corpus(tmp)
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    app = create_app(memory, token=TOKEN)
    done: dict[str, list[str]] = {"http": [], "mcp": [], "cli": []}
    failures: list[str] = []
    env = dict(os.environ, SPECMEM_MODEL="fake", PYTHONPATH=str(REPO), ANONYMIZED_TELEMETRY="False")
    env.pop("SPECMEM_CHROMA_URL", None)
    with serve_in_thread(app) as url:
        cli_children = [
            subprocess.Popen(
                [sys.executable, "-c", CLI_WRITER, str(specs), str(data), prefix, str(per_writer)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for prefix in ("c", "d")
        ]
        http_thread = threading.Thread(
            target=_http_writer, args=(url, per_writer, done["http"], failures)
        )
        mcp_thread = threading.Thread(
            target=lambda: anyio.run(_mcp_writer, url, per_writer, done["mcp"], failures)
        )
        http_thread.start()
        mcp_thread.start()
        http_thread.join()
        mcp_thread.join()
        for child, prefix in zip(cli_children, ("c", "d"), strict=True):
            _, err = child.communicate(timeout=600)
            if child.returncode != 0:
                failures.append(f"cli {prefix} exit {child.returncode}: {err[-500:]}")
            else:
                done["cli"].extend(f"{prefix}{i}" for i in range(per_writer))
    assert not failures, failures
    final = SpecMemory(specs, tmp / "check", embedder=FakeEmbedder())
    catalog = final.catalog(refresh=True)
    assert not catalog.problems, [str(p) for p in catalog.problems]
    present = {tag for name in TARGETS for tag in final.get_spec(name).meta.tags}
    for door, tags in done.items():
        assert len(tags) == (per_writer if door != "cli" else 2 * per_writer), (door, tags)
        missing = sorted(set(tags) - present)
        assert not missing, f"{door} lost updates: {missing}"
    return done


def test_http_mcp_and_cli_writers_at_once_lose_no_update(tmp_path):
    run_mixed_writers(tmp_path, per_writer=int(os.environ.get("SPECMEM_WRITERS_EACH", "4")))
