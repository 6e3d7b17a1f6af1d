"""Limits before authentication (spec 075), against a real uvicorn over raw sockets: the request
line (414) and head (431) are refused at the limit without buffering the rest, a slow or silent
client is closed at the head deadline while others are served, idle keep-alive connections
close, and a burst of MCP sessions that are never closed does not lock a new client out.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
from mcp import Client
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from retriever.http.server import (
    HEAD_TIMEOUT,
    KEEP_ALIVE_TIMEOUT,
    MAX_HEAD_BYTES,
    MAX_REQUEST_LINE_BYTES,
    HeadLimits,
    LastResort,
    serving_options,
)
from tests.conftest import write_spec
from tests.live_server import serve_in_thread

MIB = 1024 * 1024
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "burst", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def rss_bytes() -> int:
    """This process's resident set (the server runs in a thread of it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def memory(tmp_path: Path) -> SpecMemory:
    write_spec(tmp_path / "specs", "001-alpha", "---\nstatus: planned\n---\n# Alpha\n\nText.\n")
    return SpecMemory(tmp_path / "specs", tmp_path / "data", embedder=FakeEmbedder())


@pytest.fixture(params=[HttpToolsProtocol, H11Protocol], ids=["httptools", "h11"])
def server(memory: SpecMemory, request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A real uvicorn with a 1 s head deadline and keep-alive, over either parser."""
    app = LastResort(create_app(memory))
    options = serving_options(head_timeout=1.0, keep_alive_timeout=1, parser=request.param)
    with serve_in_thread(app, **options) as url:
        address = urlsplit(url)
        yield address.hostname, address.port


def connect(address: tuple[str, int]) -> socket.socket:
    return socket.create_connection(address, timeout=10)


def read_answer(sock: socket.socket, deadline: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one answer on `sock`, read until the server closes."""
    sock.settimeout(deadline)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def stream_until_answered(
    address: tuple[str, int], start: bytes, filler: bytes, total: int
) -> tuple[int, int, dict[str, str], bytes]:
    """Send `start` then `filler` repeatedly up to `total` bytes, stopping once the server
    answers; (bytes sent, status, headers, body)."""
    sock = connect(address)
    sent = 0
    # poll, not select: select() refuses a descriptor past 1024, which a process that has run
    # many server tests (a pytest-xdist worker) reaches.
    answered = select.poll()
    answered.register(sock, select.POLLIN)
    try:
        sock.sendall(start)
        sent = len(start)
        while sent < total:
            if answered.poll(0):
                break
            try:
                sock.sendall(filler)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(filler)
        return (sent, *read_answer(sock))
    finally:
        sock.close()


def assert_error(status: int, headers: dict[str, str], body: bytes, want: int, code: str):
    assert status == want, body[:200]
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == code


def health_seconds(address: tuple[str, int]) -> float:
    started = time.monotonic()
    response = httpx.get(f"http://{address[0]}:{address[1]}/health", timeout=10)
    assert response.status_code == 200
    return time.monotonic() - started


def test_a_100_mb_header_is_cut_at_the_limit_with_431_and_memory_stays_flat(server):
    httpx.get(f"http://{server[0]}:{server[1]}/health")  # warm the app before measuring
    before = rss_bytes()
    answers: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            answers.append(health_seconds(server))

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        start = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        sent, *answer = stream_until_answered(server, start, b"a" * 65536, 100 * MIB)
    finally:
        stop.set()
        prober.join()
    assert_error(*answer, 431, "headers_too_large")
    assert sent < 100 * MIB  # answered while the header was still coming
    assert rss_bytes() - before < 10 * MIB
    assert answers and max(answers) < 1.0


def test_many_headers_over_the_total_are_431_and_under_it_pass(server):
    header = b"X-H: " + b"v" * 1000 + b"\r\n"
    over = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * 70 + b"\r\n"
    _, *answer = stream_until_answered(server, over, b"", len(over))
    assert_error(*answer, 431, "headers_too_large")
    under = {f"x-h{i}": "v" * 1000 for i in range(60)}  # ~60 KiB, under the 64 KiB head limit
    url = f"http://{server[0]}:{server[1]}/health"
    assert httpx.get(url, headers=under).status_code == 200


def test_a_1_mb_url_is_414_and_a_long_one_under_the_limit_is_served(server):
    _, *answer = stream_until_answered(server, b"GET /" + b"a" * MIB, b"", MIB)
    assert_error(*answer, 414, "uri_too_long")
    # Streamed in 64 KiB writes, the URL is still cut at the line limit, not the head limit.
    _, *answer = stream_until_answered(server, b"GET /", b"b" * 65536, 100 * MIB)
    assert_error(*answer, 414, "uri_too_long")
    query = "x" * (MAX_REQUEST_LINE_BYTES - 200)
    # A parameter the route declares: unknown ones are refused since issue 12.
    response = httpx.get(f"http://{server[0]}:{server[1]}/specs?tag={query}")
    assert response.status_code == 200
    assert MAX_REQUEST_LINE_BYTES < MAX_HEAD_BYTES


def test_half_a_header_is_closed_at_the_deadline_while_health_answers(server):
    stalled = connect(server)
    stalled.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
    silent = connect(server)  # connects and never sends a byte
    started = time.monotonic()
    assert health_seconds(server) < 1.0
    status, headers, body = read_answer(stalled)
    assert_error(status, headers, body, 408, "request_timeout")
    assert time.monotonic() - started < 3.0  # 1 s deadline (+1 s linger for the answer)
    silent.settimeout(5)
    assert silent.recv(1) == b""  # closed without an answer: nothing was asked
    assert time.monotonic() - started < 3.0
    stalled.close()
    silent.close()


def test_a_header_trickled_byte_by_byte_is_closed_at_the_deadline(server):
    sock = connect(server)
    answered = select.poll()  # see stream_until_answered
    answered.register(sock, select.POLLIN)
    started = time.monotonic()
    closed = False
    for byte in b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"z" * 100:
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        if answered.poll(100):
            closed = True
            break
    assert closed and time.monotonic() - started < 2.0  # the deadline is for the whole head
    sock.close()


def test_an_idle_keep_alive_connection_is_closed(server):
    sock = connect(server)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    started = time.monotonic()
    status, _, _ = read_answer(sock, deadline=5)  # reads until the server closes
    assert status == 200
    assert time.monotonic() - started < 3.0
    sock.close()


def test_200_unclosed_mcp_sessions_do_not_lock_out_a_new_client(memory):
    app = create_app(memory, max_mcp_sessions=50)
    with serve_in_thread(LastResort(app), **serving_options()) as url:
        httpx.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS).raise_for_status()
        before = rss_bytes()
        with httpx.Client(timeout=10) as http:
            ids = []
            for _ in range(200):
                opened = http.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
                assert opened.status_code == 200, opened.text
                ids.append(opened.headers["mcp-session-id"])
            grown = rss_bytes() - before
            assert app.state.mcp_sessions.sessions <= 50
            oldest = {"mcp-session-id": ids[0], "mcp-protocol-version": "2025-06-18"}
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            gone = http.post(f"{url}/mcp", json=listing, headers={**MCP_HEADERS, **oldest})
            assert gone.status_code == 404  # evicted, least recently used first

        async def new_client() -> list[str]:
            async with Client(f"{url}/mcp") as client:
                return [tool.name for tool in (await client.list_tools()).tools]

        assert "search_specs" in anyio.run(new_client)
        assert grown < 40 * MIB, grown


def test_when_every_session_is_busy_a_new_one_gets_a_json_rpc_503(memory):
    app = create_app(memory, max_mcp_sessions=2)
    with serve_in_thread(LastResort(app), **serving_options()) as url, httpx.Client() as http:
        sessions = []
        for _ in range(2):
            opened = http.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
            session = opened.headers["mcp-session-id"]
            version = {"mcp-session-id": session, "mcp-protocol-version": "2025-06-18"}
            note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
            http.post(f"{url}/mcp", json=note, headers={**MCP_HEADERS, **version})
            sessions.append(version)
        streams = [
            http.stream("GET", f"{url}/mcp", headers={"Accept": "text/event-stream", **h})
            for h in sessions
        ]
        opened_streams = [stream.__enter__() for stream in streams]
        assert all(s.status_code == 200 for s in opened_streams)
        refused = http.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert refused.json()["error"]["message"].startswith("all 2 MCP sessions are busy")
        streams[0].__exit__(None, None, None)  # its session is idle again, so it can make room
        deadline = time.monotonic() + 5
        while (
            opened := http.post(f"{url}/mcp", json=INIT, headers=MCP_HEADERS)
        ).status_code == 503:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert opened.status_code == 200
        gone = http.post(
            f"{url}/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers={**MCP_HEADERS, **sessions[0]},
        )
        assert gone.status_code == 404  # evicted: its client must initialize again
        streams[1].__exit__(None, None, None)


def test_a_body_is_not_counted_as_head_and_each_request_gets_its_own_limit(server):
    body = b'{"x": "' + b"y" * (900 * 1024) + b'"}'
    sock = connect(server)
    head = (
        b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head + body)  # head and body in the same writes
    status, _, _ = read_answer(sock)
    assert status not in (408, 414, 431, 400)
    sock.close()
    # Keep-alive: three requests of ~40 KiB of headers each on one connection (120 KiB in all).
    headers = {f"x-h{i}": "v" * 1000 for i in range(40)}
    with httpx.Client(base_url=f"http://{server[0]}:{server[1]}") as http:
        for _ in range(3):
            assert http.get("/health", headers=headers).status_code == 200
            time.sleep(0.3)


def test_specmem_serve_runs_with_the_limits(tiny_specs, tmp_path, monkeypatch):
    from tests.test_http_serve import serve

    result, captured = serve(tiny_specs, tmp_path, monkeypatch, "--max-mcp-sessions", "7")
    assert result.exit_code == 0, result.output
    assert issubclass(captured["http"], HeadLimits)
    assert captured["http"].max_head == MAX_HEAD_BYTES
    assert captured["http"].head_timeout == HEAD_TIMEOUT
    assert captured["timeout_keep_alive"] == KEEP_ALIVE_TIMEOUT
    assert captured["app"].app.state.mcp_sessions.limit == 7
