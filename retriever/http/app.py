"""`create_app()`: the FastAPI application around one SpecMemory, with MCP mounted at `/mcp`.

Built by a factory so tests and `specmem serve` each make their own app around their own service;
nothing is created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Route

from ..service import SpecMemory
from .deps import Memory
from .errors import install_error_handlers
from .idempotency import IdempotencyKeys
from .routes_events import router as events_router
from .routes_query import router as query_router
from .routes_specs import router as specs_router
from .security import DEFAULT_MAX_BODY_BYTES, AccessPolicy, BodySizeLimit, TokenGuard

__all__ = ["create_app"]

DESCRIPTION = """\
Search, context bundles, status callbacks and activity events over a folder of LeanSpec specs.

Errors are `{"error": {"code", "message"}}` with a stable `code`. Writes need
`Authorization: Bearer <SPECMEM_API_TOKEN>`; `PATCH /specs/{id}` needs `If-Match: <hash>`
(428 without, 412 when stale) and honours `Idempotency-Key` for retried callbacks."""


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# Declared on every route so the published schema names every status a client can get (clients
# and schemathesis check answers against it); the bodies all have the one error shape.
_ERROR_STATUSES = {
    400: "Unsafe reference or malformed request",
    401: "Missing or wrong bearer token",
    403: "Writes are disabled",
    404: "No such spec",
    409: "Ambiguous reference, no index yet, or idempotency key in use",
    412: "If-Match is stale",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input or unparsable spec",
    428: "If-Match required",
    503: "A backend (Chroma, the model) is unavailable",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERROR_STATUSES.items()
}


def create_app(
    memory: SpecMemory | None = None,
    *,
    token: str | None = None,
    protect_reads: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    mount_mcp: bool = True,
    host: str = "127.0.0.1",
    trusted_hosts: list[str] | None = None,
) -> FastAPI:
    """The HTTP API over `memory` (default: a SpecMemory from the environment's settings).

    `token` defaults to the settings' api_token. `protect_reads` makes every route but /health
    need it (for non-loopback binds). `trusted_hosts` restricts the Host header, which stops DNS
    rebinding from a browser when serving on loopback.
    """
    memory = memory if memory is not None else SpecMemory()
    policy = AccessPolicy(token if token is not None else memory.settings.api_token, protect_reads)
    mcp_server = None
    if mount_mcp:
        from ..mcp_server import build_mcp_server

        mcp_server = build_mcp_server(memory, allow_writes=policy.token is not None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if mcp_server is not None:
                await stack.enter_async_context(mcp_server.session_manager.run())
            yield

    app = FastAPI(
        title="specmem",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None if protect_reads else "/docs",
        redoc_url=None,
        openapi_url=None if protect_reads else "/openapi.json",
    )
    app.state.memory = memory
    app.state.policy = policy
    app.state.idempotency = IdempotencyKeys(memory.settings.data_dir / "events.sqlite")
    install_error_handlers(app)

    @app.get(
        "/health", tags=["meta"], summary="Liveness and corpus size", responses=ERROR_RESPONSES
    )
    def health(memory: Memory, request: Request) -> dict[str, Any]:
        catalog = memory.catalog()
        data: dict[str, Any] = {"status": "ok"}
        if not request.app.state.policy.protect_reads:
            data.update(specs=len(catalog), problems=len(catalog.problems))
        return data

    app.include_router(specs_router, responses=ERROR_RESPONSES)
    app.include_router(query_router, responses=ERROR_RESPONSES)
    app.include_router(events_router, responses=ERROR_RESPONSES)
    if mcp_server is not None:
        starlette_app = mcp_server.streamable_http_app(streamable_http_path="/mcp", host=host)
        for route in starlette_app.routes:
            if isinstance(route, Route) and route.path == "/mcp":
                app.router.routes.append(Route("/mcp", TokenGuard(route.app, policy)))
    if trusted_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts)
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)
    return app
