"""What an event is: its fields checked on the way in (`normalize_event`), its row read back on
the way out (`event_row`), the same for every engine the log is kept on."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from ingest.errors import InvalidInput

EVENT_FIELDS = ("type", "agent", "session_id", "summary", "files_changed", "at", "data")
MAX_SUMMARY_CHARS = 10_000
MAX_TEXT_CHARS = 200
MAX_PATH_CHARS = 4_096
MAX_FILES = 1_000
MAX_DATA_BYTES = 64 * 1024
MAX_DATA_DEPTH = 32
# SQLite's and PostgreSQL's integers are signed 64-bit: a larger LIMIT/OFFSET (schemathesis sent offset=2**63) raised
# OverflowError, a 500; past this bound there are no rows anyway. Integers in `data` are held to
# the same range: every consumer of the log (SQLite's JSON functions, JavaScript clients at 2**53
# and beyond, Python past 4,300 digits) reads a larger one differently or not at all.
MAX_INT = 2**63 - 1
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:/-]{0,63}")
_WORD = re.compile(r"\w+", re.UNICODE)


def utc_now() -> str:
    return _format(dt.datetime.now(dt.UTC))


def _format(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Unreadable:
    """A JSON value the parser could not turn into a Python one, such as an integer past the
    4,300 digits Python converts (retriever.http.routes_events): kept as a placeholder so that
    validation can name the field it sits in, then refused."""

    def __init__(self, description: str):
        self.description = description

    def __repr__(self) -> str:
        return self.description


class _OutOfRange(Exception):
    """A timestamp that reads but cannot be expressed in UTC (year 1 or 9999 plus an offset)."""


def _utc_moment(value: object) -> dt.datetime | None:
    """`value` as an aware UTC datetime; None if it is no timestamp, _OutOfRange if it is one
    that UTC cannot hold."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise _OutOfRange from None


def parse_timestamp(value: object) -> dt.datetime | None:
    """An aware UTC datetime for an ISO 8601 string or date (naive means UTC); None if unreadable,
    including a moment outside what UTC can hold. Never raises: history sorts by it."""
    try:
        return _utc_moment(value)
    except _OutOfRange:
        return None


def _shown(value: object) -> str:
    """`value` for an error message: short, and safe for an integer of any length (repr() of one
    past 4,300 digits raises)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        if value.bit_length() < 13_000:  # under Python's 4,300-digit limit for str()
            return f"an integer of {len(str(abs(value)))} digits"
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # a foreign object's repr is not ours to trust
        text = f"a {type(value).__name__}"
    return text if len(text) <= 80 else text[:77] + "..."


def _check_text(text: str, name: str) -> str:
    """SQLite stores UTF-8: a lone surrogate (valid in a JSON string) cannot be written."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"event field '{name}' is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    return text


def _column_text(text: str, name: str) -> str:
    """Text stored as a column of its own, not inside JSON: PostgreSQL's text cannot hold NUL, so
    neither log takes it (the same event must be storable on either)."""
    if "\x00" in _check_text(text, name):
        raise InvalidInput(f"event field '{name}' holds a NUL character (U+0000)")
    return text


def _optional_text(fields: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"event field '{name}' must be a string, not {type(value).__name__}")
    value = _column_text(value, name).strip()
    if len(value) > limit:
        raise InvalidInput(f"event field '{name}' is {len(value)} characters, over {limit}")
    return value or None


def _key_path(path: str, key: str) -> str:
    shown = key if len(key) <= 40 else key[:37] + "..."
    return f"{path}.{shown}" if shown.isidentifier() else f"{path}[{json.dumps(shown)}]"


def _check_json(value: object, name: str) -> None:
    """Refuse what a later reader of the log could not take back: NaN and infinities (Python's
    json writes them, JSON has none), integers past 64 bits, text that is not UTF-8, values of
    other types, nesting past MAX_DATA_DEPTH. Iterative, so depth cannot exhaust the stack."""
    stack: list[tuple[object, str, int]] = [(value, name, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > MAX_DATA_DEPTH:
            raise InvalidInput(f"event field '{path}' nests deeper than {MAX_DATA_DEPTH} levels")
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, Unreadable):
            raise InvalidInput(
                f"event field '{path}' is {item.description}, which cannot be stored"
            )
        if isinstance(item, int):
            if not -MAX_INT <= item <= MAX_INT:
                raise InvalidInput(
                    f"event field '{path}' is {_shown(item)}, outside the signed 64-bit range; "
                    "send it as a string"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InvalidInput(f"event field '{path}' is {item!r}; JSON has no NaN or infinity")
        elif isinstance(item, str):
            _check_text(item, path)
        elif isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise InvalidInput(f"event field '{path}' has a key that is not a string")
                _check_text(key, path)
                stack.append((sub, _key_path(path, key), depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{path}[{i}]", depth + 1) for i, sub in enumerate(item))
        else:
            raise InvalidInput(
                f"event field '{path}' holds a {type(item).__name__}, which is not a JSON value"
            )


def _event_time(raw: object) -> str:
    if raw is None or raw == "":
        return utc_now()
    try:
        moment = _utc_moment(raw)
    except _OutOfRange:
        raise InvalidInput(
            f"event field 'at' is {_shown(raw)}, outside years 0001-9999 once converted to UTC"
        ) from None
    if moment is None:
        raise InvalidInput(f"event field 'at' must be an ISO 8601 timestamp, got {_shown(raw)}")
    return _format(moment)


def _files(raw: object) -> list[str]:
    files = raw or []
    if isinstance(files, str):
        files = [files]
    if not isinstance(files, list | tuple) or not all(isinstance(f, str) for f in files):
        raise InvalidInput("event field 'files_changed' must be a list of file paths")
    if len(files) > MAX_FILES:
        raise InvalidInput(
            f"event field 'files_changed' lists {len(files)} files, over {MAX_FILES}"
        )
    kept = []
    for i, path in enumerate(files):
        path = _column_text(path, f"files_changed[{i}]").strip()
        if len(path) > MAX_PATH_CHARS:
            raise InvalidInput(
                f"event field 'files_changed[{i}]' is {len(path)} characters, over {MAX_PATH_CHARS}"
            )
        if path:
            kept.append(path)
    return kept


def normalize_event(spec: str, event_type: object, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check and canonicalize one event; raises InvalidInput naming the field at fault.

    What comes back can be stored, read back and rendered as JSON by every door: a value that
    would be accepted now and break a later read is refused here instead.
    """
    unknown = sorted(str(name) for name in set(fields) - set(EVENT_FIELDS) - {"spec"})
    if unknown:
        raise InvalidInput(
            f"unknown event field(s) {', '.join(unknown)}; allowed: {', '.join(EVENT_FIELDS)}"
        )
    if not isinstance(event_type, str) or not _TYPE.fullmatch(event_type):
        raise InvalidInput(
            f"event field 'type' must be a short name such as 'commit' or 'agent.finished' "
            f"(letters, digits, _ . : / -; at most 64), got {_shown(event_type)}"
        )
    files = _files(fields.get("files_changed"))
    data = fields.get("data") or {}
    if not isinstance(data, dict):
        raise InvalidInput("event field 'data' must be a JSON object")
    _check_json(data, "data")
    data_json = json.dumps(data, ensure_ascii=False, sort_keys=True, allow_nan=False)
    if len(data_json.encode()) > MAX_DATA_BYTES:
        raise InvalidInput(f"event field 'data' is over {MAX_DATA_BYTES} bytes as JSON")
    return {
        "spec": spec,
        "type": event_type,
        "agent": _optional_text(fields, "agent", MAX_TEXT_CHARS),
        "session_id": _optional_text(fields, "session_id", MAX_TEXT_CHARS),
        "summary": _optional_text(fields, "summary", MAX_SUMMARY_CHARS) or "",
        "files_changed": files,
        "at": _event_time(fields.get("at")),
        "data": json.loads(data_json),
    }


def query_words(text: str) -> list[str]:
    """The words of a search over the log, each of which an event must contain (at most 32)."""
    return _WORD.findall(text)[:32]


def _stored_json(text: str) -> Any:
    # Most events carry no files and no data: those need no parser (a bundle reads ~40 rows).
    if text == "[]":
        return []
    if text == "{}":
        return {}
    # Rows written before NaN and infinity were refused hold them; read them as null, which is
    # what every JSON encoder downstream would need them to be.
    return json.loads(text, parse_constant=lambda _: None)


def event_row(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "spec": row["spec"] or None,  # none yet: a Devlog event whose session is not linked
        "type": row["type"],
        "agent": row["agent"],
        "session_id": row["session_id"],
        "summary": row["summary"],
        "files_changed": _stored_json(row["files_changed"]),
        "at": row["at"],
        "data": _stored_json(row["data"]),
        "recorded_at": row["recorded_at"],
    }
