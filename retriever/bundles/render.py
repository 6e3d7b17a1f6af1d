"""The markdown of a context bundle, and cutting text to a token count.

What an agent pastes into its prompt: a title line, then one block per item. Blocks are joined by
a blank line. Token counts are not additive across joins (cl100k merges ".\\n\\n" and similar),
so the packer works on per-block estimates and the bundle is measured once more as the final
string, from its blocks' counts (ingest.index.tokens.count_joined).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from ingest.index.tokens import count_joined, count_tokens, get_encoding

__all__ = [
    "BLOCK_SEPARATOR",
    "CUT_MARK",
    "bundle_title",
    "decision_header",
    "fit_text",
    "fit_text_hard",
    "history_block",
    "join_blocks",
    "join_counted",
    "spec_header",
    "spec_header_lines",
]

BLOCK_SEPARATOR = "\n\n"
CUT_MARK = " […]"
MAX_TITLE_TOKENS = 40
MAX_HISTORY_LINES = 5
MAX_SUMMARY_CHARS = 200
# Cut back to a line or sentence end when that keeps at least this share of what fits: a whole
# sentence reads better than one cut mid-word, but not at the price of the budget filled.
KEEP_SHARE_AT_BOUNDARY = 0.92
_BOUNDARY = re.compile(r"(?:\n|[.!?;:](?=\s))")


def join_blocks(blocks: Sequence[str]) -> str:
    return BLOCK_SEPARATOR.join(block for block in blocks if block)


def join_counted(blocks: Sequence[tuple[str, int]]) -> tuple[str, int]:
    """join_blocks of (text, its token count) blocks, and the count of what it returns."""
    kept = [block for block in blocks if block[0]]
    return BLOCK_SEPARATOR.join(text for text, _ in kept), count_joined(kept, BLOCK_SEPARATOR)


@lru_cache(maxsize=512)
def fit_text(text: str, max_tokens: int) -> str:
    """`text` if it fits in `max_tokens`, else its start (ending in CUT_MARK) that does.

    Cached: packing re-renders the same cut pieces while it settles on the final string."""
    if max_tokens <= 0:
        return ""
    encoding = get_encoding()
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text
    allowed = max_tokens - count_tokens(CUT_MARK)
    while allowed > 0:
        head = encoding.decode_bytes(tokens[:allowed]).decode("utf-8", errors="ignore")
        boundaries = [m.end() for m in _BOUNDARY.finditer(head)]
        if boundaries and boundaries[-1] >= KEEP_SHARE_AT_BOUNDARY * len(head):
            head = head[: boundaries[-1]]
        candidate = head.rstrip() + CUT_MARK
        if count_tokens(candidate) <= max_tokens:
            return candidate
        allowed -= max(1, count_tokens(candidate) - max_tokens)
    return fit_text_hard(text, max_tokens)


def fit_text_hard(text: str, max_tokens: int) -> str:
    """A prefix of `text` that fits, with no mark: for budgets too small to spend on one."""
    encoding = get_encoding()
    tokens = encoding.encode(text, disallowed_special=())
    size = max_tokens
    while size > 0:
        head = encoding.decode_bytes(tokens[:size]).decode("utf-8", errors="ignore").rstrip()
        if count_tokens(head) <= max_tokens:
            return head
        size -= 1
    return ""


def bundle_title(query: str | None, named: Sequence[str]) -> str:
    subject = query.strip() if query and query.strip() else ", ".join(named)
    title = f"# Context: {' '.join(subject.split())}" if subject else "# Context"
    return fit_text(title, MAX_TITLE_TOKENS)


def spec_header(spec: str, title: str, status: str | None, reason: str, summary: str) -> str:
    """A spec item's opening: id and title, status and why it is here, its first sentence.

    Alone it is the spec's one-line summary resolution; its sections follow it otherwise.
    """
    return "\n".join(spec_header_lines(spec, title, status, reason, summary))


def spec_header_lines(
    spec: str, title: str, status: str | None, reason: str, summary: str
) -> list[str]:
    """spec_header's lines: the first and last stay the same for a spec version, the middle one
    (the reason, with the query's score) changes with every query, so a caller can count them
    apart and encode only the middle one again."""
    lines = [f"## {spec}: {title}".rstrip(), f"_{status or 'no status'} · {reason}_"]
    if summary:
        lines.append(_clip(summary, MAX_SUMMARY_CHARS))
    return lines


def decision_header(spec: str, title: str, heading: str, status: str | None, reason: str) -> str:
    return f"## Decision in {spec}: {title} › {heading}\n_{status or 'no status'} · {reason}_"


def history_block(history: Sequence[Mapping[str, Any]]) -> str:
    """Newest first: status transitions, activity events and commits, one line each."""
    lines = [_history_line(item) for item in history[:MAX_HISTORY_LINES]]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    return "History (newest first):\n" + "\n".join(f"- {line}" for line in lines)


def _history_line(item: Mapping[str, Any]) -> str:
    when = str(item.get("at") or "undated")[:16].replace("T", " ")
    if item.get("kind") == "transition":
        return f"{when} status → {item.get('status') or '?'}"
    if item.get("kind") == "commit":
        sha = str(item.get("sha") or "")[:8]
        return (
            f"{when} commit {sha} by {item.get('author')}: {_clip(str(item.get('subject')), 160)}"
        )
    what = str(item.get("type") or "event")
    who = f" by {item['agent']}" if item.get("agent") else ""
    summary = f": {_clip(str(item['summary']), 160)}" if item.get("summary") else ""
    return f"{when} {what}{who}{summary}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
