"""The bundle's shapes (spec 004) and the last step of building one: from the pieces the packer
chose to the rendered markdown, measured, and cut until it fits the budget.

The packer's per-piece estimates are not what the joined string counts (cl100k merges ".\\n\\n" and
similar), so the string is measured as a whole (exactly, from its blocks' counts: count_joined);
while it is over budget the least valuable piece is cut or dropped, and what estimates left
unused is given back to a cut piece.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ingest.index.tokens import count_tokens
from ingest.specs.model import Spec

from .context_sections import Section, spec_sections
from .packing import Step
from .render import fit_text, fit_text_hard, join_counted

__all__ = ["ContextBundle", "ContextItem", "Owner", "Piece", "fit_bundle"]


@dataclass
class ContextItem:
    spec: str
    title: str
    status: str | None
    resolution: str  # "full", "sections" or "summary"
    reason: str
    score: float
    tokens: int  # cl100k count of `text`
    source: dict[str, Any]  # {"path", "lines": [first, last]}
    text: str
    kind: str  # "seed", "expansion" or "decision"
    sections: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "title": self.title,
            "status": self.status,
            "resolution": self.resolution,
            "reason": self.reason,
            "score": self.score,
            "tokens": self.tokens,
            "source": self.source,
            "text": self.text,
            "kind": self.kind,
            "sections": self.sections,
            "truncated": self.truncated,
        }


@dataclass
class ContextBundle:
    query: str | None
    seeds: list[str]
    budget: int
    tokens: int
    items: list[ContextItem]
    rendered: str
    depth: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "seeds": self.seeds,
            "budget": self.budget,
            "tokens": self.tokens,
            "depth": self.depth,
            "items": [item.to_dict() for item in self.items],
            "rendered": self.rendered,
            "notes": self.notes,
        }


@dataclass(slots=True)  # slots: one per section of every candidate, made on every bundle
class Piece:
    key: str
    owner: int  # index into the bundle's owners (candidates, then decisions)
    role: str  # "summary", "section", "history" or "decision"
    text: str
    tokens: int  # cl100k count of `text`
    section: Section | None = None
    # A summary's header without its first sentence, used once the section that holds the
    # sentence is in the bundle too (it would say the same thing twice), and that section's key.
    short_text: str | None = None
    short_tokens: int = 0
    shortened_by: str | None = None
    frees: int = 0  # tokens taking this piece removes elsewhere (the sentence's section)


@dataclass
class Owner:
    spec: Spec
    relevance: float
    reason: str
    kind: str
    pieces: list[Piece] = field(default_factory=list)


TOP_UP_ROUNDS = 3
TOP_UP_BELOW_FILL = 0.97  # above this fill, another render and count is not worth its time


def fit_bundle(
    title: str,
    owners: list[Owner],
    steps: Mapping[str, Step],
    chosen: dict[str, int | None],
    budget: int,
    min_cut: int,
) -> tuple[list[ContextItem], str, int]:
    """Render the chosen pieces; while the measured string is over budget, cut or drop the
    least valuable piece (cut pieces first) and measure again. Then give what the estimates
    left unused (cutting at a sentence end, joins that merge) back to a cut piece."""
    title_tokens = count_tokens(title)
    # Each piece's place (its owner, then its reading order there): every render groups the
    # few chosen pieces from this, instead of scanning every piece of every candidate.
    where = {
        piece.key: (position, order, piece)
        for position, owner in enumerate(owners)
        for order, piece in enumerate(owner.pieces)
    }
    while True:
        rendering = _render(title, title_tokens, owners, where, chosen)
        if rendering.tokens <= budget:
            break
        if not chosen:
            text = fit_text_hard(title, budget)
            return [], text, count_tokens(text)
        over = rendering.tokens - budget
        victim = min(
            (key for key in chosen if not _is_required(key, chosen, steps)),
            key=lambda key: (chosen[key] is None, steps[key].density, key),
        )
        step = steps[victim]
        room = (chosen[victim] or step.tokens) - over - 1
        if step.divisible and room >= step.min_tokens + min_cut:
            chosen[victim] = room
        else:
            del chosen[victim]
    for _ in range(TOP_UP_ROUNDS):
        cut = [key for key, limit in chosen.items() if limit is not None]
        gap = budget - rendering.tokens
        if not cut or gap < 2 or rendering.tokens >= TOP_UP_BELOW_FILL * budget:
            break
        key = max(cut, key=lambda k: (steps[k].density, k))
        before = chosen[key]
        grown = (before or 0) + gap
        chosen[key] = None if grown >= steps[key].tokens else grown
        attempt = _render(title, title_tokens, owners, where, chosen)
        if attempt.tokens > budget:
            chosen[key] = before
            break
        rendering = attempt
    return rendering.items(), rendering.text, rendering.tokens


@dataclass
class _Rendering:
    groups: list[tuple[Owner, list[Piece]]]
    texts: list[tuple[str, int, list[bool]]]
    text: str
    tokens: int

    def items(self) -> list[ContextItem]:
        return [
            _item(owner, picked, text, tokens, cuts)
            for (owner, picked), (text, tokens, cuts) in zip(self.groups, self.texts, strict=True)
        ]


_Places = Mapping[str, tuple[int, int, Piece]]


def _render(
    title: str,
    title_tokens: int,
    owners: list[Owner],
    where: _Places,
    chosen: Mapping[str, int | None],
) -> _Rendering:
    groups = _picked(owners, where, chosen)
    texts = [_owner_text(picked, chosen) for _, picked in groups]
    text, tokens = join_counted([(title, title_tokens), *((t, n) for t, n, _ in texts)])
    return _Rendering(groups, texts, text, tokens)


def _is_required(key: str, chosen: Mapping[str, int | None], steps: Mapping[str, Step]) -> bool:
    return any(steps[other].requires == key for other in chosen)


def _picked(
    owners: list[Owner], where: _Places, chosen: Mapping[str, int | None]
) -> list[tuple[Owner, list[Piece]]]:
    """Each owner with anything chosen, and its chosen pieces in reading order."""
    groups: dict[int, list[Piece]] = {}
    for position, _, piece in sorted(where[key] for key in chosen):
        groups.setdefault(position, []).append(piece)
    return [(owners[position], picked) for position, picked in groups.items()]


def _owner_text(
    picked: list[Piece], chosen: Mapping[str, int | None]
) -> tuple[str, int, list[bool]]:
    """An item's markdown, its token count, and for each of its sections whether it was cut."""
    blocks: list[tuple[str, int]] = []
    cut_sections = []
    for piece in picked:
        limit = chosen[piece.key]
        if piece.short_text and piece.shortened_by is not None and piece.shortened_by in chosen:
            block = (piece.short_text, piece.short_tokens)
        elif limit is None:
            block = (piece.text, piece.tokens)
        else:
            text = fit_text(piece.text, limit - 1 + piece.frees)
            # fit_text counted what it returns: the count is remembered, not redone.
            block = (text, piece.tokens if text == piece.text else count_tokens(text))
        blocks.append(block)
        if piece.section is not None:
            cut_sections.append(block[0] != piece.text)
    text, tokens = join_counted(blocks)
    return text, tokens, cut_sections


def _item(
    owner: Owner, picked: list[Piece], text: str, tokens: int, cut_sections: list[bool]
) -> ContextItem:
    spec = owner.spec
    with_sections = [piece.section for piece in picked if piece.section is not None]
    sections = [_section_dict(s, cut) for s, cut in zip(with_sections, cut_sections, strict=True)]
    truncated = any(cut_sections)
    all_sections = spec_sections(spec)
    if owner.kind == "decision":
        resolution = "sections"
    elif not sections:
        resolution = "summary"
    elif len(sections) == len(all_sections) and not truncated:
        resolution = "full"
    else:
        resolution = "sections"
    return ContextItem(
        spec=spec.dir_name,
        title=spec.title,
        status=spec.meta.status,
        resolution=resolution,
        reason=owner.reason,
        score=round(owner.relevance, 4),
        tokens=tokens,
        source=_source(spec, [p.section for p in picked if p.section is not None]),
        text=text,
        kind=owner.kind,
        sections=sections,
        truncated=truncated,
    )


def _section_dict(section: Section, cut: bool) -> dict[str, Any]:
    return {
        "heading": section.heading,
        "kind": section.kind,
        "file": section.file,
        "lines": [section.line_start, section.line_end],
        "tokens": section.tokens,
        "truncated": cut,
    }


def _source(spec: Spec, sections: Sequence[Section]) -> dict[str, Any]:
    """Where the item's text comes from: the README (whole, for a summary) or the file and line
    span of the first file its sections come from."""
    if not sections:
        last = spec.readme.text.count("\n") + (0 if spec.readme.text.endswith("\n") else 1)
        return {"path": str(spec.readme.path), "lines": [1, max(last, 1)]}
    first_file = [s for s in sections if s.file == sections[0].file]
    return {
        "path": first_file[0].path,
        "lines": [min(s.line_start for s in first_file), max(s.line_end for s in first_file)],
    }
