"""Devlog's routes, as its collector calls them: `POST /api/events/batch` (a bare JSON array),
`POST /api/events` (one event) and `GET /api/health` (specs/086)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from ..devlog import DEVLOG_BATCH_MAX, DevlogEvent
from .deps import Memory, Writer
from .routes_events import StrictJsonRoute

__all__ = ["router"]

# The same strict reading as /events: an integer too long to convert is refused by field.
router = APIRouter(prefix="/api", tags=["devlog"], route_class=StrictJsonRoute)


@router.post("/events/batch", dependencies=[Writer], status_code=201, summary="Devlog batch")
def devlog_batch(
    events: Annotated[list[DevlogEvent], Body(min_length=1, max_length=DEVLOG_BATCH_MAX)],
    memory: Memory,
) -> dict[str, Any]:
    """Store Devlog events (at most 1,000, the body at most 1 MiB) and link their sessions to
    specs. A retried batch stores nothing twice: the event `id` is the key. A refusal names the
    event's index and field (`body.3.eventType`) and stores nothing."""
    return memory.record_devlog(events)


@router.post("/events", dependencies=[Writer], status_code=201, summary="Devlog event")
def devlog_event(event: DevlogEvent, memory: Memory) -> dict[str, Any]:
    """One Devlog event, as `SendSingleEvent` posts it."""
    return memory.record_devlog([event])


@router.get("/health", summary="Devlog's health check")
def devlog_health() -> dict[str, str]:
    """What Devlog's `HealthCheck` asks before it sends: 200 while the server runs."""
    return {"status": "healthy"}
