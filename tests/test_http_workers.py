"""`specmem serve --workers 2`: two real processes on one port, one index, one event log (spec 092).

Every request here opens its own connection, so the kernel spreads them over both workers; each
property must hold whichever worker answers: a write is seen by the other worker's next read and
search, writes of one spec are serialized across processes, one idempotency key gives one
result, MCP works without sessions, a worker that dies is replaced, a taken port fails at once.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

from tests.live_server import free_port
from tests.test_faults import build_corpus
from tests.test_idempotency_crash import AUTH, server_env, transition_count

WORKERS = 2


class Served(NamedTuple):
    specs: Path
    base: str
    parent: int  # the supervisor's pid


def worker_pids(parent: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker)."""
    found = set()
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    for pid in map(int, children):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            found.add(pid)
    return found


@contextmanager
def serving_workers(specs: Path, data: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    port = free_port()
    log = (data.parent / f"serve-{port}.log").open("wb")
    command = [str(Path(sys.executable).with_name("specmem")), "--specs-dir", str(specs)]
    command += ["--data-dir", str(data), "serve", "--port", str(port), "--workers", str(WORKERS)]
    server = subprocess.Popen(command, env=server_env(), stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while len(worker_pids(server.pid)) < WORKERS or not _healthy(base):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((data.parent / f"serve-{port}.log").read_text())
            time.sleep(0.1)
        yield server, base
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=40)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def each_on_its_own_connection(count: int, send) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda i: send(i), range(count)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("workers")
    previous = os.environ.get("SPECMEM_MODEL")
    os.environ["SPECMEM_MODEL"] = "fake"
    try:
        specs, data = build_corpus(root)
    finally:
        if previous is None:
            os.environ.pop("SPECMEM_MODEL", None)
        else:
            os.environ["SPECMEM_MODEL"] = previous
    with serving_workers(specs, data) as (server, base):
        yield Served(specs, base, server.pid)


def test_a_status_change_in_one_worker_is_what_every_worker_answers(served):
    base = served.base
    etag = httpx.get(f"{base}/specs/002").headers["etag"]
    changed = httpx.patch(
        f"{base}/specs/002", json={"status": "complete"}, headers={**AUTH, "If-Match": etag}
    )
    assert changed.status_code == 200, changed.text
    reads = each_on_its_own_connection(16, lambda i: httpx.get(f"{base}/specs/002"))
    assert {r.json()["status"] for r in reads} == {"complete"}
    found = each_on_its_own_connection(
        16,
        lambda i: httpx.get(
            f"{base}/search", params={"q": "refresh", "status": "complete", "mode": "lexical"}
        ),
    )
    assert all("002-" in " ".join(h["spec"] for h in r.json()["results"]) for r in found)


def test_racing_writes_of_one_spec_across_workers_land_once(served):
    specs = served.specs
    base = served.base
    etag = httpx.get(f"{base}/specs/003").headers["etag"]
    before = transition_count(specs, "003", "in-progress")

    def patch(i: int) -> httpx.Response:
        body = {"status": "in-progress", "tags": {"add": [f"racer-{i}"]}}
        return httpx.patch(
            f"{base}/specs/003", json=body, headers={**AUTH, "If-Match": etag}, timeout=60
        )

    answers = each_on_its_own_connection(8, patch)
    assert sorted(r.status_code for r in answers) == [200] + [412] * 7, [r.text for r in answers]
    tags = httpx.get(f"{base}/specs/003").json()["tags"]
    assert len([t for t in tags if t.startswith("racer-")]) == 1
    assert transition_count(specs, "003", "in-progress") == before + 1


def test_one_idempotency_key_is_one_result_whichever_worker_a_retry_reaches(served):
    base = served.base
    event = {"spec": "001", "type": "session", "summary": "worker retries"}
    headers = {**AUTH, "Idempotency-Key": "relay-workers-1"}

    def send(i: int) -> httpx.Response:
        return httpx.post(f"{base}/events", json=event, headers=headers, timeout=60)

    answers = each_on_its_own_connection(8, send)
    # A retry that arrives while the first is still running is told to try again (409).
    assert {r.status_code for r in answers} <= {201, 409}, [r.text for r in answers]
    retries = each_on_its_own_connection(8, send)
    assert {r.status_code for r in retries} == {201}
    assert len({r.json()["id"] for r in [*answers, *retries] if r.status_code == 201}) == 1
    stored = httpx.get(f"{base}/specs/001/events").json()["events"]
    assert [e["summary"] for e in stored].count("worker retries") == 1


def test_creates_in_both_workers_get_distinct_numbers(served):
    specs = served.specs
    base = served.base

    def create(i: int) -> httpx.Response:
        return httpx.post(
            f"{base}/specs", json={"title": f"Parallel create {i}"}, headers=AUTH, timeout=60
        )

    answers = each_on_its_own_connection(6, create)
    assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
    numbers = [r.json()["spec"].split("-")[0] for r in answers]
    assert len(set(numbers)) == 6
    assert len({p.name.split("-")[0] for p in specs.iterdir() if p.is_dir()}) == len(
        [p for p in specs.iterdir() if p.is_dir()]
    )


def test_mcp_runs_without_sessions_across_workers(served):
    import anyio
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    base = served.base

    async def session() -> tuple[set[str], list[str]]:
        async with (
            httpx2.AsyncClient(headers=AUTH, timeout=60) as http,
            Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
        ):
            names = {tool.name for tool in (await client.list_tools()).tools}
            found = []
            for _ in range(6):  # each call may reach either worker
                result = await client.call_tool(
                    "search_specs", {"query": "refresh", "mode": "lexical"}
                )
                assert not result.is_error, result.content
                found.append(result.structured_content["results"][0]["spec"])
            return names, found

    names, found = anyio.run(session)
    assert "search_specs" in names and "update_spec" in names
    assert len(found) == 6 and len(set(found)) == 1


def test_a_worker_that_dies_is_replaced(served):
    base = served.base
    parent = served.parent
    before = worker_pids(parent)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        now = worker_pids(parent)
        if victim not in now and len(now) == WORKERS:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.1)
    answers = each_on_its_own_connection(8, lambda i: httpx.get(f"{base}/health", timeout=30))
    assert {r.status_code for r in answers} == {200}


def test_a_port_in_use_fails_before_any_worker_starts(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = [str(Path(sys.executable).with_name("specmem")), "--specs-dir", str(specs)]
        command += ["--data-dir", str(tmp_path / "data"), "serve", "--port", str(port)]
        done = subprocess.run(
            [*command, "--workers", "2"], env=server_env(), capture_output=True, timeout=60
        )
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr.decode()


def _projects_file(tmp_path: Path, request: pytest.FixtureRequest, **specs: Path) -> Path:
    """A projects file naming each spec folder; on the PostgreSQL pass each project gets its own
    database, since two projects may never share one event log (spec 093)."""
    lines = []
    for name, folder in specs.items():
        lines += [f"[projects.{name}]", f'specs = "{folder}"']
        if os.environ.get("SPECMEM_EVENTS_URL"):
            server = request.getfixturevalue("postgres")
            lines.append(f'events_url = "{server.create_database(server.fresh_name())}"')
    path = tmp_path / "projects.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_workers_over_projects_build_a_missing_index_once_and_all_search_it(tmp_path, request):
    indexed, _ = build_corpus(tmp_path / "indexed")
    fresh = tmp_path / "fresh" / "specs"  # the same specs, no index yet
    shutil.copytree(indexed, fresh)
    port = free_port()
    log_path = tmp_path / "serve.log"
    projects = _projects_file(tmp_path, request, old=indexed, new=fresh)
    command = [str(Path(sys.executable).with_name("specmem")), "serve", "--port", str(port)]
    command += ["--workers", str(WORKERS), "--projects", str(projects)]
    env = server_env()
    env.pop("SPECMEM_EVENTS_URL", None)
    # Every worker tries the build; the index lock lets one run it and the other follow it.
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log_path.read_text())
            answers = (
                []
                if not _healthy(base)
                else each_on_its_own_connection(
                    8,
                    lambda i: httpx.get(
                        f"{base}/search", params={"q": "refresh", "mode": "lexical"}
                    ),
                )
            )
            if answers and all(
                a.status_code == 200 and not a.json().get("projects_skipped") for a in answers
            ):
                break
            time.sleep(0.2)
        projects = {hit["project"] for a in answers for hit in a.json()["results"]}
        assert projects == {"old", "new"}
    finally:
        server.terminate()
        server.wait(timeout=40)
