"""The web page (spec 089): its HTML at every view's own URL, its assets, and the two reads only
the page needs (a spec rendered as HTML, the whole dependency graph).

The page is one HTML file and a few ES modules that run in the browser as shipped: no build step,
nothing fetched from elsewhere (the Content-Security-Policy says so to the browser too). Every
view's URL answers the same HTML and the page's router reads the URL, so a search
(`/?q=...&status=...`), a spec (`/spec/045`), a bundle (`/bundle?q=...&budget=...`), the graph
around a spec (`/graph?around=045`) and the board (`/board`) can each be linked to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.staticfiles import StaticFiles

from ..wire import jsonable
from .deps import Memory, Reader, Target
from .rendered import MarkdownRenderer

__all__ = ["ASSETS", "PAGE_PATHS", "WebPage", "router"]

ASSETS = Path(__file__).parent / "web"
# Where the page's own views live; each answers the page, whose router shows the view.
PAGE_PATHS = ("/", "/spec/{ref:path}", "/bundle", "/graph", "/board")

# 'self' only: no CDN, no inline script. Styles the graph library sets through the CSSOM are
# not inline style attributes, so style-src needs no 'unsafe-inline' either.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

router = APIRouter(tags=["web"])


class WebPage:
    """The page's HTML, read once from the package, and the renderer for spec bodies."""

    def __init__(self, assets: Path = ASSETS) -> None:
        self.assets = assets
        self.html = (assets / "index.html").read_bytes()
        self.markdown = MarkdownRenderer()

    def routes(self) -> list[Route]:
        return [Route(path, self.page, methods=["GET"]) for path in PAGE_PATHS]

    def static_files(self) -> StaticFiles:
        return StaticFiles(directory=self.assets)

    async def page(self, request: Request) -> Response:
        return HTMLResponse(
            self.html,
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "Cache-Control": "no-cache",
            },
        )


@router.get("/dependency-graph", dependencies=[Reader], summary="Every spec and its links")
def dependency_graph(memory: Memory) -> Any:
    """Nodes (every spec, with status), `depends_on` and `parent` edges (`in_cycle` marked),
    dangling links with their reason, and the depends_on cycles."""
    return jsonable(memory.dependency_graph())


@router.get("/specs/{spec_id}/html", dependencies=[Reader], summary="A spec's files as HTML")
def spec_html(target: Target, request: Request) -> Any:
    """The README and each sub-spec file rendered from markdown, raw HTML off; headings carry
    `id="L<line>"`."""
    memory, spec_id = target.memory, target.ref
    page: WebPage = request.app.state.web_page
    return page.markdown.spec_files(memory.get_spec(spec_id))
