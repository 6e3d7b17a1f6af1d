"""An event field holding a value that JSON (or Python) accepts but that would break later: a
timestamp at the edge of the representable range once its offset is applied, NaN or infinity,
an integer thousands of digits long, a lone surrogate, deep nesting. Each is refused with
`invalid_input` naming the field, never a 500, and nothing is stored that a later read of
`/events`, `/specs/X/history` or a context bundle could not render. Property tests over
generated values of every JSON type, through `normalize_event` and the store, the real HTTP app
(raw JSON bodies, so NaN and long integers arrive as a client sends them) and an MCP session.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from ingest.errors import InvalidInput
from retriever import SpecMemory
from retriever.events import EVENT_FIELDS, EventStore, PostgresDatabase, normalize_event
from retriever.history import merge_history
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server
from tests.conftest import write_spec

TOKEN = "event-input-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
HTTP = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

EDGE_TIMES = [
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:59:59.999999+01:00",
    "9999-12-31T23:00:00-23:59",
    "0001-01-01T00:00:00+23:59:59.999999",
]
TEXT = st.text(st.characters(exclude_categories=()), max_size=20)  # lone surrogates included
TIMESTAMPS = st.one_of(
    st.sampled_from(EDGE_TIMES),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.builds(
        lambda d, minutes: d.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))).isoformat(),
        st.sampled_from([dt.datetime.min, dt.datetime.max, dt.datetime(2026, 1, 1)]),
        st.integers(-1439, 1439),
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63 - 2, max_value=2**64),
    # Thousands of digits (built, not sampled: hypothesis would repr() the choices, and repr of
    # an integer past 4,300 digits raises).
    st.builds(lambda n, sign: sign * 10**n, st.integers(19, 6000), st.sampled_from([1, -1])),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    TIMESTAMPS,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
FIELDS = st.sampled_from([*EVENT_FIELDS, "spec"])


def _renders(value: Any) -> None:
    """What every door does with what it stored: strict JSON, no NaN, every string UTF-8."""
    json.dumps(value, allow_nan=False).encode("utf-8")


def _check_stored(store: EventStore, event: dict[str, Any]) -> None:
    stored = store.add(event)
    _renders(stored)
    assert store.list(spec=event["spec"], limit=1)[0] == stored
    history = merge_history([], [stored], 10)
    assert history[0]["at"] == stored["at"]
    _renders(history)
    assert dt.datetime.fromisoformat(stored["at"].replace("Z", "+00:00")).tzinfo is not None


# -- normalize_event and the store ---------------------------------------------------------------


@FAST
@given(field=FIELDS, value=JSON_VALUES)
def test_any_json_value_in_any_field_is_refused_by_name_or_stored_readably(field, value):
    fields = {field: value}
    event_type = fields.pop("type", "note")
    try:
        event = normalize_event("001-auth-design", event_type, fields)
    except InvalidInput as err:
        assert field in str(err) or (field == "spec" and "unknown" in str(err)), str(err)
        return
    with _scratch_store() as store:
        _check_stored(store, event)


@FAST
@given(data=st.dictionaries(TEXT, JSON_VALUES, max_size=6), at=st.one_of(st.none(), TIMESTAMPS))
def test_whole_events_of_generated_values_round_trip_or_are_refused(data, at):
    try:
        event = normalize_event("001-auth-design", "note", {"data": data, "at": at})
    except InvalidInput as err:
        assert "'data" in str(err) or "'at'" in str(err), str(err)
        return
    with _scratch_store() as store:
        _check_stored(store, event)


class _scratch_store:
    """An empty log per example: a new file on SQLite; on PostgreSQL, the test's own database,
    emptied after (a database per example would cost more than the example)."""

    def __enter__(self) -> EventStore:
        import tempfile

        self._dir = tempfile.TemporaryDirectory()
        url = os.environ.get("SPECMEM_EVENTS_URL")
        self._server = PostgresDatabase(url) if url else None
        return EventStore(self._server or Path(self._dir.name) / "events.sqlite")

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            with self._server.transaction() as conn:
                conn.execute("DELETE FROM events")
        self._dir.cleanup()


@pytest.mark.parametrize("at", EDGE_TIMES[:2])
def test_edge_timestamps_are_refused_naming_at(at):
    with pytest.raises(InvalidInput, match=r"'at'.*outside years 0001-9999"):
        normalize_event("001-x", "note", {"at": at})


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"at": float("nan")}, "'at'"),
        ({"at": 10**5000}, "'at'"),
        ({"at": dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=2)))}, "'at'"),
        ({"data": {"x": float("inf")}}, "'data.x'"),
        ({"data": {"x": [1, {"y": float("nan")}]}}, "'data.x[1].y'"),
        ({"data": {"big": 10**5000}}, "'data.big'"),
        ({"data": {"big": 2**63}}, "'data.big'"),
        ({"data": {"k": "\ud800"}}, "'data.k'"),
        ({"data": {"odd key!": {1, 2}}}, 'data["odd key!"]'),
        ({"data": {1: "int key"}}, "'data'"),
        ({"summary": "half \udc00 a pair"}, "'summary'"),
        ({"files_changed": ["ok.py", "\ud83d"]}, "'files_changed[1]'"),
        ({"files_changed": ["x" * 5000]}, "'files_changed[0]'"),
    ],
)
def test_values_that_would_break_later_are_refused_by_name(fields, named):
    with pytest.raises(InvalidInput) as err:
        normalize_event("001-x", "note", fields)
    assert named in str(err.value)


def test_deep_nesting_is_refused_not_a_recursion_error():
    nested: Any = "leaf"
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises(InvalidInput, match="nests deeper"):
        normalize_event("001-x", "note", {"data": {"deep": nested}})


def test_a_type_with_a_trailing_newline_is_refused():
    with pytest.raises(InvalidInput, match="'type'"):
        normalize_event("001-x", "commit\n", {})


def test_history_never_crashes_on_transitions_at_the_edges():
    transitions = [
        {"status": "planned", "at": "0001-01-01T00:00:00+01:00"},
        {"status": "complete", "at": dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(-dt.timedelta(hours=1)))},
        "not a mapping",
        {"status": "in-progress", "at": "2026-01-01T00:00:00Z"},
    ]  # fmt: skip
    merged = merge_history(transitions, [], 10)  # type: ignore[list-item]
    assert [item["status"] for item in merged] == ["in-progress", "complete", "planned"]


@pytest.mark.sqlite_log
def test_rows_stored_by_an_older_version_with_nan_read_back_as_null(tmp_path):
    store = EventStore(tmp_path / "events.sqlite")
    store.add(normalize_event("001-x", "note", {}))
    with sqlite3.connect(tmp_path / "events.sqlite") as conn:
        conn.execute('UPDATE events SET data = \'{"x": NaN, "y": [Infinity]}\'')
    [row] = store.list()
    assert row["data"] == {"x": None, "y": [None]}
    _renders(row)


# -- the HTTP door: raw bodies as a client sends them --------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("event-input")
    write_spec(
        root / "specs", "001-auth-design", "---\nstatus: planned\n---\n# Auth\n\n## Overview\nx\n"
    )
    memory = SpecMemory(root / "specs", root / "data")
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as client:
        yield client


def _reads_still_work(client: TestClient) -> None:
    for path in ("/events?limit=500", "/specs/001/events?limit=500", "/specs/001/history"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        _renders(answer.json())
    bundle = client.post("/context", json={"specs": ["001"], "budget": 4000})
    assert bundle.status_code == 200, bundle.text[:300]


def _int_text(number: int) -> str:
    """Decimal digits of any integer (str() refuses past 4,300 digits), as a client would send."""
    if -(10**4000) < number < 10**4000:
        return str(number)
    high, low = divmod(abs(number), 10**4000)
    return ("-" if number < 0 else "") + _int_text(high) + str(low).zfill(4000)


def _client_json(value: Any) -> str:
    """JSON as a lenient client writes it: NaN and Infinity as literals, integers of any length."""
    huge: dict[str, str] = {}

    def mark(item: Any) -> Any:
        if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 13_000:
            token = f"@@int{len(huge)}@@"
            huge[token] = _int_text(item)
            return token
        if isinstance(item, list):
            return [mark(sub) for sub in item]
        if isinstance(item, dict):
            return {key: mark(sub) for key, sub in item.items()}
        return item

    text = json.dumps(mark(value))
    for token, digits in huge.items():
        text = text.replace(f'"{token}"', digits)
    return text


RAW_CASES = {
    "at, offset before year 1": ('"at": "0001-01-01T00:00:00+01:00"', "at"),
    "at, offset past year 9999": ('"at": "9999-12-31T23:59:59-01:00"', "at"),
    "at, NaN": ('"at": NaN', "at"),
    "at, Infinity": ('"at": -Infinity', "at"),
    "at, 5000-digit integer": ('"at": ' + "9" * 5000, "at"),
    "at, 5000-digit negative integer": ('"at": -' + "9" * 5000, "at"),
    "at, 1e999": ('"at": 1e999', "at"),
    "data, NaN": ('"data": {"x": NaN}', "data.x"),
    "data, 1e999": ('"data": {"x": 1e999}', "data.x"),
    "data, 5000-digit integer": ('"data": {"x": ' + "1" * 5000 + "}", "data.x"),
    "data, 30-digit integer": ('"data": {"x": ' + "1" * 30 + "}", "data.x"),
    "data, deep": ('"data": {"x": ' + "[" * 100 + "]" * 100 + "}", "data.x"),
    "data, very deep": ('"data": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}", "body"),
    "data, lone surrogate": ('"data": {"x": "\\ud800"}', "data.x"),
    "summary, lone surrogate": ('"summary": "\\udc00"', "summary"),
    "files_changed, lone surrogate": ('"files_changed": ["\\ud800"]', "files_changed"),
    "session_id, 5000-digit integer": ('"session_id": ' + "7" * 5000, "session_id"),
}


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_http_refuses_each_edge_value_with_422_naming_the_field(http, case):
    fragment, field = RAW_CASES[case]
    body = '{"spec": "001", "type": "note", ' + fragment + "}"
    answer = http.post("/events", content=body.encode(), headers=AUTH)
    assert answer.status_code == 422, answer.text[:300]
    error = answer.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in error["message"] or any(field in d["field"] for d in error.get("details", []))
    _reads_still_work(http)


@HTTP
@given(field=st.sampled_from(EVENT_FIELDS[1:]), value=JSON_VALUES)
def test_http_answers_201_or_422_for_any_value_and_reads_keep_working(http, field, value):
    body = _client_json({"spec": "001", "type": "note", field: value})
    answer = http.post("/events", content=body.encode("utf-8", "surrogatepass"), headers=AUTH)
    assert answer.status_code in (201, 422), answer.text[:300]
    if answer.status_code == 422:
        assert answer.json()["error"]["code"] == "invalid_input"
    _reads_still_work(http)


# -- the MCP door --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "refused"),
    [
        ({"at": "0001-01-01T00:00:00+01:00"}, True),
        ({"at": "9999-12-31T23:59:59-01:00"}, True),
        ({"data": {"x": 10**5000}}, True),
        ({"data": {"x": {"y": "\ud800"}}}, True),
        # The client's JSON encoder already turns NaN and infinity into null: stored as such.
        ({"data": {"x": float("inf"), "y": [float("nan")]}}, False),
    ],
)
def test_mcp_log_event_refuses_edge_values_as_invalid_input(
    tiny_specs, tmp_path, arguments, refused
):
    memory = SpecMemory(tiny_specs, tmp_path / "data")

    async def scenario():
        async with Client(build_mcp_server(memory)) as client:
            logged = await client.call_tool("log_event", {"spec": "1", "type": "note", **arguments})
            bundle = await client.call_tool("get_context", {"specs": ["1"], "budget": 2000})
            return logged, bundle

    logged, bundle = anyio.run(scenario)
    if refused:
        assert logged.is_error and "[invalid_input]" in logged.content[0].text
        assert memory.events("1") == []
    else:
        assert not logged.is_error, logged.content
        _renders(memory.events("1"))
    assert not bundle.is_error
