"""`attribute`: which spec governs a commit, a session or a branch (specs/085)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ingest.errors import SpecmemError

from ..request_model import AttributionRequest, built
from . import OUTPUT, cli, emit, handle_errors, memory_of


@cli.command("attribute")
@click.argument("message", required=False)
@click.option("--file", "files", multiple=True, help="A changed file's path (repeatable).")
@click.option("--branch", default=None, help="The branch the work is on.")
@click.option("--at", default=None, help="When the work happened (ISO 8601 date or time).")
@click.option("-n", "--limit", default=5, show_default=True, type=click.IntRange(1, 20))
@click.option(
    "--batch",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help="JSON lines of {message, files, branch, at} (and an optional id echoed back); "
    "prints one JSON result per line. '-' reads standard input.",
)
@click.option(
    "--events",
    "relink",
    is_flag=True,
    help="Attribute every stored Devlog session again and relink its events; one line each.",
)
@OUTPUT
@click.pass_context
@handle_errors
def attribute_command(ctx, message, files, branch, at, limit, batch, relink, output):
    """Rank the specs that govern MESSAGE (a commit message or any text), the files it changed
    and its branch, each with a confidence and its evidence; or abstain when none is confident
    (a release, a dependency bump)."""
    memory = memory_of(ctx)
    if relink:
        if message or files or branch or at or batch is not None:
            raise click.UsageError("--events attributes the stored sessions: give no others")
        for link in memory.relink_sessions():
            click.echo(json.dumps(link, ensure_ascii=False))
        return
    if batch is not None:
        if message or files or branch or at:
            raise click.UsageError("--batch reads every request from the file: give no others")
        sys.exit(_run_batch(memory, batch))
    request = built(
        AttributionRequest, message=message, files=list(files), branch=branch, at=at, limit=limit
    )
    result = memory.attribute(request)

    def text() -> str:
        lines = []
        if result.abstained:
            lines.append(f"abstained: {result.reason}")
        for spec in result.specs:
            lines.append(f"{spec.confidence:.2f}  {spec.spec}  {spec.title}")
            lines += [f"      {e.kind}: {e.detail} ({e.strength:.2f})" for e in spec.evidence]
        lines += [f"note: {note}" for note in result.notes]
        return "\n".join(lines) or "no evidence names a spec"

    emit(output, result.to_dict(), text)


def _run_batch(memory: Any, lines: Any) -> int:
    """One JSON result per input line, in order; a line that cannot be read answers with its
    error and the rest go on. Exit status 1 when any line failed."""
    failed = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        answer: dict[str, Any] = {"line": number}
        try:
            fields = json.loads(line)
            if not isinstance(fields, dict):
                raise ValueError("a line must be a JSON object")
            if "id" in fields:
                answer["id"] = fields.pop("id")
            answer.update(memory.attribute(built(AttributionRequest, **fields)).to_dict())
        except ValueError as err:  # json.JSONDecodeError is a ValueError
            failed = True
            answer["error"] = {"code": "invalid_input", "message": f"line {number}: {err}"}
        except SpecmemError as err:
            failed = True
            answer["error"] = {"code": err.code, "message": f"line {number}: {err}"}
        click.echo(json.dumps(answer, ensure_ascii=False))
    return 1 if failed else 0
