"""Limits before authentication on a real `specmem serve` process (spec 075): bursts of huge
heads, stalled heads and MCP sessions that are never closed, with the server's RSS and open file
descriptors measured before and after, and /health timed throughout.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.test_http_limits import INIT, MCP_HEADERS, MIB, stream_until_answered
from tests.test_idempotency_crash import AUTH, serving

pytestmark = pytest.mark.slow


def rss_and_fds(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def test_bursts_before_authentication_leave_the_server_responsive_and_bounded(tmp_path):
    specs = tmp_path / "specs"
    (specs / "001-alpha").mkdir(parents=True)
    (specs / "001-alpha" / "README.md").write_text("---\nstatus: planned\n---\n# Alpha\n")
    with serving(specs, tmp_path / "data") as (server, base):
        address = urlsplit(base)
        target = (address.hostname, address.port)
        httpx.post(f"{base}/mcp", json=INIT, headers={**MCP_HEADERS, **AUTH}).raise_for_status()
        rss_before, fds_before = rss_and_fds(server.pid)
        latencies: list[float] = []
        stop = threading.Event()

        def probe() -> None:
            while not stop.is_set():
                started = time.monotonic()
                assert httpx.get(f"{base}/health", timeout=10).status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.05)

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            # 20 clients at once, each streaming a 100 MB header, then 20 streaming a 100 MB URL.
            answers: list[int] = []

            def huge(start: bytes) -> None:
                answers.append(stream_until_answered(target, start, b"a" * 65536, 100 * MIB)[1])

            for start in (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ", b"GET /"):
                threads = [threading.Thread(target=huge, args=(start,)) for _ in range(20)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            assert sorted(set(answers)) == [414, 431]
            # 200 connections that send half a head and stall: all closed by the deadline.
            stalled = [socket.create_connection(target) for _ in range(200)]
            for sock in stalled:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            started = time.monotonic()
            for sock in stalled:
                sock.settimeout(30)
                while sock.recv(65536):
                    pass
                sock.close()
            stalled_closed_after = time.monotonic() - started
            # 1,000 MCP sessions opened and never closed.
            with httpx.Client(timeout=30, headers=AUTH) as http:
                for _ in range(1000):
                    opened = http.post(f"{base}/mcp", json=INIT, headers=MCP_HEADERS)
                    assert opened.status_code == 200
        finally:
            stop.set()
            prober.join()
        rss_after, fds_after = rss_and_fds(server.pid)

        async def new_client() -> int:
            async with (
                httpx2.AsyncClient(headers=AUTH, timeout=30) as http,
                Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
            ):
                return len((await client.list_tools()).tools)

        assert anyio.run(new_client) > 0
        print(
            f"\nrss {rss_before / MIB:.0f} -> {rss_after / MIB:.0f} MiB, fds {fds_before} -> "
            f"{fds_after}, stalled heads closed after {stalled_closed_after:.1f}s, /health "
            f"max {max(latencies):.3f}s over {len(latencies)} probes"
        )
        assert stalled_closed_after < 15  # 10 s head deadline, 1 s linger
        assert max(latencies) < 1.0
        assert rss_after - rss_before < 30 * MIB
        assert fds_after <= fds_before + 10
