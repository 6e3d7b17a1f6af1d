"""Service errors as HTTP: a status per error class and one JSON shape for every failure.

Every error answer is `{"error": {"code": ..., "message": ...}}` with the stable `code` of the
`ingest.errors` class, so clients branch on the code, never on the wording.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.errors import (
    AmbiguousSpecRef,
    BackendUnavailable,
    IndexMismatch,
    InvalidInput,
    SpecmemError,
    SpecNotFound,
    SpecParseError,
    StaleWrite,
    UnsafeReference,
)

from .idempotency import IdempotencyKeyInUse

__all__ = ["error_response", "install_error_handlers", "status_for"]

# Most specific first: DependencyCycle is an InvalidInput, the idempotency errors subclass these.
_STATUS: tuple[tuple[type[SpecmemError], int], ...] = (
    (SpecNotFound, 404),
    (AmbiguousSpecRef, 409),
    (UnsafeReference, 400),
    (SpecParseError, 422),
    (StaleWrite, 412),
    (IdempotencyKeyInUse, 409),
    (InvalidInput, 422),
    (IndexMismatch, 409),
    (BackendUnavailable, 503),
)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    428: "precondition_required",
}


# Errors other modules define as subclasses, whose class the table above would misjudge: a search
# before any ingest is a valid request the server cannot answer yet, not a bad one.
_STATUS_BY_CODE = {"no_index": 409}


def status_for(err: SpecmemError) -> int:
    if err.code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[err.code]
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status
    return 500


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers
    )


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
    code = getattr(err, "code", None) or _HTTP_CODES.get(err.status_code, f"http_{err.status_code}")
    message = err.detail if isinstance(err.detail, str) else str(err.detail)
    return error_response(err.status_code, code, message, dict(err.headers or {}) or None)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SpecmemError, _specmem_error)
    app.add_exception_handler(NotImplementedError, _not_implemented)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
