"""The `specmem` command: global options, output helpers, and error mapping.

Each group of commands lives in its own module and registers itself on `cli`; every command parses
its options, calls one SpecMemory method, and prints text or JSON. Errors from the service become
`error: <message>` on stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from ingest.errors import SpecmemError
from ingest.specs.project_config import LeanSpecConfig

from ..paths import PathDisplay
from ..service import SpecMemory

__all__ = ["OUTPUT", "cli", "emit", "handle_errors", "main", "memory_of"]

F = TypeVar("F", bound=Callable[..., Any])

OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--specs-dir",
    envvar="SPECMEM_SPECS_DIR",
    default="specs",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The specs directory (env SPECMEM_SPECS_DIR).",
)
@click.option(
    "--data-dir",
    envvar="SPECMEM_DATA_DIR",
    default=None,
    type=click.Path(file_okay=False),
    help="Where the index lives (env SPECMEM_DATA_DIR; default .specmem beside the specs dir).",
)
@click.version_option(package_name="specmem")
@click.pass_context
def cli(ctx: click.Context, specs_dir: str, data_dir: str | None) -> None:
    """specmem: the memory layer for AI coding agents, over LeanSpec spec folders."""
    ctx.obj = {"specs_dir": specs_dir, "data_dir": data_dir}


def memory_of(ctx: click.Context) -> SpecMemory:
    """The SpecMemory for this invocation, created on first use."""
    root = ctx.find_root()
    obj = root.obj
    if "memory" not in obj:
        specs_dir = Path(obj["specs_dir"])
        if root.get_parameter_source("specs_dir") == click.core.ParameterSource.DEFAULT:
            # In a LeanSpec project, its own config says where the specs are.
            config = LeanSpecConfig.beside(Path.cwd() / "specs")
            if config is not None:
                specs_dir = config.project_root / config.specs_dir
        if not specs_dir.is_dir():
            # Not "0 specs": a mistyped --specs-dir must not look like an empty project, nor
            # build an empty index beside it.
            raise click.UsageError(
                f"specs dir {specs_dir}: no such directory; pass --specs-dir (or set "
                "SPECMEM_SPECS_DIR), or create it for a new project",
                ctx=root,
            )
        obj["memory"] = SpecMemory(specs_dir, obj["data_dir"])
    return obj["memory"]


def _display() -> PathDisplay | None:
    """How this invocation shows server paths, once a command has made its SpecMemory."""
    ctx = click.get_current_context(silent=True)
    memory = ctx.find_root().obj.get("memory") if ctx and ctx.find_root().obj else None
    return PathDisplay.of(memory.settings) if memory is not None else None


def emit(output: str, data: Any, text: Callable[[], str] | str | None = None) -> None:
    """Print `data` as JSON (paths relative to the specs dir, as every door shows them), or its
    text rendering."""
    if output == "json":
        display = _display()
        encoded = json.dumps(data, indent=2, ensure_ascii=False, default=str)
        click.echo(display.json_text(encoded) if display is not None else encoded)
        return
    rendered = text() if callable(text) else text
    if rendered is None:
        rendered = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if rendered:
        click.echo(rendered)


def handle_errors(func: F) -> F:
    """Turn service errors into a one-line message and exit 1, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecmemError as err:
            display = _display()
            message = display.text(str(err)) if display is not None else str(err)
            click.echo(f"error: {message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


def main() -> None:
    cli(prog_name="specmem")


# Importing the command modules registers their commands on `cli`.
from . import (  # noqa: E402,F401
    attribute_commands,
    context_commands,
    index_commands,
    inspect_commands,
    search_commands,
    serve_commands,
    specs_commands,
    write_commands,
)
