"""Heading-aware chunking of specs. (Contract: the Chunk shape below is what the index stores and
the read path consumes.)

A chunk never spans two `##` sections, and its header plus text always fit the embedding model's
window counted in the model's own word pieces (all-MiniLM-L6-v2 silently truncates past 256, so an
over-long chunk would be embedded from its first part only). Within a section, blocks (paragraphs,
lists, tables, code fences) are packed greedily up to a target size, preferring to cut where a
`###` subsection starts; a block that is too big for one chunk is cut between lines, then between
sentences, then between words. Every chunk's text is exactly the lines `line_start..line_end` of
its file (or, for a single over-long line, a piece of that line), so a reader can go to the source.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..config import DEFAULT_ENCODING
from ..specs.frontmatter import split_document
from ..specs.model import Spec
from ..specs.sections import Block, parse_blocks, split_lines
from .tokens import count_tokens

__all__ = [
    "DEFAULT_TARGET_MODEL_TOKENS",
    "SECTION_KINDS",
    "Chunk",
    "chunk_header",
    "chunk_spec",
    "classify_heading",
]

SECTION_KINDS = ("overview", "design", "decision", "plan", "test", "notes", "other")

# Header + text, in model word pieces. ~200 word pieces is ~150-200 cl100k tokens of prose: the
# chunk size the corpus study measured best; bigger chunks blur which part of a spec matched.
DEFAULT_TARGET_MODEL_TOKENS = 200
SPECIAL_TOKENS = 2  # [CLS] and [SEP] take two places of the model window
WINDOW_MARGIN = 4  # slack for tokenizers that are not exactly additive across newlines
# At a `###` boundary, close the current chunk if it is at least this full: subsections are
# better units than arbitrary cuts, but tiny subsections should still merge.
SUBSECTION_CUT_FILL = 0.5
TINY_TAIL_FILL = 0.15  # a section's last chunk this small is merged into the previous one
MAX_HEADER_TAGS = 8
MAX_TITLE_CHARS = 160


@dataclass(frozen=True)
class Chunk:
    id: str  # stable and content-addressed: f"{spec}/{file}#{content_hash[:12]}" (+ "~n" if repeated)
    spec: str  # spec dir name
    file: str  # "README.md" or a sub-spec file's name relative to the spec dir ("research/a.md")
    ordinal: int  # position of the chunk within its spec (README first, then sub-files)
    heading_path: tuple[str, ...]  # e.g. ("Design", "Storage"); () for the preamble
    section_kind: str  # one of SECTION_KINDS
    text: str  # the chunk's markdown, without the contextual header
    header: str  # contextual header: spec id, title, heading path, tags (never the status)
    line_start: int  # 1-based, inclusive, lines of `file`
    line_end: int
    tokens: int  # tiktoken (cl100k) count of `text`
    content_hash: str  # hash of header + text: the unit of incremental re-embedding
    title: str = ""
    status: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    model_tokens: int = 0  # word pieces of embed_text in the model's tokenizer, specials excluded

    @property
    def embed_text(self) -> str:
        """What the embedder and the lexical index see: the header, then the text."""
        return f"{self.header}\n\n{self.text}"


# Checked in this order: "Implementation Plan" is a plan, "Test Plan" a test, "Open Questions"
# a decision although "Open" alone is notes.
_KIND_PATTERNS = [
    ("decision", r"decisions?|trade-?offs?|alternatives?|why|adrs?|rationale|open questions?"),
    ("test", r"tests?|testing|validation|acceptance|success criteria"),
    ("plan", r"plans?|planning|phases?|tasks?|checklists?|roadmap|milestones?"),
    ("design", r"design|architecture|approach|implementation|technical"),
    ("overview", r"overview|problem|goals?|summary|background|motivation|context"),
    ("notes", r"notes?|references?|open|links?"),
]
_KIND_REGEXES = [(kind, re.compile(rf"\b(?:{words})\b", re.I)) for kind, words in _KIND_PATTERNS]


def classify_heading(heading: str) -> str | None:
    """The section kind a heading's words name, or None when they name none."""
    for kind, regex in _KIND_REGEXES:
        if regex.search(heading):
            return kind
    return None


def _section_kind(path: Sequence[str]) -> str:
    if not path:
        return "overview"  # the preamble: title, status line, one-paragraph summary
    for heading in reversed(path):  # the most specific heading that names a kind wins
        kind = classify_heading(heading)
        if kind:
            return kind
    return "other"


def chunk_header(spec: Spec, file: str, path: Sequence[str]) -> str:
    """Spec id words, title, where in the spec and tags: what the words of the chunk alone do
    not say. The corpus study measured ~0.13 MRR from such a header.

    The status is left out on purpose (spec 032): it is what orchestrators change most often, it
    says nothing about a spec's subject, and the header is part of every chunk's content hash, so
    a status in it would make every status callback re-embed the whole spec. Status filters read
    the spec's indexed metadata instead."""
    number, _, slug = spec.dir_name.partition("-")
    title = spec.title if len(spec.title) <= MAX_TITLE_CHARS else spec.title[:MAX_TITLE_CHARS]
    lines = [f"{number} {slug.replace('-', ' ')}: {title}".strip()]
    where = [file] if file != "README.md" else []
    where.extend(path)
    if where:
        lines.append(" > ".join(where))
    if spec.meta.tags:
        lines.append("tags: " + ", ".join(spec.meta.tags[:MAX_HEADER_TAGS]))
    return "\n".join(lines)


@dataclass(frozen=True)
class _Piece:
    """Part of a section: a whole block, some lines of a block, or part of one line (`part`)."""

    start: int  # 0-based line index, inclusive
    end: int  # exclusive
    path: tuple[str, ...]
    tokens: int
    kind: str
    level: int = 0
    part: str | None = None


_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+")
_GOOD_LINE_END = re.compile(r"[.!?:;|]\s*$|^\s*$")
_ITEM_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|\||>)")


_WHITESPACE = re.compile(r"\s+")


def _split_line(line: str, budget: int, count: Callable[[str], int]) -> list[str]:
    """Cut one over-long line into substrings of at most `budget` word pieces: between
    sentences, else between words, else (one enormous "word") by characters."""
    return [line[lo:hi] for lo, hi in _split_span(line, 0, len(line), budget, count)]


def _split_span(
    line: str, lo: int, hi: int, budget: int, count: Callable[[str], int]
) -> list[tuple[int, int]]:
    if hi - lo <= 1 or count(line[lo:hi]) <= budget:
        return [(lo, hi)]
    for separator in (_SENTENCE_END, _WHITESPACE):
        segments, position = [], lo
        for match in separator.finditer(line, lo, hi):
            if match.start() > position:
                segments.append((position, match.start()))
            position = match.end()
        if position < hi:
            segments.append((position, hi))
        if len(segments) > 1:
            spans: list[tuple[int, int]] = []
            for start, end in segments:
                if spans and count(line[spans[-1][0] : end]) <= budget:
                    spans[-1] = (spans[-1][0], end)
                else:
                    spans.extend(_split_span(line, start, end, budget, count))
            return spans
    middle = (lo + hi) // 2
    return _split_span(line, lo, middle, budget, count) + _split_span(
        line, middle, hi, budget, count
    )


def _block_pieces(
    block: Block, lines: list[str], budget: int, count: Callable[[str], int]
) -> list[_Piece]:
    text = "\n".join(lines[block.start : block.end])
    tokens = count(text)
    if tokens <= budget:
        return [_Piece(block.start, block.end, block.path, tokens, block.kind, block.level)]
    # Too big: cut between lines, preferring lines that end a sentence or precede an item.
    pieces: list[_Piece] = []
    start, used, good_cut = block.start, 0, None
    index = block.start
    while index < block.end:
        line_tokens = count(lines[index])
        if line_tokens > budget:
            if index > start:
                pieces.append(_line_piece(block, start, index, count, lines))
            for part in _split_line(lines[index], budget, count):
                pieces.append(
                    _Piece(index, index + 1, block.path, count(part), block.kind, 0, part)
                )
            index += 1
            start, used, good_cut = index, 0, None
            continue
        if used + line_tokens > budget and index > start:
            cut = good_cut if good_cut is not None and good_cut > start else index
            pieces.append(_line_piece(block, start, cut, count, lines))
            start = cut
            used = count("\n".join(lines[start:index])) if index > start else 0
            good_cut = None
            continue
        used += line_tokens
        index += 1
        if index < block.end and (
            _GOOD_LINE_END.search(lines[index - 1]) or _ITEM_START.match(lines[index])
        ):
            good_cut = index
    if start < block.end:
        pieces.append(_line_piece(block, start, block.end, count, lines))
    return pieces


def _line_piece(
    block: Block, start: int, end: int, count: Callable[[str], int], lines: list[str]
) -> _Piece:
    return _Piece(start, end, block.path, count("\n".join(lines[start:end])), block.kind)


def _pack(pieces: list[_Piece], target: int, limit: int) -> list[list[_Piece]]:
    """Group consecutive pieces into chunks: up to `target` tokens, cutting early at a `###`
    when the chunk is already half full; never a chunk that ends with a bare heading."""
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    used = 0

    def flush() -> None:
        nonlocal current, used
        carry: list[_Piece] = []
        while current and current[-1].kind == "heading" and len(current) > 1:
            carry.insert(0, current.pop())
        if current:
            groups.append(current)
        current = carry
        used = sum(p.tokens for p in carry)

    for piece in pieces:
        if current:
            standalone = piece.part is not None or current[-1].part is not None
            over = used + piece.tokens > target
            subsection = piece.kind == "heading" and piece.level >= 3
            if standalone or over or (subsection and used >= target * SUBSECTION_CUT_FILL):
                flush()
                if current and (standalone or used + piece.tokens > limit):
                    groups.append(current)  # carried headings that cannot join this piece
                    current, used = [], 0
        current.append(piece)
        used += piece.tokens
    flush()
    if current:
        groups.append(current)
    # A tiny last chunk (a closing sentence, a link list) reads better with what precedes it.
    if len(groups) > 1:
        last, previous = groups[-1], groups[-2]
        last_tokens = sum(p.tokens for p in last)
        mergeable = all(p.part is None for p in (*last, *previous))
        if (
            mergeable
            and last_tokens <= target * TINY_TAIL_FILL
            and sum(p.tokens for p in previous) + last_tokens <= limit
        ):
            groups[-2:] = [previous + last]
    return groups


def _common_path(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    common = paths[0]
    for path in paths[1:]:
        size = 0
        while size < min(len(common), len(path)) and common[size] == path[size]:
            size += 1
        common = common[:size]
    return common


@dataclass
class _Draft:
    file: str
    path: tuple[str, ...]
    text: str
    header: str
    line_start: int
    line_end: int
    model_tokens: int


def _file_drafts(
    spec: Spec,
    file: str,
    body: str,
    first_line: int,
    count: Callable[[str], int],
    target: int,
    limit: int,
) -> list[_Draft]:
    lines = split_lines(body)
    blocks = parse_blocks(lines)
    sections: dict[int, list[Block]] = {}
    for block in blocks:
        sections.setdefault(block.section, []).append(block)
    drafts: list[_Draft] = []
    for section_blocks in sections.values():
        if all(b.kind == "heading" for b in section_blocks):
            continue  # a title alone (it is in every header) or an empty section
        paths = {b.path for b in section_blocks}
        header_tokens = max(count(chunk_header(spec, file, p)) for p in paths)
        text_limit = max(limit - header_tokens, 16)
        text_target = max(min(target, limit) - header_tokens, min(64, text_limit))
        pieces = [
            piece
            for block in section_blocks
            for piece in _block_pieces(block, lines, text_target, count)
        ]
        for group in _pack(pieces, text_target, text_limit):
            if all(p.kind == "heading" for p in group):
                continue
            if group[0].part is not None:
                text = group[0].part
            else:
                text = "\n".join(lines[group[0].start : group[-1].end])
            path = _common_path([p.path for p in group])
            header = chunk_header(spec, file, path)
            start, end = first_line + group[0].start, first_line + group[-1].end - 1
            drafts.extend(_fit_window(file, path, header, text, start, end, count, limit))
    return drafts


def _fit_window(
    file: str,
    path: tuple[str, ...],
    header: str,
    text: str,
    start: int,
    end: int,
    count: Callable[[str], int],
    limit: int,
) -> list[_Draft]:
    """The last guard on the window: counts the real embed text; halves it if it is over
    (only a tokenizer that is not additive across newlines gets here)."""
    tokens = count(f"{header}\n\n{text}")
    if tokens <= limit or end <= start:
        return [_Draft(file, path, text, header, start, end, tokens)]
    lines = text.split("\n")
    middle = len(lines) // 2
    return _fit_window(
        file, path, header, "\n".join(lines[:middle]), start, start + middle - 1, count, limit
    ) + _fit_window(
        file, path, header, "\n".join(lines[middle:]), start + middle, end, count, limit
    )


def _spec_files(spec: Spec) -> list[tuple[str, str, int]]:
    """(file name, markdown body, the file line the body starts on), README first."""
    files = [("README.md", spec.body, spec.body_start_line)]
    for sub in spec.sub_files:
        document = split_document(sub.text)
        files.append((sub.name, document.body, document.body_start_line))
    return files


def chunk_spec(
    spec: Spec,
    model_token_count: Callable[[str], int],
    max_model_tokens: int = 256,
    *,
    target_model_tokens: int = DEFAULT_TARGET_MODEL_TOKENS,
    encoding: str = DEFAULT_ENCODING,
) -> list[Chunk]:
    """Chunks of the README body and every sub-spec file, in reading order.

    `model_token_count` counts word pieces in the embedding model's tokenizer WITHOUT special
    tokens; `max_model_tokens` is the model's window including them.
    """
    limit = max_model_tokens - SPECIAL_TOKENS - WINDOW_MARGIN
    drafts: list[_Draft] = []
    for file, body, first_line in _spec_files(spec):
        drafts.extend(
            _file_drafts(
                spec, file, body, first_line, model_token_count, target_model_tokens, limit
            )
        )
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for ordinal, draft in enumerate(drafts):
        digest = hashlib.sha256(f"{draft.header}\n\n{draft.text}".encode()).hexdigest()[:16]
        base = f"{spec.dir_name}/{draft.file}#{digest[:12]}"
        seen[base] = seen.get(base, 0) + 1
        chunk_id = base if seen[base] == 1 else f"{base}~{seen[base]}"
        chunks.append(
            Chunk(
                id=chunk_id,
                spec=spec.dir_name,
                file=draft.file,
                ordinal=ordinal,
                heading_path=draft.path,
                section_kind=_section_kind(draft.path),
                text=draft.text,
                header=draft.header,
                line_start=draft.line_start,
                line_end=draft.line_end,
                tokens=count_tokens(draft.text, encoding),
                content_hash=digest,
                title=spec.title,
                status=spec.meta.status,
                priority=spec.meta.priority,
                tags=tuple(spec.meta.tags),
                model_tokens=draft.model_tokens,
            )
        )
    return chunks
