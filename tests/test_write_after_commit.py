"""A write that landed is answered as landed (issue 11, class 2; specs 082 and 043): whatever fails
in the re-index that follows it (a damaged or unreadable index, any exception class at all), the
answer is success with a "not re-indexed" warning. HTTP answers 200 and keeps the idempotency
key bound to that answer; the CLI exits 0 and prints the warning; MCP returns the written spec.
Both the real damage kinds of tests/index_damage.py and injected exceptions are tried."""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from mcp import Client

from ingest.authoring.spec_changes import SpecChange
from ingest.errors import BackendUnavailable, IndexDamaged, IndexMismatch
from retriever import SpecMemory
from retriever.cli import cli
from retriever.mcp_server import build_mcp_server
from tests.index_damage import DAMAGES, damage

TOKEN = "write-after-commit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _chroma_error() -> Exception:
    from chromadb.errors import InternalError

    return InternalError("error returned from database: (code: 11) disk image is malformed")


# Every class a re-index could raise: ours, SQLite's, the OS's, JSON's, Chroma's, a plain bug.
FAILURES: dict[str, Callable[[], BaseException]] = {
    "sqlite-database-error": lambda: sqlite3.DatabaseError("database disk image is malformed"),
    "sqlite-operational-error": lambda: sqlite3.OperationalError("unable to open database file"),
    "os-error-eio": lambda: OSError(errno.EIO, "Input/output error"),
    "disk-full": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "json-decode-error": lambda: json.JSONDecodeError("Expecting value", "{", 1),
    "chroma-internal-error": _chroma_error,
    "index-mismatch": lambda: IndexMismatch("the index was built with another model"),
    "index-damaged": lambda: IndexDamaged("lexical.sqlite", "not a database"),
    "backend-unavailable": lambda: BackendUnavailable("Chroma at http://x is unavailable"),
    "runtime-error": lambda: RuntimeError("a bug in the re-index"),
    "key-error": lambda: KeyError("chunks"),
}


@pytest.fixture
def memory(indexed_memory: SpecMemory) -> SpecMemory:
    return indexed_memory  # `client` (tests/conftest.py) serves it with this module's TOKEN


def fail_reindex(monkeypatch: pytest.MonkeyPatch, make: Callable[[], BaseException]) -> list[int]:
    """Make every ingest raise `make()`; returns a list that counts the attempts."""
    import ingest.index.pipeline

    calls: list[int] = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise make()

    monkeypatch.setattr(ingest.index.pipeline, "run_ingest", failing)
    return calls


def patch_status(client: TestClient, spec: str, status: str, key: str) -> Any:
    etag = client.get(f"/specs/{spec}").headers["etag"]
    headers = {**AUTH, "If-Match": etag, "Idempotency-Key": key}
    return client.patch(f"/specs/{spec}", json={"status": status}, headers=headers), headers


def assert_landed_with_warning(
    client: TestClient, memory: SpecMemory, key: str, code: str | None = None
) -> None:
    before = len(memory.get_spec("2").meta.transitions)
    first, headers = patch_status(client, "2", "complete", key)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["status"] == "complete"
    warnings = [w for w in body.get("warnings", []) if w.startswith("not re-indexed")]
    assert warnings, body
    if code is not None:
        assert f"not re-indexed: {code}" in warnings[0]
    assert "Traceback" not in warnings[0]
    assert memory.get_spec("2").meta.status == "complete"  # the file really changed
    assert first.headers["etag"].strip('"') == memory.get_spec("2").content_hash
    # The retry carries the old If-Match: the key must still hold the first answer, not 412.
    retry = client.patch("/specs/2", json={"status": "complete"}, headers=headers)
    assert retry.status_code == 200, retry.text
    assert retry.headers.get("idempotent-replayed") == "true"
    assert retry.json() == body
    assert len(memory.get_spec("2").meta.transitions) == before + 1


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_any_exception_in_the_reindex_is_a_warning_of_a_landed_patch(
    failure: str, client: TestClient, memory: SpecMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fail_reindex(monkeypatch, FAILURES[failure])
    assert_landed_with_warning(client, memory, f"key-{failure}")
    assert calls, "the re-index was not even tried"


@pytest.mark.parametrize("kind", sorted(DAMAGES))
def test_a_patch_on_a_damaged_index_lands_with_an_index_damaged_warning(
    kind: str, client: TestClient, memory: SpecMemory
) -> None:
    damage(memory.settings.data_dir, kind)
    assert_landed_with_warning(client, memory, f"key-{kind}", code="index_damaged")


def test_create_and_archive_over_http_land_with_the_warning(
    client: TestClient, memory: SpecMemory
) -> None:
    damage(memory.settings.data_dir, "lexical-random-bytes")
    created = client.post(
        "/specs", json={"title": "Rate limits"}, headers={**AUTH, "Idempotency-Key": "c-1"}
    )
    assert created.status_code == 201, created.text
    assert any(w.startswith("not re-indexed") for w in created.json()["warnings"])
    again = client.post(
        "/specs", json={"title": "Rate limits"}, headers={**AUTH, "Idempotency-Key": "c-1"}
    )
    assert again.status_code == 201 and again.json() == created.json()
    assert len(memory.list_specs()) == 4
    etag = client.get("/specs/3").headers["etag"]
    archived = client.post("/specs/3/archive", headers={**AUTH, "If-Match": etag})
    assert archived.status_code == 200, archived.text
    assert any(w.startswith("not re-indexed") for w in archived.json()["warnings"])
    assert memory.get_spec("3").is_archived


def specmem(memory: SpecMemory, *args: str) -> Result:
    settings = memory.settings
    return CliRunner().invoke(
        cli, ["--specs-dir", str(settings.specs_dir), "--data-dir", str(settings.data_dir), *args]
    )


@pytest.mark.parametrize(
    "args",
    [
        ("update", "2", "--status", "complete"),
        ("update", "1", "--add-tag", "reviewed"),
        ("archive", "3"),
        ("create", "Rate limits"),
        ("split", "1", "--section", "Decision"),
    ],
    ids=["update-status", "update-tag", "archive", "create", "split"],
)
def test_cli_writes_exit_0_with_the_warning(args: tuple[str, ...], memory: SpecMemory) -> None:
    damage(memory.settings.data_dir, "manifest-garbage")
    result = specmem(memory, *args)
    assert result.exit_code == 0, result.output
    assert "warning: not re-indexed: index_damaged" in result.stderr
    assert "manifest.json" in result.stderr and "Traceback" not in result.output
    as_json = specmem(memory, "update", "2", "--priority", "low", "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    assert any(w.startswith("not re-indexed") for w in json.loads(as_json.stdout)["warnings"])


def test_cli_write_with_an_unexpected_exception_exits_0(
    memory: SpecMemory, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_reindex(monkeypatch, FAILURES["runtime-error"])
    result = specmem(memory, "update", "2", "--status", "complete")
    assert result.exit_code == 0, result.output
    assert "warning: not re-indexed: internal_error: RuntimeError" in result.stderr
    assert memory.get_spec("2").meta.status == "complete"


def test_a_rebuild_after_the_warning_converges(memory: SpecMemory) -> None:
    damage(memory.settings.data_dir, "lexical-first-100-bytes")
    written = memory.update_spec("2", SpecChange(status="complete", add_tags=["after-damage"]))
    assert any(w.startswith("not re-indexed") for w in written.warnings)
    memory.ingest()  # a plain ingest notices the damage and rebuilds
    hits = memory.search("refresh tokens", tags=["after-damage"], status="complete")
    assert [hit.spec for hit in hits] == ["002-token-refresh"]


@pytest.mark.parametrize("tool", ["update_spec", "create_spec"])
def test_mcp_writes_return_the_spec_with_the_warning(tool: str, memory: SpecMemory) -> None:
    damage(memory.settings.data_dir, "chroma-dir-is-a-file")
    current = memory.get_spec("2").content_hash
    arguments = (
        {"spec": "2", "expected_hash": current, "status": "complete"}
        if tool == "update_spec"
        else {"title": "Rate limits"}
    )

    async def scenario() -> Any:
        async with Client(build_mcp_server(memory)) as client:
            return await client.call_tool(tool, arguments)

    result = anyio.run(scenario)
    assert not result.is_error, result.content
    data = result.structured_content or json.loads(result.content[0].text)
    assert any(w.startswith("not re-indexed: index_damaged") for w in data["warnings"]), data
