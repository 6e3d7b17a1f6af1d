"""Service errors as HTTP: a status per error class and one JSON shape for every failure.

Every error answer is `{"error": {"code": ..., "message": ...}}` with the stable `code` of the
`ingest.errors` class, so clients branch on the code, never on the wording. That holds for
failures nobody planned (spec 074): an unexpected exception is a 500 `internal_error` that says
nothing about the server beyond "see its log", and `AnswerShape` turns any error another layer
answers in text (the MCP SDK's transport checks, Starlette's own) into the same shape and shows
server paths relative to the specs dir in every JSON answer. Errors uvicorn answers before the
app runs (a malformed request) are shaped by retriever.http.server.
"""

from __future__ import annotations

import json
import math
from collections.abc import MutableMapping
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import (
    AmbiguousSpecRef,
    BackendUnavailable,
    Busy,
    DiskFull,
    IndexDamaged,
    IndexMismatch,
    InvalidInput,
    NoIndex,
    ProjectNotFound,
    SpecmemError,
    SpecNotFound,
    SpecParseError,
    StaleWrite,
    StorageUnavailable,
    UnsafeReference,
)

from .idempotency import IdempotencyKeyInUse

__all__ = [
    "INTERNAL_ERROR_MESSAGE",
    "AnswerShape",
    "TrackedSend",
    "error_body",
    "error_response",
    "install_error_handlers",
    "status_for",
]

INTERNAL_ERROR_MESSAGE = (
    "internal error: the request failed unexpectedly; the server log has details"
)

# Most specific first: DependencyCycle is an InvalidInput, the idempotency errors subclass these.
_STATUS: tuple[tuple[type[SpecmemError], int], ...] = (
    (SpecNotFound, 404),
    (ProjectNotFound, 404),
    (AmbiguousSpecRef, 409),
    (UnsafeReference, 400),
    (SpecParseError, 422),
    (StaleWrite, 412),
    (IdempotencyKeyInUse, 409),
    (NoIndex, 409),  # before InvalidInput, its base: the first class that matches decides
    (InvalidInput, 422),
    (IndexMismatch, 409),
    (IndexDamaged, 409),
    (BackendUnavailable, 503),
    (DiskFull, 507),
    (StorageUnavailable, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "request_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    421: "misdirected_request",
    422: "invalid_input",
    428: "precondition_required",
    429: "too_many_requests",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    507: "insufficient_storage",
}


class TrackedSend:
    """An ASGI `send` that remembers whether the response started: a wrapper that catches a
    failure may then still answer it, and must not once headers went out."""

    def __init__(self, send: Any):
        self._send = send
        self.started = False

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def code_for_status(status: int) -> str:
    return _HTTP_CODES.get(status, f"http_{status}")


def status_for(err: SpecmemError) -> int:
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status
    return 500


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


def _specmem_error(_: Request, exc: Exception) -> JSONResponse:
    err = cast(SpecmemError, exc)  # registered for SpecmemError only
    extra: dict[str, Any] = {}
    headers = None
    if isinstance(err, StaleWrite):
        # The writer needs the current version to retry without another round trip.
        extra = {"spec": err.spec, "current_hash": err.current, "expected_hash": err.expected}
        headers = {"ETag": f'"{err.current}"'}
    if isinstance(err, AmbiguousSpecRef):
        extra = {"candidates": err.candidates}
    if isinstance(err, Busy):
        # Nothing was written: the client may retry as is, after this long (spec 076).
        headers = {"Retry-After": str(max(1, math.ceil(err.retry_after)))}
    return error_response(status_for(err), err.code, str(err), headers, **extra)


def _not_implemented(_: Request, err: Exception) -> JSONResponse:
    return error_response(501, "not_implemented", f"not available in this build: {err}".strip())


def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    err = cast(RequestValidationError, exc)
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
        for e in err.errors()
    ]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
    return error_response(422, "invalid_input", summary or "invalid request", details=details)


def _http_error(_: Request, exc: Exception) -> JSONResponse:
    err = cast(StarletteHTTPException, exc)
    code = getattr(err, "code", None) or code_for_status(err.status_code)
    message = err.detail if isinstance(err.detail, str) else str(err.detail)
    return error_response(err.status_code, code, message, dict(err.headers or {}) or None)


def _internal_error(_: Request, exc: Exception) -> JSONResponse:
    # The client learns only that it failed: no traceback, no path, no exception text. The
    # traceback goes to the server log (Starlette re-raises after this answer; uvicorn logs it).
    return error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SpecmemError, _specmem_error)
    app.add_exception_handler(NotImplementedError, _not_implemented)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # `Exception` goes to Starlette's outermost ServerErrorMiddleware: it answers with this and
    # then re-raises, so uvicorn still logs the failure and TestClient can still surface it.
    app.add_exception_handler(Exception, _internal_error)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

# Error texts are a line or two; a body larger than this is cut before it becomes a message.
_MAX_ERROR_TEXT = 300


class AnswerShape:
    """ASGI middleware: what leaves the server is JSON-shaped, and names no absolute path.

    Answers that are not JSON and not errors (the docs page, event streams) pass through
    untouched and unbuffered. A JSON answer has its server paths shown by `display`
    (retriever.paths); an error answered in any other type becomes
    `{"error": {"code", "message"}}` with the status's stable code and the original text.
    """

    def __init__(self, app: Any, display: Any):
        self.app = app
        self.display = display

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def shaping_send(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
            elif message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                kind = headers.get(b"content-type", b"").decode("latin-1").lower()
                if "json" in kind or message["status"] >= 400:
                    start = message
                else:
                    passthrough = True
                    await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await self._send_shaped(send, start, b"".join(chunks))
            else:
                await send(message)

        await self.app(scope, receive, shaping_send)

    async def _send_shaped(self, send: Any, start: Message, body: bytes) -> None:
        status = start["status"]
        headers = [
            (name, value)
            for name, value in start.get("headers") or []
            if name.lower() not in (b"content-length", b"content-type")
        ]
        kind = dict(start.get("headers") or []).get(b"content-type", b"").decode("latin-1")
        if "json" in kind.lower():
            text = self.display.json_text(body.decode("utf-8", "replace"))
            content_type = kind.encode("latin-1")
        else:
            original = body.decode("utf-8", "replace").strip()[:_MAX_ERROR_TEXT]
            message = INTERNAL_ERROR_MESSAGE if status == 500 else original
            code = code_for_status(status)
            text = json.dumps(error_body(code, self.display.text(message or code)))
            content_type = b"application/json"
        payload = text.encode("utf-8")
        headers += [
            (b"content-type", content_type),
            (b"content-length", str(len(payload)).encode()),
        ]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})
