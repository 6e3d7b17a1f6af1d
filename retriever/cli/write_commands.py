"""Writing specs: create, update, archive, split, templates."""

from __future__ import annotations

from typing import Any

import click

from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.authoring.writes import WrittenSpec

from ..request_model import built
from . import OUTPUT, _display, cli, emit, handle_errors, memory_of

EXPECTED_HASH = click.option(
    "--expected-hash",
    default=None,
    metavar="HASH",
    help="Refuse the write unless README.md still has this hash (from `view -o json`).",
)


def _describe(change: dict[str, Any]) -> str:
    name = change.get("field", "?")
    if name == "created":
        return f"created from template {change['template']} ({change['source']})"
    if name == "sections":
        verb = "appended to" if change.get("appended") else "moved to"
        return f"sections {', '.join(change['moved'])} {verb} {change['into']}"
    if "added" in change and isinstance(change["added"], dict):
        return f"{name}: + {change['added']['status']} at {change['added']['at']}"
    if "added" in change or "removed" in change:
        parts = [f"+{v}" for v in change.get("added", [])]
        parts += [f"-{v}" for v in change.get("removed", [])]
        return f"{name}: {' '.join(parts)}"
    return f"{name}: {change.get('old')} -> {change.get('new')}"


def _report(output: str, spec: WrittenSpec) -> None:
    """The written spec; its warnings (such as "not re-indexed" when the index could not follow
    the write, spec 043) also go to stderr, and the exit code stays 0: the write landed."""

    def text() -> str:
        lines = [f"{spec.dir_name}  {spec.title}"]
        lines += [f"  {_describe(change)}" for change in spec.changes] or ["  no change"]
        lines.append(f"  hash {spec.content_hash}")
        return "\n".join(lines)

    emit(output, spec.summary(), text)
    for warning in spec.warnings:
        click.echo(f"warning: {_shown(warning)}", err=True)


def _shown(message: str) -> str:
    display = _display()
    return display.text(message) if display is not None else message


@cli.command("create")
@click.argument("title")
@click.option("--template", default=None, help="Template name (see `specmem templates`).")
@click.option("--status", default="planned", show_default=True, help="Initial status.")
@click.option("--priority", default=None, help="low, medium, high or critical.")
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--depends-on", "depends_on", multiple=True, help="A dependency (repeatable).")
@click.option("--parent", default=None, help="The parent (umbrella) spec.")
@click.option("--assignee", default=None, help="Who is working on it.")
@OUTPUT
@click.pass_context
@handle_errors
def create_command(
    ctx, title, template, status, priority, tags, depends_on, parent, assignee, output
):
    """Create the next-numbered spec from a template."""
    new = built(
        NewSpec,
        title=title,
        template=template,
        status=status,
        priority=priority,
        tags=tags,
        depends_on=depends_on,
        parent=parent,
        assignee=assignee,
    )
    spec = memory_of(ctx).create_spec(new)
    _report(output, spec)


@cli.command("update")
@click.argument("spec_id")
@click.option("--status", default=None, help="New status; appends a transition.")
@click.option("--priority", default=None, help="New priority.")
@click.option("--add-tag", multiple=True, help="Add a tag (repeatable).")
@click.option("--remove-tag", multiple=True, help="Remove a tag (repeatable).")
@click.option("--add-dep", multiple=True, help="Add a dependency (repeatable; cycles refused).")
@click.option("--remove-dep", multiple=True, help="Remove a dependency (repeatable).")
@click.option(
    "--tags", default=None, help="Set the tags to exactly these, comma-separated (as lean-spec)."
)
@click.option("--assignee", default=None, help="Who is working on it.")
@EXPECTED_HASH
@OUTPUT
@click.pass_context
@handle_errors
def update_command(
    ctx,
    spec_id,
    status,
    priority,
    add_tag,
    remove_tag,
    add_dep,
    remove_dep,
    tags,
    assignee,
    expected_hash,
    output,
):
    """Change a spec's frontmatter in place, touching only the lines that change."""
    memory = memory_of(ctx)
    if tags is not None:
        # lean-spec's `--tags a,b` names the whole list: the change is what differs from the
        # spec as read, and the write is refused if the spec changed since.
        if add_tag or remove_tag:
            raise click.UsageError("--tags sets the whole list: not with --add-tag/--remove-tag")
        current = memory.get_spec(spec_id)
        wanted = [t.strip() for t in tags.split(",") if t.strip()]
        add_tag = tuple(t for t in wanted if t not in current.meta.tags)
        remove_tag = tuple(t for t in current.meta.tags if t not in wanted)
        expected_hash = expected_hash or current.content_hash
    change = built(
        SpecChange,
        status=status,
        priority=priority,
        add_tags=add_tag,
        remove_tags=remove_tag,
        add_deps=add_dep,
        remove_deps=remove_dep,
        assignee=assignee,
    )
    if tags is not None and change.is_empty():
        _report(output, WrittenSpec.of(current, [], []))  # already as asked: nothing to write
        return
    spec = memory.update_spec(spec_id, change, expected_hash=expected_hash)
    _report(output, spec)


@cli.command("archive")
@click.argument("spec_id")
@EXPECTED_HASH
@OUTPUT
@click.pass_context
@handle_errors
def archive_command(ctx, spec_id, expected_hash, output):
    """Archive a spec: status archived plus a transition; the folder stays put."""
    _report(output, memory_of(ctx).archive_spec(spec_id, expected_hash=expected_hash))


@cli.command("split")
@click.argument("spec_id")
@click.option(
    "--section", "sections", multiple=True, required=True, help="A `##` heading (repeatable)."
)
@click.option("--into", default=None, help="Sub-spec file (default from the first heading).")
@EXPECTED_HASH
@OUTPUT
@click.pass_context
@handle_errors
def split_command(ctx, spec_id, sections, into, expected_hash, output):
    """Move `##` sections into a sub-spec file, leaving a link in their place."""
    spec = memory_of(ctx).split_spec(spec_id, list(sections), into, expected_hash=expected_hash)
    _report(output, spec)


@cli.command("templates")
@OUTPUT
@click.pass_context
@handle_errors
def templates_command(ctx, output):
    """List the templates `create` can use."""
    templates = memory_of(ctx).templates()

    def text() -> str:
        return "\n".join(f"{t['name']:<16} {t['source']:<8} {t['path']}" for t in templates)

    emit(output, {"templates": templates}, text)
