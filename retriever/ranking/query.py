"""Query analysis: the terms lexical ranking looks up, and a weight per term.

Queries arrive the way developers and agents write them, often as commit subjects
("Implement: template variable sync (Phase 2)"). They go through the index's own analyzer
(retriever.ranking.terms), so a query word meets the chunk words it should. Every content word keeps
weight 1: down-weighting commit verbs ("add", "implement", "fix") was flat in the corpus study,
and IDF already discounts words that most chunks contain. `weights` is the seam for a term
weighting that measures better. Identifiers (`IsingGraph`, `create.rs`) are also kept whole,
for the identifier signal (specs/051).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .identifiers import identifiers
from .terms import terms

__all__ = ["AnalyzedQuery", "analyze_query"]


@dataclass(frozen=True)
class AnalyzedQuery:
    text: str
    terms: tuple[str, ...]
    weights: dict[str, float] = field(default_factory=dict)
    identifiers: tuple[str, ...] = ()  # whole code-like tokens (retriever.ranking.identifiers)


def analyze_query(text: str) -> AnalyzedQuery:
    return AnalyzedQuery(text=text, terms=tuple(terms(text)), identifiers=tuple(identifiers(text)))
