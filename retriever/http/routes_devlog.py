"""Devlog's routes, as its collector calls them: `POST /api/events/batch` (a bare JSON array),
`POST /api/events` (one event) and `GET /api/health` (specs/086).

The collector builds each URL as `{base}/api/...`, so a query string in its base URL would be
cut off by the path. On a server of several projects the same routes are therefore served
under `/projects/{name}` too: Devlog's base URL `http://host/projects/web` sends one
repository's events to its project, where its sessions are attributed to that project's specs.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from ..devlog import DEVLOG_BATCH_MAX, DevlogEvent
from ..service import SpecMemory
from .deps import Writer, get_memory, get_path_memory
from .routes_events import StrictJsonRoute

__all__ = ["project_router", "router"]

Batch = Annotated[list[DevlogEvent], Body(min_length=1, max_length=DEVLOG_BATCH_MAX)]


def _devlog_routes(
    prefix: str, memory_of: Callable[..., SpecMemory], health: list[Any]
) -> APIRouter:
    """The three routes under `prefix`, their project given by the dependency `memory_of`;
    `health`, the dependencies of the health check."""
    # The same strict reading as /events: an integer too long to convert is refused by field.
    router = APIRouter(prefix=prefix, tags=["devlog"], route_class=StrictJsonRoute)
    # Read by FastAPI when the routes are declared: this module's annotations are not deferred,
    # so a local alias resolves.
    ProjectMemory = Annotated[SpecMemory, Depends(memory_of)]

    @router.post("/events/batch", dependencies=[Writer], status_code=201, summary="Devlog batch")
    def devlog_batch(events: Batch, memory: ProjectMemory) -> dict[str, Any]:
        """Store Devlog events (at most 1,000, the body at most 1 MiB) and link their sessions
        to specs. A retried batch stores nothing twice: the event `id` is the key. A refusal
        names the event's index and field (`body.3.eventType`) and stores nothing."""
        return memory.record_devlog(events)

    @router.post("/events", dependencies=[Writer], status_code=201, summary="Devlog event")
    def devlog_event(event: DevlogEvent, memory: ProjectMemory) -> dict[str, Any]:
        """One Devlog event, as `SendSingleEvent` posts it."""
        return memory.record_devlog([event])

    @router.get("/health", dependencies=health, summary="Devlog's health check")
    def devlog_health() -> dict[str, str]:
        """What Devlog's `HealthCheck` asks before it sends: 200 while the server runs (under
        `/projects/{name}`, while it serves that project)."""
        return {"status": "healthy"}

    return router


router = _devlog_routes("/api", get_memory, health=[])
project_router = _devlog_routes(
    "/projects/{project}/api", get_path_memory, health=[Depends(get_path_memory)]
)
