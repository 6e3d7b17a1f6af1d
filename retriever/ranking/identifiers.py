"""Code-like identifiers in text: the exact tokens that the word analyzer takes apart.

The analyzer (retriever.ranking.terms) splits `IsingGraph` into "ising" and "graph", `create.rs` into
"create" and "rs", `@leanspec/ui-components` into four common words: right for prose, but it
throws away what makes an identifier worth typing, that it names one thing. Misses on held-out
spec folders came from exactly such queries (task ids, file paths, command and function names),
so identifiers are kept whole, lowercased, as a signal of their own (specs/051).

What counts: a backticked span without spaces, camelCase or PascalCase with an inner capital,
snake_case, a dotted name whose last part has a letter (`README.md`, `console.log`; not `0.2`
or "e.g."), a path or scoped package (`a/b`, `@scope/pkg`), and letter-digit ids joined by a
dash (`T-221`). Plain hyphenated words (`self-analysis`) are not identifiers: counted as such
they lowered the dev figures. Abbreviations of one-letter parts ("e.g.", "i.e.") are not either.
"""

from __future__ import annotations

import re

__all__ = ["identifiers"]

_BACKTICKED = re.compile(r"`([^`\n]{3,60})`")
_CANDIDATE = re.compile(r"[@./]?[A-Za-z0-9][A-Za-z0-9_./@#:+-]*[A-Za-z0-9]")
_INNER_CAPITAL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
_LETTER = re.compile(r"[A-Za-z]")
_DIGIT = re.compile(r"\d")
MIN_LENGTH = 3


def _is_identifier(token: str) -> bool:
    if len(token) < MIN_LENGTH:
        return False
    if _INNER_CAPITAL.search(token) or "_" in token or "/" in token or "@" in token:
        return True
    if "." in token.strip("."):
        if all(len(part) <= 1 for part in token.split(".")):
            return False
        return bool(_LETTER.search(token.rsplit(".", 1)[-1]))
    return "-" in token and bool(_LETTER.search(token)) and bool(_DIGIT.search(token))


def identifiers(text: str) -> list[str]:
    """The identifiers in `text`, lowercased, in order, repeated as often as they occur; a path
    also yields its identifier-like parts, so `src/create.rs` meets a query for `create.rs`."""
    found = [span.strip().lower() for span in _BACKTICKED.findall(text) if " " not in span.strip()]
    for raw in _CANDIDATE.findall(text):
        token = raw.rstrip(".:")
        if not _is_identifier(token):
            continue
        found.append(token.lower())
        if "/" in token:
            found.extend(part.lower() for part in token.split("/") if _is_identifier(part))
    return found
