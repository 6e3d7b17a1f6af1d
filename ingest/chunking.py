"""Heading-aware chunking of specs. (Contract: the Chunk shape below is what the index stores and
the read path consumes; `chunk_spec` is filled in by the chunking work.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .model import Spec

__all__ = ["SECTION_KINDS", "Chunk", "chunk_spec"]

SECTION_KINDS = ("overview", "design", "decision", "plan", "test", "notes", "other")


@dataclass(frozen=True)
class Chunk:
    id: str  # stable and content-addressed: f"{spec}/{file}#{content_hash[:12]}" (+ "~n" if repeated)
    spec: str  # spec dir name
    file: str  # "README.md" or a sub-spec file name
    ordinal: int  # position of the chunk within its spec (README first, then sub-files)
    heading_path: tuple[str, ...]  # e.g. ("Design", "Storage"); () for the preamble
    section_kind: str  # one of SECTION_KINDS
    text: str  # the chunk's markdown, without the contextual header
    header: str  # contextual header: spec id, title, heading path, status, tags
    line_start: int  # 1-based, inclusive, lines of `file`
    line_end: int
    tokens: int  # tiktoken (cl100k) count of `text`
    content_hash: str  # hash of header + text: the unit of incremental re-embedding
    title: str = ""
    status: str | None = None
    priority: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def embed_text(self) -> str:
        """What the embedder and the lexical index see: the header, then the text."""
        return f"{self.header}\n\n{self.text}"


def chunk_spec(
    spec: Spec, model_token_count: Callable[[str], int], max_model_tokens: int = 256
) -> list[Chunk]:
    raise NotImplementedError
