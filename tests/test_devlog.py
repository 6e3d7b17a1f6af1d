"""Devlog's events as its collector sends them, stored whole and linked to specs (issue 13)."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app

from .conftest import write_spec

TOKEN = "devlog-key-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def devlog_event(session: str, event_type: str, data: dict, **extra) -> dict:
    """An event as Devlog's Go collector marshals `types.AgentEvent` (its client_test.go builds
    them the same way): nanosecond timestamps, camelCase, projectId an integer."""
    return {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-30T10:15:02.123456789Z",
        "eventType": event_type,
        "agentId": "claude-code",
        "agentVersion": "1.0.0",
        "sessionId": session,
        "projectId": 1,
        "context": extra.pop("context", {}),
        "data": data,
        **extra,
    }


@pytest.fixture
def served(tiny_specs, tmp_path):
    memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.ingest()
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as client:
        yield memory, client


def test_the_collectors_own_example_batch_is_stored_whole_and_unlinked(served):
    _, client = served
    batch = [
        devlog_event("test-session", "llm_request", {"test": "data"}),
        devlog_event("test-session", "llm_response", {"test": "data2"}),
    ]
    assert client.get("/api/health").status_code == 200
    answer = client.post("/api/events/batch", json=batch, headers=AUTH)
    assert answer.status_code == 201, answer.text
    assert answer.json()["stored"] == 2
    found = client.get("/events", params={"q": "llm_request"}).json()
    stored = [e for e in found["events"] if e["session_id"] == "test-session"]
    assert stored and stored[0]["spec"] is None
    assert stored[0]["data"]["id"] == batch[0]["id"]  # the whole event, as it came
    assert stored[0]["data"]["timestamp"] == batch[0]["timestamp"]


def test_a_session_is_linked_and_shows_in_the_specs_history(served):
    memory, client = served
    session = "s-refresh"
    batch = [
        devlog_event(session, "session_start", {}, context={"branch": "002-token-refresh"}),
        devlog_event(session, "user_interaction", {"prompt": "add jitter to token refresh"}),
        devlog_event(session, "file_modify", {"filePath": "src/auth/refresh.py"}),
        devlog_event(session, "session_end", {}),
    ]
    answer = client.post("/api/events/batch", json=batch, headers=AUTH).json()
    link = answer["sessions"][0]
    assert link["spec"] == "002-token-refresh" and link["confidence"] >= 0.9
    history = client.get("/specs/002/history").json()
    kinds = [item.get("type") for item in history["history"]]
    assert {"session_start", "user_interaction", "file_modify", "session_end"} <= set(kinds)
    # Later events of a linked session take its spec at once.
    late = devlog_event(session, "command_execution", {"command": "pytest -q"})
    client.post("/api/events", json=late, headers=AUTH).raise_for_status()
    assert any(e["type"] == "command_execution" for e in memory.events("002"))
    # And the files it touched are evidence for the next attribution.
    from retriever.request_model import AttributionRequest

    again = memory.attribute(AttributionRequest(files=["src/auth/refresh.py"]))
    assert again.specs[0].spec == "002-token-refresh"


def test_a_retried_batch_stores_nothing_twice(served):
    memory, client = served
    batch = [devlog_event("s-retry", "tool_use", {"toolName": "grep"}) for _ in range(3)]
    first = client.post("/api/events/batch", json=batch, headers=AUTH).json()
    second = client.post("/api/events/batch", json=batch, headers=AUTH).json()
    assert (first["stored"], second["stored"], second["duplicates"]) == (3, 0, 3)
    rows = [e for e in memory.search_events(limit=100) if e["session_id"] == "s-retry"]
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"eventType": "llm_thought"}, "body.1.eventType"),
        ({"projectId": "one"}, "body.1.projectId"),
        ({"timestamp": "yesterday"}, "body.1.timestamp"),
        ({"sessionId": ""}, "body.1.sessionId"),
        ({"metrics": {"tokenCount": -3}}, "body.1.metrics.tokenCount"),
    ],
)
def test_a_bad_event_is_refused_by_index_and_field_and_nothing_is_stored(served, broken, field):
    memory, client = served
    batch = [devlog_event("s-bad", "llm_request", {}), {**devlog_event("s-bad", "tool_use", {})}]
    batch[1].update(broken)
    answer = client.post("/api/events/batch", json=batch, headers=AUTH)
    assert answer.status_code == 422
    assert field in answer.json()["error"]["message"]
    assert not [e for e in memory.search_events(limit=100) if e["session_id"] == "s-bad"]


def test_the_log_checks_name_the_event_too(served):
    _, client = served
    batch = [devlog_event("s-big", "tool_use", {"blob": "x" * 70_000})]
    answer = client.post("/api/events/batch", json=batch, headers=AUTH)
    assert answer.status_code in (413, 422)
    if answer.status_code == 422:
        assert "events[0]" in answer.json()["error"]["message"]


def test_batches_are_bounded_and_need_the_token(served):
    _, client = served
    one = devlog_event("s", "tool_use", {})
    assert client.post("/api/events/batch", json=[one]).status_code == 401
    assert client.post("/api/events/batch", json=[], headers=AUTH).status_code == 422
    many = [devlog_event("s", "tool_use", {}) for _ in range(1_001)]
    too_many = client.post("/api/events/batch", json=many, headers=AUTH)
    assert too_many.status_code in (413, 422)


def test_fields_a_later_devlog_adds_are_kept_not_refused(served):
    memory, client = served
    event = devlog_event("s-new", "tool_use", {}, parentEventId="e-1")
    assert client.post("/api/events", json=event, headers=AUTH).status_code == 201
    stored = [e for e in memory.search_events(limit=100) if e["session_id"] == "s-new"]
    assert stored[0]["data"]["parentEventId"] == "e-1"


def test_relinking_attributes_stored_sessions_again_after_the_specs_change(tiny_specs, tmp_path):
    data = tmp_path / "data"
    memory = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    memory.ingest()
    session = "s-later"
    events = [devlog_event(session, "file_write", {"filePath": "specs/004-audit-log/README.md"})]
    from retriever.devlog import DevlogEvent

    outcome = memory.record_devlog([DevlogEvent(**e) for e in events])
    assert outcome["sessions"][0]["spec"] is None  # no such spec yet
    write_spec(tiny_specs, "004-audit-log", "# Audit log\n\nWho did what.\n")
    result = CliRunner().invoke(
        cli,
        ["--specs-dir", str(tiny_specs), "--data-dir", str(data), "attribute", "--events"],
        env={"SPECMEM_MODEL": "fake"},
    )
    assert result.exit_code == 0, result.output
    links = [json.loads(line) for line in result.output.splitlines()]
    assert links == [
        {"sessionId": session, "spec": "004-audit-log", "confidence": 0.9, "abstained": False}
    ]
    assert [e["type"] for e in SpecMemory(tiny_specs, data).events("004")] == ["file_write"]
