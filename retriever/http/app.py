"""`create_app()`: the FastAPI application around one SpecMemory, with MCP mounted at `/mcp`.

Built by a factory so tests and `specmem serve` each make their own app around their own service;
nothing is created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel
from starlette.routing import Route

from ingest.errors import InvalidInput

from ..projects import Projects
from ..service import SpecMemory
from .deps import Scope, refuse_unknown_query
from .errors import AnswerShape, install_error_handlers
from .idempotency import KeysPerProject
from .routes_devlog import project_router as devlog_project_router
from .routes_devlog import router as devlog_router
from .routes_events import router as events_router
from .routes_query import router as query_router
from .routes_specs import router as specs_router
from .routes_web import WebPage
from .routes_web import router as web_router
from .security import (
    DEFAULT_MAX_BODY_BYTES,
    MAX_MCP_SESSIONS,
    MCP_SESSION_IDLE_TIMEOUT,
    MIN_TOKEN_LENGTH,
    AccessPolicy,
    BodySizeLimit,
    LoopbackHostGuard,
    MCPSessionLimit,
    TokenGuard,
    token_problem,
)

__all__ = ["create_app"]

DESCRIPTION = """\
Search, context bundles, status callbacks and activity events over a folder of LeanSpec specs.

Errors are `{"error": {"code", "message"}}` with a stable `code` (`internal_error` for a 500);
file paths in answers are relative to the specs dir. Writes need
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
    409: "Ambiguous reference, no index yet, a damaged index, or idempotency key in use",
    412: "If-Match is stale",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input or unparsable spec",
    428: "If-Match required",
    500: "Unexpected failure (`internal_error`); the server log has the details",
    503: "A backend (Chroma, the model, the event log) or the disk is unavailable",
    507: "The disk is full (`disk_full`); nothing was written",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text} for status, text in _ERROR_STATUSES.items()
}


def create_app(
    memory: SpecMemory | Projects | None = None,
    *,
    token: str | None = None,
    protect_reads: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    mount_mcp: bool = True,
    host: str = "127.0.0.1",
    loopback_names: Iterable[str] | None = None,
    max_mcp_sessions: int = MAX_MCP_SESSIONS,
    mcp_session_idle_timeout: float = MCP_SESSION_IDLE_TIMEOUT,
    mcp_stateless: bool = False,
) -> FastAPI:
    """The HTTP API over `memory` (default: a SpecMemory from the environment's settings), or
    over several named projects (retriever.projects: every route then takes `project`).

    `token` defaults to the settings' api_token, which must be usable (no whitespace, visible
    ASCII, at least MIN_TOKEN_LENGTH characters) or InvalidInput says why; a `token` passed in
    is the caller's choice and only refused when no client could send it. `protect_reads`
    makes every route but /health need it (for non-loopback binds). `loopback_names`, given on a
    loopback bind, makes every request's Host (and Origin) name a loopback address or one of
    these names, which stops DNS rebinding from a browser. At most `max_mcp_sessions` MCP
    sessions live at once (the least recently used idle one makes room for a new one), and one
    idle for `mcp_session_idle_timeout` seconds ends (spec 075). `mcp_stateless` serves MCP
    without sessions, each request on its own: what several worker processes need, as a session
    held in one worker's memory is unknown to the others (retriever.http.workers).
    """
    memory = memory if memory is not None else SpecMemory()
    projects = memory if isinstance(memory, Projects) else Projects.single(memory)
    configured = token is None
    # The token is the server's, not a project's: every project reads it from one environment.
    token = projects.all()[0].memory.settings.api_token if configured else token or None
    problem = token_problem(token, min_length=MIN_TOKEN_LENGTH if configured else 1)
    if problem:
        raise InvalidInput(problem)
    policy = AccessPolicy(token, protect_reads)
    mcp_server = None
    if mount_mcp:
        from ..mcp_server import build_mcp_server

        mcp_server = build_mcp_server(projects, allow_writes=policy.token is not None)

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
        dependencies=[Depends(refuse_unknown_query)],
    )
    app.state.projects = projects
    app.state.policy = policy
    # Keys share each project's event log and its deleted-or-replaced check (retriever.events).
    app.state.idempotency = KeysPerProject()
    if not projects.named:
        app.state.idempotency.of(projects.all()[0].memory)  # its table exists from the start
    install_error_handlers(app)

    @app.get(
        "/health", tags=["meta"], summary="Liveness and corpus size", responses=ERROR_RESPONSES
    )
    def health(scope: Scope, request: Request) -> dict[str, Any]:
        data: dict[str, Any] = {"status": "ok"}
        if request.app.state.policy.protect_reads:
            return data
        served = scope.projects.scope(scope.name)
        catalogs = [project.memory.catalog() for project in served]
        data.update(
            specs=sum(len(c) for c in catalogs), problems=sum(len(c.problems) for c in catalogs)
        )
        if scope.projects.named:
            data["projects"] = {
                str(p.name): {"specs": len(c), "problems": len(c.problems)}
                for p, c in zip(served, catalogs, strict=True)
            }
            if scope.projects.problems:
                data["project_problems"] = list(scope.projects.problems)
        return data

    app.include_router(specs_router, responses=ERROR_RESPONSES)
    app.include_router(query_router, responses=ERROR_RESPONSES)
    app.include_router(events_router, responses=ERROR_RESPONSES)
    app.include_router(devlog_router, responses=ERROR_RESPONSES)
    if projects.named:
        app.include_router(devlog_project_router, responses=ERROR_RESPONSES)
    # The web page (spec 089): its views' URLs answer its HTML, its files are under /ui.
    web_page = app.state.web_page = WebPage()
    app.include_router(web_router, responses=ERROR_RESPONSES)
    app.router.routes.extend(web_page.routes())
    app.mount("/ui", web_page.static_files(), name="ui")
    if mcp_server is not None:
        # With our Host and Origin check in front of every route, the SDK's own (which knows only
        # 127.0.0.1, localhost and ::1, and answers in text) stays off; without it, the SDK
        # decides from `host` as before.
        sdk_security = (
            TransportSecuritySettings(enable_dns_rebinding_protection=False)
            if loopback_names is not None
            else None
        )
        # The SDK's own session cap stays as a backstop above ours: ours evicts idle sessions
        # where the SDK's would refuse new ones until its idle timeout.
        starlette_app = mcp_server.streamable_http_app(
            streamable_http_path="/mcp",
            host=host,
            transport_security=sdk_security,
            session_idle_timeout=mcp_session_idle_timeout,
            max_sessions=2 * max_mcp_sessions,
            stateless_http=mcp_stateless,
        )
        for route in starlette_app.routes:
            if isinstance(route, Route) and route.path == "/mcp":
                endpoint = route.app
                if not mcp_stateless:  # without sessions there is nothing to count
                    endpoint = app.state.mcp_sessions = MCPSessionLimit(
                        route.app, limit=max_mcp_sessions
                    )
                app.router.routes.append(Route("/mcp", TokenGuard(endpoint, policy)))
    # Outermost last: the body limit, then the Host check, then the answer's shape around all.
    app.add_middleware(BodySizeLimit, limit=max_body_bytes)
    if loopback_names is not None:
        app.add_middleware(LoopbackHostGuard, names=loopback_names)
    app.add_middleware(AnswerShape, display=projects.paths)
    return app
