"""Reading the index: `search`, `eval`."""

from __future__ import annotations

import click

from ..evaluation.eval_config import parse_config
from ..evaluation.evaluate import read_queries
from ..ranking.search import MODES
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
@click.argument("queries_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "-k", default=10, show_default=True, type=click.IntRange(1, 100), help="Cut-off for recall@k."
)
@MODE
@click.option(
    "--config",
    default=None,
    metavar="CONFIG",
    help="What to rank with: a mode, bm25 or bm25-windows (the plain-BM25 baselines), or key=value[,key=value] "
    "ranking settings (RankingParams) on --mode's mode.",
)
@click.option(
    "--compare",
    default=None,
    metavar="CONFIG",
    help="A second configuration, same form as --config, scored on the same queries: the "
    "difference with its paired bootstrap 95% interval.",
)
@click.option("--details", is_flag=True, help="Add each query's rank and top results.")
@OUTPUT
@click.pass_context
@handle_errors
def eval_command(ctx, queries_files, k, mode, config, compare, details, output):
    """Measure search on labelled queries (JSONL lines {"query", "relevant": [spec refs]}, with
    optional "exclude" and "set"), in one or more files."""
    base = parse_config(config or "", default_mode=mode)
    queries = [query for path in queries_files for query in read_queries(path)]
    result = memory_of(ctx).evaluate(
        queries, k=k, mode=base.mode, params=base.params, details=details, compare=compare
    )
    emit(output, result, lambda: _eval_text(result, k))


COLUMNS = (("MRR@10", "mrr@10"), ("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"))
COLUMNS_COVERAGE = (*COLUMNS, ("cov@10", "coverage@10"))


def _eval_text(result: dict, k: int) -> str:
    compare = result.get("compare")
    base = result["config"]
    other = compare["config"] if compare else ""
    columns = [*COLUMNS_COVERAGE, *([(f"R@{k}", f"recall@{k}")] if k not in (1, 5, 10) else [])]
    header = f"{'set':<26}{'n':>5}  {'config':<22}" + "".join(f"{t:>8}" for t, _ in columns)
    if compare:
        title = (
            f"{base} vs {other} on {result['n']} queries (difference "
            f"{base} - {other}, paired bootstrap 95% interval)"
        )
    else:
        title = f"{base} on {result['n']} queries"
    lines = [title, header]

    def row(name: str, n: object, label: str, figures: dict) -> str:
        cells = "".join(f"{figures.get(key, 0.0):>8.3f}" for _, key in columns)
        return f"{name:<26}{n!s:>5}  {label:<22}{cells}"

    # (label, figures, the comparison's block for them): each set, then all of them pooled.
    blocks = [
        (name, figures, compare["sets"][name] if compare else None)
        for name, figures in result["sets"].items()
    ]
    if len(blocks) != 1:
        blocks.append(("(all)", result, compare["overall"] if compare else None))
    for name, figures, versus in blocks:
        lines.append(row(name, figures["n"], base, figures))
        if versus:
            lines.append(row("", "", other, versus["other"]))
            lines.append(
                f"{'':<33}difference  "
                + "   ".join(
                    f"{label} {_interval(versus['difference'][key])}"
                    for label, key in (("MRR@10", "mrr@10"), ("R@1", "recall@1"))
                )
            )
    for problem in result["problems"]:
        ref = f" {problem['ref']}:" if "ref" in problem else ""
        at = f"{problem['where']}: " if "where" in problem else ""
        lines.append(f"warning: {at}{problem['query'][:60]!r}:{ref} {problem['reason']}")
    for item in result.get("queries", []):
        rank = item["rank"] if item["rank"] is not None else "-"
        top = ", ".join(item["top"][:3])
        lines.append(f"{rank!s:>3}  {item['query'][:70]}  -> {top}")
    return "\n".join(lines)


def _interval(difference: dict) -> str:
    return f"{difference['mean']:+.3f} [{difference['low']:+.3f}, {difference['high']:+.3f}]"
