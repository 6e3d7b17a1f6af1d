"""`/search` and `/context`: the read path over the index."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..request_model import ContextRequest
from ..wire import jsonable
from .deps import Memory, Reader

__all__ = ["router"]

router = APIRouter(tags=["search"], dependencies=[Reader])


@router.get("/search", summary="Ranked spec search")
def search(
    memory: Memory,
    q: Annotated[str, Query(min_length=1, max_length=2_000)],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    tag: Annotated[list[str], Query()] = [],  # noqa: B006
    priority: Annotated[list[str], Query()] = [],  # noqa: B006
    mode: Annotated[str, Query(pattern="^(hybrid|dense|lexical)$")] = "hybrid",
) -> dict[str, Any]:
    hits = memory.search(
        q,
        limit=limit,
        status=status or None,
        tags=tag or None,
        priority=priority or None,
        mode=mode,
    )
    return {"query": q, "mode": mode, "results": jsonable(hits)}


@router.post("/context", summary="Token-budgeted context bundle")
def context(request: ContextRequest, memory: Memory) -> Any:
    bundle = memory.context(request.query, **request.service_arguments())
    return jsonable(bundle)
