"""`/search` and `/context`: the read path over the index."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..wire import jsonable
from .deps import Memory, Reader

__all__ = ["MAX_CONTEXT_BUDGET", "router"]

MAX_CONTEXT_BUDGET = 100_000

router = APIRouter(tags=["search"], dependencies=[Reader])


class ContextRequest(BaseModel):
    """Ask for a token-budgeted bundle about a question, some specs, or both."""

    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(None, max_length=2_000)
    specs: list[str] = Field(default_factory=list, max_length=50)
    budget: int = Field(4_000, ge=100, le=MAX_CONTEXT_BUDGET, description="Tokens (cl100k)")
    depth: int = Field(2, ge=0, le=5, description="Dependency hops to follow")

    @model_validator(mode="after")
    def _query_or_specs(self) -> ContextRequest:
        if not (self.query and self.query.strip()) and not self.specs:
            raise ValueError("send a query, spec ids, or both")
        return self


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
    bundle = memory.context(
        request.query, specs=request.specs, budget=request.budget, depth=request.depth
    )
    return jsonable(bundle)
