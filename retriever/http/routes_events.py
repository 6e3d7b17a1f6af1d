"""`/events`: activity from observability tools and orchestrators, and a spec's history."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from ..events import Unreadable
from ..projects import across
from ..wire import jsonable
from .deps import IdempotencyKey, Reader, Scope, Target, Writer, keys_of, replayed
from .idempotency import crash_point, request_fingerprint

__all__ = ["StrictJsonRoute", "router"]

# Python converts integers of up to 4,300 digits from text; past that json.loads raises a
# ValueError that FastAPI answers with a bare 400. Longer ones become placeholders instead, so
# that validation refuses them with 422 naming their field.
_MAX_INT_DIGITS = 4_000


def _integer(text: str) -> int | Unreadable:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= _MAX_INT_DIGITS else Unreadable(f"an integer of {digits} digits")


def _strict_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_int=_integer)
    except RecursionError:
        # FastAPI answers JSONDecodeError with 422 `invalid_input`, anything else with 400.
        raise json.JSONDecodeError("the body nests too deeply to read", "", 0) from None


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = _strict_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Bodies read with `_strict_json` (FastAPI's documented custom Request/APIRoute hook)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict_handler


router = APIRouter(tags=["events"], route_class=StrictJsonRoute)


class NewEvent(BaseModel):
    """One thing that happened on a spec, e.g. a Devlog session summary or a commit."""

    model_config = ConfigDict(extra="forbid")
    spec: str = Field(description="Spec id: directory name or unique number")
    type: str = Field(description="Short kind such as 'commit', 'session', 'agent.finished'")
    agent: str | None = None
    session_id: str | None = None
    summary: str | None = Field(None, max_length=10_000)
    files_changed: list[str] = Field(default_factory=list, max_length=1_000)
    at: str | None = Field(None, description="ISO 8601 within years 0001-9999 in UTC; default now")
    data: dict[str, Any] = Field(default_factory=dict)


@router.post("/events", dependencies=[Writer], status_code=201, summary="Record an event")
def log_event(
    event: NewEvent, request: Request, scope: Scope, key: IdempotencyKey = None
) -> JSONResponse:
    """With an Idempotency-Key, the key is stored in the event's own transaction: a retry gets
    the stored event back (`Idempotent-Replayed: true`), even after a crash, and never a second
    one. 503 `event_log_missing` when the log this server opened was deleted or replaced."""
    payload = event.model_dump()
    fields = {k: v for k, v in payload.items() if k not in ("spec", "type")}
    # On a server of several projects the spec says which (`web:045`, or one only one has).
    project, spec = scope.projects.spec(scope.name, event.spec)
    memory = project.memory
    if key is None:
        return JSONResponse(memory.log_event(spec, event.type, **fields), status_code=201)
    keys = keys_of(request, memory)
    fingerprint = request_fingerprint(request.method, request.url.path, payload)
    # Answered before the spec is resolved: a retry is the first request's answer, whatever
    # happened to the spec since.
    replay = keys.replay(key, fingerprint)
    if replay is not None:
        return replayed(replay.status, replay.body, replay.headers)
    hook = keys.keyed_event(key, fingerprint)
    stored = memory.log_event(spec, event.type, within=hook, **fields)
    crash_point("event-committed")
    if hook.replayed:
        return replayed(201, stored, {})
    return JSONResponse(stored, status_code=201)


@router.get("/events", dependencies=[Reader], summary="Search events")
def search_events(
    scope: Scope,
    q: Annotated[str | None, Query(max_length=500, description="Words in summary/files")] = None,
    spec: str | None = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    events = across.search_events(
        scope.projects, scope.name, q, spec=spec, type=type, limit=limit, offset=offset
    )
    return {"events": events, "limit": limit, "offset": offset}


@router.get("/specs/{spec_id}/events", dependencies=[Reader], summary="A spec's events")
def spec_events(
    target: Target,
    q: Annotated[str | None, Query(max_length=500)] = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    memory, spec_id = target.memory, target.ref
    events = memory.events(spec_id, limit=limit, offset=offset, query=q, type=type)
    return {"spec": memory.catalog().resolve_name(spec_id), "events": events}


@router.get(
    "/specs/{spec_id}/history", dependencies=[Reader], summary="Transitions, events and commits"
)
def history(
    target: Target,
    limit: Annotated[int, Query(ge=1, le=1_000)] = 100,
    since: Annotated[
        str | None, Query(max_length=200, description="ISO 8601 date or time, or a git commit")
    ] = None,
) -> dict[str, Any]:
    memory, spec_id = target.memory, target.ref
    spec = memory.get_spec(spec_id)
    items = memory.history(spec.dir_name, limit=limit, since=since)
    return {"spec": spec.dir_name, "history": jsonable(items)}
