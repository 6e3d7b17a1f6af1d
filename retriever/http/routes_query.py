"""`/search` and `/context`: the read path over the index."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..projects import across
from ..request_model import AttributionRequest, ContextRequest
from ..wire import jsonable
from .deps import Memory, Reader, Scope

__all__ = ["router"]

router = APIRouter(tags=["search"], dependencies=[Reader])


@router.get("/search", summary="Ranked spec search")
def search(
    scope: Scope,
    q: Annotated[str, Query(min_length=1, max_length=2_000)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    tag: Annotated[list[str], Query()] = [],  # noqa: B006
    priority: Annotated[list[str], Query()] = [],  # noqa: B006
    mode: Annotated[str, Query(pattern="^(hybrid|dense|lexical)$")] = "hybrid",
) -> dict[str, Any]:
    found = across.search(
        scope.projects,
        scope.name,
        q,
        limit=limit,
        status=status or None,
        tags=tag or None,
        priority=priority or None,
        mode=mode,
    )
    return jsonable(found.to_dict(q, mode))


@router.post("/context", summary="Token-budgeted context bundle")
def context(request: ContextRequest, scope: Scope) -> Any:
    """On a server of several projects, the bundle is built in the one project named, or the
    one of the specs named, or the one of the best hit for `query`; its notes name the other
    projects' best hits."""
    arguments = request.service_arguments()
    bundle = across.context(scope.projects, scope.name, request.query, **arguments)
    return jsonable(bundle)


@router.post("/attribute", summary="Which specs govern this work")
def attribute(request: AttributionRequest, memory: Memory) -> Any:
    """From a commit message or free text, the files it changed, its branch and its time: the
    governing specs, best first, each with a confidence in [0, 1] and its evidence, or
    `"abstained": true` when none is confident (a release, a dependency bump)."""
    return memory.attribute(request).to_dict()
