"""`specmem serve --workers N`: N server processes on one listening socket, one index.

A search holds the GIL for its numpy and Python work, so past what the embedding runtime's
own threads and the query-embedding overlap give (about 1.5 of 2 cores, measured in spec 092),
more cores are only used by more processes. The parent binds the socket once (an address in
use fails here, before any worker starts), starts N workers with the spawn method (a fork of a
process that already holds threads, an inotify descriptor and SQLite connections is unsafe),
and hands each the socket; the kernel gives each new connection to one of them.

Each worker builds its own SpecMemory from the same Settings, so each owns its own caches, and
what they share is on disk, where it already is correct across processes: the index generation
that every search checks (retriever.ranking.warm_loader), the specs dir each worker watches
(retriever.live_catalog), the per-spec write locks and the index lock (ingest.atomic,
ingest.index.pipeline), the event log and its idempotency keys in one SQLite file whose claims
name the process that holds them (retriever.http.idempotency). MCP over streamable HTTP runs
stateless: a session kept in one worker's memory would be unknown to the next worker that the
kernel hands the client's next connection.

The parent only supervises: a worker that dies is replaced; one that cannot start (it exits
within STARTUP_SECONDS, STARTUP_FAILURES times running) stops the server with its exit code
rather than restarting forever. SIGTERM or SIGINT stops every worker gracefully.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.config import Settings

from ..projects.config import ProjectSources

__all__ = ["ServePlan", "serve_workers"]

log = logging.getLogger(__name__)

STARTUP_SECONDS = 10.0
STARTUP_FAILURES = 3
STOP_SECONDS = 30.0
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class ServePlan:
    """What every worker builds its app from: picklable, as the spawn method sends it over."""

    settings: Settings
    app_options: dict[str, Any] = field(default_factory=dict)  # create_app's keyword arguments
    projects: ProjectSources | None = None  # several named projects instead of `settings`'
    workers: int = 1


def serve_worker(plan: ServePlan, sock: socket.socket) -> None:
    """One worker: its own SpecMemory and app, served by uvicorn on the inherited socket."""
    import uvicorn

    from ..projects import Projects
    from ..service import SpecMemory
    from .app import create_app
    from .server import LastResort, serving_options

    served: SpecMemory | Projects
    if plan.projects is not None:
        # Each worker reads the projects file itself; a missing index is built by whichever
        # worker takes the index lock first, and the others then find it built.
        served = Projects.open(
            plan.projects, tune=lambda s: share_cores(s, plan.workers), build_missing=True
        )
    else:
        served = SpecMemory(settings=plan.settings)
    app = create_app(served, **plan.app_options)
    config = uvicorn.Config(LastResort(app), log_level="warning", **serving_options())
    uvicorn.Server(config).run(sockets=[sock])


def share_cores(settings: Settings, count: int) -> Settings:
    """Each of `count` workers embeds on its share of the cores, unless SPECMEM_EMBED_THREADS
    says otherwise: left to itself, each worker's runtime would start a thread per core, and
    the threads of all of them would fight over the same cores (spec 092)."""
    if settings.embed_threads is not None:
        return settings
    cores = len(os.sched_getaffinity(0))
    return replace(settings, embed_threads=max(1, cores // count))


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class _Supervisor:
    def __init__(self, plan: ServePlan, sock: socket.socket, count: int):
        self.plan = plan
        self.sock = sock
        self.count = count
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        self.workers: list[Any] = []
        self.started: list[float] = []
        self.quick_failures = 0

    def start(self, slot: int | None = None) -> None:
        process = self.context.Process(
            target=serve_worker, args=(self.plan, self.sock), name="specmem-worker", daemon=False
        )
        process.start()
        if slot is None:
            self.workers.append(process)
            self.started.append(time.monotonic())
        else:
            self.workers[slot] = process
            self.started[slot] = time.monotonic()

    def run(self) -> int:
        for _ in range(self.count):
            self.start()
        while not self.stopping.wait(_POLL_SECONDS):
            for slot, process in enumerate(self.workers):
                if process.is_alive() or self.stopping.is_set():
                    continue
                code = process.exitcode
                quick = time.monotonic() - self.started[slot] < STARTUP_SECONDS
                self.quick_failures = self.quick_failures + 1 if quick else 0
                if self.quick_failures >= STARTUP_FAILURES:
                    log.error("specmem: workers keep exiting at start (code %s); stopping", code)
                    self.stop()
                    return code if isinstance(code, int) and code > 0 else 1
                log.warning("specmem: worker %s exited with code %s; starting another", slot, code)
                self.start(slot)
        self.stop()
        return 0

    def stop(self) -> None:
        self.stopping.set()
        for process in self.workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + STOP_SECONDS
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def serve_workers(plan: ServePlan, host: str, port: int, count: int) -> int:
    """Serve with `count` worker processes until SIGTERM or SIGINT; the exit code."""
    sock = bind(host, port)
    plan = replace(plan, settings=share_cores(plan.settings, count), workers=count)
    supervisor = _Supervisor(plan, sock, count)

    def request_stop(signum: int, frame: object) -> None:
        supervisor.stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return supervisor.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
