"""Split a spec file into YAML frontmatter and markdown body, and normalize the values.

Pure functions over text. YAML is parsed with the safe loader, aliases are refused (frontmatter
never needs them, and an alias bomb would otherwise blow up whatever walks the result), and every
value is normalized here and only here: YAML turns `2025-10-24` into a `date`, `- 185` into an int,
and LeanSpec writes `in_progress` and `completed` as often as the canonical names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import yaml

from .errors import SpecParseError

__all__ = [
    "PRIORITIES",
    "STATUSES",
    "Frontmatter",
    "SplitDocument",
    "canonical_priority",
    "canonical_status",
    "normalize_frontmatter",
    "parse_yaml",
    "split_document",
]

STATUSES = ("draft", "planned", "in-progress", "complete", "archived")
PRIORITIES = ("low", "medium", "high", "critical")
STATUS_ALIASES = {
    "in_progress": "in-progress",
    "in progress": "in-progress",
    "inprogress": "in-progress",
    "completed": "complete",
    "done": "complete",
}
PRIORITY_ALIASES = {"med": "medium", "urgent": "critical"}
KNOWN_KEYS = frozenset(
    {
        "status",
        "created",
        "priority",
        "tags",
        "depends_on",
        "related",
        "parent",
        "assignee",
        "created_at",
        "updated_at",
        "completed_at",
        "transitions",
    }
)
MAX_FRONTMATTER_CHARS = 64_000


@dataclass(frozen=True)
class SplitDocument:
    """A file's text cut at its frontmatter fences. Lines are 1-based, fences excluded."""

    yaml_text: str | None
    body: str
    body_start_line: int  # the file line the body starts on
    fm_first_line: int = 0  # first YAML line, 0 when there is no frontmatter
    fm_last_line: int = 0


def split_document(text: str) -> SplitDocument:
    """Cut `---` fenced frontmatter off the top of `text` (a BOM must already be stripped)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n").rstrip() != "---":
        return SplitDocument(None, text, 1)
    for index in range(1, len(lines)):
        if lines[index].rstrip("\r\n").rstrip() in ("---", "..."):
            yaml_text = "".join(lines[1:index])
            body = "".join(lines[index + 1 :])
            return SplitDocument(yaml_text, body, index + 2, 2, index)
    # An opening fence with no closing fence: treat the whole file as body rather than guess.
    return SplitDocument(None, text, 1)


def _lenient_timestamp(loader: Any, node: Any) -> Any:
    """A date-shaped value that is no real date (`2025-13-45`) stays text instead of failing the
    whole file with a ValueError: the spec still loads, and a person sees what was written."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, TypeError, AttributeError, OverflowError):
        return loader.construct_scalar(node)


class _DuplicateKey(yaml.MarkedYAMLError):
    """A mapping key written twice. YAML requires unique keys; PyYAML silently keeps the last
    value, while LeanSpec's own parsers (js-yaml via gray-matter, serde_yaml) refuse the file."""

    def __init__(self, key: Any, first_mark: Any, again_mark: Any):
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=again_mark)
        self.key = key
        self.first_mark = first_mark


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        # `flatten_mapping` (inside the parent call) removes `<<` merge keys from this very list
        # and, when there are any, puts a new list with the merged pairs first on the node.
        own_pairs = node.value if isinstance(node, yaml.MappingNode) else []
        mapping = super().construct_mapping(node, deep=deep)
        # Fewer keys than pairs means one was written twice; merged keys may legitimately be
        # overridden, so a merge is checked pair by pair. The common case costs two len() calls.
        if len(mapping) < len(own_pairs) or node.value is not own_pairs:
            _refuse_duplicate_keys(self, own_pairs)
        return mapping


def _refuse_duplicate_keys(loader: Any, pairs: list[tuple[Any, Any]]) -> None:
    """Raise at the second occurrence of a key among a mapping's own (not merged) pairs."""
    first_marks: dict[Any, Any] = {}
    for key_node, _value_node in pairs:
        key = loader.construct_object(key_node)  # already built: served from the loader's cache
        if key in first_marks:
            raise _DuplicateKey(key, first_marks[key], key_node.start_mark)
        first_marks[key] = key_node.start_mark


def _refuse_aliases(yaml_text: str) -> None:
    """Raise at the first alias. The event parser is iterative, so deep nesting cannot make it
    recurse: composing with a Python loader took seconds to hit the recursion limit."""
    for event in yaml.parse(yaml_text, Loader=_FastLoader):
        if isinstance(event, yaml.AliasEvent):
            raise yaml.MarkedYAMLError(
                problem="YAML aliases are not allowed in spec frontmatter",
                problem_mark=event.start_mark,  # type: ignore[arg-type]  # a C-parser Mark
            )


_FAST_LOADER = _FastLoader
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_FastLoader.add_constructor(_TIMESTAMP_TAG, _lenient_timestamp)


def parse_yaml(yaml_text: str, path: str, first_line: int = 2) -> dict[str, Any]:
    """Parse frontmatter YAML into a mapping, raising SpecParseError with the file line."""
    if len(yaml_text) > MAX_FRONTMATTER_CHARS:
        raise SpecParseError(path, f"frontmatter is larger than {MAX_FRONTMATTER_CHARS} characters")
    try:
        # Only text that could hold an alias pays for a second pass over its events.
        if "*" in yaml_text:
            _refuse_aliases(yaml_text)
        data = yaml.load(yaml_text, Loader=_FAST_LOADER)
    except _DuplicateKey as err:
        first = first_line + err.first_mark.line
        again = first_line + err.problem_mark.line  # type: ignore[union-attr]  # always set
        reason = (
            f"invalid YAML frontmatter: duplicate key {err.key!r} on lines {first} and {again}"
            " (each key may appear once; LeanSpec's own parser refuses this file too)"
        )
        raise SpecParseError(path, reason, again) from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        if mark is not None and err.context_mark and mark.line >= yaml_text.count("\n"):
            # Found only at the end of the text (an unclosed bracket or quote): the line where
            # the unclosed construct began is the one a person must fix.
            mark = err.context_mark
        line = first_line + mark.line if mark is not None else None
        reason = err.problem or "invalid YAML"
        if err.context and err.context_mark is not None and err.context_mark is not mark:
            # "did not find expected ']'" on line 4 is found while parsing a `[` opened on line 3.
            reason += f" ({err.context} started on line {first_line + err.context_mark.line})"
        raise SpecParseError(path, f"invalid YAML frontmatter: {reason}", line) from None
    except yaml.YAMLError as err:
        raise SpecParseError(path, f"invalid YAML frontmatter: {err}", first_line) from None
    except (
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        OverflowError,
        RecursionError,
    ) as err:
        # PyYAML's constructors raise plain Python errors for values such as `!!int zz`.
        reason = f"invalid YAML frontmatter: {type(err).__name__}: {err}"
        raise SpecParseError(path, reason, first_line) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecParseError(
            path, "frontmatter must be a YAML mapping of keys to values", first_line
        )
    mapping = {str(key): value for key, value in data.items()}
    if len(mapping) < len(data):
        # `1:` and `"1":` are two YAML keys but one key once read as text, as LeanSpec reads them.
        texts = [str(key) for key in data]
        clash = next(text for text in texts if texts.count(text) > 1)
        raise SpecParseError(
            path,
            f"invalid YAML frontmatter: duplicate key {clash!r} (written two ways)",
            first_line,
        )
    return mapping


@dataclass
class Frontmatter:
    """Normalized frontmatter. `problems` are (field, message) pairs for values it had to reject."""

    status: str | None = None
    priority: str | None = None
    tags: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    parent: str | None = None
    assignee: str | None = None
    created: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    transitions: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


def _string_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple | set):
        items = list(value)
    else:
        items = [value]
    result = []
    for item in items:
        text = _text(item) if not isinstance(item, dict | list) else None
        if text and text not in result:
            result.append(text)
    return result


def _choice(
    raw: Any, name: str, allowed: tuple[str, ...], aliases: dict[str, str], problems: list
) -> str | None:
    text = _text(raw)
    if text is None:
        return None
    key = text.lower()
    key = aliases.get(key, key)
    if key in allowed:
        return key
    problems.append((name, f"unknown {name} {text!r} (expected one of {', '.join(allowed)})"))
    return None


def canonical_status(text: str) -> str | None:
    """`in_progress` -> `in-progress`: the canonical status `text` names, None if it names none."""
    key = text.strip().lower()
    key = STATUS_ALIASES.get(key, key)
    return key if key in STATUSES else None


def canonical_priority(text: str) -> str | None:
    """`med` -> `medium`: the canonical priority `text` names, None if it names none."""
    key = text.strip().lower()
    key = PRIORITY_ALIASES.get(key, key)
    return key if key in PRIORITIES else None


def normalize_frontmatter(raw: dict[str, Any]) -> Frontmatter:
    """Turn parsed YAML into canonical values; never raises on odd values, records problems."""
    problems: list[tuple[str, str]] = []
    transitions = []
    raw_transitions = raw.get("transitions")
    for item in raw_transitions if isinstance(raw_transitions, list) else []:
        if isinstance(item, dict) and item.get("status") is not None:
            status = _text(item.get("status")) or ""
            transitions.append(
                {
                    "status": STATUS_ALIASES.get(status.lower(), status.lower()),
                    "at": _text(item.get("at")) or "",
                }
            )
    return Frontmatter(
        status=_choice(raw.get("status"), "status", STATUSES, STATUS_ALIASES, problems),
        priority=_choice(raw.get("priority"), "priority", PRIORITIES, PRIORITY_ALIASES, problems),
        tags=_string_list(raw.get("tags")),
        depends_on=_string_list(raw.get("depends_on")),
        related=_string_list(raw.get("related")),
        parent=_text(raw.get("parent")),
        assignee=_text(raw.get("assignee")),
        created=_text(raw.get("created")),
        created_at=_text(raw.get("created_at")),
        updated_at=_text(raw.get("updated_at")),
        completed_at=_text(raw.get("completed_at")),
        transitions=transitions,
        extra={k: v for k, v in raw.items() if k not in KNOWN_KEYS},
        problems=problems,
    )
