"""Building the index: `specmem ingest [--full] [--watch] [-q] [-o json]`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import click

from . import OUTPUT, cli, emit, handle_errors, memory_of

__all__ = ["ingest_command", "render_summary"]


def render_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['specs']} specs, {summary['chunks']} chunks indexed with {summary['model']} "
        f"in {summary['seconds']:.2f} s",
        f"  added {summary['added']}, updated {summary['updated']}, removed "
        f"{summary['removed']}, unchanged {summary['unchanged']}; embedded "
        f"{summary['embedded']} chunks, dropped {summary['chunks_removed']}",
    ]
    for item in summary.get("damaged", []):
        lines.append(f"  the index was damaged: {item['path']}: {item['reason']}")
    if summary.get("full"):
        lines.append("  rebuilt from scratch")
    if summary.get("reconciled"):
        lines.append("  repaired the index after an interrupted ingest")
    for item in summary["skipped"]:
        where = f"{item['path']}:{item['line']}" if item.get("line") else item["path"]
        lines.append(f"  skipped {item['spec']}: {where}: {item['reason']}")
    return "\n".join(lines)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A bar on stderr, only when stderr is a terminal: logs and pipes get no control codes."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    state: dict[str, Any] = {"bar": None, "done": 0}

    def update(done: int, total: int) -> None:
        if total == 0:
            return
        if state["bar"] is None:
            state["bar"] = click.progressbar(
                length=total, label="embedding chunks", file=sys.stderr
            ).__enter__()
        state["bar"].update(done - state["done"])
        state["done"] = done

    try:
        yield update
    finally:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)


@cli.command("ingest")
@click.option("--full", is_flag=True, help="Rebuild both stores from scratch.")
@click.option(
    "--watch",
    is_flag=True,
    help="After ingesting, keep watching the specs dir and re-index on changes (Ctrl-C stops).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no text summary.")
@click.option(
    "--spec",
    "specs",
    multiple=True,
    metavar="REF",
    help="Re-index only this spec (repeatable); a deleted spec is dropped from the index.",
)
@OUTPUT
@click.pass_context
@handle_errors
def ingest_command(
    ctx: click.Context, full: bool, watch: bool, quiet: bool, specs: tuple[str, ...], output: str
) -> None:
    """Index the specs dir: chunks into SQLite, vectors into ChromaDB. Incremental: only
    changed specs are re-chunked and only changed chunks re-embedded; --full rebuilds."""
    memory = memory_of(ctx)

    def report(summary: Any) -> None:
        data = summary.to_dict()
        if output == "json":
            emit(output, data)
        elif not quiet:
            emit(output, data, render_summary(data))

    with _progress_bar(not quiet and output != "json") as progress:
        report(memory.ingest(full=full, specs=list(specs) or None, progress=progress))
    if watch:
        from ingest.index.watch import watch_specs

        if not quiet and output != "json":
            click.echo(f"watching {memory.settings.specs_dir} (Ctrl-C stops)", err=True)
        with suppress(KeyboardInterrupt):
            watch_specs(memory.settings.specs_dir, lambda names: report(memory.ingest(specs=names)))
