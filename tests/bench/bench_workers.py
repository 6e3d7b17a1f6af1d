"""Throughput of `specmem serve --workers N` (issue 15): 1 against 2 workers, as served.

The real CLI serves a copy of the LeanSpec corpus (a write must not touch ../shared) with the
real model's index and an event log beside it. wrk drives mixed read traffic over keep-alive
connections: for each dev query in turn, GET /search, POST /context (a 4,000-token bundle) and
GET /specs/{spec} of the query's answer. While it runs, a writer adds one tag a second to one
spec, each PATCH with the If-Match of its own read, retrying on 412: afterwards every tag whose
PATCH was answered 200 must be on the spec (no lost update). Non-2xx answers and socket errors
are counted from wrk's own summary; the target is none of either.

The load generator shares the two cores with the server, so its CPU is reported beside each
run, and so is the servers' CPU per request: on more cores, throughput scales with workers
until the cores run out, at about 1000 / (server CPU ms per request) per core. Runs alternate
1, 2, 1, 2 workers so that the machine's noise falls on both alike. Target: two workers serve
at least 1.4x one worker's requests per second, with zero errors.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ingest.config import Settings
from ingest.index.embedding import load_embedder
from retriever.evaluation.evaluate import read_queries
from retriever.service import SpecMemory
from tests.live_server import free_port

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpora" / "leanspec"
ROOT = REPO / ".specmem-bench" / "workers"
TOKEN = "bench-workers-token-0123456789"
SECONDS = 20
WARM_SECONDS = 15
CONNECTIONS = 16
ROUNDS = 2
BUDGET = 4000
WRITTEN_SPEC = "001"

_DONE_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "status_errors": %d, "socket_errors": %d, '
    .. '"timeouts": %d, "p50_ms": %.1f, "p99_ms": %.1f}\\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write,
    e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""


def _lua_string(text: str) -> str:
    # A JSON string of raw UTF-8 is a valid Lua string literal (LuaJIT knows no \\u escapes).
    return json.dumps(text, ensure_ascii=False)


def _traffic_script(queries: list[dict[str, Any]], path: Path) -> Path:
    """A wrk script cycling through search, context and a spec read for each query."""
    # wrk.format reads the Host header from wrk.headers, which is set only by the time init runs.
    lines = ["local r = {}", "init = function(args)"]
    for query in queries:
        q = query["query"]
        search = "/search?" + str(httpx.QueryParams({"q": q}))
        body = json.dumps({"query": q, "budget": BUDGET})
        lines.append(f"r[#r + 1] = wrk.format('GET', {_lua_string(search)})")
        lines.append(
            "r[#r + 1] = wrk.format('POST', '/context', "
            f"{{['content-type'] = 'application/json'}}, {_lua_string(body)})"
        )
        spec = query["relevant"][0]
        lines.append(f"r[#r + 1] = wrk.format('GET', {_lua_string('/specs/' + spec)})")
    lines += [
        "end",
        "local i = 0",
        "request = function()",
        "  i = i % #r + 1",
        "  return r[i]",
        "end",
        _DONE_LUA,
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _corpus_copy() -> Path:
    target = ROOT / "specs"
    if not target.exists():
        building = target.with_name("specs.building")
        shutil.rmtree(building, ignore_errors=True)
        shutil.copytree(CORPUS / "specs", building, symlinks=True)
        building.rename(target)
    return target


def _ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("   installing Debian's wrk for the workers bench", flush=True)
        quiet = {"stdout": subprocess.DEVNULL, "check": False}
        subprocess.run(["apt-get", "update", "-qq"], **quiet)  # type: ignore[call-overload]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, **quiet)  # type: ignore[call-overload]
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and could not be installed (apt-get install wrk)")
    return found


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _server_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [parent, *map(int, children)]


class _Server:
    def __init__(self, specs: Path, data: Path, workers: int):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, SPECMEM_API_TOKEN=TOKEN, ANONYMIZED_TELEMETRY="False")
        command = [str(Path(sys.executable).with_name("specmem")), "--specs-dir", str(specs)]
        command += ["--data-dir", str(data), "serve", "--port", str(self.port)]
        command += ["--workers", str(workers)]
        self.log = (ROOT / f"serve-{workers}.log").open("wb")
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=self.log
        )
        deadline = time.monotonic() + 120
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError((ROOT / f"serve-{workers}.log").read_text())
            time.sleep(0.2)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class _Writer(threading.Thread):
    """One tag a second on one spec, each PATCH with its own read's If-Match."""

    def __init__(self, base: str, label: str):
        super().__init__(name="bench-writer", daemon=True)
        self.base, self.label = base, label
        self.stopping = threading.Event()
        self.acknowledged: list[str] = []
        self.failures: list[str] = []
        self.conflicts = 0

    def run(self) -> None:
        headers = {"authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as http:
            i = 0
            while not self.stopping.wait(1.0):
                tag = f"bench-{self.label}-{i}"
                i += 1
                for _ in range(20):
                    etag = http.get(f"/specs/{WRITTEN_SPEC}").headers["etag"]
                    answer = http.patch(
                        f"/specs/{WRITTEN_SPEC}",
                        json={"tags": {"add": [tag]}},
                        headers={"If-Match": etag},
                    )
                    if answer.status_code == 412:
                        self.conflicts += 1
                        continue
                    if answer.status_code == 200:
                        self.acknowledged.append(tag)
                    else:
                        self.failures.append(f"{answer.status_code} {answer.text[:200]}")
                    break

    def lost(self) -> list[str]:
        tags = httpx.get(f"{self.base}/specs/{WRITTEN_SPEC}").json()["tags"]
        return [tag for tag in self.acknowledged if tag not in tags]

    def clean_up(self) -> None:
        headers = {"authorization": f"Bearer {TOKEN}"}
        answer = httpx.get(f"{self.base}/specs/{WRITTEN_SPEC}")
        ours = [tag for tag in answer.json()["tags"] if tag.startswith("bench-")]
        if ours:
            httpx.patch(
                f"{self.base}/specs/{WRITTEN_SPEC}",
                json={"tags": {"remove": ours}},
                headers={**headers, "If-Match": answer.headers["etag"]},
                timeout=60,
            ).raise_for_status()


def _wrk(wrk: str, base: str, script: Path, seconds: int) -> tuple[dict[str, Any], float]:
    """wrk's summary and the CPU seconds wrk itself used."""
    command = [wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s"]
    command += ["-s", str(script), base]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    out = process.stdout.read().decode() if process.stdout else ""
    summary = json.loads(out.strip().splitlines()[-1])
    return summary, usage.ru_utime + usage.ru_stime


def _one_run(specs: Path, data: Path, workers: int, script: Path, wrk: str, label: str) -> dict:
    server = _Server(specs, data, workers)
    try:
        _wrk(wrk, server.base, script, WARM_SECONDS)  # every worker loads its model and index
        pids = _server_pids(server.process.pid)
        writer = _Writer(server.base, label)
        cpu_before = _cpu_seconds(pids)
        writer.start()
        summary, wrk_cpu = _wrk(wrk, server.base, script, SECONDS)
        writer.stopping.set()
        writer.join()
        server_cpu = _cpu_seconds(pids) - cpu_before
        lost = writer.lost()
        writer.clean_up()
    finally:
        server.stop()
    seconds = summary["seconds"]
    return {
        "workers": workers,
        "requests": summary["requests"],
        "requests_per_second": round(summary["requests"] / seconds, 1),
        "p50_ms": summary["p50_ms"],
        "p99_ms": summary["p99_ms"],
        "errors": summary["status_errors"] + summary["socket_errors"] + summary["timeouts"],
        "load_generator_cpu_percent": round(100 * wrk_cpu / seconds, 1),
        "server_cpu_percent": round(100 * server_cpu / seconds, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(1, summary["requests"]), 2),
        "writes_acknowledged": len(writer.acknowledged),
        "write_conflicts_retried": writer.conflicts,
        "write_failures": writer.failures,
        "lost_updates": lost,
    }


def run(report: dict) -> None:
    wrk = _ensure_wrk()
    ROOT.mkdir(parents=True, exist_ok=True)
    specs = _corpus_copy()
    data = ROOT / "data"
    settings = Settings.load(specs, data)
    memory = SpecMemory(settings=settings, embedder=load_embedder(settings))
    memory.ingest()  # a no-op when the index is current
    if not memory.events(WRITTEN_SPEC):
        for spec in memory.list_specs():
            memory.log_event(spec.dir_name, "session", summary=f"worked on {spec.title}")
    queries = read_queries(CORPUS / "queries-dev.jsonl")
    script = _traffic_script(queries, ROOT / "traffic.lua")
    runs = []
    for round_ in range(ROUNDS):
        for workers in (1, 2):
            figures = _one_run(specs, data, workers, script, wrk, f"{workers}w{round_}")
            print(f"   {workers} worker(s): {figures}", flush=True)
            runs.append(figures)
    one = statistics.mean(r["requests_per_second"] for r in runs if r["workers"] == 1)
    two = statistics.mean(r["requests_per_second"] for r in runs if r["workers"] == 2)
    errors = sum(r["errors"] + len(r["write_failures"]) for r in runs)
    lost = sum(len(r["lost_updates"]) for r in runs)
    report["workers"] = {
        "connections": CONNECTIONS,
        "seconds_per_run": SECONDS,
        "runs": runs,
        "requests_per_second_1_worker": round(one, 1),
        "requests_per_second_2_workers": round(two, 1),
        "two_over_one": round(two / one, 2),
        "targets_met": {
            "2 workers >= 1.4x 1 worker": two / one >= 1.4,
            "zero errors": errors == 0,
            "no lost update": lost == 0,
        },
    }
