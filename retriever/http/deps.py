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

from ingest.errors import InvalidInput

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
    "refuse_unknown_query",
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


async def refuse_unknown_query(request: Request) -> None:
    """Unknown query parameters are refused (422), as unknown body fields are: `?limt=5` ran
    with the default limit, and the client never learnt of its typo (issue 12). Async: it must
    not take a worker thread for a dictionary lookup."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:  # not a route of ours (the MCP mount, the docs)
        return
    known: set[str] = set()
    pending = [dependant]
    while pending:  # the route's own parameters and those of every dependency it declares
        current = pending.pop()
        known.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise InvalidInput(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(accepted: {', '.join(sorted(known)) or 'none'})"
        )
