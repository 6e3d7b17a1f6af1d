"""Context bundles: `specmem context`."""

from __future__ import annotations

import click

from ..request_model import (
    BUDGET_DEFAULT,
    BUDGET_MAX,
    BUDGET_MIN,
    DEPTH_DEFAULT,
    DEPTH_MAX,
    ContextRequest,
    built,
)
from . import cli, emit, handle_errors, memory_of


@cli.command("context")
@click.argument("query", required=False)
@click.option(
    "--spec",
    "specs",
    multiple=True,
    metavar="ID",
    help="A spec to build the bundle around (dir name or unique number; repeatable).",
)
@click.option(
    "--budget",
    type=int,
    default=BUDGET_DEFAULT,
    show_default=True,
    help=f"Most tokens (cl100k) the bundle may use, {BUDGET_MIN} to {BUDGET_MAX}.",
)
@click.option(
    "--depth",
    type=int,
    default=DEPTH_DEFAULT,
    show_default=True,
    help=f"How many depends_on hops to follow from each seed (0-{DEPTH_MAX}).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["markdown", "json", "text"]),
    default="markdown",
    show_default=True,
    help="markdown (text is the same): the bundle to paste; json: items, tokens and the markdown.",
)
@click.pass_context
@handle_errors
def context_command(ctx, query, specs, budget, depth, output):
    """The specs, sections, decisions and history that matter for QUERY and/or --spec, within
    --budget tokens: the markdown an agent pastes into its prompt."""
    memory = memory_of(ctx)
    request = built(ContextRequest, query=query, specs=list(specs), budget=budget, depth=depth)
    bundle = memory.context(request.query, **request.service_arguments())
    if output == "json":
        emit("json", bundle.to_dict())
        return
    click.echo(bundle.rendered)
    for note in bundle.notes:
        click.echo(f"note: {note}", err=True)
