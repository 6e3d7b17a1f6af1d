"""Bounded load against a real `specmem serve` process on loopback; writes its figures as JSON.

    python -m tests.stress.load --out /tmp/load.json [--clients 8] [--requests 1200]
        [--seconds 120] [--specs 60] [--model fake|real] [--update-share 0.15] [--phases 2]
        [--ingest-during]

It copies the first `--specs` specs of the LeanSpec corpus to a scratch dir, ingests them, starts
`specmem serve` on a free loopback port, warms it, then runs equal phases (two by default) of concurrent
clients mixing search (60%), context (25%) and status updates (15%; each client owns its own
spec, so an If-Match conflict would be a bug, not contention). It stops by itself after the fixed
request count or the time limit, whichever comes first, and reports per-kind p50/p99 latency,
throughput, errors, and the server's RSS after warm-up and after each phase (growth in the last
phase is the leak signal: the first phase still fills caches).

With `--ingest-during`, `specmem ingest --full` runs back to back in another process for the
whole last phase, holding the index lock as a real ingest does: reads must keep the latency of the
phase before, and updates land with a "not re-indexed" warning or answer 503 `busy` (counted
apart from errors; spec 076).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.live_server import free_port

__all__ = ["run_load"]

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpora" / "leanspec"
TOKEN = "load-token-0123456789"
QUERIES = [
    "how are context bundles packed within a token budget",
    "spec status transitions and validation",
    "MCP server tools for agents",
    "dependency graph cycles",
    "search ranking with embeddings",
    "frontmatter parsing",
    "archive a spec",
    "token counting",
]
STATUSES = ("planned", "in-progress", "complete")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def _percentile_ms(values: list[float], fraction: float) -> float | None:
    """The nearest-rank percentile in milliseconds; None (valid JSON, unlike NaN) when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] * 1000, 1)


def _prepare(root: Path, count: int, env: dict[str, str]) -> Path:
    specs = root / "specs"
    specs.mkdir()
    names = sorted(
        p.name for p in (CORPUS / "specs").iterdir() if p.is_dir() and p.name[:3].isdigit()
    )
    for name in names[:count]:
        shutil.copytree(CORPUS / "specs" / name, specs / name, symlinks=True)
    subprocess.run(
        [
            str(Path(sys.executable).with_name("specmem")),
            "--specs-dir",
            str(specs),
            "--data-dir",
            str(root / "data"),
            "ingest",
            "-q",
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=1800,
    )
    return specs


def _busy(response: httpx.Response) -> bool:
    try:
        return response.json()["error"]["code"] == "busy"
    except (ValueError, KeyError, TypeError):
        return False


class IngestLoop(threading.Thread):
    """`specmem ingest --full` in another process, back to back until `stop` is set."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.command, self.env = command, env
        self.stop = threading.Event()
        self.runs: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            done = subprocess.run(
                self.command, env=self.env, capture_output=True, text=True, timeout=1800
            )
            self.runs.append(time.perf_counter() - started)
            if done.returncode != 0:
                self.failures.append(done.stderr[-300:])


class Client(threading.Thread):
    def __init__(
        self, base: str, own_spec: str, quota: int, stop_at: float, seed: int, update_share: float
    ) -> None:
        super().__init__(daemon=True)
        self.base, self.own_spec, self.quota, self.stop_at = base, own_spec, quota, stop_at
        # Reads split 60:25 between search and context; updates take `update_share`.
        self.search_below = (1 - update_share) * 0.6 / 0.85
        self.context_below = 1 - update_share
        self.rng = random.Random(seed)
        self.latencies: dict[str, list[float]] = {"search": [], "context": [], "update": []}
        self.errors: list[str] = []
        self.busy = 0  # updates refused with 503 busy: nothing written, the client may retry
        self.unindexed = 0  # updates that landed with a "not re-indexed" warning

    def run(self) -> None:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=self.base, timeout=60) as http:
            for step in range(self.quota):
                if time.monotonic() > self.stop_at:
                    return
                roll = self.rng.random()
                started = time.perf_counter()
                try:
                    if roll < self.search_below:
                        kind = "search"
                        response = http.get(
                            "/search", params={"q": self.rng.choice(QUERIES), "limit": 10}
                        )
                    elif roll < self.context_below:
                        kind = "context"
                        response = http.post(
                            "/context", json={"query": self.rng.choice(QUERIES), "budget": 4000}
                        )
                    else:
                        kind = "update"
                        etag = http.get(f"/specs/{self.own_spec}", headers=auth).headers["etag"]
                        response = http.patch(
                            f"/specs/{self.own_spec}",
                            json={"status": STATUSES[step % 3]},
                            headers={**auth, "If-Match": etag},
                        )
                    elapsed = time.perf_counter() - started
                    if kind == "update" and response.status_code == 503 and _busy(response):
                        self.busy += 1
                        continue
                    if kind == "update" and response.status_code == 200:
                        warnings = response.json().get("warnings") or []
                        self.unindexed += any(w.startswith("not re-indexed") for w in warnings)
                    if response.status_code >= 400:
                        self.errors.append(f"{kind} {response.status_code} {response.text[:200]}")
                    else:
                        self.latencies[kind].append(elapsed)
                except Exception as err:  # a dropped connection is an error to count, not a crash
                    self.errors.append(f"{type(err).__name__}: {err}")


def _phase(
    base: str,
    specs: list[str],
    clients: int,
    requests: int,
    seconds: float,
    seed: int,
    update_share: float = 0.15,
) -> dict[str, Any]:
    stop_at = time.monotonic() + seconds
    workers = [
        Client(
            base, specs[i % len(specs)], requests // clients, stop_at, seed * 100 + i, update_share
        )
        for i in range(clients)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - started
    figures: dict[str, Any] = {"wall_s": round(wall, 2)}
    total = 0
    for kind in ("search", "context", "update"):
        values = [v for w in workers for v in w.latencies[kind]]
        total += len(values)
        figures[kind] = {
            "ok": len(values),
            "p50_ms": _percentile_ms(values, 0.50),
            "p99_ms": _percentile_ms(values, 0.99),
            "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else None,
        }
    errors = [e for w in workers for e in w.errors]
    figures.update(
        ok=total,
        busy=sum(w.busy for w in workers),
        unindexed=sum(w.unindexed for w in workers),
        errors=len(errors),
        error_samples=errors[:5],
        throughput_rps=round(total / wall, 1) if wall else None,
    )
    return figures


def run_load(
    out: Path,
    *,
    clients: int = 8,
    requests: int = 1200,
    seconds: float = 120,
    specs: int = 60,
    model: str = "fake",
    update_share: float = 0.15,
    phases: int = 2,
    ingest_during: bool = False,
) -> dict[str, Any]:
    """Run the whole bounded load and write the figures to `out`; returns them. `requests` and
    `seconds` are shared equally by `phases` (at least 2) phases; `ingest_during` runs full
    ingests in another process throughout the last one."""
    if phases < 2:
        raise ValueError("at least two phases: growth is measured between phases")
    root = Path(tempfile.mkdtemp(prefix="specmem-load-"))
    env = dict(
        os.environ,
        SPECMEM_API_TOKEN=TOKEN,
        ANONYMIZED_TELEMETRY="False",
        HF_HUB_OFFLINE="1",
        OPENBLAS_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.pop("SPECMEM_CHROMA_URL", None)
    if model == "fake":
        env["SPECMEM_MODEL"] = "fake"
    else:
        env.pop("SPECMEM_MODEL", None)
    server = None
    try:
        specs_dir = _prepare(root, specs, env)
        spec_names = sorted(p.name for p in specs_dir.iterdir())
        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("specmem")),
                "--specs-dir",
                str(specs_dir),
                "--data-dir",
                str(root / "data"),
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe: nobody reads a pipe during the run, and a full one would block
            # the server mid-load.
            stderr=(root / "serve.log").open("wb"),
        )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log = (root / "serve.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"specmem serve did not start: {log}")
            time.sleep(0.2)
        warm = _phase(base, spec_names, 2, 40, 60, seed=0)  # loads the model and warm index
        rss = {"after_warmup": _rss_kib(server.pid)}
        figures = {
            "model": model,
            "ingest_during_last_phase": ingest_during,
            "update_share": update_share,
            "specs": len(spec_names),
            "clients": clients,
            "phases": phases,
            "requests_planned": requests,
            "seconds_limit": seconds,
            "warmup": {"ok": warm["ok"], "errors": warm["errors"]},
        }
        errors = warm["errors"]
        ingest_command = [
            str(Path(sys.executable).with_name("specmem")),
            "--specs-dir",
            str(specs_dir),
            "--data-dir",
            str(root / "data"),
            "ingest",
            "--full",
            "-q",
        ]
        for number in range(1, phases + 1):
            ingests = None
            if ingest_during and number == phases:
                ingests = IngestLoop(ingest_command, env)
                ingests.start()
                time.sleep(1.0)  # the first ingest has the lock before the phase starts
            figures[f"phase{number}"] = phase = _phase(
                base,
                spec_names,
                clients,
                requests // phases,
                seconds / phases,
                number,
                update_share,
            )
            errors += phase["errors"]
            if ingests is not None:
                ingests.stop.set()
                ingests.join()
                phase["ingests"] = {
                    "runs": len(ingests.runs),
                    "mean_s": round(statistics.fmean(ingests.runs), 2) if ingests.runs else None,
                    "failures": ingests.failures[:3],
                }
                errors += len(ingests.failures)
            rss[f"after_phase{number}"] = _rss_kib(server.pid)
        figures.update(
            errors=errors,
            rss_kib=rss,
            # The first phase still fills caches; growth in the LAST one is the leak signal.
            rss_growth_phase2_kib=rss["after_phase2"] - rss["after_phase1"],
            rss_growth_last_phase_kib=rss[f"after_phase{phases}"] - rss[f"after_phase{phases - 1}"],
            server_alive=server.poll() is None,
        )
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(root, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--specs", type=int, default=60)
    parser.add_argument("--model", choices=("fake", "real"), default="fake")
    parser.add_argument("--update-share", type=float, default=0.15)
    parser.add_argument("--phases", type=int, default=2)
    parser.add_argument("--ingest-during", action="store_true")
    args = parser.parse_args()
    figures = run_load(
        args.out,
        clients=args.clients,
        requests=args.requests,
        seconds=args.seconds,
        specs=args.specs,
        model=args.model,
        update_share=args.update_share,
        phases=args.phases,
        ingest_during=args.ingest_during,
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
