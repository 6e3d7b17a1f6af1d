"""Front-door overheads on the real corpus: HTTP reads and writes, events, MCP calls.

Index-free on purpose (no embedding): these numbers are what the doors and the event log add on
top of the service, so they stay comparable while search and context change underneath.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
from fastapi.testclient import TestClient
from mcp import Client

from retriever import SpecMemory
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server
from tests.conftest import CORPUS_SPECS, write_spec
from tests.live_server import serve_in_thread

TOKEN = "bench-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _timed(action: Callable[[], object], repeat: int) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
        "n": repeat,
    }


def _http(report: dict, memory: SpecMemory) -> None:
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as client:
        client.get("/specs")
        report["get_spec"] = _timed(lambda: client.get("/specs/045-unified-dashboard"), 100)
        report["list_specs_page"] = _timed(lambda: client.get("/specs", params={"limit": 50}), 50)
        statuses = iter(["in-progress", "complete"] * 100)

        def patch() -> None:
            etag = client.get("/specs/045-unified-dashboard").headers["etag"]
            response = client.patch(
                "/specs/045-unified-dashboard",
                json={"status": next(statuses)},
                headers={**AUTH, "If-Match": etag, "Idempotency-Key": etag},
            )
            response.raise_for_status()

        # A GET for the ETag, then the PATCH: the round trip an orchestrator makes per callback.
        report["read_then_patch_status_304_specs"] = _timed(patch, 20)
        event = {"spec": "045", "type": "note", "summary": "bench event about dashboards"}
        report["post_event"] = _timed(lambda: client.post("/events", json=event, headers=AUTH), 100)
        report["search_events_q"] = _timed(
            lambda: client.get("/events", params={"q": "dashboards"}), 50
        )


def _concurrent_callbacks(report: dict, specs: Path, data: Path) -> None:
    memory = SpecMemory(specs, data)
    names = [s.dir_name for s in memory.list_specs()]
    cycle = ("draft", "planned", "in-progress", "complete")
    retries = [0]

    def worker(base_url: str) -> None:
        import httpx

        with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as http:
            for step in range(10):
                name = names[step % len(names)]
                while True:
                    read = http.get(f"/specs/{name}")
                    status = read.json()["status"] or "planned"
                    target = cycle[(cycle.index(status) + 1) % 4] if status in cycle else "draft"
                    response = http.patch(
                        f"/specs/{name}",
                        json={"status": target},
                        headers={"If-Match": read.headers["etag"]},
                    )
                    if response.status_code == 200:
                        break
                    retries[0] += 1

    with serve_in_thread(create_app(memory, token=TOKEN, mount_mcp=False)) as base_url:
        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(base_url,)) for _ in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
    report["callbacks_20x10_on_5_specs"] = {
        "seconds": round(elapsed, 2),
        "retries_on_412": retries[0],
        "updates_per_second": round(200 / elapsed, 1),
    }


def _mcp(report: dict, memory: SpecMemory) -> None:
    server = build_mcp_server(memory)

    async def scenario() -> dict[str, dict[str, float]]:
        async with Client(server) as client:
            results = {}
            for name, args in (
                ("get_spec", {"spec": "045-unified-dashboard"}),
                ("list_specs", {"limit": 50}),
            ):
                samples = []
                for _ in range(30):
                    started = time.perf_counter()
                    await client.call_tool(name, args)
                    samples.append((time.perf_counter() - started) * 1000)
                results[f"mcp_{name}"] = {"p50_ms": round(statistics.median(samples), 2), "n": 30}
            return results

    report.update(anyio.run(scenario))


def run(report: dict) -> None:
    section: dict = {}
    with tempfile.TemporaryDirectory(prefix="specmem-bench-service-") as tmp:
        specs = Path(tmp) / "specs"
        shutil.copytree(CORPUS_SPECS, specs, symlinks=True)
        memory = SpecMemory(specs, Path(tmp) / "data")
        _http(section, memory)
        _mcp(section, memory)
        # Five small specs: the callback run measures locking and retries, not corpus rescans.
        small = Path(tmp) / "callback-specs"
        for number in range(1, 6):
            write_spec(small, f"{number:03d}-target-{number}", "---\nstatus: planned\n---\n# T\n")
        _concurrent_callbacks(section, small, Path(tmp) / "data-callbacks")
    report["service"] = section
