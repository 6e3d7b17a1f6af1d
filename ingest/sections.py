"""Markdown structure for chunking: headings, fenced code, and the blank-line-separated blocks
between them, each with the exact lines it came from.

Pure functions over a list of lines. Only what chunking needs is recognized: ATX headings
(`## Design`) outside code fences, fenced code (``` or ~~~, closed by a fence of the same character
at least as long, as CommonMark does), and everything else as text blocks separated by blank
lines. A file's first `#` heading before any `##` is its title; later `#` headings act as `##`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Block", "parse_blocks", "split_lines"]

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


def split_lines(text: str) -> list[str]:
    """Lines as editors number them: split on "\\n" only (str.splitlines also splits on form
    feeds and U+2028, which would shift every later line number), "\\r" removed."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _heading(line: str) -> tuple[int, str] | None:
    match = _HEADING.match(line)
    if not match or not match.group(2).strip():
        return None
    return len(match.group(1)), match.group(2).strip()


def _fence_end(lines: list[str], start: int) -> int:
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


def parse_blocks(lines: list[str]) -> list[Block]:
    """Cut `lines` into heading, fence and text blocks; blank lines belong to no block."""
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []  # (level, text) of the headings in effect below the title
    section = 0
    seen_title = False
    index = 0
    text_start: int | None = None

    def close_text(end: int) -> None:
        nonlocal text_start
        if text_start is not None:
            blocks.append(Block("text", text_start, end, section, tuple(t for _, t in stack)))
            text_start = None

    while index < len(lines):
        line = lines[index]
        if _FENCE_OPEN.match(line):
            close_text(index)
            end = _fence_end(lines, index)
            blocks.append(Block("fence", index, end, section, tuple(t for _, t in stack)))
            index = end
            continue
        heading = _heading(line)
        if heading is not None:
            close_text(index)
            level, text = heading
            if level == 1 and section == 0 and not seen_title:
                seen_title = True  # the file's title: stays in the preamble, not in paths
                blocks.append(Block("heading", index, index + 1, 0, (), level))
                index += 1
                continue
            level = max(level, 2)  # a later `#` starts a top-level section like `##`
            if level == 2:
                section += 1
                stack = []
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            blocks.append(
                Block("heading", index, index + 1, section, tuple(t for _, t in stack), level)
            )
            index += 1
            continue
        if not line.strip():
            close_text(index)
        elif text_start is None:
            text_start = index
        index += 1
    close_text(len(lines))
    return blocks
