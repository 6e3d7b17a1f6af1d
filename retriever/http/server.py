"""Running the app under uvicorn: limits before any request reaches the app, and JSON answers
even from what uvicorn answers by itself.

Before authentication, routing or the app see a request, `LimitedProtocol` bounds what one
connection may make the server hold or wait for (spec 075): the request line (414) and the whole
head (431) are counted as bytes arrive and refused before the parser buffers past the limit; a head
must be complete within `head_timeout` seconds of the connection opening or of its first byte
(408, or a plain close when nothing came); an idle keep-alive connection is closed after
`keep_alive_timeout`. Refusals are `{"error": {"code", "message"}}`, then the connection is
half-closed and lingers briefly, discarding input, so the client can read the answer before the
socket goes.

Two more answers never reach the app: a request uvicorn cannot parse (400) and an app that fails
before it starts a response (500). uvicorn writes both as text/plain; the protocol writes the
first as `bad_request`, `LastResort` answers the second as a 500 `internal_error` before uvicorn
would, and lets the exception on so uvicorn still logs it (spec 074). WebSocket upgrades are off:
no route speaks it, and an upgrade request is then an ordinary request the app answers.
"""

from __future__ import annotations

import asyncio
import http
import json
from collections.abc import MutableMapping
from typing import Any

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from .errors import INTERNAL_ERROR_MESSAGE, TrackedSend, error_body

__all__ = [
    "HEAD_TIMEOUT",
    "KEEP_ALIVE_TIMEOUT",
    "MAX_HEAD_BYTES",
    "MAX_REQUEST_LINE_BYTES",
    "HeadLimits",
    "JSONErrors",
    "JSONErrorsProtocol",
    "LastResort",
    "LimitedProtocol",
    "run",
    "serving_options",
]

Message = MutableMapping[str, Any]

# Figures and reasons: spec 075. nginx and Apache allow 8 KiB request lines; 64 KiB of head is
# twice nginx's default and holds any real client's headers (a token is ~50 bytes).
MAX_REQUEST_LINE_BYTES = 8 * 1024
MAX_HEAD_BYTES = 64 * 1024
HEAD_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
# After a refusal, how long the connection keeps reading (and discarding) so the client gets the
# answer instead of a reset.
LINGER_SECONDS = 1.0

_MALFORMED = json.dumps(
    error_body("bad_request", "malformed HTTP request: it could not be parsed")
).encode()
_INTERNAL = json.dumps(error_body("internal_error", INTERNAL_ERROR_MESSAGE)).encode()


def _raw_response(status: int, body: bytes, default_headers: Any = ()) -> bytes:
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n".encode()]
    for name, value in default_headers:
        head.append(name + b": " + value + b"\r\n")
    head.append(b"content-type: application/json\r\n")
    head.append(b"content-length: " + str(len(body)).encode() + b"\r\n")
    head.append(b"connection: close\r\n\r\n")
    return b"".join(head) + body


# The mixins below sit in front of one of uvicorn's protocol classes (httptools or h11), whose
# attributes they use; typed as Any, as those classes are not typed as bases.
_Protocol: Any = object


class JSONErrors(_Protocol):
    """A uvicorn protocol mixin: the 400 for an unparsable request in the one error shape."""

    def send_400_response(self, msg: str) -> None:
        self.transport.write(_raw_response(400, _MALFORMED, self.server_state.default_headers))
        self.transport.close()


class JSONErrorsProtocol(JSONErrors, AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools when installed, else h11) with a JSON 400."""


def _blank_line_end(data: bytes) -> int:
    """Index just past the first empty line (CRLF CRLF, or LF LF as h11 allows), or -1."""
    ends = [i + len(mark) for mark in (b"\n\r\n", b"\n\n") if (i := data.find(mark)) >= 0]
    return min(ends) if ends else -1


class HeadLimits(_Protocol):
    """A uvicorn protocol mixin that bounds each request head in size and in time (spec 075).

    Bytes are counted in `data_received`, before the parser sees them, while the connection is
    reading a head: from its opening, or from the end of the previous request, to the end of the
    headers (the parser's own callbacks mark both). Subclasses (see `serving_options`) set the
    limits as class attributes, as uvicorn builds one protocol per connection from the class.
    """

    max_request_line = MAX_REQUEST_LINE_BYTES
    max_head = MAX_HEAD_BYTES
    head_timeout = HEAD_TIMEOUT
    _reading_head = True

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._start_head()
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: read and drop
        if self._reading_head:
            self._arm_head_timer()
            refusal = self._count_head(data)
            if refusal is not None:
                self._refuse(*refusal)
                return
        super().data_received(data)
        if hasattr(self, "conn"):  # h11: its state says whether a head comes next
            import h11

            self._set_reading_head(self.conn.their_state is not h11.SEND_BODY)

    # httptools callbacks (h11 has none; see data_received)
    def on_headers_complete(self) -> None:
        self._set_reading_head(False)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._set_reading_head(True)
        super().on_message_complete()

    def _set_reading_head(self, reading: bool) -> None:
        if reading and not self._reading_head:
            self._start_head()
        elif not reading and self._reading_head:
            self._reading_head = False
            self._cancel_head_timer()

    def _start_head(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        self._line_bytes: int | None = 0  # None once the request line has ended
        self._tail = b""

    def _count_head(self, data: bytes) -> tuple[int, str, str] | None:
        """Count `data` into the head being read; the refusal once a limit is passed."""
        seen = self._tail + data
        end = _blank_line_end(seen)
        counted = len(data) if end < 0 else max(0, end - len(self._tail))
        if self._line_bytes is not None:
            newline = data.find(b"\n", 0, counted)
            self._line_bytes += counted if newline < 0 else newline
            if self._line_bytes > self.max_request_line:
                return (
                    414,
                    "uri_too_long",
                    f"the request line is over the {self.max_request_line}-byte limit",
                )
            if newline >= 0:
                self._line_bytes = None
        self._head_bytes += counted
        if self._head_bytes > self.max_head:
            return (
                431,
                "headers_too_large",
                f"the request line and headers are over the {self.max_head}-byte limit",
            )
        self._tail = seen[-3:]
        return None

    def _busy(self) -> bool:
        """Whether a response is being written on this connection (never interrupt it)."""
        cycle = getattr(self, "cycle", None)
        return cycle is not None and not cycle.response_complete

    def _refuse(self, status: int, code: str, message: str) -> None:
        self._refused = True
        self._cancel_head_timer()
        transport = self.transport
        if transport.is_closing():
            return
        if self._busy():
            transport.close()
            return
        body = json.dumps(error_body(code, message)).encode()
        transport.write(_raw_response(status, body, self.server_state.default_headers))
        if transport.can_write_eof():
            transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, transport.close)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._reading_head or self.transport.is_closing():
            return
        if self._busy():  # a pipelined head waits for the response before it
            self._arm_head_timer()
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(
            408,
            "request_timeout",
            f"the request headers did not arrive within {self.head_timeout:g} seconds",
        )


class LimitedProtocol(HeadLimits, JSONErrorsProtocol):
    """JSONErrorsProtocol with the default head limits: what `specmem serve` runs."""


class LastResort:
    """Outermost ASGI wrapper: a response that never started is a JSON 500, never text."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)
        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if not tracked.started:
                await self._internal_error(send)
            raise
        if not tracked.started:
            await self._internal_error(send)

    @staticmethod
    async def _internal_error(send: Any) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_INTERNAL)).encode()),
        ]
        await send({"type": "http.response.start", "status": 500, "headers": headers})
        await send({"type": "http.response.body", "body": _INTERNAL, "more_body": False})


def serving_options(
    *,
    max_request_line: int = MAX_REQUEST_LINE_BYTES,
    max_head: int = MAX_HEAD_BYTES,
    head_timeout: float = HEAD_TIMEOUT,
    keep_alive_timeout: int = KEEP_ALIVE_TIMEOUT,
    parser: type[asyncio.Protocol] = AutoHTTPProtocol,
) -> dict[str, Any]:
    """The uvicorn settings `run` adds: the limited, JSON-answering protocol over `parser`
    (uvicorn's httptools or h11 protocol), keep-alive timeout, no WebSocket upgrades."""
    protocol = type(
        "LimitedProtocol",
        (HeadLimits, JSONErrors, parser),
        {"max_request_line": max_request_line, "max_head": max_head, "head_timeout": head_timeout},
    )
    return {
        "http": protocol,
        "ws": "none",
        "timeout_keep_alive": keep_alive_timeout,
        # h11 (when httptools is missing) buffers a head up to this; ours must refuse first.
        "h11_max_incomplete_event_size": max_head + 1024,
    }


def run(app: Any, host: str, port: int, **options: Any) -> None:
    """uvicorn.run with limits and JSON errors at every layer; `options` go to uvicorn as they
    are."""
    settings = {"log_level": "warning", **serving_options(), **options}
    uvicorn.run(LastResort(app), host=host, port=port, **settings)
