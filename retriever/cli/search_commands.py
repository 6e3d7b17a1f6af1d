"""Reading the index: `search`, `eval`."""

from __future__ import annotations

import click

from ..evaluate import read_queries
from ..search import MODES
from . import OUTPUT, cli, emit, handle_errors, memory_of

MODE = click.option(
    "--mode",
    type=click.Choice(MODES),
    default="hybrid",
    show_default=True,
    help="hybrid fuses BM25 and embeddings; lexical needs no model; dense is embeddings only.",
)


@cli.command("search")
@click.argument("query")
@click.option("-n", "--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--status", multiple=True, help="Only specs with this status (repeatable).")
@click.option("--tag", multiple=True, help="Only specs with this tag (repeatable: all must match).")
@click.option("--priority", multiple=True, help="Only specs with this priority (repeatable).")
@MODE
@OUTPUT
@click.pass_context
@handle_errors
def search_command(ctx, query, limit, status, tag, priority, mode, output):
    """Rank specs for QUERY: one result per spec, best first, with its best-matching section."""
    hits = memory_of(ctx).search(
        query, limit=limit, status=list(status), tags=list(tag), priority=list(priority), mode=mode
    )
    data = {"query": query, "mode": mode, "results": [hit.to_dict() for hit in hits]}

    def text() -> str:
        if not hits:
            return "no matching specs"
        lines = []
        for hit in hits:
            lines.append(
                f"{hit.rank:>2}. {hit.spec}  {hit.title}  [{hit.status or '?'}]  {hit.score:.3f}"
            )
            if hit.snippet:
                where = " > ".join(hit.snippet.heading_path) or "(preamble)"
                start, end = hit.snippet.lines
                lines.append(f"    {hit.snippet.file}:{start}-{end}  {where}")
                first = " ".join(hit.snippet.text.split())[:160]
                lines.append(f"    {first}")
        return "\n".join(lines)

    emit(output, data, text)


@cli.command("eval")
@click.argument("queries_file", type=click.Path(dir_okay=False))
@click.option(
    "-k", default=10, show_default=True, type=click.IntRange(1, 100), help="Cut-off for recall@k."
)
@MODE
@click.option("--details", is_flag=True, help="Add each query's rank and top results.")
@OUTPUT
@click.pass_context
@handle_errors
def eval_command(ctx, queries_file, k, mode, details, output):
    """Measure search on labelled queries (JSONL lines {"query", "relevant": [spec refs]})."""
    result = memory_of(ctx).evaluate(read_queries(queries_file), k=k, mode=mode, details=details)

    def text() -> str:
        lines = [
            f"queries   {result['n']}  (mode {mode})",
            f"MRR@10    {result['mrr@10']:.3f}",
            *(f"recall@{cut:<3}{result[f'recall@{cut}']:.3f}" for cut in (1, 5, 10)),
        ]
        if k not in (1, 5, 10):
            lines.append(f"recall@{k:<3}{result[f'recall@{k}']:.3f}")
        for problem in result["problems"]:
            ref = f" {problem['ref']}:" if "ref" in problem else ""
            lines.append(f"warning: {problem['query'][:60]!r}:{ref} {problem['reason']}")
        for item in result.get("queries", []):
            rank = item["rank"] if item["rank"] is not None else "-"
            top = ", ".join(item["top"][:3])
            lines.append(f"{rank!s:>3}  {item['query'][:70]}  -> {top}")
        return "\n".join(lines)

    emit(output, result, text)
