"""A damaged index (issue 11, class 3; spec 043): every kind in tests/index_damage.py gives a clear
`index_damaged` error naming the file on search, context and a scoped ingest, through the CLI and
HTTP (409); a plain `ingest` notices it and rebuilds; `ingest --full` always rebuilds without
opening what is damaged; and the event log survives every rebuild untouched."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from ingest.authoring.spec_changes import SpecChange
from ingest.index.embedding import FakeEmbedder
from ingest.index.layout import IndexLayout
from ingest.index.vectors import forget_embedded
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app
from tests.conftest import REPO
from tests.index_damage import DAMAGES, damage, log_identity

KINDS = sorted(DAMAGES)
CLI = (sys.executable, "-c", "from retriever.cli import main; main()")


@pytest.fixture
def data(tiny_specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An index of the tiny specs, built once through the CLI, with one event logged."""
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    data = tmp_path / "data"
    assert specmem(tiny_specs, data, "ingest", "-q").exit_code == 0
    memory = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    memory.log_event("1", "session", summary="kept across rebuilds", agent="test")
    return data


def specmem(specs: Path, data: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--specs-dir", str(specs), "--data-dir", str(data), *args])


def assert_clean_error(result: Result, names: str) -> None:
    """Exit 1 with one `error:` line naming the damaged file, and no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "error: the index is damaged" in result.stderr, result.stderr
    assert names in result.stderr and "ingest --full" in result.stderr
    assert "Traceback" not in result.output


def searchable(specs: Path, data: Path) -> None:
    result = specmem(specs, data, "search", "bearer tokens", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["spec"] == "001-auth-design"


@pytest.mark.parametrize("kind", KINDS)
def test_reads_name_the_damaged_file_and_a_plain_ingest_rebuilds(
    kind: str, tiny_specs: Path, data: Path
) -> None:
    events = IndexLayout(data).event_log_path()
    kept = log_identity(events)
    names = damage(data, kind)
    assert_clean_error(specmem(tiny_specs, data, "search", "bearer tokens"), names)
    assert_clean_error(specmem(tiny_specs, data, "context", "bearer tokens"), names)
    # Scoped to one spec (the re-index a write does), an ingest refuses rather than rebuilds.
    assert_clean_error(specmem(tiny_specs, data, "ingest", "--spec", "1"), names)

    rebuilt = specmem(tiny_specs, data, "ingest", "-o", "json")
    assert rebuilt.exit_code == 0, rebuilt.output
    summary = json.loads(rebuilt.stdout)
    assert summary["full"] and summary["specs"] == 3
    assert summary["damaged"] and names in summary["damaged"][0]["path"]
    searchable(tiny_specs, data)
    again = json.loads(specmem(tiny_specs, data, "ingest", "-o", "json").stdout)
    assert (again["full"], again["damaged"], again["unchanged"]) == (False, [], 3)
    assert log_identity(events) == kept


@pytest.mark.parametrize("kind", KINDS)
def test_ingest_full_always_rebuilds_and_keeps_the_event_log(
    kind: str, tiny_specs: Path, data: Path
) -> None:
    events = IndexLayout(data).event_log_path()
    kept = log_identity(events)
    damage(data, kind)
    result = specmem(tiny_specs, data, "ingest", "--full")
    assert result.exit_code == 0, result.output
    assert "rebuilt from scratch" in result.stdout
    searchable(tiny_specs, data)
    assert log_identity(events) == kept
    memory = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    assert [e["summary"] for e in memory.search_events()] == ["kept across rebuilds"]


def test_full_removes_only_the_index(tiny_specs: Path, data: Path) -> None:
    """What `--full` may remove is a fixed list; locks and anything else stay."""
    layout = IndexLayout(data)
    (data / "locks").mkdir(exist_ok=True)
    (data / "locks" / "001-auth-design.lock").write_text("")
    (data / "notes.txt").write_text("mine")
    assert specmem(tiny_specs, data, "ingest", "--full", "-q").exit_code == 0
    assert (data / "notes.txt").read_text() == "mine"
    assert (data / "locks" / "001-auth-design.lock").exists()
    assert set(layout.index_paths()) >= {layout.manifest_path, layout.lexical_path}
    assert IndexLayout(data).event_log_path() not in layout.index_paths()


@pytest.fixture
def served(tiny_specs: Path, data: Path) -> Iterator[TestClient]:
    memory = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        yield client


@pytest.mark.parametrize("kind", KINDS)
def test_http_search_is_409_index_damaged_until_a_rebuild_which_it_follows(
    kind: str, tiny_specs: Path, data: Path, served: TestClient
) -> None:
    assert served.get("/search", params={"q": "bearer tokens"}).status_code == 200  # warm
    names = damage(data, kind)
    # A warm server may still hold the old index in memory; a rebuild by another process is
    # what it must follow. Before that, a cold read of the damaged files must say what is wrong.
    cold = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    with TestClient(create_app(cold, mount_mcp=False)) as client:
        answer = client.get("/search", params={"q": "bearer tokens"})
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["code"] == "index_damaged" and names in error["message"]
        assert "/tmp" not in error["message"]  # paths relative to the specs dir, as elsewhere
        context = client.post("/context", json={"query": "bearer tokens"})
        assert context.status_code == 409 and context.json()["error"]["code"] == "index_damaged"
        assert client.get("/health").status_code == 200
    assert specmem(tiny_specs, data, "ingest", "--full", "-q").exit_code == 0
    for client in (served, TestClient(create_app(cold, mount_mcp=False))):
        after = client.get("/search", params={"q": "bearer tokens"})
        assert after.status_code == 200, after.text
        assert after.json()["results"][0]["spec"] == "001-auth-design"


def test_chroma_segment_dirs_deleted_heal_without_a_rebuild(tiny_specs: Path, data: Path) -> None:
    """Measured, not assumed: Chroma keeps every vector in chroma.sqlite3 and rebuilds a missing
    HNSW segment from it, so deleting the segment dirs is not damage (a plain ingest is a
    no-op and search works, also with the vector cache gone)."""
    chroma = data / "chroma"
    segments = [p for p in chroma.iterdir() if p.is_dir()]
    assert segments
    for segment in segments:
        shutil.rmtree(segment)
    (data / "search-vectors.npz").unlink(missing_ok=True)
    searchable(tiny_specs, data)
    summary = json.loads(specmem(tiny_specs, data, "ingest", "-o", "json").stdout)
    assert (summary["full"], summary["damaged"]) == (False, [])
    searchable(tiny_specs, data)


def test_a_plain_ingest_on_a_healthy_index_reads_nothing_it_need_not(
    tiny_specs: Path, data: Path
) -> None:
    """The checks a plain ingest makes cost no Chroma import: a no-op stays a no-op."""
    summary = json.loads(specmem(tiny_specs, data, "ingest", "-o", "json").stdout)
    assert (summary["full"], summary["damaged"], summary["embedded"]) == (False, [], 0)
    assert summary["unchanged"] == 3


def test_a_server_follows_a_rebuild_made_by_another_process(
    tiny_specs: Path, data: Path, served: TestClient
) -> None:
    """`ingest --full` in another process replaces every file under a running server. The
    server's next search reads the new build, and its next write lands in the new stores (not
    in the deleted files its cached Chroma client still has open)."""
    token = "rebuild-follow-token"
    memory = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    with TestClient(create_app(memory, token=token, mount_mcp=False)) as client:
        assert client.get("/search", params={"q": "bearer tokens"}).status_code == 200
        memory.update_spec(
            "1", SpecChange(add_tags=["before"])
        )  # the server process has Chroma open
        rebuild = subprocess.run(
            [*CLI, "--specs-dir", str(tiny_specs), "--data-dir", str(data), "ingest", "--full"],
            env={**os.environ, "PYTHONPATH": str(REPO), "SPECMEM_MODEL": "fake"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert rebuild.returncode == 0, rebuild.stderr
        assert client.get("/search", params={"q": "bearer tokens"}).status_code == 200
        etag = client.get("/specs/1").headers["etag"]
        written = client.patch(
            "/specs/1",
            json={"tags": {"add": ["after-rebuild"]}},
            headers={"Authorization": f"Bearer {token}", "If-Match": etag},
        )
        assert written.status_code == 200 and not written.json().get("warnings"), written.text
        hits = client.get("/search", params={"q": "bearer tokens", "tag": "after-rebuild"})
        assert [h["spec"] for h in hits.json()["results"]] == ["001-auth-design"]
    # A new process, with no cache at all, finds the write's vectors in the new store.
    layout = IndexLayout(data)
    layout.vector_cache_path.unlink(missing_ok=True)
    forget_embedded(layout)
    fresh = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    hits = fresh.search("bearer tokens", tags=["after-rebuild"], mode="dense")
    assert [hit.spec for hit in hits] == ["001-auth-design"]


# -- random damage: whatever happens to the files, no traceback, and --full restores ------------

FUZZ_TARGETS = ("lexical.sqlite", "chroma/chroma.sqlite3", "manifest.json", "search-vectors.npz")


def _random_damage(data: Path, rng: random.Random) -> str:
    target = data / rng.choice(FUZZ_TARGETS)
    if target.name == "lexical.sqlite":
        with sqlite3.connect(target) as db:  # fold the WAL in: damage what readers read
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    size = target.stat().st_size if target.is_file() else 0
    how = rng.choice(("overwrite", "truncate", "replace", "delete"))
    if how == "overwrite" and size:
        offset, length = rng.randrange(size), rng.randint(1, 4096)
        with open(target, "r+b") as handle:
            handle.seek(offset)
            handle.write(rng.randbytes(length))
        detail = f"{length} bytes at {offset}"
    elif how == "truncate" and size:
        length = rng.randrange(size)
        with open(target, "r+b") as handle:
            handle.truncate(length)
        detail = f"to {length} bytes"
    elif how == "replace":
        length = rng.choice((0, 1, 99, 100, 4096, 65536))
        target.write_bytes(rng.randbytes(length))
        detail = f"by {length} random bytes"
    else:
        target.unlink(missing_ok=True)
        detail = "deleted"
    forget_embedded(IndexLayout(data))  # as a new process would open it
    return f"{target.relative_to(data)} {how} {detail}"


def _ranked(specs: Path, data: Path) -> list[str]:
    result = specmem(specs, data, "search", "bearer tokens refresh", "-o", "json")
    assert result.exit_code == 0, result.output
    return [hit["spec"] for hit in json.loads(result.stdout)["results"]]


def run_random_damage(specs: Path, data: Path, rounds: int, seed: int) -> dict[str, int]:
    """Damage at random, then every command: each must end in exit 0 or one `error:` line
    (never a traceback), every write must land, and `ingest --full` must restore the ranking
    of a clean index with the event log untouched. Returns how the commands ended."""
    rng = random.Random(seed)
    reference = _ranked(specs, data)
    log = IndexLayout(data).event_log_path()
    kept = log_identity(log)
    outcomes: dict[str, int] = {}
    commands = (
        ("search", "bearer tokens"),
        ("search", "bearer tokens", "--mode", "lexical"),
        ("context", "bearer tokens"),
        ("update", "2", "--priority", "low"),
        ("update", "2", "--priority", "high"),
        ("ingest",),
    )
    for round_ in range(rounds):
        what = _random_damage(data, rng)
        for args in commands:
            result = specmem(specs, data, *args)
            where = f"round {round_} (seed {seed}), {what}: {' '.join(args)}"
            assert isinstance(result.exception, SystemExit | None), (where, result.exception)
            assert "Traceback" not in result.output, (where, result.output)
            if args[0] == "update":
                assert result.exit_code == 0, (where, result.output)
            else:
                assert result.exit_code in (0, 1), (where, result.output)
            if result.exit_code == 1:
                assert result.stderr.startswith("error: "), (where, result.stderr)
                code = result.stderr.split(":")[1].strip().split(" ")[0]
                outcomes[f"{args[0]}: error"] = outcomes.get(f"{args[0]}: error", 0) + 1
                assert code, where
            else:
                outcomes[f"{args[0]}: ok"] = outcomes.get(f"{args[0]}: ok", 0) + 1
        full = specmem(specs, data, "ingest", "--full", "-q")
        assert full.exit_code == 0, (what, full.output)
        assert _ranked(specs, data) == reference, what
        assert log_identity(log) == kept, what
    return outcomes


def test_random_damage_never_crashes_and_full_always_restores(tiny_specs: Path, data: Path) -> None:
    outcomes = run_random_damage(tiny_specs, data, rounds=8, seed=11)
    assert outcomes.get("update: ok") == 16


REBUILDER = """
import sys
from retriever.cli import cli
specs, data, times = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(times):
    cli.main(["--specs-dir", specs, "--data-dir", data, "ingest", "--full", "-q"],
             standalone_mode=False)
"""


def run_searches_during_rebuilds(
    specs: Path, data: Path, rebuilds: int, *, warm_first: bool = False
) -> dict[str, int]:
    """Search a live server without pause while another process rebuilds the index `rebuilds`
    times; answers counted by status and error code ("200 empty" for no results)."""
    answers: dict[str, int] = {}
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        if warm_first:
            assert client.get("/search", params={"q": "bearer tokens"}).json()["results"]
        child = subprocess.Popen(
            [sys.executable, "-c", REBUILDER, str(specs), str(data), str(rebuilds)],
            env={**os.environ, "PYTHONPATH": str(REPO), "SPECMEM_MODEL": "fake"},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            while child.poll() is None:
                for mode in ("hybrid", "lexical"):
                    got = client.get("/search", params={"q": "bearer tokens", "mode": mode})
                    key = str(got.status_code)
                    if got.status_code != 200:
                        key += " " + got.json()["error"]["code"]
                    elif not got.json()["results"]:
                        key += " empty"
                    answers[key] = answers.get(key, 0) + 1
        finally:
            _, stderr = child.communicate(timeout=300)
        assert child.returncode == 0, stderr
        final = client.get("/search", params={"q": "bearer tokens"})
        assert final.status_code == 200 and final.json()["results"], final.text
    return answers


def test_searches_during_rebuilds_never_see_damage(tiny_specs: Path, data: Path) -> None:
    answers = run_searches_during_rebuilds(tiny_specs, data, rebuilds=4)
    assert set(answers) <= {"200", "409 no_index"}, answers
    assert answers.get("200", 0) > 0


def test_a_warm_server_answers_from_the_last_whole_build_while_rebuilds_run(
    tiny_specs: Path, data: Path
) -> None:
    """Spec 076: not "no index" and not an empty or partial index between a rebuild's steps."""
    answers = run_searches_during_rebuilds(tiny_specs, data, rebuilds=4, warm_first=True)
    assert set(answers) == {"200"}, answers
