"""The HTTP API through the real ASGI app (TestClient): routes, errors, auth, limits, events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from retriever import SpecMemory
from retriever.http import create_app
from tests.conftest import write_spec

TOKEN = "test-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def specs(tiny_specs: Path) -> Path:
    for name in ("004-alpha", "004-beta"):
        write_spec(tiny_specs, name, f"---\nstatus: draft\n---\n# {name}\n")
    return tiny_specs


@pytest.fixture
def memory(specs: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(specs, tmp_path / "data")


@pytest.fixture
def client(memory: SpecMemory) -> Iterator[TestClient]:
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as test_client:
        yield test_client


def error_code(response) -> str:
    return response.json()["error"]["code"]


# -- reading ------------------------------------------------------------------------------------


def test_health_reports_corpus_size(client):
    assert client.get("/health").json() == {"status": "ok", "specs": 5, "problems": 0}


def test_list_filters_and_paginates(client):
    body = client.get("/specs").json()
    assert body["total"] == 5
    assert [s["spec"] for s in body["specs"]][:2] == ["001-auth-design", "002-token-refresh"]
    tagged = client.get("/specs", params={"tag": "auth", "status": "in-progress"}).json()
    assert [s["spec"] for s in tagged["specs"]] == ["002-token-refresh"]
    page = client.get("/specs", params={"limit": 2, "offset": 2}).json()
    assert [s["spec"] for s in page["specs"]] == ["003-search-ui", "004-alpha"]
    assert page["total"] == 5
    assert client.get("/specs", params={"priority": "high"}).json()["total"] == 1


def test_get_spec_has_etag_and_honours_if_none_match(client, memory):
    response = client.get("/specs/2")
    assert response.status_code == 200
    current = memory.get_spec("2").content_hash
    assert response.headers["etag"] == f'"{current}"'
    body = response.json()
    assert body["spec"] == "002-token-refresh" and body["hash"] == current
    assert "Refresh tokens" in body["body"]
    assert client.get("/specs/2", headers={"If-None-Match": f'"{current}"'}).status_code == 304
    files = client.get("/specs/3", params={"files": True}).json()["files"]
    assert "Two panes" in files["DESIGN.md"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/specs/999", 404, "spec_not_found"),
        ("/specs/4", 409, "ambiguous_reference"),
        ("/specs/a..b", 400, "unsafe_reference"),
        ("/specs?limit=0", 422, "invalid_input"),
        ("/no-such-route", 404, "not_found"),
    ],
)
def test_errors_are_json_with_a_stable_code(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status
    assert error_code(response) == code
    assert response.json()["error"]["message"]


def test_ambiguous_reference_lists_the_candidates(client):
    body = client.get("/specs/4").json()
    assert body["error"]["candidates"] == ["004-alpha", "004-beta"]


def test_openapi_documents_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/health",
        "/specs",
        "/specs/{spec_id}",
        "/specs/{spec_id}/dependencies",
        "/search",
        "/context",
        "/events",
        "/specs/{spec_id}/events",
        "/specs/{spec_id}/history",
    ):
        assert path in paths
    assert set(paths["/specs/{spec_id}"]) == {"get", "patch"}
    assert client.get("/docs").status_code == 200


# -- auth and limits ----------------------------------------------------------------------------


def test_writes_need_the_bearer_token(client):
    event = {"spec": "1", "type": "note"}
    missing = client.post("/events", json=event)
    assert missing.status_code == 401 and error_code(missing) == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = client.post("/events", json=event, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    basic = client.post("/events", json=event, headers={"Authorization": "Basic dXNlcg=="})
    assert basic.status_code == 401
    assert client.patch("/specs/1", json={"status": "draft"}).status_code == 401
    assert client.post("/specs", json={"title": "x"}).status_code == 401
    assert client.post("/events", json=event, headers=AUTH).status_code == 201


def test_reads_are_open_on_loopback(client):
    assert client.get("/specs").status_code == 200


def test_a_server_without_a_token_is_read_only(memory, monkeypatch):
    monkeypatch.delenv("SPECMEM_API_TOKEN", raising=False)
    with TestClient(create_app(memory, token="", mount_mcp=False)) as anonymous:
        assert anonymous.get("/specs").status_code == 200
        refused = anonymous.post("/events", json={"spec": "1", "type": "note"}, headers=AUTH)
        assert refused.status_code == 403 and error_code(refused) == "writes_disabled"


def test_protected_reads_need_the_token_except_health(memory):
    app = create_app(memory, token=TOKEN, protect_reads=True, mount_mcp=False)
    with TestClient(app) as guarded:
        assert guarded.get("/specs").status_code == 401
        assert guarded.get("/specs/1/history").status_code == 401
        assert guarded.get("/specs", headers=AUTH).status_code == 200
        assert guarded.get("/health").json() == {"status": "ok"}
        assert guarded.get("/openapi.json").status_code == 404


def test_token_comes_from_settings_by_default(specs, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECMEM_API_TOKEN", "from-env-0123456789")  # 16+ characters (spec 074)
    memory = SpecMemory(specs, tmp_path / "data")
    with TestClient(create_app(memory, mount_mcp=False)) as env_client:
        headers = {"Authorization": "Bearer from-env-0123456789"}
        event = {"spec": "1", "type": "note"}
        assert env_client.post("/events", json=event, headers=headers).status_code == 201


def test_oversized_bodies_get_413(memory):
    with TestClient(create_app(memory, token=TOKEN, max_body_bytes=1000)) as small:
        big = {"spec": "1", "type": "note", "summary": "x" * 2000}
        declared = small.post("/events", json=big, headers=AUTH)
        assert declared.status_code == 413 and error_code(declared) == "request_too_large"

        def chunks():
            yield b'{"spec": "1", "type": "note", "summary": "'
            for _ in range(10):
                yield b"y" * 200
            yield b'"}'

        streamed = small.post(
            "/events", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert memory.events("1") == []


# -- events -------------------------------------------------------------------------------------


def test_post_event_then_read_and_search_it(client):
    event = {
        "spec": "2",
        "type": "session",
        "agent": "claude",
        "session_id": "s-42",
        "summary": "Added refresh jitter to avoid thundering herds",
        "files_changed": ["auth/refresh.py"],
        "at": "2026-02-01T10:00:00Z",
        "data": {"tokens": 1234},
    }
    created = client.post("/events", json=event, headers=AUTH)
    assert created.status_code == 201
    stored = created.json()
    assert stored["spec"] == "002-token-refresh" and stored["data"] == {"tokens": 1234}
    listed = client.get("/specs/002-token-refresh/events").json()
    assert listed["spec"] == "002-token-refresh" and listed["events"] == [stored]
    assert client.get("/events", params={"q": "thundering herds"}).json()["events"] == [stored]
    assert client.get("/events", params={"q": "refresh.py"}).json()["events"] == [stored]
    assert client.get("/events", params={"q": "absent"}).json()["events"] == []
    assert client.get("/events", params={"type": "commit"}).json()["events"] == []
    history = client.get("/specs/2/history").json()["history"]
    assert history[0]["kind"] == "event" and history[0]["id"] == stored["id"]


def test_event_for_an_unknown_spec_is_404(client):
    response = client.post("/events", json={"spec": "999", "type": "note"}, headers=AUTH)
    assert response.status_code == 404 and error_code(response) == "spec_not_found"


@pytest.mark.parametrize(
    "event",
    [
        {"spec": "1"},
        {"spec": "1", "type": "has spaces"},
        {"spec": "1", "type": "note", "at": "soon"},
        {"spec": "1", "type": "note", "extra": 1},
        {"spec": "1", "type": "note", "files_changed": "a.py"},
    ],
)
def test_invalid_events_are_422(client, event):
    response = client.post("/events", json=event, headers=AUTH)
    assert response.status_code == 422 and error_code(response) == "invalid_input"


def test_history_is_newest_first_with_transitions(specs, memory, client):
    write_spec(
        specs,
        "005-with-history",
        """
        ---
        status: complete
        transitions:
          - status: in-progress
            at: '2026-01-01T00:00:00Z'
          - status: complete
            at: '2026-03-01T00:00:00Z'
        ---
        # With history
        """,
    )
    event = {"spec": "5", "type": "commit", "summary": "built", "at": "2026-02-01T00:00:00Z"}
    client.post("/events", json=event, headers=AUTH)
    history = client.get("/specs/5/history").json()["history"]
    assert [(h["kind"], h["at"][:10]) for h in history] == [
        ("transition", "2026-03-01"),
        ("event", "2026-02-01"),
        ("transition", "2026-01-01"),
    ]


# -- idempotency (exercised on POST /events; PATCH uses the same mechanism) ---------------------


def test_retried_event_with_the_same_key_is_stored_once(client, memory):
    event = {"spec": "1", "type": "note", "summary": "once", "at": "2026-01-01T00:00:00Z"}
    headers = {**AUTH, "Idempotency-Key": "evt-1"}
    first = client.post("/events", json=event, headers=headers)
    again = client.post("/events", json=event, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len(memory.events("1")) == 1


def test_a_key_reused_for_a_different_body_is_refused(client, memory):
    headers = {**AUTH, "Idempotency-Key": "evt-2"}
    client.post("/events", json={"spec": "1", "type": "note", "summary": "a"}, headers=headers)
    clash = client.post(
        "/events", json={"spec": "1", "type": "note", "summary": "b"}, headers=headers
    )
    assert clash.status_code == 422 and error_code(clash) == "idempotency_key_reused"
    assert len(memory.events("1")) == 1


def test_a_failed_request_releases_its_key(client, memory):
    headers = {**AUTH, "Idempotency-Key": "evt-3"}
    event = {"spec": "1", "type": "note", "summary": "later"}
    refused = client.post("/events", json={**event, "spec": "999"}, headers=headers)
    assert refused.status_code == 404
    # Different body under the same key is still a clash only once something succeeded.
    assert client.post("/events", json={**event, "spec": "999"}, headers=headers).status_code == 404
    assert (
        client.post("/events", json=event, headers={**AUTH, "Idempotency-Key": "evt-4"}).status_code
        == 201
    )


def test_idempotency_keys_survive_a_restart(memory, specs, tmp_path):
    event = {"spec": "1", "type": "note", "summary": "durable"}
    headers = {**AUTH, "Idempotency-Key": "evt-5"}
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as first:
        first_body = first.post("/events", json=event, headers=headers).json()
    restarted = SpecMemory(specs, tmp_path / "data")
    with TestClient(create_app(restarted, token=TOKEN, mount_mcp=False)) as second:
        replay = second.post("/events", json=event, headers=headers)
    assert replay.json() == first_body
    assert len(restarted.events("1")) == 1


def test_bad_idempotency_key_is_422(client):
    headers = {**AUTH, "Idempotency-Key": "x" * 300}
    response = client.post("/events", json={"spec": "1", "type": "note"}, headers=headers)
    assert response.status_code == 422
