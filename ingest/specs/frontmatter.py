"""Split a spec file into YAML frontmatter and markdown body, and normalize the values.

Pure functions over text. YAML is parsed with the safe loader, aliases are refused (frontmatter
never needs them, and an alias bomb would otherwise blow up whatever walks the result), and every
value is normalized here and only here: YAML turns `2025-10-24` into a `date`, `- 185` into an int,
and LeanSpec writes `in_progress` and `completed` as often as the canonical names.

YAML also accepts values that break whatever reads them later: NaN and infinity (no JSON number),
timestamps that leave the representable years once their UTC offset is applied, integers too long
for Python to print, nesting deeper than JSON encoders recurse, `!!binary`, `!!set`, `!!omap`.
`normalize_frontmatter` turns every value, at any depth, into plain JSON data (str, int, finite
float, bool, None, list, dict with str keys) and notes each one it had to change; the parser
refuses only integers past MAX_INT_DIGITS, at their line, because they cannot even be built.
Spec 025 records which kind is refused and which is normalized.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import SpecParseError

__all__ = [
    "KNOWN_STATUSES",
    "PRIORITIES",
    "PROJECT_STATUSES",
    "STATUSES",
    "Frontmatter",
    "SplitDocument",
    "canonical_priority",
    "canonical_status",
    "load_yaml_value",
    "normalize_frontmatter",
    "parse_yaml",
    "safe_values",
    "split_document",
    "value_text",
]

STATUSES = ("draft", "planned", "in-progress", "complete", "archived")
# LeanSpec's other two (its frontmatter reference and agent-relay's AGENTS.md name them): read
# wherever they appear, written only where the project declares them (.lean-spec/config.json
# `statuses`), so a typo never becomes a status nobody filters on.
PROJECT_STATUSES = ("blocked", "cancelled")
KNOWN_STATUSES = STATUSES + PROJECT_STATUSES
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
        "related_to",
        "supersedes",
        "superseded_by",
        "superseded-by",
        "parent",
        "assignee",
        "created_at",
        "updated_at",
        "completed_at",
        "transitions",
    }
)
MAX_FRONTMATTER_CHARS = 64_000
# The smallest int->str limit Python can be configured with (PYTHONINTMAXSTRDIGITS, default 4300):
# an integer within it prints under every setting. Longer ones are refused at their line.
MAX_INT_DIGITS = 640
# JSON encoders and dataclasses.asdict recurse once per level; libyaml allows 999 levels.
MAX_VALUE_DEPTH = 64
TIMESTAMP_KEYS = ("created", "created_at", "updated_at", "completed_at")
_INT_LIMIT = 10**MAX_INT_DIGITS
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
_LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class SplitDocument:
    """A file's text cut at its frontmatter fences. Lines are 1-based, fences excluded."""

    yaml_text: str | None
    body: str
    body_start_line: int  # the file line the body starts on
    fm_first_line: int = 0  # first YAML line, 0 when there is no frontmatter
    fm_last_line: int = 0
    unclosed: bool = False  # a `---` on line 1 that no later `---` closes


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
    # An opening fence with no closing fence: treat the whole file as body rather than guess,
    # and say so, since "no frontmatter" would send a person looking for a missing block.
    return SplitDocument(None, text, 1, unclosed=True)


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


class _OutOfRange(yaml.MarkedYAMLError):
    """A value YAML accepts but specmem cannot hold (see MAX_INT_DIGITS)."""


def _bounded_int(loader: Any, node: Any) -> int:
    """An int, or a refusal at its line when it has more than MAX_INT_DIGITS digits: Python
    cannot print it (str() raises ValueError past its limit), so no reader could show it."""
    too_long = _OutOfRange(
        problem=f"an integer of more than {MAX_INT_DIGITS} digits", problem_mark=node.start_mark
    )
    try:
        value: int = yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError as err:
        if "limit" in str(err):  # int("...") past Python's own digit limit
            raise too_long from None
        raise  # `!!int zz`: construct_object reports it at its line
    if abs(value) >= _INT_LIMIT:
        raise too_long
    return value


class _FastLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # PyYAML's constructors raise plain Python errors (`!!int zz`, `!!binary ?`): give them
        # the line of the value that raised them instead of the frontmatter's first line.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, AttributeError, IndexError, OverflowError) as err:
            raise yaml.constructor.ConstructorError(
                problem=f"{type(err).__name__}: {err}", problem_mark=node.start_mark
            ) from None

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
_FastLoader.add_constructor("tag:yaml.org,2002:int", _bounded_int)


def load_yaml_value(yaml_text: str) -> Any:
    """One YAML value read exactly as frontmatter is read (lenient dates, bounded integers).
    Raises only yaml.YAMLError. For a single scalar: aliases are not checked here."""
    return yaml.load(yaml_text, Loader=_FAST_LOADER)


def parse_yaml(yaml_text: str, path: str, first_line: int = 2) -> dict[str, Any]:
    """Parse frontmatter YAML into a mapping, raising SpecParseError with the file line."""
    if len(yaml_text) > MAX_FRONTMATTER_CHARS:
        raise SpecParseError(
            path,
            f"frontmatter is larger than {MAX_FRONTMATTER_CHARS} characters",
            problem="frontmatter-too-large",
        )
    try:
        # Only text that could hold an alias pays for a second pass over its events.
        if "*" in yaml_text:
            _refuse_aliases(yaml_text)
        data = yaml.load(yaml_text, Loader=_FAST_LOADER)
    except _OutOfRange as err:
        line = first_line + err.problem_mark.line  # type: ignore[union-attr]  # always set
        reason = (
            f"frontmatter value out of range: {err.problem} on line {line}"
            f" (specmem reads integers of up to {MAX_INT_DIGITS} digits)"
        )
        raise SpecParseError(path, reason, line, problem="value-out-of-range") from None
    except _DuplicateKey as err:
        first = first_line + err.first_mark.line
        again = first_line + err.problem_mark.line  # type: ignore[union-attr]  # always set
        reason = (
            f"invalid YAML frontmatter: duplicate key {err.key!r} on lines {first} and {again}"
            " (each key may appear once; LeanSpec's own parser refuses this file too)"
        )
        raise SpecParseError(path, reason, again, problem="yaml-invalid") from None
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
        raise SpecParseError(
            path, f"invalid YAML frontmatter: {reason}", line, problem="yaml-invalid"
        ) from None
    except yaml.YAMLError as err:
        raise SpecParseError(
            path, f"invalid YAML frontmatter: {err}", first_line, problem="yaml-invalid"
        ) from None
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
        raise SpecParseError(path, reason, first_line, problem="yaml-invalid") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecParseError(
            path,
            "frontmatter must be a YAML mapping of keys to values",
            first_line,
            problem="frontmatter-not-mapping",
        )
    mapping = {_key_text(key): value for key, value in data.items()}
    if len(mapping) < len(data):
        # `1:` and `"1":` are two YAML keys but one key once read as text, as LeanSpec reads them.
        texts = [_key_text(key) for key in data]
        clash = next(text for text in texts if texts.count(text) > 1)
        raise SpecParseError(
            path,
            f"invalid YAML frontmatter: duplicate key {clash!r} (written two ways)",
            first_line,
            problem="yaml-invalid",
        )
    return mapping


@dataclass
class Frontmatter:
    """Normalized frontmatter. `problems` are (field, message) pairs for values it had to reject;
    `normalized` are (top-level key, message) pairs for values it replaced with safe ones."""

    status: str | None = None
    priority: str | None = None
    tags: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    # LeanSpec's newer schemas: `supersedes` / `superseded_by` (`superseded-by` in its own
    # config's custom fields), and `related_to` as another name for `related`.
    supersedes: list[str] = field(default_factory=list)
    superseded_by: list[str] = field(default_factory=list)
    parent: str | None = None
    assignee: str | None = None
    created: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    completed_at: str | None = None
    transitions: list[dict[str, str]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    normalized: list[tuple[str, str]] = field(default_factory=list)


class _Notes:
    """Collects (top-level key, message) for each value replaced on the way to safe values."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.key = ""  # the top-level key whose value is being read

    def add(self, where: Any, message: str) -> None:
        self.items.append((self.key, f"{_render(where)}: {message}"))


def _utc_text(value: dt.datetime, where: Any, notes: _Notes | None) -> str:
    """An aware datetime as UTC ISO text with `Z`; one that leaves years 1-9999 once its offset
    is applied is clamped to the first or last representable moment, with a note."""
    try:
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:
        edge = _EARLIEST if value.year < 5000 else _LATEST
    clamped = edge.isoformat().replace("+00:00", "Z")
    if notes is not None:
        notes.add(where, f"{value.isoformat()} is outside years 1-9999 in UTC; read as {clamped}")
    return clamped


def _scalar(value: Any, where: Any, notes: _Notes | None) -> Any:
    """A YAML scalar (or anything else that is not a container) as a JSON-safe value."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        if abs(value) < _INT_LIMIT:
            return value
        text = f"{value:#x}"  # the parser refuses these; a caller's own dict may still hold one
        if notes is not None:
            notes.add(where, f"an integer of more than {MAX_INT_DIGITS} digits; read as {text}")
        return text
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        text = ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
        if notes is not None:
            notes.add(where, f"{text} is not a number JSON can hold; read as the text {text!r}")
        return text
    if isinstance(value, dt.datetime):
        return value.isoformat() if value.tzinfo is None else _utc_text(value, where, notes)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")  # `!!binary` as it is written
    try:
        return str(value)
    except Exception:  # an object of a caller's own; nothing YAML builds gets here
        return f"<{type(value).__name__}>"


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    safe = _scalar(key, "", None)
    return safe if isinstance(safe, str) else str(safe)


def _sort_key(value: Any) -> tuple[str, str]:
    return type(value).__name__, str(value)


_PLAIN_TYPES = frozenset({str, bool, type(None)})
_CONTAINERS = (dict, list, tuple, set, frozenset)
# A place inside a value: the top-level key, or (place, key) for a map key, (place, i) for an
# item. Built for every child, rendered only for a note: the corpus walk stays cheap.
_Where = str | tuple[Any, str | int]


def _render(where: _Where) -> str:
    parts = []
    while isinstance(where, tuple):
        where, key = where
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return where + "".join(reversed(parts))


def _safe(value: Any, where: _Where, notes: _Notes) -> Any:
    """`value` as plain JSON data, at any depth. Iterative: nesting cannot reach Python's
    recursion limit here, and nothing deeper than MAX_VALUE_DEPTH survives to reach it later."""
    if type(value) in _PLAIN_TYPES:
        return value
    if not isinstance(value, _CONTAINERS):
        return _scalar(value, where, notes)
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, _Where, int]] = [(value, holder, 0, where, 0)]
    while stack:
        item, parent, slot, path, depth = stack.pop()
        if depth >= MAX_VALUE_DEPTH:
            parent[slot] = f"<nested deeper than {MAX_VALUE_DEPTH} levels>"
            notes.add(path, f"nested deeper than {MAX_VALUE_DEPTH} levels; not read")
            continue
        if isinstance(item, set | frozenset):  # `!!set`: hashable scalars only
            parent[slot] = sorted((_scalar(x, path, notes) for x in item), key=_sort_key)
            continue
        target: Any
        if isinstance(item, dict):
            target = {}
            pairs: list[tuple[Any, Any]] = []
            for key, child in item.items():
                text = key if type(key) is str else _key_text(key)
                if text in target:
                    notes.add((path, text), "key written two ways; the first one is kept")
                    continue
                target[text] = None
                pairs.append((text, child))
        else:  # lists, and the (key, value) tuples of `!!omap` and `!!pairs`
            target = [None] * len(item)
            pairs = list(enumerate(item))
        parent[slot] = target
        for key, child in pairs:
            if type(child) in _PLAIN_TYPES:
                target[key] = child
            elif isinstance(child, _CONTAINERS):
                stack.append((child, target, key, (path, key), depth + 1))
            else:
                target[key] = _scalar(child, (path, key), notes)
    return holder[0]


def safe_values(raw: dict[str, Any]) -> dict[str, Any]:
    """Parsed frontmatter as plain JSON data, what every reader and the write check compare."""
    return _safe_mapping(raw, _Notes())


def _safe_mapping(raw: dict[str, Any], notes: _Notes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in raw.items():
        notes.key = text = _key_text(key)
        if text in values:
            notes.add(text, "key written two ways; the first one is kept")
            continue
        values[text] = _safe(value, text, notes)
    return values


def value_text(value: Any) -> str | None:
    """A scalar as the text a reader compares (dates ISO, aware times UTC `Z`); None when empty.
    Never raises: NaN is `.nan`, an out-of-range time the nearest representable one."""
    safe = _scalar(value, "", None)
    if safe is None:
        return None
    text = str(safe).strip()
    return text or None


def _timestamp(value: Any, where: str, notes: _Notes) -> str | None:
    """A timestamp field's text. ISO text with an offset that leaves years 1-9999 in UTC is
    clamped as a YAML timestamp is: whatever orders history by UTC moment must not overflow."""
    text = value_text(value)
    if text is None or not isinstance(value, str):
        return text
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if moment.tzinfo is None:
        return text
    try:
        moment.astimezone(dt.UTC)
    except OverflowError:
        return _utc_text(moment, where, notes)
    return text


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
        text = value_text(item) if not isinstance(item, dict | list) else None
        if text and text not in result:
            result.append(text)
    return result


def _choice(
    raw: Any, name: str, allowed: tuple[str, ...], aliases: dict[str, str], problems: list
) -> str | None:
    text = value_text(raw)
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
    return key if key in KNOWN_STATUSES else None


def canonical_priority(text: str) -> str | None:
    """`med` -> `medium`: the canonical priority `text` names, None if it names none."""
    key = text.strip().lower()
    key = PRIORITY_ALIASES.get(key, key)
    return key if key in PRIORITIES else None


def normalize_frontmatter(raw: dict[str, Any]) -> Frontmatter:
    """Turn parsed YAML into canonical, JSON-safe values; never raises on odd values: rejected
    ones become `problems`, replaced ones `normalized` notes."""
    notes = _Notes()
    values = _safe_mapping(raw, notes)
    problems: list[tuple[str, str]] = []
    transitions = []
    raw_transitions = values.get("transitions")
    notes.key = "transitions"
    for index, item in enumerate(raw_transitions if isinstance(raw_transitions, list) else []):
        if isinstance(item, dict) and item.get("status") is not None:
            status = value_text(item.get("status")) or ""
            at = _timestamp(item.get("at"), f"transitions[{index}].at", notes)
            transitions.append(
                {"status": STATUS_ALIASES.get(status.lower(), status.lower()), "at": at or ""}
            )
    stamps = {}
    for key in TIMESTAMP_KEYS:
        notes.key = key
        stamps[key] = _timestamp(values.get(key), key, notes)
    return Frontmatter(
        status=_choice(values.get("status"), "status", KNOWN_STATUSES, STATUS_ALIASES, problems),
        priority=_choice(
            values.get("priority"), "priority", PRIORITIES, PRIORITY_ALIASES, problems
        ),
        tags=_string_list(values.get("tags")),
        depends_on=_string_list(values.get("depends_on")),
        related=[
            *_string_list(values.get("related")),
            *_string_list(values.get("related_to")),
        ],
        supersedes=_string_list(values.get("supersedes")),
        superseded_by=[
            *_string_list(values.get("superseded_by")),
            *_string_list(values.get("superseded-by")),
        ],
        parent=value_text(values.get("parent")),
        assignee=value_text(values.get("assignee")),
        created=stamps["created"],
        created_at=stamps["created_at"],
        updated_at=stamps["updated_at"],
        completed_at=stamps["completed_at"],
        transitions=transitions,
        extra={k: v for k, v in values.items() if k not in KNOWN_KEYS},
        problems=problems,
        normalized=notes.items,
    )
