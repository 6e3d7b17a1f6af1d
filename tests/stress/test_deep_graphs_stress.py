"""Slow (spec 074): a 20,000-deep chain and a 10,000-wide fan-out through a real uvicorn (HTTP and
MCP over streamable HTTP) and the CLI; random malformed requests against the real server; the
exploding-service schemathesis run with many examples. Each test prints its figures."""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from click.testing import CliRunner
from mcp import Client

from retriever import SpecMemory
from retriever.cli import cli
from retriever.dependencies import MAX_TREE_DEPTH, MAX_TREE_NODES
from retriever.http import create_app
from retriever.http.server import LastResort, serving_options
from tests.conftest import REPO
from tests.live_server import serve_in_thread
from tests.test_deep_graphs import _chain_name, tree_depth, tree_entries, write_chain, write_fan
from tests.test_http_errors import _raw_request

pytestmark = pytest.mark.slow

DEEP = int(os.environ.get("SPECMEM_STRESS_DEPTH", "20000"))
WIDE = int(os.environ.get("SPECMEM_STRESS_WIDTH", "10000"))
TOKEN = "stress-deep-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(label: str, call):
    started = time.perf_counter()
    result = call()
    print(f"{label}: {time.perf_counter() - started:.2f} s")
    return result


def test_a_20000_deep_chain_through_a_real_server_mcp_and_the_cli(tmp_path):
    root = tmp_path / "specs"
    write_chain(root, DEEP)
    memory = SpecMemory(root, tmp_path / "data")
    _timed("scan", memory.catalog)
    app = LastResort(create_app(memory, token=TOKEN))
    first, last = _chain_name(1), _chain_name(DEEP)
    with serve_in_thread(app, **serving_options()) as url, httpx.Client(timeout=120) as http:
        for path in (
            f"/specs/{first}/dependencies",
            f"/specs/{first}/dependencies?direction=upstream&depth=20",
            f"/specs/{last}/dependencies?direction=downstream",
            "/validate",
        ):
            response = _timed(path, lambda p=path: http.get(url + p))
            assert response.status_code == 200, response.text[:300]
            body = response.json()
            for side in ("upstream", "downstream"):
                if body.get(side):
                    assert tree_depth(body[side]) <= MAX_TREE_DEPTH
        bundle = http.post(f"{url}/context", json={"specs": [first], "depth": 5})
        assert bundle.status_code == 200

        async def mcp_calls() -> list:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            async with (
                httpx2.AsyncClient(headers=AUTH, timeout=120) as client_http,
                Client(streamable_http_client(f"{url}/mcp", http_client=client_http)) as client,
            ):
                return [
                    await client.call_tool("spec_dependencies", {"spec": first}),
                    await client.call_tool("get_context", {"specs": [first], "depth": 5}),
                    await client.call_tool("validate_specs", {}),
                ]

        results = _timed(
            "mcp spec_dependencies + get_context + validate_specs", lambda: anyio.run(mcp_calls)
        )
        assert not any(r.is_error for r in results), [r.content[0].text[:200] for r in results]
        assert results[0].structured_content["reachable"]["upstream"] == DEEP - 1

    runner = CliRunner()
    base = ["--specs-dir", str(root), "--data-dir", str(tmp_path / "data")]
    tree = _timed("cli deps", lambda: runner.invoke(cli, [*base, "deps", first]))
    assert tree.exit_code == 0 and f"of {DEEP - 1} specs in all" in tree.output
    refused = _timed(
        "cli update cycle refusal",
        lambda: runner.invoke(cli, [*base, "update", last, "--add-dep", first]),
    )
    assert refused.exit_code == 1 and "would close the cycle" in refused.output
    print(f"max RSS {_rss_mib():.0f} MiB")


def test_a_10000_wide_fan_out_through_a_real_server(tmp_path):
    root = tmp_path / "specs"
    write_fan(root, WIDE, top_needs=2_000)
    memory = SpecMemory(root, tmp_path / "data")
    app = LastResort(create_app(memory, token=TOKEN))
    with serve_in_thread(app, **serving_options()) as url, httpx.Client(timeout=120) as http:
        for path in ("/specs/0002-top/dependencies", "/specs/0001-hub/dependencies"):
            response = _timed(path, lambda p=path: http.get(url + p))
            assert response.status_code == 200
            body = response.json()
            print(f"  {len(response.content)} bytes")
            assert not body.get("broken")
            for side in ("upstream", "downstream"):
                if body.get(side):
                    assert len(list(tree_entries(body[side]))) == MAX_TREE_NODES
            print(f"  reachable {body['reachable']}")
        bundle = _timed(
            "context on the hub", lambda: http.post(f"{url}/context", json={"specs": ["0001-hub"]})
        )
        assert bundle.status_code == 200


def test_random_malformed_requests_get_json_answers_from_a_real_server(tmp_path):
    from tests.conftest import write_spec

    write_spec(tmp_path / "specs", "001-a", "---\nstatus: draft\n---\n# A\n")
    memory = SpecMemory(tmp_path / "specs", tmp_path / "data")
    rng = random.Random(74)
    pieces = [
        b"GET", b"POST", b"PATCH", b" ", b"/", b"/specs/1", b"?q=\xff", b"HTTP/1.1", b"HTTP/2",
        b"\r\n", b"\n", b"\r", b"Host: 127.0.0.1", b"Content-Length: 5", b"Content-Length: -1",
        b"Transfer-Encoding: chunked", b"\x00", b"\xff\xfe", b":", b"X: \x7f", b"{}", b"%zz",
    ]  # fmt: skip
    counts: dict[int, int] = {}
    non_json = []
    with serve_in_thread(LastResort(create_app(memory, token=TOKEN)), **serving_options()) as url:
        address = urlsplit(url)
        for _ in range(400):
            raw = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 12))) + b"\r\n\r\n"
            try:
                status, headers, payload = _raw_request(address.hostname, address.port, raw)
            except (OSError, ValueError, IndexError):
                counts[0] = counts.get(0, 0) + 1  # closed without an answer (incomplete request)
                continue
            counts[status] = counts.get(status, 0) + 1
            if status >= 400:
                try:
                    assert headers.get("content-type", "").startswith("application/json")
                    json.loads(payload)["error"]["code"]
                except (AssertionError, ValueError, KeyError, TypeError):
                    non_json.append((raw, status, payload[:100]))
        assert httpx.get(f"{url}/health").status_code == 200
    print(f"answers by status (0 = closed unanswered): {dict(sorted(counts.items()))}")
    assert not non_json, non_json[:5]


def test_schemathesis_on_the_exploding_service_with_many_examples():
    env = dict(os.environ, SPECMEM_OPENAPI_EXAMPLES="100")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_http_errors.py",
         "-k", "schemathesis"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    print(done.stdout[-500:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
