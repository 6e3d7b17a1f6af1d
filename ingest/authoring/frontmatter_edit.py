"""Edit a spec's frontmatter by lines, so every byte an edit does not have to touch stays put.

A YAML dumper would re-quote values, reorder keys, drop comments and re-indent lists. People and
other tools write these files, and a diff of a status change should be one line, so edits work on
the raw lines: a scalar edit rewrites only its value (keeping its quote style and trailing
comment), list edits keep the list's style (block `- x`, flow `[a, b]` or a comma string), new keys
go at the end of the frontmatter, and new lines use the file's own line ending. The BOM and the
body are carried through untouched. Callers parse the result again to check it says what they
meant (see ingest.authoring.writes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import yaml

from ..errors import InvalidInput, SpecParseError

# the one place values are normalized; list items must compare the way the reader sees them
from ..specs.frontmatter import load_yaml_value, value_text

__all__ = ["EditableDocument", "render_scalar"]

BOM = b"\xef\xbb\xbf"
_KEY_LINE = re.compile(r"^([A-Za-z_][A-Za-z0-9_.-]*)[ \t]*:(?=[ \t]|$)(.*)$")
_ITEM_LINE = re.compile(r"^([ \t]*)-([ \t]+|$)(.*)$")
_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./+-]*$")
_LINES = re.compile(r"[^\n]*\n|[^\n]+\Z")


def _load(text: str) -> object:
    # One scalar at a time, never an alias (a lone `*x` fails as undefined), read by the very
    # loader the frontmatter is read with: `2025-13-45` stays text and a 700-digit integer is a
    # YAMLError here too, instead of a ValueError out of the middle of an edit.
    return load_yaml_value(text)


def render_scalar(value: str, quote: str | None = None, plain: bool = False) -> str:
    """`value` as YAML text that reads back as the same string (or as `value` when `plain`)."""
    if quote == '"':
        return json.dumps(value, ensure_ascii=False)
    if quote != "'" and (plain or _reads_back_as_text(value)):
        return value
    return "'" + value.replace("'", "''") + "'"


def _reads_back_as_text(value: str) -> bool:
    if not _PLAIN_SAFE.match(value):
        return False
    try:
        return _load(value) == value
    except yaml.YAMLError:
        return False


def _quote_of(value: str) -> str | None:
    return value[0] if value[:1] in ("'", '"') else None


def _unquote(value: str) -> str:
    try:
        loaded = _load(value) if value else None
    except yaml.YAMLError:
        return value.strip("'\"")
    return value_text(loaded) or ""


def _split_value(rest: str) -> tuple[str, str, str]:
    """The text after `key:` as (leading space, value, trailing space + comment)."""
    stripped = rest.lstrip(" \t")
    lead = rest[: len(rest) - len(stripped)]
    quote: str | None = None
    end = len(stripped)
    index = 0
    while index < len(stripped):
        char = stripped[index]
        if quote:
            if char == "\\" and quote == '"':
                index += 1
            elif char == "'" == quote and stripped[index + 1 : index + 2] == "'":
                index += 1  # '' is an escaped quote inside a single-quoted scalar
            elif char == quote:
                quote = None
        elif char in "'\"" and (index == 0 or stripped[index - 1] in " \t[,"):
            quote = char
        elif char == "#" and (stripped[index - 1] in " \t" if index else bool(lead)):
            end = index
            break
        index += 1
    value = stripped[:end].rstrip(" \t")
    return lead, value, stripped[len(value) :]


def _segments(inner: str) -> list[str]:
    """Split flow-list or comma-string text on commas outside quotes, keeping the raw text."""
    parts, current, quote = [], "", None
    for char in inner:
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"" and not current.strip():
            quote = char
        elif char == ",":
            parts.append(current)
            current = ""
            continue
        current += char
    parts.append(current)
    return parts if any(p.strip() for p in parts) else []


@dataclass
class _Span:
    key: str
    start: int  # the key line
    end: int  # one past its last continuation line


@dataclass
class EditableDocument:
    """A spec file split into raw frontmatter lines (with their endings) and everything else."""

    path: str
    bom: bool
    newline: str
    lines: list[str]  # frontmatter lines between the fences, each with its own line ending
    head: str  # the opening fence line
    tail: str  # the closing fence line and the body, exactly as read
    created_frontmatter: bool = False
    touched: set[str] = field(default_factory=set)

    @classmethod
    def parse(cls, data: bytes, path: str) -> EditableDocument:
        bom = data.startswith(BOM)
        try:
            text = data[len(BOM) :].decode("utf-8") if bom else data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise SpecParseError(
                path, f"not valid UTF-8 (byte {err.start})", problem="file-not-utf8"
            ) from None
        raw = _LINES.findall(text)
        newline = "\r\n" if raw and raw[0].endswith("\r\n") else "\n"
        if raw and raw[0].rstrip("\r\n").rstrip() == "---":
            for index in range(1, len(raw)):
                if raw[index].rstrip("\r\n").rstrip() in ("---", "..."):
                    return cls(path, bom, newline, raw[1:index], raw[0], "".join(raw[index:]))
        fence = "---" + newline
        return cls(path, bom, newline, [], fence, fence + text, created_frontmatter=True)

    def render(self) -> bytes:
        text = self.head + "".join(self.lines) + self.tail
        return (BOM if self.bom else b"") + text.encode("utf-8")

    def yaml_text(self) -> str:
        return "".join(self.lines)

    # -- locating keys -----------------------------------------------------------------------

    def _content(self, index: int) -> str:
        return self.lines[index].rstrip("\r\n")

    def _spans(self) -> dict[str, _Span]:
        spans: dict[str, _Span] = {}
        index = 0
        while index < len(self.lines):
            match = _KEY_LINE.match(self._content(index))
            if not match:
                index += 1
                continue
            end = probe = index + 1
            while probe < len(self.lines):
                text = self._content(probe)
                if text.startswith((" ", "\t", "-")):
                    end = probe + 1 if text.strip() else end
                elif text.strip():
                    break
                probe += 1
            spans[match.group(1)] = _Span(match.group(1), index, end)  # YAML: the last one wins
            index = end
        return spans

    def _span(self, key: str) -> _Span | None:
        return self._spans().get(key)

    def _key_value(self, span: _Span) -> tuple[str, str, str, str]:
        """(`key:` prefix, leading space, value, trailing comment) of a key line."""
        text = self._content(span.start)
        match = _KEY_LINE.match(text)
        if match is None:  # spans start on key lines; only a bug elsewhere lands here
            raise InvalidInput(f"{self._where(span)}: expected a `key:` line")
        prefix = text[: match.start(2)]
        return (prefix, *_split_value(match.group(2)))

    def _line(self, text: str) -> str:
        return text + self.newline

    def _where(self, span: _Span) -> str:
        return f"{self.path}:{span.start + 2}"

    def _require(self, key: str) -> _Span:
        span = self._span(key)
        if span is None:
            raise InvalidInput(f"{self.path}: frontmatter has no {key!r}")
        return span

    def has(self, key: str) -> bool:
        return self._span(key) is not None

    def quote_style(self, *keys: str) -> str | None:
        """The quote character the first value written under one of `keys` uses, at any depth
        (so `at` finds the style of transition timestamps)."""
        pattern = re.compile(rf"^[ \t]*(?:-[ \t]+)?(?:{'|'.join(map(re.escape, keys))}):[ \t]+(\S)")
        for index in range(len(self.lines)):
            match = pattern.match(self._content(index))
            if match:
                return _quote_of(match.group(1))
        return None

    # -- scalars -----------------------------------------------------------------------------

    def set_scalar(
        self, key: str, value: str, *, plain: bool = False, new_quote: str | None = None
    ) -> None:
        """Set `key` to the string `value`, keeping the old value's quote style and comment
        (`new_quote` is the style for a key the file does not have yet)."""
        self.touched.add(key)
        span = self._span(key)
        if span is None:
            rendered = render_scalar(value, new_quote, plain=plain)
            self.lines.append(self._line(f"{key}: {rendered}"))
            return
        prefix, lead, old, trailing = self._key_value(span)
        rendered = render_scalar(value, _quote_of(old), plain=plain)
        if not old and trailing:
            trailing = " " + trailing  # `key:  # comment` keeps its comment after the value
        replacement = self._line(f"{prefix}{lead or ' '}{rendered}{trailing}")
        self.lines[span.start : span.end] = [replacement]

    # -- lists of strings --------------------------------------------------------------------

    def list_style(self, key: str) -> str | None:
        span = self._span(key)
        if span is None:
            return None
        _, _, value, _ = self._key_value(span)
        if not value:
            return "block"
        if value.startswith("["):
            if not value.endswith("]"):
                raise InvalidInput(
                    f"{self._where(span)}: cannot edit {key}: a flow list spread over several lines"
                )
            return "flow"
        if value[0] in "{|>&*!":
            raise InvalidInput(
                f"{self._where(span)}: cannot edit {key}: {value[:20]!r} is not a list of names"
            )
        return "comma"

    def _block_indent(self) -> tuple[str, str]:
        """(indent, space after dash) the file already uses for block list items."""
        for line in self.lines:
            match = _ITEM_LINE.match(line.rstrip("\r\n"))
            if match and match.group(2):
                return match.group(1), match.group(2)
        return "", " "

    def _new_list_style(self) -> str:
        for key in ("tags", "depends_on", "related"):
            style = self.list_style(key)
            if style in ("block", "flow"):
                return style
        return "block"

    def add_to_list(self, key: str, values: list[str]) -> None:
        """Append `values` to the list `key` (creating it in the file's usual list style)."""
        if not values:
            return
        self.touched.add(key)
        style = self.list_style(key)
        if style is None:
            if self._new_list_style() == "flow":
                items = ", ".join(render_scalar(v) for v in values)
                self.lines.append(self._line(f"{key}: [{items}]"))
                return
            self.lines.append(self._line(f"{key}:"))
            style = "block"
        span = self._require(key)
        if style == "block":
            self._add_block_items(span, values)
        else:
            self._edit_segments(span, style, add=values)

    def _add_block_items(self, span: _Span, values: list[str]) -> None:
        items = [
            (index, match)
            for index in range(span.start + 1, span.end)
            if (match := _ITEM_LINE.match(self._content(index)))
        ]
        if items:
            indent, gap = items[0][1].group(1), items[0][1].group(2) or " "
            quote = _quote_of(items[0][1].group(3).strip())
        else:
            (indent, gap), quote = self._block_indent(), None
        new = [self._line(f"{indent}-{gap}{render_scalar(v, quote)}") for v in values]
        self.lines[span.end : span.end] = new

    def remove_from_list(self, key: str, values: set[str]) -> None:
        """Drop every item of list `key` equal to one of `values`. An emptied flow list stays `[]`;
        an emptied block list or comma string loses its key (so adding then removing an item
        where there was no key leaves the file as it was)."""
        style = self.list_style(key)
        if style is None or not values:
            return
        self.touched.add(key)
        span = self._require(key)
        if style != "block":
            self._edit_segments(span, style, remove=values)
            return
        keep = []
        remaining = 0
        for index in range(span.start + 1, span.end):
            match = _ITEM_LINE.match(self._content(index))
            if match and _unquote(_split_value(match.group(3))[1]) in values:
                continue
            remaining += bool(match)
            keep.append(self.lines[index])
        if remaining:
            self.lines[span.start + 1 : span.end] = keep
        else:
            del self.lines[span.start : span.end]

    def _edit_segments(
        self,
        span: _Span,
        style: str,
        add: Sequence[str] = (),
        remove: AbstractSet[str] = frozenset(),
    ) -> None:
        prefix, lead, value, trailing = self._key_value(span)
        quote = _quote_of(value) if style == "comma" else None
        if style == "flow":
            opener, inner, closer = "[", value[1:-1], "]"
        elif quote:
            opener, inner, closer = quote, value[1:-1], quote
        else:
            opener, inner, closer = "", value, ""
        segments = _segments(inner)
        if remove:
            kept: list[str] = []
            for segment in segments:
                if _unquote(segment.strip()) in remove:
                    if kept and segment is segments[-1]:
                        # keep the whitespace before the closing bracket: `[a, b ]` stays padded
                        kept[-1] = kept[-1].rstrip() + segment[len(segment.rstrip()) :]
                    continue
                kept.append(segment)
            if kept and segments and kept[0].strip() != segments[0].strip():
                kept[0] = segments[0][: len(segments[0]) - len(segments[0].lstrip())] + (
                    kept[0].lstrip()
                )
            segments = kept
        if add:
            sep = ", " if any(s.startswith(" ") for s in segments[1:]) or len(segments) < 2 else ","
            rendered = [render_scalar(v) if style == "flow" else v for v in add]
            if segments:
                last = segments[-1]
                padding = last[len(last.rstrip()) :]
                segments[-1] = last.rstrip()
                segments += [f"{sep.lstrip(',')}{item}" for item in rendered]
                segments[-1] += padding
            else:
                segments = rendered[:1] + [f"{sep.lstrip(',')}{item}" for item in rendered[1:]]
        if not segments and style == "comma":
            del self.lines[span.start : span.end]
            return
        new_value = opener + ",".join(segments) + closer
        self.lines[span.start : span.end] = [self._line(f"{prefix}{lead}{new_value}{trailing}")]

    # -- lists of mappings (transitions) -------------------------------------------------------

    def append_mapping(self, key: str, pairs: list[tuple[str, str]]) -> None:
        """Append one `- k: v` mapping item (values already rendered) to the block list `key`."""
        self.touched.add(key)
        span = self._span(key)
        if span is not None:
            _, _, value, _ = self._key_value(span)
            if value and value.replace(" ", "") != "[]":
                raise InvalidInput(
                    f"{self._where(span)}: cannot append to {key}: it is not a block list"
                )
            if value:  # `key: []` becomes a block list holding the new item
                self.lines[span.start : span.end] = [self._line(f"{key}:")]
                span = _Span(key, span.start, span.start + 1)
        else:
            self.lines.append(self._line(f"{key}:"))
            span = _Span(key, len(self.lines) - 1, len(self.lines))
        indent, gap = self._block_indent()
        for index in range(span.start + 1, span.end):
            match = _ITEM_LINE.match(self._content(index))
            if match and match.group(2):
                indent, gap = match.group(1), match.group(2)
                break
        inner = indent + " " * (1 + len(gap))
        first_key, first_value = pairs[0]
        new = [self._line(f"{indent}-{gap}{first_key}: {first_value}")]
        new += [self._line(f"{inner}{k}: {v}") for k, v in pairs[1:]]
        self.lines[span.end : span.end] = new

    def _items(self, span: _Span) -> list[tuple[int, int]]:
        """(first line, end) of each item of the block list `span` holds: an item starts at a
        `-` in the column of the first one; deeper dashes belong to the item above them."""
        starts: list[int] = []
        indent: str | None = None
        for index in range(span.start + 1, span.end):
            match = _ITEM_LINE.match(self._content(index))
            if match and indent in (None, match.group(1)):
                indent = match.group(1)
                starts.append(index)
        return list(zip(starts, [*starts[1:], span.end], strict=True))

    def count_items(self, key: str) -> int:
        span = self._span(key)
        return len(self._items(span)) if span is not None else 0

    def take_first_items(self, key: str, count: int) -> list[str]:
        """Remove the first `count` items of the block list `key` and return each one's text,
        moved to column 0 (so the texts, one after another, are a YAML list of their own)."""
        span = self._span(key)
        items = self._items(span)[: max(0, count)] if span is not None else []
        if not items:
            return []
        self.touched.add(key)
        first = _ITEM_LINE.match(self._content(items[0][0]))
        indent = first.group(1) if first else ""
        texts = [
            "".join(line.removeprefix(indent) for line in self.lines[start:end])
            for start, end in items
        ]
        del self.lines[items[0][0] : items[-1][1]]
        return texts
