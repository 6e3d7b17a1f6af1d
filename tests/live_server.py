"""A real uvicorn on a free loopback port, in a thread: for tests that need real sockets."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

__all__ = ["free_port", "serve_in_thread", "stop_process"]


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", **options: Any) -> Iterator[str]:
    """Serve `app` on `host` and yield its base URL; stops the server on exit. `options` go to
    uvicorn.Config (e.g. retriever.http.server.serving_options())."""
    settings = {"log_level": "warning", "lifespan": "on", **options}
    config = uvicorn.Config(app, host=host, port=0, **settings)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def free_port() -> int:
    """A loopback port free now, for a server process the test starts itself."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """Ask a server process to stop (SIGTERM), and kill it if it has not within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


CHROMA = Path(sys.executable).with_name("chroma")


def start_chroma(path: Path, timeout: float = 60) -> tuple[subprocess.Popen[bytes], str]:
    """A real `chroma run` server over `path` on a free port, answering its heartbeat; its
    process and URL. FileNotFoundError without the chroma CLI, RuntimeError if it never answers."""
    if not CHROMA.exists():
        raise FileNotFoundError(f"no chroma CLI at {CHROMA}")
    port = free_port()
    server = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_process(server, timeout=10)
            raise RuntimeError(f"chroma server did not start (exit code {server.poll()})")
        time.sleep(0.2)
