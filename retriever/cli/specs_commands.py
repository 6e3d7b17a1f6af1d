"""Reading specs: `list`, `view`, `open`, `board`, `files`, `stats`, `history`."""

from __future__ import annotations

import sys

import click

from ingest.specs.model import Spec

from ..pages import SpecPage
from . import OUTPUT, cli, emit, handle_errors, memory_of


def _line(spec: Spec) -> str:
    status = spec.meta.status or "?"
    priority = spec.meta.priority or "-"
    tags = f"  [{', '.join(spec.meta.tags)}]" if spec.meta.tags else ""
    return f"{spec.dir_name:<48} {status:<12} {priority:<8} {spec.title}{tags}"


@cli.command("list")
@click.option("--status", multiple=True, help="Only specs with this status (repeatable).")
@click.option("--tag", multiple=True, help="Only specs with this tag (repeatable: all must match).")
@click.option("--priority", multiple=True, help="Only specs with this priority (repeatable).")
@click.option("--archived", is_flag=True, help="Include archived specs.")
@OUTPUT
@click.pass_context
@handle_errors
def list_command(ctx, status, tag, priority, archived, output):
    """List specs, with the files that could not be read."""
    memory = memory_of(ctx)
    specs = memory.list_specs(
        status=list(status), tags=list(tag), priority=list(priority), include_archived=archived
    )
    problems = memory.catalog().problems
    data = {
        **SpecPage.of(specs, None).to_dict(),
        "count": len(specs),  # as before `total`; kept for scripts that read it
        "problems": [p.to_dict() for p in problems],
    }

    def text() -> str:
        lines = [_line(s) for s in specs]
        lines.append(f"{len(specs)} specs")
        return "\n".join(lines)

    emit(output, data, text)
    if output == "text":
        for problem in problems:
            click.echo(f"warning: {problem}", err=True)


@cli.command("view")
@click.argument("spec_id")
@click.option("--files", is_flag=True, help="Also print the sub-spec files.")
@click.option("--raw", is_flag=True, help="Only the README's markdown, exactly as on disk.")
@OUTPUT
@click.pass_context
@handle_errors
def view_command(ctx, spec_id, files, raw, output):
    """Show one spec: its metadata and body."""
    spec = memory_of(ctx).get_spec(spec_id)
    if raw:
        click.echo(spec.readme.text, nl=False)
        return

    def text() -> str:
        parts = [spec.readme.text.rstrip()]
        if files:
            for sub in spec.sub_files:
                parts.append(f"\n---- {sub.name} ----\n{sub.text.rstrip()}")
        elif spec.sub_files:
            parts.append(
                f"\n(sub-spec files: {', '.join(f.name for f in spec.sub_files)}; --files shows them)"
            )
        return "\n".join(parts)

    emit(output, spec.to_dict(with_body=True, with_files=files), text)


@cli.command("open")
@click.argument("spec_id")
@click.pass_context
@handle_errors
def open_command(ctx, spec_id):
    """Open a spec's README in your editor ($VISUAL, $EDITOR), as lean-spec's `open`; without a
    terminal (an agent's shell), print its path."""
    path = memory_of(ctx).get_spec(spec_id).readme.path
    if sys.stdin.isatty() and sys.stdout.isatty():
        click.edit(filename=str(path))
    else:
        click.echo(str(path))


@cli.command("board")
@click.option("--archived", is_flag=True, help="Include archived specs.")
@OUTPUT
@click.pass_context
@handle_errors
def board_command(ctx, archived, output):
    """Specs grouped by status."""
    columns = memory_of(ctx).board(include_archived=archived)
    data = {status: [s.summary() for s in specs] for status, specs in columns.items()}

    def text() -> str:
        out = []
        for status, specs in columns.items():
            out.append(f"== {status} ({len(specs)})")
            out.extend(f"  {s.dir_name}  {s.title}" for s in specs)
        return "\n".join(out)

    emit(output, data, text)


@cli.command("files")
@click.argument("spec_id")
@OUTPUT
@click.pass_context
@handle_errors
def files_command(ctx, spec_id, output):
    """List every file of a spec: the README and its sub-spec files, with their sizes."""
    spec = memory_of(ctx).get_spec(spec_id)
    files = [
        {"file": f.name, "bytes": len(f.text.encode("utf-8")), "lines": f.text.count("\n")}
        for f in (spec.readme, *spec.sub_files)
    ]
    data = {"spec": spec.dir_name, "files": files}
    emit(output, data, lambda: "\n".join(f"{f['bytes']:>8}  {f['file']}" for f in files))


@cli.command("stats")
@OUTPUT
@click.pass_context
@handle_errors
def stats_command(ctx, output):
    """Project metrics: specs by status and priority, the commonest tags, the share complete."""
    stats = memory_of(ctx).stats()

    def text() -> str:
        lines = [f"{stats['total']} specs ({stats['archived']} archived), "
                 f"{stats['complete_share']:.0%} complete"]  # fmt: skip
        for title, key in (("status", "by_status"), ("priority", "by_priority")):
            lines.append(f"by {title}: " + ", ".join(f"{k} {v}" for k, v in stats[key].items()))
        if stats["top_tags"]:
            lines.append("tags: " + ", ".join(f"{k} {v}" for k, v in stats["top_tags"].items()))
        return "\n".join(lines)

    emit(output, stats, text)


@cli.command("history")
@click.argument("spec_id")
@click.option("--since", default=None, help="Only from this ISO 8601 date or time, or git commit.")
@click.option("-n", "--limit", default=30, show_default=True, type=click.IntRange(1, 1000))
@OUTPUT
@click.pass_context
@handle_errors
def history_command(ctx, spec_id, since, limit, output):
    """What happened to a spec, newest first: status transitions, events, and the git commits
    that changed its files (with the fields and sections changed) or cite it."""
    memory = memory_of(ctx)
    name = memory.get_spec(spec_id).dir_name
    items = memory.history(name, limit=limit, since=since)

    def line(item: dict) -> str:
        at = str(item.get("at") or "?")[:19]
        if item["kind"] == "transition":
            return f"{at}  status -> {item.get('status')}"
        if item["kind"] == "commit":
            changes = item.get("changes", {})
            what = [f"{k}: {v}" for k, v in changes.get("fields", {}).items()]
            what += [f"+ {h}" for h in changes.get("sections_added", [])]
            what += [f"- {h}" for h in changes.get("sections_removed", [])]
            cites = " (cites)" if item.get("cites") else ""
            suffix = f"  [{'; '.join(what)}]" if what else ""
            return f"{at}  {item['sha'][:10]} {item['author']}: {item['subject']}{cites}{suffix}"
        return f"{at}  {item.get('type')}: {item.get('summary') or ''}".rstrip()

    emit(
        output,
        {"spec": name, "history": items},
        lambda: "\n".join(map(line, items)) or "no history",
    )
