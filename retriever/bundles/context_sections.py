"""A spec cut into its `##` sections, the units a context bundle chooses between.

Chunks (ingest.index.chunking) are sized for the embedding model; a bundle wants whole sections a reader
recognizes ("## Decision", "## Design"), each with its file, exact line range, kind and token count.
Sections are pure functions of the spec's files, so they are cached by the files' content hashes:
a warm bundle never re-parses or re-counts an unchanged spec.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.index.chunking import classify_heading
from ingest.index.tokens import count_tokens
from ingest.specs.frontmatter import split_document
from ingest.specs.model import Spec
from ingest.specs.sections import parse_blocks, split_lines

__all__ = ["PREAMBLE", "Section", "Summary", "first_sentence", "spec_sections"]

PREAMBLE = "(preamble)"
# `> **Status**: ...`, `**Project**: lean-spec`: metadata restated in the body, not prose.
_METADATA_MARKUP = re.compile(
    r"^\s*>?\s*\*\*[\w ./-]{1,30}\*\*\s*:|^\s*>?\s*\*\*[\w ./-]{1,30}:\*\*"
)
_OPEN_QUESTIONS = re.compile(r"\bopen questions?\b", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*_(\[])")
_METADATA_LINE = re.compile(r"^[\w./-]+(?: [\w./-]+){0,2}\s*:\s*\S.{0,40}$")
# Emphasis and code marks and link targets; a single `_` stays (`depends_on` is a word).
_MARKUP = re.compile(r"\*+|__|`+|\[([^\]]*)\]\([^)]*\)")


@dataclass(frozen=True)
class Section:
    spec: str
    file: str  # "README.md" or a sub-spec file name, e.g. "DESIGN.md", "research/evals.md"
    path: str  # the file's path as the catalog knows it
    heading: str  # the `##` heading, PREAMBLE for text before the first one
    kind: str  # a chunking SECTION_KINDS value: "decision", "design", ...
    order: int  # position in the spec, README first
    line_start: int  # 1-based, inclusive, lines of `file`
    line_end: int
    text: str  # the markdown as it appears in the bundle (sub-file sections name their file)
    tokens: int  # cl100k tokens of `text`

    @property
    def records_decision(self) -> bool:
        """A decision made, not only a question asked: open questions count once they carry a
        recommendation."""
        if self.kind != "decision":
            return False
        if _OPEN_QUESTIONS.search(self.heading):
            return "recommend" in self.text.lower()
        return True

    @property
    def lines(self) -> tuple[int, int]:
        return (self.line_start, self.line_end)


def spec_sections(spec: Spec) -> tuple[Section, ...]:
    """The spec's sections in reading order: README first, then each sub-spec file."""
    return spec.derive("sections", lambda: tuple(_parse_spec(spec)))


@dataclass(frozen=True)
class Summary:
    sentence: str  # "" when the spec has no prose to open with
    section: int | None  # `order` of the section the sentence comes from


def first_sentence(spec: Spec, max_chars: int = 240) -> Summary:
    """The spec's opening sentence in plain words, for its one-line summary, and where it is."""
    return spec.derive(f"first_sentence:{max_chars}", lambda: _first_sentence(spec, max_chars))


def _parse_spec(spec: Spec) -> list[Section]:
    files = [("README.md", str(spec.readme.path), spec.body, spec.body_start_line)]
    for sub in spec.sub_files:
        document = split_document(sub.text)
        files.append((sub.name, str(sub.path), document.body, document.body_start_line))
    sections: list[Section] = []
    for file, path, body, first_line in files:
        for heading, kind, start, end, text in _file_sections(body):
            if file != "README.md":
                text = f"From {file}:\n{text}"
            sections.append(
                Section(
                    spec=spec.dir_name,
                    file=file,
                    path=path,
                    heading=heading,
                    kind=kind,
                    order=len(sections),
                    line_start=first_line + start,
                    line_end=first_line + end - 1,
                    text=text,
                    tokens=count_tokens(text),
                )
            )
    return sections


def _file_sections(body: str) -> list[tuple[str, str, int, int, str]]:
    """(heading, kind, start, end, text) per top-level section; start/end 0-based, end exclusive.

    The file's `# Title` and LeanSpec's `> **Status**: ...` line are left out: every bundle item
    already names the spec's title and status in its header.
    """
    lines = split_lines(body)
    grouped: dict[int, list] = {}
    for block in parse_blocks(lines):
        if block.section == 0 and block.kind == "heading":
            continue
        if block.section == 0 and all(
            _METADATA_MARKUP.match(x) for x in lines[block.start : block.end]
        ):
            continue
        grouped.setdefault(block.section, []).append(block)
    out = []
    for number, blocks in grouped.items():
        if all(b.kind == "heading" for b in blocks):
            continue  # a heading with nothing under it
        start, end = blocks[0].start, blocks[-1].end
        text = "\n".join(lines[start:end]).strip("\n")
        if not text.strip():
            continue
        heading = blocks[0].path[0] if number and blocks[0].path else PREAMBLE
        kind = "overview" if heading == PREAMBLE else classify_heading(heading) or "other"
        out.append((heading, kind, start, end, text))
    return out


def _first_sentence(spec: Spec, max_chars: int) -> Summary:
    for section in spec_sections(spec):
        if section.file != "README.md" or section.kind not in ("overview", "other"):
            continue
        for line in section.text.split("\n"):
            stripped = line.strip()
            if not stripped or stripped[0] in "#|`<->~" or stripped[0].isdigit():
                continue
            plain = _MARKUP.sub(lambda m: m.group(1) or "", stripped)
            if _METADATA_LINE.match(plain) or (plain.endswith(":") and len(plain) < 60):
                continue  # "Status: done", or a lead-in such as "Current reality:"
            sentence = _SENTENCE_END.split(plain, maxsplit=1)[0].strip()
            if len(sentence) > max_chars:
                sentence = sentence[: max_chars - 1].rsplit(" ", 1)[0] + "…"
            if sentence:
                return Summary(sentence, section.order)
    return Summary("", None)
