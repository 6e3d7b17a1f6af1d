"""Writes over HTTP: create, If-Match on PATCH (428/412), idempotent status callbacks, and many
concurrent orchestrator callbacks against one app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ingest.specs.store import SpecStore
from retriever import SpecMemory
from retriever.http import create_app
from tests.conftest import write_spec
from tests.live_server import serve_in_thread

TOKEN = "writes-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def memory(tiny_specs: Path, tmp_path: Path) -> SpecMemory:
    return SpecMemory(tiny_specs, tmp_path / "data")


@pytest.fixture
def client(memory: SpecMemory) -> Iterator[TestClient]:
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as test_client:
        yield test_client


def needs_writes(response: httpx.Response) -> httpx.Response:
    if response.status_code == 501:
        pytest.skip("spec writes are not implemented in this build yet")
    return response


def current_etag(client: TestClient, spec: str) -> str:
    return client.get(f"/specs/{spec}").headers["etag"]


def test_patch_without_if_match_is_428(client):
    response = client.patch("/specs/2", json={"status": "complete"}, headers=AUTH)
    assert response.status_code == 428
    assert response.json()["error"]["code"] == "precondition_required"
    star = client.patch("/specs/2", json={"status": "complete"}, headers={**AUTH, "If-Match": "*"})
    assert star.status_code == 428


def test_patch_with_nothing_to_change_is_422(client):
    headers = {**AUTH, "If-Match": current_etag(client, "2")}
    assert client.patch("/specs/2", json={}, headers=headers).status_code == 422
    assert client.patch("/specs/2", json={"colour": "red"}, headers=headers).status_code == 422


def test_patch_with_a_stale_hash_is_412_with_the_current_hash(client, memory):
    current = memory.get_spec("2").content_hash
    response = needs_writes(
        client.patch(
            "/specs/2",
            json={"status": "complete"},
            headers={**AUTH, "If-Match": '"0123456789abcdef"'},
        )
    )
    assert response.status_code == 412
    error = response.json()["error"]
    assert error["code"] == "stale_write" and error["current_hash"] == current
    assert response.headers["etag"] == f'"{current}"'
    assert memory.get_spec("2").meta.status == "in-progress"


def test_status_callback_records_a_transition_and_returns_the_new_etag(client, memory):
    etag = current_etag(client, "2")
    response = needs_writes(
        client.patch(
            "/specs/2",
            json={"status": "complete", "tags": {"add": ["shipped"], "remove": ["tokens"]}},
            headers={**AUTH, "If-Match": etag},
        )
    )
    assert response.status_code == 200, response.text
    spec = memory.get_spec("2")
    assert response.headers["etag"] == f'"{spec.content_hash}"' != etag
    assert response.json()["status"] == "complete"
    assert spec.meta.status == "complete"
    assert "shipped" in spec.meta.tags and "tokens" not in spec.meta.tags
    assert spec.meta.transitions[-1]["status"] == "complete"
    history = client.get("/specs/2/history").json()["history"]
    assert history[0] == {
        "kind": "transition",
        "at": spec.meta.transitions[-1]["at"],
        "status": "complete",
    }


def test_retried_status_callback_with_the_same_key_records_one_transition(client, memory):
    etag = current_etag(client, "2")
    before = len(memory.get_spec("2").meta.transitions)
    headers = {**AUTH, "If-Match": etag, "Idempotency-Key": "relay-run-7-complete"}
    first = needs_writes(client.patch("/specs/2", json={"status": "complete"}, headers=headers))
    # The retry still carries the old If-Match: it must be answered from the stored response.
    retry = client.patch("/specs/2", json={"status": "complete"}, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json()
    assert retry.headers["etag"] == first.headers["etag"]
    assert retry.headers["idempotent-replayed"] == "true"
    assert len(memory.get_spec("2").meta.transitions) == before + 1
    clash = client.patch("/specs/2", json={"status": "planned"}, headers=headers)
    assert clash.status_code == 422
    assert clash.json()["error"]["code"] == "idempotency_key_reused"


def test_a_stale_callback_can_retry_with_the_same_key_after_reading_again(client, memory):
    headers = {**AUTH, "If-Match": '"0123456789abcdef"', "Idempotency-Key": "k-stale"}
    stale = needs_writes(client.patch("/specs/2", json={"status": "complete"}, headers=headers))
    assert stale.status_code == 412
    headers["If-Match"] = current_etag(client, "2")
    assert client.patch("/specs/2", json={"status": "complete"}, headers=headers).status_code == 200


def test_patch_unknown_spec_is_404(client):
    response = client.patch(
        "/specs/999", json={"status": "complete"}, headers={**AUTH, "If-Match": '"abc"'}
    )
    assert needs_writes(response).status_code == 404


def test_create_spec_returns_201_with_location_and_etag(client, memory):
    response = needs_writes(
        client.post(
            "/specs",
            json={
                "title": "Rate limiting",
                "priority": "high",
                "tags": ["api"],
                "depends_on": ["1"],
            },
            headers={**AUTH, "Idempotency-Key": "create-1"},
        )
    )
    assert response.status_code == 201, response.text
    name = response.json()["spec"]
    assert name.startswith("004-")
    assert response.headers["location"] == f"/specs/{name}"
    assert response.headers["etag"] == f'"{memory.get_spec(name).content_hash}"'
    again = client.post(
        "/specs",
        json={"title": "Rate limiting", "priority": "high", "tags": ["api"], "depends_on": ["1"]},
        headers={**AUTH, "Idempotency-Key": "create-1"},
    )
    assert again.json()["spec"] == name
    assert len(memory.list_specs()) == 4


def test_archive_needs_if_match(client, memory):
    assert client.post("/specs/3/archive", headers=AUTH).status_code == 428
    response = needs_writes(
        client.post("/specs/3/archive", headers={**AUTH, "If-Match": current_etag(client, "3")})
    )
    assert response.status_code == 200, response.text
    assert memory.get_spec("3").is_archived


STATUSES = ("draft", "planned", "in-progress", "complete")


def callback_specs(root: Path, count: int) -> Path:
    for number in range(1, count + 1):
        write_spec(
            root, f"{number:03d}-callback-target-{number}", "---\nstatus: planned\n---\n# T\n"
        )
    return root


def run_orchestrators(specs: Path, data: Path, threads: int, steps: int) -> dict[str, int]:
    """`threads` orchestrators each make `steps` status changes round-robin over the specs, over a
    real uvicorn socket, re-reading and retrying on 412; returns transitions recorded per spec."""
    memory = SpecMemory(specs, data)
    names = [spec.dir_name for spec in memory.list_specs()]
    start = {name: len(memory.get_spec(name).meta.transitions) for name in names}
    failures: list[str] = []

    def orchestrator(worker: int, base_url: str) -> None:
        with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as http:
            for step in range(steps):
                name = names[(worker + step) % len(names)]
                for _ in range(500):
                    read = http.get(f"/specs/{name}")
                    status = read.json()["status"]
                    target = STATUSES[(STATUSES.index(status) + 1) % len(STATUSES)]
                    etag = read.headers["etag"]
                    response = http.patch(
                        f"/specs/{name}",
                        json={"status": target},
                        headers={"If-Match": etag, "Idempotency-Key": f"w{worker}-{step}-{etag}"},
                    )
                    if response.status_code == 200:
                        break
                    if response.status_code != 412:
                        failures.append(f"{response.status_code} {response.text}")
                        return
                else:
                    failures.append(f"worker {worker} gave up on {name}")

    with serve_in_thread(create_app(memory, token=TOKEN, mount_mcp=False)) as base_url:
        workers = [
            threading.Thread(target=orchestrator, args=(worker, base_url))
            for worker in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    assert failures == []
    catalog = SpecStore(specs).scan()
    assert catalog.problems == []
    return {spec.dir_name: len(spec.meta.transitions) - start[spec.dir_name] for spec in catalog}


def test_concurrent_status_callbacks_record_every_transition(tmp_path, client):
    needs_writes(
        client.patch("/specs/1", json={"status": "draft"}, headers={**AUTH, "If-Match": "x"})
    )
    specs = callback_specs(tmp_path / "callbacks", 3)
    recorded = run_orchestrators(specs, tmp_path / "callbacks-data", threads=6, steps=5)
    assert sum(recorded.values()) == 30
    assert all(count == 10 for count in recorded.values()), recorded


def test_twenty_orchestrators_times_ten_callbacks_on_five_specs(tmp_path, client):
    """The acceptance run: 20 threads x 10 status updates on 5 specs, all 200 recorded.
    In the default run (~15 s here) because it is what the service issue is judged by."""
    needs_writes(
        client.patch("/specs/1", json={"status": "draft"}, headers={**AUTH, "If-Match": "x"})
    )
    specs = callback_specs(tmp_path / "callbacks", 5)
    recorded = run_orchestrators(specs, tmp_path / "callbacks-data", threads=20, steps=10)
    assert sum(recorded.values()) == 200
    assert all(count == 40 for count in recorded.values()), recorded
