"""FastAPI dependencies as `Annotated` aliases: the service, access checks, idempotent replies.

Routes declare what they need (`memory: Memory`, `dependencies=[Writer]`) and the app built by
`create_app()` supplies it from `app.state`, so tests build an app around any SpecMemory without
patching a module-level global.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from ingest.errors import InvalidInput

from ..projects import Project, Projects
from ..service import SpecMemory
from .idempotency import IdempotencyKeys, Replay, crash_point, request_fingerprint
from .security import AccessPolicy

__all__ = [
    "Answer",
    "AuthRefused",
    "IdempotencyKey",
    "Memory",
    "ProjectName",
    "Reader",
    "Scope",
    "Target",
    "Writer",
    "get_memory",
    "get_path_memory",
    "keys_of",
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


ProjectName = Annotated[
    str | None,
    Query(
        description="The project (on a server of several): omit to read across all of them, "
        "or to write to the only or default one",
        max_length=64,
    ),
]


def get_memory(request: Request, project: ProjectName = None) -> SpecMemory:
    """The project a request about no particular spec works on (retriever.projects)."""
    projects: Projects = request.app.state.projects
    return projects.one(project).memory


def get_path_memory(request: Request, project: str) -> SpecMemory:
    """The project named in the path (`/projects/{project}/...`), for a client that can only be
    given a base URL (Devlog's collector)."""
    projects: Projects = request.app.state.projects
    return projects.get(project).memory


@dataclass(frozen=True)
class SpecTarget:
    """The spec a `/specs/{spec_id}` route is about: its project's memory and the reference
    within it (`web:045` -> project web, `045`)."""

    project: Project
    ref: str

    @property
    def memory(self) -> SpecMemory:
        return self.project.memory


def get_target(request: Request, spec_id: str, project: ProjectName = None) -> SpecTarget:
    projects: Projects = request.app.state.projects
    found, local = projects.spec(project, spec_id)
    return SpecTarget(found, str(local))


@dataclass(frozen=True)
class ProjectScope:
    """A read that may span projects: the served projects and the one asked for, if any."""

    projects: Projects
    name: str | None


def get_scope(request: Request, project: ProjectName = None) -> ProjectScope:
    return ProjectScope(request.app.state.projects, project)


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
Target = Annotated[SpecTarget, Depends(get_target)]
Scope = Annotated[ProjectScope, Depends(get_scope)]
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
    memory: SpecMemory,
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
    keys = keys_of(request, memory)
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


def keys_of(request: Request, memory: SpecMemory) -> IdempotencyKeys:
    """The idempotency keys of the project `memory` serves (they live in its event log)."""
    return request.app.state.idempotency.of(memory)


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
