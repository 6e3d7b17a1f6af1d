"""The write gate: a bounded number of writes at once per process, a bounded queue, a deadline.

A write can block for seconds (a spec lock another process holds, the re-index after it). The
HTTP routes and the MCP tools used to run writes on the worker threads that reads need too
(anyio's 40 by default), so forty stuck writes left no thread for `GET /specs/X` or `/health`
(issue 11 class 6). Here a write first takes one of `slots`; at most `queue` writes wait for one,
for at most `wait` seconds; past either bound the write is refused with Busy (HTTP 503 with
Retry-After) before it touches anything. `run` is for async front doors: it waits in the event
loop, not on a thread, and runs the write on a thread of its own, never one of the shared pool's.
Sync callers (the CLI, the Python API) use `held` (spec 076).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import anyio.to_thread

from ingest.errors import Busy

__all__ = ["WRITE_QUEUE", "WRITE_SLOTS", "WRITE_WAIT_SECONDS", "WriteGate"]

T = TypeVar("T")

WRITE_SLOTS = 4  # writes of different specs overlap; more only contend for the GIL and SQLite
WRITE_QUEUE = 64  # waiting writes beyond this are refused at once
WRITE_WAIT_SECONDS = 10.0  # a write waits this long for a slot, then is refused
_POLL_SECONDS = 0.005


class WriteGate:
    def __init__(
        self,
        slots: int = WRITE_SLOTS,
        queue: int = WRITE_QUEUE,
        wait: float = WRITE_WAIT_SECONDS,
    ):
        if slots < 1 or queue < 0 or wait < 0:
            raise ValueError("slots must be at least 1, queue and wait not negative")
        self.slots, self.queue, self.wait = slots, queue, wait
        self._free = threading.BoundedSemaphore(slots)
        self._waiting = 0
        self._count = threading.Lock()
        self._inside = threading.local()  # this thread already holds a slot: nested writes pass

    def _busy(self, why: str) -> Busy:
        return Busy(f"the server is busy with other writes ({why}); nothing was written, retry")

    def _enqueue(self) -> None:
        with self._count:
            if self._waiting >= self.queue:
                raise self._busy(f"{self._waiting} writes already waiting")
            self._waiting += 1

    def _dequeue(self) -> None:
        with self._count:
            self._waiting -= 1

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold a slot on this thread for the block, waiting at most `wait` seconds for one."""
        if getattr(self._inside, "held", False):
            yield
            return
        self._enqueue()
        try:
            got = self._free.acquire(timeout=self.wait)
        finally:
            self._dequeue()
        if not got:
            raise self._busy(f"no write slot free within {self.wait:g} s")
        try:
            self._inside.held = True
            yield
        finally:
            self._inside.held = False
            self._free.release()

    async def run(self, write: Callable[[], T]) -> T:
        """Run `write` on a thread of its own once a slot is free; Busy past the bounds."""
        self._enqueue()
        try:
            deadline = time.monotonic() + self.wait
            while not self._free.acquire(blocking=False):
                if time.monotonic() >= deadline:
                    raise self._busy(f"no write slot free within {self.wait:g} s")
                await anyio.sleep(_POLL_SECONDS)
        finally:
            self._dequeue()
        started = False

        def in_slot() -> T:
            nonlocal started
            started = True
            self._inside.held = True
            try:
                return write()
            finally:
                self._inside.held = False
                self._free.release()

        try:
            # A limiter of its own: the write never takes a token of the pool that reads run on.
            return await anyio.to_thread.run_sync(in_slot, limiter=anyio.CapacityLimiter(1))
        except BaseException:
            if not started:  # cancelled before the thread ran: the slot is still ours
                self._free.release()
            raise
