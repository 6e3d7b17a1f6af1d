"""The event log on each engine, as served: the HTTP app over a real service, SQLite in the data
dir against a real PostgreSQL server this bench starts (spec 093). Skips PostgreSQL, saying why,
where it is not installed.

    python -m tests.bench.bench_event_log

Each engine holds the same 10,000 events before timing. Per engine: a keyed and an unkeyed
POST /events, a full-text GET /events?q=, a spec's history; each as p50/p99 milliseconds and as a
ratio to GET /health timed in the same run (the floor: routing, auth, JSON, no log). The engines
run in turns, one request each, so the machine's noise falls on both alike.
"""

from __future__ import annotations

import itertools
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from ingest.config import Settings
from retriever import SpecMemory
from retriever.events import normalize_event
from retriever.http import create_app

from ..postgres_server import PostgresServer, binaries

SPECS = 20
EVENTS = 10_000
ROUNDS = 300
TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WORDS = [
    "index",
    "chunk",
    "embed",
    "budget",
    "token",
    "status",
    "relay",
    "devlog",
    "attribution",
    "schema",
]


def _specs(root: Path) -> Path:
    specs = root / "specs"
    for n in range(1, SPECS + 1):
        folder = specs / f"{n:03d}-spec-{n}"
        folder.mkdir(parents=True)
        (folder / "README.md").write_text(
            f"---\nstatus: planned\ncreated: 2026-01-01\n---\n# Spec {n}\n\n## Overview\nAbout "
            f"{WORDS[n % len(WORDS)]}.\n",
            encoding="utf-8",
        )
    return specs


def _filled(memory: SpecMemory) -> None:
    names = [s.dir_name for s in memory.list_specs()]
    for i in range(EVENTS):
        words = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(3))
        fields = {"summary": f"event {i}: {words}", "files_changed": [f"src/m{i % 97}.py"]}
        memory.event_log.add(normalize_event(names[i % len(names)], "note", fields))


@contextmanager
def _engines(root: Path) -> Iterator[dict[str, Settings]]:
    specs = _specs(root)
    engines = {"sqlite": Settings.load(specs, root / "data-sqlite", model="fake")}
    with ExitStack() as stack:
        if binaries() is not None:
            # Not under a root-only tmp dir: as root the server runs as the `postgres` user.
            server_root = Path(tempfile.mkdtemp(prefix="specmem-pg-bench-"))
            stack.callback(shutil.rmtree, server_root, ignore_errors=True)
            server = PostgresServer(server_root).start()
            stack.callback(server.stop)
            engines["postgresql"] = Settings.load(
                specs,
                root / "data-postgresql",
                model="fake",
                events_url=server.create_database("bench"),
            )
        yield engines


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
    }


def _operations(client: TestClient, spec: str) -> dict[str, Callable[[int], Any]]:
    keys = itertools.count()
    return {
        "health (floor)": lambda i: client.get("/health"),
        "POST /events": lambda i: client.post(
            "/events", json={"spec": spec, "type": "note", "summary": f"timed {i}"}, headers=AUTH
        ),
        "POST /events, Idempotency-Key": lambda i: client.post(
            "/events",
            json={"spec": spec, "type": "note", "summary": f"keyed {i}"},
            headers={**AUTH, "Idempotency-Key": f"bench-{next(keys)}"},
        ),
        "GET /events?q=": lambda i: client.get(
            "/events", params={"q": f"{WORDS[i % len(WORDS)]} {WORDS[(i + 1) % len(WORDS)]}"}
        ),
        "GET /specs/{id}/history": lambda i: client.get(f"/specs/{spec}/history"),
    }


def measure() -> dict[str, Any]:
    report: dict[str, Any] = {"events": EVENTS, "rounds": ROUNDS}
    if binaries() is None:
        report["postgresql"] = "skipped: PostgreSQL is not installed (apt-get install postgresql)"
    with tempfile.TemporaryDirectory() as tmp, _engines(Path(tmp)) as engines, ExitStack() as stack:
        operations: dict[str, dict[str, Callable[[int], Any]]] = {}
        for engine, settings in engines.items():
            memory = SpecMemory(settings=settings)
            _filled(memory)
            client = stack.enter_context(
                TestClient(create_app(memory, token=TOKEN), base_url="http://localhost")
            )
            operations[engine] = _operations(client, memory.list_specs()[0].dir_name)
        samples = {e: {op: [] for op in ops} for e, ops in operations.items()}
        for op in next(iter(operations.values())):
            for i in range(ROUNDS):
                for engine, ops in operations.items():
                    started = time.perf_counter()
                    answer = ops[op](i)
                    samples[engine][op].append(time.perf_counter() - started)
                    if answer.status_code >= 400:
                        raise SystemExit(f"{engine} {op}: {answer.status_code} {answer.text}")
        for engine, by_op in samples.items():
            floor = statistics.median(by_op["health (floor)"])
            report[engine] = {
                op: {**_percentiles(s), "x_floor": round(statistics.median(s) / floor, 1)}
                for op, s in by_op.items()
            }
    if isinstance(report.get("postgresql"), dict):
        report["postgresql / sqlite, p50"] = {
            op: round(report["postgresql"][op]["p50_ms"] / report["sqlite"][op]["p50_ms"], 2)
            for op in report["sqlite"]
        }
    return report


def run(report: dict) -> None:
    report["event_log"] = figures = measure()
    print(json.dumps(figures, indent=2), flush=True)


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
    sys.exit(0)
