"""FastAPI dependencies as `Annotated` aliases: the service, access checks, idempotent replies.

Routes declare what they need (`memory: Memory`, `dependencies=[Writer]`) and the app built by
`create_app()` supplies it from `app.state`, so tests build an app around any SpecMemory without
patching a module-level global.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from ..service import SpecMemory
from .idempotency import IdempotencyKeys, Replay, crash_point, request_fingerprint
from .security import AccessPolicy

__all__ = [
    "Answer",
    "AuthRefused",
    "IdempotencyKey",
    "Memory",
    "Reader",
    "Writer",
    "replayed",
    "reply",
]

# Declared so OpenAPI shows the bearer scheme; the check itself is AccessPolicy's.
_bearer = HTTPBearer(auto_error=False, description="The server's SPECMEM_API_TOKEN")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


class AuthRefused(HTTPException):
    def __init__(self, status: int, code: str, message: str):
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        super().__init__(status, message, headers)
        self.code = code


def get_memory(request: Request) -> SpecMemory:
    return request.app.state.memory


def _check(request: Request, write: bool) -> None:
    policy: AccessPolicy = request.app.state.policy
    refusal = policy.refusal(request.headers.get("authorization"), write=write)
    if refusal:
        raise AuthRefused(*refusal)


def require_reader(request: Request, _: Credentials) -> None:
    _check(request, write=False)


def require_writer(request: Request, _: Credentials) -> None:
    _check(request, write=True)


Memory = Annotated[SpecMemory, Depends(get_memory)]
Reader = Depends(require_reader)
Writer = Depends(require_writer)
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Retry-safe key: a retry with the same key and body returns the first response.",
    ),
]


Answer = tuple[int, Any, dict[str, str]]
Recover = Callable[[list[dict[str, Any]]], Answer | None]


def reply(
    request: Request,
    key: str | None,
    payload: Any,
    produce: Callable[[], Answer],
    *,
    intent: dict[str, Any] | None = None,
    recover: Recover | None = None,
) -> JSONResponse:
    """Run `produce` once per idempotency key: (status, body, headers) -> JSON response.

    `payload` is the parsed request body; with the method and path it decides whether a retry
    is the same request. `intent` is kept with the claim until the answer is stored; when an
    earlier attempt died holding the key, `recover` gets its intents and returns the answer for
    what it committed (or None: it committed nothing, `produce` runs).
    """
    if key is None:
        status, body, headers = produce()
        return JSONResponse(body, status_code=status, headers=headers)
    keys: IdempotencyKeys = request.app.state.idempotency
    fingerprint = request_fingerprint(request.method, request.url.path, payload)
    claim = keys.take(key, fingerprint, intent)
    if isinstance(claim, Replay):
        return replayed(claim.status, claim.body, claim.headers)
    crash_point("claimed")
    try:
        answer = recover(claim.interrupted) if claim.interrupted and recover else None
        recovered = answer is not None
        status, body, headers = answer if answer is not None else produce()
    except BaseException:
        keys.release(claim)
        raise
    crash_point("write-committed")
    keys.complete(claim, status, body, headers)
    if recovered:
        return replayed(status, body, headers)
    return JSONResponse(body, status_code=status, headers=headers)


def replayed(status: int, body: Any, headers: dict[str, str]) -> JSONResponse:
    headers = {**headers, "Idempotent-Replayed": "true"}
    return JSONResponse(body, status_code=status, headers=headers)
