"""Inspecting specs: `validate`, `deps`, `tokens`."""

from __future__ import annotations

import sys

import click

from ..dependencies import render_mermaid, render_tree
from . import OUTPUT, cli, emit, handle_errors, memory_of


@cli.command("validate")
@click.argument("spec_id", required=False)
@click.option("--strict", is_flag=True, help="Fail on warnings too, not only on errors.")
@OUTPUT
@click.pass_context
@handle_errors
def validate_command(ctx, spec_id, strict, output):
    """Check every spec (or one) and list each problem with its file, line and code.

    Exits 1 when there is an error (with --strict, also a warning).
    """
    report = memory_of(ctx).validate(spec_id)

    def text() -> str:
        lines = [str(problem) for problem in report.problems]
        verdict = "FAILED" if report.failed(strict) else "ok"
        lines.append(
            f"{verdict}: {report.errors} errors, {report.warnings} warnings "
            f"in {report.checked} specs"
        )
        return "\n".join(lines)

    emit(output, report.to_dict(strict=strict), text)
    if report.failed(strict):
        sys.exit(1)


@cli.command("deps")
@click.argument("spec_id")
@click.option("--upstream", "direction", flag_value="upstream", help="Only what it depends on.")
@click.option("--downstream", "direction", flag_value="downstream", help="Only what depends on it.")
@click.option("--depth", type=click.IntRange(min=1), default=None, help="Levels to follow.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tree", "mermaid"]),
    default="tree",
    show_default=True,
    help="Text rendering: an indented tree or a mermaid `graph TD`.",
)
@OUTPUT
@click.pass_context
@handle_errors
def deps_command(ctx, spec_id, direction, depth, fmt, output):
    """Show a spec's dependencies (upstream) and dependents (downstream), with dangling links."""
    report = memory_of(ctx).dependencies(spec_id, direction=direction or "both", depth=depth)
    render = render_mermaid if fmt == "mermaid" else render_tree
    emit(output, report, lambda: render(report))


@cli.command("tokens")
@click.argument("target", required=False)
@click.option("--encoding", default=None, help="tiktoken encoding (default from settings).")
@OUTPUT
@click.pass_context
@handle_errors
def tokens_command(ctx, target, encoding, output):
    """Count tokens per file and per `##` section of a spec (ID) or a FILE in the specs dir;
    with neither, the tokens of every spec."""
    if target is None:
        every = memory_of(ctx).all_token_counts(encoding=encoding)
        rows = every["specs"]
        emit(
            output,
            every,
            lambda: (
                "\n".join(f"{r['tokens']:>8}  {r['spec']}" for r in rows)
                + f"\ntotal: {every['total']} tokens ({every['encoding']})"
            ),
        )
        return
    usage = memory_of(ctx).count_tokens(target, encoding=encoding)

    def text() -> str:
        lines = []
        for entry in usage["files"]:
            flag = "  (over threshold)" if entry["over_threshold"] else ""
            lines.append(f"{entry['file']}: {entry['tokens']} tokens{flag}")
            for section in entry["sections"]:
                lines.append(
                    f"  {section['tokens']:>7}  line {section['line']:<5} {section['heading']}"
                )
        lines.append(f"total: {usage['total']} tokens ({usage['encoding']})")
        return "\n".join(lines)

    emit(output, usage, text)
