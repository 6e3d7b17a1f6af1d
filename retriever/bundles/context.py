"""Context bundles: what an agent should read about a query or a few specs, within N tokens.

    seeds (ranked for the query and/or named)  ->  graph expansion (retriever.bundles.expansion)
      -> decision sections of other specs that bear on the query (retriever.bundles.context_index)
      -> every piece priced in tokens and valued by relevance (here)
      -> packed into the budget (retriever.bundles.packing) -> rendered, measured, cut to fit (retriever.bundles.bundle)

The invariant every front door relies on: `tokens` is the cl100k count of `rendered` and never
exceeds `budget`. The packer works on per-piece counts; the final string is measured again (from
its blocks' counts, exactly) and cut until it fits, because counts are not additive where pieces
join.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.errors import BackendUnavailable, IndexMismatch, InvalidInput, NoIndex
from ingest.index.tokens import count_joined, count_tokens
from ingest.specs.model import Spec
from ingest.specs.store import Catalog

from ..history import merge_parsed, spec_transitions
from .bundle import ContextBundle, ContextItem, Owner, Piece, fit_bundle
from .context_index import SectionIndex, section_index
from .context_sections import Section, first_sentence, spec_sections
from .expansion import Candidate, expand
from .packing import MIN_CUT_TOKENS, Step, pack
from .render import (
    bundle_title,
    decision_header,
    history_block,
    spec_header_lines,
)

__all__ = [
    "MAX_BUDGET",
    "MAX_DEPTH",
    "ContextBundle",
    "ContextItem",
    "SeedHit",
    "SeedRanker",
    "build_context",
    "check_budget",
    "search_seed_ranker",
]

MAX_BUDGET = (
    200_000  # larger budgets are capped: more than any prompt holds, and the bundle says so
)
MAX_DEPTH = 10
SEED_LIMIT = 8
MAX_CANDIDATES = 24
MAX_DECISIONS = 5
DECISION_MIN_SHARE = 0.3  # of the best section score: weaker decision matches stay out
# Value of each piece, times the spec's relevance. The summary is cheap and says what the spec is;
# sections carry the substance; history is a short, useful tail. Decisions elsewhere are valued
# below the seeds' own sections of the same relevance.
SUMMARY_VALUE = 0.1
SEED_SUMMARY_VALUE = 1.0  # a seed always gets at least its summary before anything else
SECTIONS_VALUE = 0.8
HISTORY_VALUE = 0.05
DECISION_VALUE = 1.0
DECISION_RELEVANCE = 0.6
TITLE_QUERY_DISCOUNT = 0.5  # with no query, decisions match only the named specs' titles
# How much a section is worth to a reader with no query, by what it records.
KIND_WEIGHT = {
    "overview": 1.0,
    "decision": 1.0,
    "design": 0.8,
    "other": 0.6,
    "plan": 0.4,
    "test": 0.3,
    "notes": 0.3,
}


@dataclass(frozen=True)
class SeedHit:
    """A spec that ranks for the query, with where it matched (file, first line, last line)."""

    spec: str
    score: float
    matches: tuple[tuple[str, int, int], ...] = ()


SeedRanker = Callable[[str, int], Sequence[SeedHit]]
HistoriesOf = Callable[[Sequence[Spec]], Mapping[str, Sequence[Mapping[str, Any]]]]


def search_seed_ranker(search: Callable[..., Sequence[Any]]) -> SeedRanker:
    """Seeds from a search function returning SearchHits (spec, score, snippet with lines)."""

    def rank(query: str, limit: int) -> list[SeedHit]:
        seeds = []
        for hit in search(query, limit=limit):
            snippet = getattr(hit, "snippet", None)
            matches = ((snippet.file, *snippet.lines),) if snippet is not None else ()
            seeds.append(SeedHit(hit.spec, float(hit.score), matches))
        return seeds

    return rank


def check_budget(budget: object) -> tuple[int, list[str]]:
    """The budget to pack to, and a note when it was capped. InvalidInput below 1."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise InvalidInput(f"budget must be a whole number of tokens, not {budget!r}")
    if budget < 1:
        raise InvalidInput(f"budget must be at least 1 token, got {budget}")
    if budget > MAX_BUDGET:
        return MAX_BUDGET, [f"budget {budget} capped to {MAX_BUDGET} tokens"]
    return budget, []


def _check_depth(depth: object) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be a whole number from 0 to {MAX_DEPTH}, got {depth!r}")
    return depth


def build_context(
    catalog: Catalog,
    query: str | None = None,
    specs: Sequence[str] = (),
    budget: int = 4000,
    depth: int = 2,
    *,
    seed_ranker: SeedRanker | None = None,
    histories_of: HistoriesOf | None = None,
) -> ContextBundle:
    """A ContextBundle for `query` and/or the named `specs` (resolved strictly). History comes
    from `histories_of` (every candidate at once; a spec it leaves out, and every spec without
    it, has its frontmatter transitions)."""
    budget, notes = check_budget(budget)
    depth = _check_depth(depth)
    query = " ".join(query.split()) if query and query.strip() else None
    if isinstance(specs, str):
        specs = [specs]
    named = list(dict.fromkeys(catalog.resolve_name(ref) for ref in specs))
    if query is None and not named:
        raise InvalidInput("a context bundle needs a query or at least one spec")
    index = section_index(catalog)
    query_scores = index.scores(query) if query else None

    seeds: dict[str, tuple[float, str]] = {}
    matches: dict[str, list[tuple[str, int, int]]] = {}
    if query is not None:
        hits = None
        if seed_ranker is not None:
            try:
                hits = seed_ranker(query, SEED_LIMIT)
            except (BackendUnavailable, IndexMismatch, NoIndex) as err:
                # A bundle is still worth having when the index cannot answer: say so.
                notes.append(f"search unavailable ({err}); seeds ranked lexically")
            if hits is not None and not hits:
                # An index that knows none of the words (stale, partial) should not leave the
                # agent with an empty bundle while the specs on disk do match.
                notes.append("search found nothing; seeds ranked lexically")
                hits = None
        if hits is None:
            hits = _lexical_seeds(index, query_scores)
        for rank, hit in enumerate(hits[:SEED_LIMIT]):
            if hit.spec not in index.by_spec:
                continue  # an index older than the specs dir: the spec is gone
            seeds[hit.spec] = (1.0 / (1.0 + 0.3 * rank), f"matches the query ({hit.score:.2f})")
            matches[hit.spec] = list(hit.matches)
    for name in named:
        seeds[name] = (1.0, "named in the request")
    for name in named:
        catalog.get(name)  # a named spec whose README cannot be parsed: say so, naming the file
    # A link may resolve to a spec directory whose README failed to load: nothing to show.
    reachable = [c for c in expand(index.graph, seeds, depth) if c.spec in catalog.by_name]
    candidates = reachable[:MAX_CANDIDATES]

    owners = [_candidate_owner(catalog.get(c.spec), c, seeds) for c in candidates]
    steps: list[Step] = []
    known = histories_of([owner.spec for owner in owners]) if histories_of is not None else {}
    for position, owner in enumerate(owners):
        history = known.get(owner.spec.dir_name) or _transitions_only(owner.spec)
        steps.extend(_spec_steps(position, owner, index, query_scores, matches, history))
    decision_query = query or " ".join(catalog.get(name).title for name in named)
    decision_scores = (
        query_scores if query and query_scores is not None else index.scores(decision_query)
    )
    best = float(decision_scores.max()) if len(decision_scores) else 0.0
    about = "the query" if query else "the named specs"
    for found in index.top_decisions(
        decision_scores,
        exclude=[c.spec for c in candidates],
        limit=MAX_DECISIONS,
        min_share=DECISION_MIN_SHARE,
    ):
        relevance = DECISION_RELEVANCE * found.score / best
        if query is None:
            relevance *= TITLE_QUERY_DISCOUNT
        reason = f"decision relevant to {about} ({found.score / best:.2f})"
        owner = Owner(catalog.get(found.section.spec), relevance, reason, "decision")
        owners.append(owner)
        steps.append(_decision_step(len(owners) - 1, owner, found.section))

    title = bundle_title(query, named)
    by_key = {step.key: step for step in steps}
    # Small budgets accept smaller cut pieces: at 100 tokens a 24-token gap is a quarter of it.
    min_cut = min(MIN_CUT_TOKENS, max(4, budget // 25))
    plan = pack(steps, budget - count_tokens(title), min_cut)
    chosen: dict[str, int | None] = {key: None for key in plan.taken}
    chosen.update(plan.cut)
    items, rendered, tokens = fit_bundle(title, owners, by_key, chosen, budget, min_cut)
    return ContextBundle(
        query=query,
        seeds=list(seeds),
        budget=budget,
        tokens=tokens,
        items=items,
        rendered=rendered,
        depth=depth,
        notes=notes,
    )


def _transitions_only(spec: Spec) -> list[dict[str, Any]]:
    """Parsing and ordering timestamps costs more than the rest of a spec's steps: once per
    spec version, kept with the version (Spec.derive)."""
    return list(
        spec.derive(
            "transitions", lambda: tuple(merge_parsed(spec_transitions(spec), [], limit=20))
        )
    )


def _lexical_seeds(index: SectionIndex, scores: Any) -> list[SeedHit]:
    hits = []
    for name, score in index.rank_specs(scores, SEED_LIMIT):
        span = index.by_spec[name]
        best = max(span, key=lambda i: (scores[i], -i))
        section = index.sections[best]
        hits.append(SeedHit(name, score, ((section.file, section.line_start, section.line_end),)))
    return hits


def _candidate_owner(spec: Spec, candidate: Candidate, seeds: Mapping[str, Any]) -> Owner:
    kind = "seed" if candidate.via is None and candidate.spec in seeds else "expansion"
    return Owner(spec, candidate.relevance, candidate.reason, kind)


def _spec_steps(
    position: int,
    owner: Owner,
    index: SectionIndex,
    query_scores: Any,
    matches: Mapping[str, Sequence[tuple[str, int, int]]],
    history: Sequence[Mapping[str, Any]],
) -> list[Step]:
    spec, relevance = owner.spec, owner.relevance
    prefix = f"{position:03d}"
    # An agent must not follow a decision a later spec replaced: say so where the spec opens.
    newer = index.graph.superseded_by.get(spec.dir_name)
    status = spec.meta.status or "no status"
    status = f"{status} · superseded by {', '.join(newer)}" if newer else status
    summary = first_sentence(spec)
    short, short_tokens, header, header_tokens = _counted_headers(
        spec_header_lines(spec.dir_name, spec.title, status, owner.reason, summary.sentence)
    )
    summary_key = f"{prefix}:0summary"
    sentence_tokens = header_tokens - short_tokens
    sentence_key = f"{prefix}:1s{summary.section:04d}" if summary.section is not None else None
    owner.pieces.append(
        Piece(
            summary_key,
            position,
            "summary",
            header,
            header_tokens,
            short_text=short,
            short_tokens=short_tokens,
            shortened_by=sentence_key,
        )
    )
    summary_value = SEED_SUMMARY_VALUE if owner.kind == "seed" else SUMMARY_VALUE
    steps = [Step(summary_key, header_tokens + 1, summary_value * relevance)]
    sections = spec_sections(spec)
    shares = _section_shares(
        spec,
        sections,
        index.spec_section_scores(query_scores, spec.dir_name) if query_scores is not None else [],
        matches.get(spec.dir_name, ()),
    )
    for section, share in zip(sections, shares, strict=True):
        key = f"{prefix}:1s{section.order:04d}"
        # The section that holds the summary's sentence costs that much less: the header drops it.
        saved = sentence_tokens if key == sentence_key else 0
        owner.pieces.append(
            Piece(key, position, "section", section.text, section.tokens, section, frees=saved)
        )
        steps.append(
            Step(
                key,
                max(section.tokens + 1 - saved, 1),
                SECTIONS_VALUE * relevance * share,
                requires=summary_key,
                divisible=True,
            )
        )
    lines = history_block(history)
    if lines:
        key = f"{prefix}:2history"
        lines_tokens = count_tokens(lines)
        owner.pieces.append(Piece(key, position, "history", lines, lines_tokens))
        steps.append(Step(key, lines_tokens + 1, HISTORY_VALUE * relevance, requires=summary_key))
    return steps


def _counted_headers(lines: Sequence[str]) -> tuple[str, int, str, int]:
    """A spec's short header (title and reason lines), the full one (with its first sentence),
    and their exact counts, joined from each line's count: the reason line is new with every
    query, the others are counted once (ingest.index.tokens remembers recent counts)."""
    counted = [(line, count_tokens(line)) for line in lines]
    short_tokens = count_joined(counted[:2], "\n")
    short = "\n".join(lines[:2])
    if len(lines) == 2:
        return short, short_tokens, short, short_tokens
    header_tokens = count_joined([(short, short_tokens), *counted[2:]], "\n")
    return short, short_tokens, "\n".join(lines), header_tokens


def _section_shares(
    spec: Spec,
    sections: Sequence[Section],
    query_scores: Sequence[float],
    matched: Sequence[tuple[str, int, int]],
) -> list[float]:
    """Each section's share of its spec's worth (summing to 1): half by what kind of section it
    is (growing with its length, sublinearly), half by how well it matches the query, with the
    sections search matched counted as the best match."""
    if not sections:
        return []
    by_kind, kind_total = _kind_weights(spec, sections)
    by_query = list(query_scores) if len(query_scores) == len(sections) else [0.0] * len(sections)
    if matched:
        top = max(by_query, default=0.0)
        for position, section in enumerate(sections):
            if any(_overlaps(section, match) for match in matched):
                by_query[position] = max(by_query[position], top, 1.0)
    query_total = sum(by_query)
    if query_total <= 0:
        return [k / kind_total for k in by_kind]
    return [
        0.5 * k / kind_total + 0.5 * q / query_total for k, q in zip(by_kind, by_query, strict=True)
    ]


def _kind_weights(spec: Spec, sections: Sequence[Section]) -> tuple[tuple[float, ...], float]:
    """The kind half of _section_shares and its total: a property of the spec version alone."""

    def weights() -> tuple[tuple[float, ...], float]:
        found = tuple(KIND_WEIGHT.get(s.kind, 0.5) * max(s.tokens, 1) ** 0.5 for s in sections)
        return found, sum(found)

    return spec.derive("section_kind_weights", weights)


def _overlaps(section: Section, match: tuple[str, int, int]) -> bool:
    file, first, last = match
    return file == section.file and first <= section.line_end and last >= section.line_start


def _decision_step(position: int, owner: Owner, section: Section) -> Step:
    spec = owner.spec
    header = decision_header(
        spec.dir_name, spec.title, section.heading, spec.meta.status, owner.reason
    )
    text = f"{header}\n\n{section.text}"
    key = f"{position:03d}:decision"
    header_tokens = count_tokens(header)
    tokens = count_joined([(header, header_tokens), (section.text, section.tokens)])
    owner.pieces.append(Piece(key, position, "decision", text, tokens, section))
    # Header + blank line + section, counted apart: the bundle is measured exactly at the end.
    return Step(
        key,
        header_tokens + section.tokens + 2,
        DECISION_VALUE * owner.relevance,
        divisible=True,
        min_tokens=header_tokens + 1,
    )
