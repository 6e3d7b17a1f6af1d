"""Markdown structure for chunking: headings, fenced code, and the blank-line-separated blocks
between them, each with the exact lines it came from.

Pure functions over a list of lines. Only what chunking needs is recognized: ATX headings
(`## Design`) outside code fences, fenced code (``` or ~~~, closed by a fence of the same character
at least as long, as CommonMark does), and everything else as text blocks separated by blank
lines. A file's first `#` heading before any `##` is its title; later `#` headings act as `##`.

Everything else that needs headings (the title, the `##` sections with their line ranges) asks
this module, so that store, validate, tokens, split, chunking and context bundles all agree on
what is a heading: a `## ` line inside a fence, or indented four spaces, is not one anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "Block",
    "TopSection",
    "document_title",
    "iter_blocks",
    "parse_blocks",
    "split_lines",
    "top_sections",
]

_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True)
class Block:
    """A run of lines `[start, end)` (0-based indexes into the lines given to parse_blocks).

    `section` numbers the top-level (`##`) section the block belongs to: 0 is the preamble.
    `path` is the heading path in effect, e.g. ("Design", "Storage"); for a heading block it
    includes the heading itself.
    """

    kind: str  # "heading", "fence" or "text"
    start: int
    end: int
    section: int
    path: tuple[str, ...]
    level: int = 0  # heading level for heading blocks


@dataclass(frozen=True)
class TopSection:
    """Lines `[start, end)` of one top-level part of a document: the preamble (number 0, heading
    "", from the first line up to the first `##` heading, possibly empty) or a `##` section (from
    its heading line up to the next one, trailing blank lines included)."""

    number: int
    heading: str
    start: int
    end: int


def split_lines(text: str) -> list[str]:
    """Lines as editors number them: split on "\\n" only (str.splitlines also splits on form
    feeds and U+2028, which would shift every later line number), "\\r" removed."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\r" not in text:  # the common case; the title lookup runs for every spec of a scan
        return lines
    return [line.removesuffix("\r") for line in lines]


def _heading(line: str) -> tuple[int, str] | None:
    match = _HEADING.match(line)
    if not match or not match.group(2).strip():
        return None
    return len(match.group(1)), match.group(2).strip()


def _fence_end(lines: Sequence[str], start: int) -> int:
    """Index after the closing fence of the fence opened at `start` (end of text if unclosed)."""
    opening = _FENCE_OPEN.match(lines[start])
    if opening is None:
        return start + 1
    marker = opening.group(1)
    closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
    for index in range(start + 1, len(lines)):
        if closing.match(lines[index]):
            return index + 1
    return len(lines)


def parse_blocks(lines: Sequence[str]) -> list[Block]:
    """Cut `lines` into heading, fence and text blocks; blank lines belong to no block."""
    return list(iter_blocks(lines))


def iter_blocks(lines: Sequence[str]) -> Iterator[Block]:
    """parse_blocks, lazily: a caller that needs only the start of a file (its title) stops
    early instead of parsing a long body."""
    stack: list[tuple[int, str]] = []  # (level, text) of the headings in effect below the title
    section = 0
    seen_title = False
    index = 0
    text_start: int | None = None
    while index < len(lines):
        line = lines[index]
        if _FENCE_OPEN.match(line):
            if text_start is not None:
                yield Block("text", text_start, index, section, tuple(t for _, t in stack))
                text_start = None
            end = _fence_end(lines, index)
            yield Block("fence", index, end, section, tuple(t for _, t in stack))
            index = end
            continue
        heading = _heading(line)
        if heading is not None:
            if text_start is not None:
                yield Block("text", text_start, index, section, tuple(t for _, t in stack))
                text_start = None
            level, text = heading
            if level == 1 and section == 0 and not seen_title:
                seen_title = True  # the file's title: stays in the preamble, not in paths
                yield Block("heading", index, index + 1, 0, (), level)
                index += 1
                continue
            level = max(level, 2)  # a later `#` starts a top-level section like `##`
            if level == 2:
                section += 1
                stack = []
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            yield Block("heading", index, index + 1, section, tuple(t for _, t in stack), level)
            index += 1
            continue
        if not line.strip():
            if text_start is not None:
                yield Block("text", text_start, index, section, tuple(t for _, t in stack))
                text_start = None
        elif text_start is None:
            text_start = index
        index += 1
    if text_start is not None:
        yield Block("text", text_start, len(lines), section, tuple(t for _, t in stack))


def document_title(lines: Sequence[str]) -> str | None:
    """The text of the file's title (its first `#` heading before any `##`), None without one.

    Stops at the first `##` section: a `#` after it starts a section (as parse_blocks says), and
    the title lookup runs for every spec of every scan, so it must not parse whole bodies.
    """
    for block in iter_blocks(lines):
        if block.section > 0:
            return None
        if block.kind == "heading" and block.level == 1:
            heading = _heading(lines[block.start])
            return heading[1] if heading else None
    return None


def top_sections(lines: Sequence[str]) -> list[TopSection]:
    """The preamble and every `##` section of `lines`, in order, covering every line once."""
    heads = [
        (block.start, block.path[0])
        for block in iter_blocks(lines)
        if block.kind == "heading" and block.section > 0 and block.level == 2
    ]
    starts = [0] + [start for start, _ in heads]
    ends = [start for start, _ in heads] + [len(lines)]
    headings = [""] + [text for _, text in heads]
    return [
        TopSection(number, heading, start, end)
        for number, (heading, start, end) in enumerate(zip(headings, starts, ends, strict=True))
    ]
