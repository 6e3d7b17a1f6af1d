"""`/events`: activity from observability tools and orchestrators, and a spec's history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..wire import jsonable
from .deps import IdempotencyKey, Memory, Reader, Writer, reply

__all__ = ["router"]

router = APIRouter(tags=["events"])


class NewEvent(BaseModel):
    """One thing that happened on a spec, e.g. a Devlog session summary or a commit."""

    model_config = ConfigDict(extra="forbid")
    spec: str = Field(description="Spec id: directory name or unique number")
    type: str = Field(description="Short kind such as 'commit', 'session', 'agent.finished'")
    agent: str | None = None
    session_id: str | None = None
    summary: str | None = Field(None, max_length=10_000)
    files_changed: list[str] = Field(default_factory=list, max_length=1_000)
    at: str | None = Field(None, description="ISO 8601; default now")
    data: dict[str, Any] = Field(default_factory=dict)


@router.post("/events", dependencies=[Writer], status_code=201, summary="Record an event")
def log_event(
    event: NewEvent, request: Request, memory: Memory, key: IdempotencyKey = None
) -> JSONResponse:
    payload = event.model_dump()

    def produce() -> tuple[int, Any, dict[str, str]]:
        fields = {k: v for k, v in payload.items() if k not in ("spec", "type")}
        return 201, memory.log_event(event.spec, event.type, **fields), {}

    return reply(request, key, payload, produce)


@router.get("/events", dependencies=[Reader], summary="Search events")
def search_events(
    memory: Memory,
    q: Annotated[str | None, Query(max_length=500, description="Words in summary/files")] = None,
    spec: str | None = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    events = memory.search_events(q, spec=spec, type=type, limit=limit, offset=offset)
    return {"events": events, "limit": limit, "offset": offset}


@router.get("/specs/{spec_id}/events", dependencies=[Reader], summary="A spec's events")
def spec_events(
    spec_id: str,
    memory: Memory,
    q: Annotated[str | None, Query(max_length=500)] = None,
    type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    events = memory.events(spec_id, limit=limit, offset=offset, query=q, type=type)
    return {"spec": memory.catalog().resolve_name(spec_id), "events": events}


@router.get("/specs/{spec_id}/history", dependencies=[Reader], summary="Transitions and events")
def history(
    spec_id: str, memory: Memory, limit: Annotated[int, Query(ge=1, le=1_000)] = 100
) -> dict[str, Any]:
    spec = memory.get_spec(spec_id)
    return {"spec": spec.dir_name, "history": jsonable(memory.history(spec.dir_name, limit=limit))}
