"""Front doors: `serve` (HTTP API + MCP over streamable HTTP at /mcp) and `mcp` (stdio)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ingest.errors import SpecmemError

from . import cli, memory_of

if TYPE_CHECKING:
    from ..projects import Projects, ProjectSources
    from ..service import SpecMemory

DEFAULT_PORT = 8765

F = TypeVar("F", bound=Callable[..., Any])


def project_options(command: F) -> F:
    """`--project NAME=SPECS_DIR` (repeatable) and `--projects FILE`: several spec folders as
    named projects of one server (spec 096)."""
    command = click.option(
        "--projects",
        "projects_file",
        envvar="SPECMEM_PROJECTS",
        type=click.Path(dir_okay=False, exists=True),
        help="A TOML file of projects, read again when it changes (env SPECMEM_PROJECTS).",
    )(command)
    return click.option(
        "--project",
        "project_options",
        multiple=True,
        metavar="NAME=SPECS_DIR",
        help="Serve this spec folder as project NAME (repeatable); instead of --specs-dir.",
    )(command)


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--max-body-bytes",
    default=1024 * 1024,
    show_default=True,
    type=int,
    help="Refuse request bodies larger than this (413).",
)
@click.option(
    "--max-mcp-sessions",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Live MCP sessions at most; a new one replaces the least recently used idle one.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Server processes on the one port and index (MCP then runs without sessions).",
)
@project_options
@click.pass_context
def serve_command(
    ctx: click.Context,
    host: str,
    port: int,
    max_body_bytes: int,
    max_mcp_sessions: int,
    workers: int,
    project_options: tuple[str, ...],
    projects_file: str | None,
) -> None:
    """Serve the HTTP API (docs at /docs) and MCP over streamable HTTP at /mcp.

    Writes need SPECMEM_API_TOKEN as a bearer token (visible ASCII, at least 16 characters);
    without one the server is read-only. On a non-loopback address every request needs the
    token and the server will not start without one. Loopback means the address: any of
    127.0.0.0/8 and ::1, or a name that resolves only to those.

    Before any of that, each connection is bounded: an 8 KiB request line (414), 64 KiB of
    request line and headers (431), headers complete within 10 s, idle keep-alive closed after
    5 s (spec 075).

    With --workers N, N processes share the port, the index and the event log: a write in one
    is seen by every other, writes of one spec are serialized across them, and an idempotency
    key is honoured whichever worker a retry reaches (spec 092).

    With --project NAME=DIR (repeatable) or --projects FILE, one server holds several spec
    folders: every route and tool takes an optional `project`, search and context read across
    all of them, and a project added to the file is served, and indexed, with no restart
    (spec 096).
    """
    # Imported here: FastAPI and uvicorn cost every other `specmem` command ~2 s of start-up.
    from ..http import create_app
    from ..http.security import LOOPBACK_NAMES, is_loopback, token_problem
    from ..http.server import run

    sources = project_sources(project_options, projects_file)
    served: SpecMemory | Projects
    if sources is None:
        served = memory = memory_of(ctx)
        what = str(memory.settings.specs_dir)
    else:
        # Under --workers the parent only checks the options and forks: each worker opens the
        # projects itself and one of them builds a missing index, so the parent builds none.
        served = open_projects(sources, build_missing=workers == 1)
        memory = served.all()[0].memory  # the token and the rest are the server's, not a project's
        what = f"projects {', '.join(served.names())}"
    problem = token_problem(memory.settings.api_token)
    if problem:
        raise click.UsageError(f"refusing to serve: {problem}")
    loopback = is_loopback(host)
    if not loopback and not memory.settings.api_token:
        raise click.UsageError(
            f"refusing to serve on {host} without a token: set SPECMEM_API_TOKEN "
            "(every request will need it) or bind a loopback address such as 127.0.0.1"
        )
    # On loopback, a Host check stops a web page from reaching the API by DNS rebinding: the
    # Host must be a loopback address, localhost, or the name the server was bound by.
    names = [*LOOPBACK_NAMES, host] if loopback else None
    options: dict[str, Any] = {
        "protect_reads": not loopback,
        "max_body_bytes": max_body_bytes,
        "host": host,
        "loopback_names": names,
        "max_mcp_sessions": max_mcp_sessions,
    }
    mode = "read-write" if memory.settings.api_token else "read-only (no SPECMEM_API_TOKEN)"
    processes = f", {workers} workers" if workers > 1 else ""
    # Built here even for workers, which build their own: a bad option fails once, before any starts.
    app = create_app(served, **options)
    click.echo(
        f"specmem: serving {what} on http://{host}:{port} ({mode}"
        f"{processes}); MCP at http://{host}:{port}/mcp",
        err=True,
    )
    if workers == 1:
        run(app, host, port)
        return
    from ..http.workers import ServePlan, serve_workers

    plan = ServePlan(memory.settings, {**options, "mcp_stateless": True}, sources)
    try:
        code = serve_workers(plan, host, port, workers)
    except OSError as err:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {err.strerror or err}"
        ) from err
    ctx.exit(code)


@cli.command("mcp")
@click.option(
    "--read-only", is_flag=True, help="Offer only the read tools (no create/update/log_event)."
)
@project_options
@click.pass_context
def mcp_command(
    ctx: click.Context,
    read_only: bool,
    project_options: tuple[str, ...],
    projects_file: str | None,
) -> None:
    """Run the MCP server over stdio, for an agent that launches specmem itself."""
    from ..mcp_server import build_mcp_server

    sources = project_sources(project_options, projects_file)
    served = memory_of(ctx) if sources is None else open_projects(sources, build_missing=True)
    build_mcp_server(served, allow_writes=not read_only).run("stdio")


def project_sources(options: tuple[str, ...], file: str | None) -> ProjectSources | None:
    """The projects `--project` or `--projects` name; None for a server of one spec folder."""
    from ..projects import ProjectSources, parse_option

    if not options and file is None:
        return None
    try:
        entries = tuple(parse_option(option) for option in options)
        return ProjectSources(Path(file).absolute() if file else None, entries)
    except SpecmemError as err:
        raise click.UsageError(str(err)) from err


def open_projects(sources: ProjectSources, **options: Any) -> Projects:
    from ..projects import Projects

    try:
        served = Projects.open(sources, **options)
    except SpecmemError as err:
        raise click.UsageError(str(err)) from err
    if sources.file is None and served.problems:
        # A projects file can be fixed while the server runs; a --project option cannot, so a
        # project it names that would not be served is refused before serving any.
        raise click.UsageError("; ".join(served.problems))
    return served
