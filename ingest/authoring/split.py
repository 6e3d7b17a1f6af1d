"""Split `##` sections of a spec's README into a sub-spec file, leaving a link in their place.

A README past a few thousand tokens stops fitting a context budget; LeanSpec's answer is sub-spec
files (DESIGN.md, IMPLEMENTATION.md) beside it. A section moves with its sub-headings and code
fences intact (headings inside fences are not headings), byte for byte, and the README keeps the
section's heading with a `See [Heading](FILE.md).` line, so its outline still shows where things
went. The sub-spec file is written before the README: a crash between the two leaves the text in
both places, never in neither.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from ..errors import InvalidInput, UnsafeReference
from ..specs.sections import document_title, top_sections
from ..specs.store import Catalog, SpecStore
from .frontmatter_edit import EditableDocument
from .writes import WrittenSpec, locked_readme, parse_frontmatter

__all__ = ["Section", "default_file_name", "find_sections", "split_spec"]

_LINES = re.compile(r"[^\n]*\n|[^\n]+\Z")
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.md$")
_STUB = re.compile(r"^See \[.*\]\([A-Za-z0-9][A-Za-z0-9_-]*\.md\)\.$")


@dataclass(frozen=True)
class Section:
    heading: str
    start: int  # index of the heading line among the body lines
    end: int  # one past the section's last line (its trailing blank lines included)


def _key(heading: str) -> str:
    return " ".join(heading.strip().lstrip("#").split()).casefold()


def find_sections(lines: list[str]) -> list[Section]:
    """Every `##` section of `lines` (no line endings), in order."""
    return [Section(s.heading, s.start, s.end) for s in top_sections(lines) if s.number > 0]


def default_file_name(heading: str) -> str:
    """`Implementation plan` -> `IMPLEMENTATION-PLAN.md`, LeanSpec's sub-spec naming."""
    words = re.findall(r"[A-Za-z0-9]+", heading)
    name = "-".join(words).upper()[:48].strip("-")
    return f"{name or 'SECTIONS'}.md"


def _file_name(into: str | None, first_heading: str) -> str:
    if into is None:
        return default_file_name(first_heading)
    name = into.strip()
    if not name.lower().endswith(".md"):
        name += ".md"
    if not _FILE_NAME.match(name) or name.lower() == "readme.md":
        raise UnsafeReference(
            f"into: {into!r} is not a sub-spec file name (a plain NAME.md beside README.md)"
        )
    return name


def _pick(sections: list[Section], wanted: Sequence[str], path: str) -> list[Section]:
    by_key: dict[str, list[Section]] = {}
    for section in sections:
        by_key.setdefault(_key(section.heading), []).append(section)
    chosen: list[Section] = []
    for heading in wanted:
        matches = by_key.get(_key(heading), [])
        if not matches:
            available = "; ".join(s.heading for s in sections) or "none"
            raise InvalidInput(
                f"section: {path} has no `##` section {heading!r} (its sections: {available})"
            )
        if len(matches) > 1:
            raise InvalidInput(f"section: {path} has {len(matches)} sections named {heading!r}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return sorted(chosen, key=lambda s: s.start)


def _link_text(heading: str) -> str:
    return heading.replace("[", "\\[").replace("]", "\\]")


def split_spec(
    store: SpecStore,
    data_dir: Path,
    catalog: Catalog,
    ref: object,
    sections: Sequence[str],
    into: str | None = None,
    *,
    expected_hash: str | None = None,
) -> WrittenSpec:
    if not sections:
        raise InvalidInput("section: name at least one `##` heading to split out")
    with locked_readme(catalog, data_dir, ref, expected_hash) as locked:
        doc = EditableDocument.parse(locked.data, str(locked.path))
        parse_frontmatter(doc)  # refuse to touch a README whose frontmatter does not parse
        newline = doc.newline
        if doc.created_frontmatter:  # no frontmatter: the whole file is body, and stays so
            doc.head, fence, body = "", "", doc.tail[len(doc.head) :]
        else:
            fence, body = _cut_fence(doc.tail)
        raw = _LINES.findall(body)
        lines = [line.rstrip("\r\n") for line in raw]
        chosen = _pick(find_sections(lines), sections, str(locked.path))
        for section in chosen:
            content = [line for line in lines[section.start + 1 : section.end] if line.strip()]
            if len(content) == 1 and _STUB.match(content[0]):
                raise InvalidInput(
                    f"section: {section.heading!r} of {locked.path} is already split out "
                    f"({content[0].strip()})"
                )
        name = _file_name(into, chosen[0].heading)
        target = locked.directory / name
        existing = _existing_text(target, name, appending=into is not None)

        moved: list[str] = []
        kept: list[str] = []
        cursor = 0
        for section in chosen:
            kept.extend(raw[cursor : section.start])
            content_end = section.end
            while content_end > section.start + 1 and not lines[content_end - 1].strip():
                content_end -= 1
            block = raw[section.start : content_end]
            if block and not block[-1].endswith("\n"):
                block[-1] += newline
            if moved:
                moved.append(newline)
            moved.extend(block)
            heading_line = raw[section.start]
            if not heading_line.endswith("\n"):
                heading_line += newline
            see = f"See [{_link_text(section.heading)}]({name})."
            kept.extend([heading_line, newline, see + newline])
            kept.extend(raw[content_end : section.end])  # the blank lines before the next heading
            cursor = section.end
        kept.extend(raw[cursor:])

        title = document_title(lines) or locked.dir_name
        if existing is None:
            sub_text = f"# {chosen[0].heading}: {title}{newline}{newline}" + "".join(moved)
        else:
            sub_text = existing + ("" if existing.endswith("\n") else newline) + newline
            sub_text += "".join(moved)
        doc.tail = fence + "".join(kept)
        _write_pair(target, sub_text, locked.path, doc.render())
        spec = store.load(locked.directory, locked.archived)
        change: dict[str, Any] = {
            "field": "sections",
            "moved": [s.heading for s in chosen],
            "into": name,
            "appended": existing is not None,
        }
        return WrittenSpec.of(spec, [change], [str(target), str(locked.path)])


def _cut_fence(tail: str) -> tuple[str, str]:
    """The closing frontmatter fence line and the body after it."""
    first = _LINES.match(tail)
    return (first.group(0), tail[first.end() :]) if first else ("", tail)


def _existing_text(target: Path, name: str, appending: bool) -> str | None:
    if target.is_symlink():
        raise UnsafeReference(f"refused: {target} is a symlink; specmem writes only real files")
    if not target.exists():
        return None
    if not appending:
        raise InvalidInput(
            f"into: {target} already exists; pass --into {name} to append the sections to it"
        )
    if not target.is_file():
        raise InvalidInput(f"into: {target} is not a file")
    return target.read_bytes().decode("utf-8")  # a BOM, if any, rides along as U+FEFF


def _write_pair(sub_path: Path, sub_text: str, readme: Path, readme_bytes: bytes) -> None:
    atomic_write(sub_path, sub_text.encode("utf-8"))
    atomic_write(readme, readme_bytes)
