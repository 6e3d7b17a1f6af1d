"""Faults: SIGKILL at random moments during CLI spec writes and during ingest, and a Chroma server
that goes away (refused connections, then a frozen process) under the HTTP service.

After every kill: no README is half-written (each parses and is one of the versions the writer
produced, in order), and the next ingest converges to the index a clean run builds. With Chroma
gone, requests that need it answer 503 `backend_unavailable` within bounded time and the same
service recovers when the server returns. Rounds here are few; tests/stress runs many more.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from tests.conftest import REPO, write_spec
from tests.live_server import CHROMA, free_port
from tests.test_http_query import SPECS
from tests.test_pipeline import index_state

TAG_PREFIX = "w"
STATUSES = ("planned", "in-progress", "complete")

# A child that writes spec 001 through the CLI in a loop until it is killed: write i adds tag
# w<i> and sets status STATUSES[i % 3], so any file on disk tells which write it came from.
WRITER = """
import sys
from retriever.cli import cli
specs, data, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
for i in range(start, start + 10_000):
    status = ("planned", "in-progress", "complete")[i % 3]
    cli.main(["--specs-dir", specs, "--data-dir", data, "update", "001",
              "--add-tag", f"w{i}", "--status", status], standalone_mode=False)
    print(f"done {i}", flush=True)
"""

INGESTER = """
import sys
import ingest.index.pipeline
ingest.index.pipeline.EMBED_BATCH = 2
from retriever.cli import main
print("ready", flush=True)
sys.argv = ["specmem", "--specs-dir", sys.argv[1], "--data-dir", sys.argv[2], "ingest", "-q"]
main()
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ, SPECMEM_MODEL="fake", ANONYMIZED_TELEMETRY="False")
    env.pop("SPECMEM_CHROMA_URL", None)
    env["PYTHONPATH"] = str(REPO)
    return env


def kill_at_random(
    script: str, specs: Path, data: Path, rng: random.Random, most: float, *args: str
) -> str:
    """Start `script`, wait for "ready", SIGKILL it after a random delay up to `most` seconds;
    return what it printed. A child that finished before the kill is fine too."""
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(specs), str(data), *args],
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.0, most))
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=60)
    return out


def build_corpus(root: Path) -> tuple[Path, Path]:
    for name, text in SPECS.items():
        write_spec(root / "specs", name, text)
    memory = SpecMemory(root / "specs", root / "data", embedder=FakeEmbedder())
    memory.ingest()
    return root / "specs", root / "data"


def check_writer_survivor(specs: Path, out: str, before: int) -> int:
    """The README of 001 is whole and is the version of one write at most one past the last one
    the child reported done (that one may have landed just before the kill); return it."""
    memory = SpecMemory(specs, specs.parent / "scratch-data", embedder=FakeEmbedder())
    catalog = memory.catalog(refresh=True)
    assert not catalog.problems, [str(p) for p in catalog.problems]
    spec = memory.get_spec("001")
    done = [int(line.split()[1]) for line in out.splitlines() if line.startswith("done ")]
    last_done = done[-1] if done else before
    written = sorted(int(t[1:]) for t in spec.meta.tags if t.startswith(TAG_PREFIX))
    # Writes are whole: the tags are exactly w0..wk, and the status is write k's.
    assert written == list(range(len(written))), written
    landed = len(written) - 1
    assert last_done <= landed <= last_done + 1, (last_done, landed)
    if landed >= 0:
        assert spec.meta.status == STATUSES[landed % 3]
    shutil.rmtree(specs.parent / "scratch-data", ignore_errors=True)
    return landed


def converges(specs: Path, data: Path, tmp: Path) -> None:
    """The next ingest over the killed data dir equals a clean ingest of the same files."""
    killed = SpecMemory(specs, data, embedder=FakeEmbedder())
    killed.ingest()
    clean_specs = tmp / "clean-specs"
    shutil.copytree(specs, clean_specs)
    clean = SpecMemory(clean_specs, tmp / "clean-data", embedder=FakeEmbedder())
    clean.ingest()
    assert _comparable(index_state(killed)) == _comparable(index_state(clean))
    assert killed.ingest().embedded == 0
    shutil.rmtree(clean_specs)
    shutil.rmtree(tmp / "clean-data")


def _comparable(state: dict) -> dict:
    """Index state without absolute paths (the clean copy lives in another dir)."""
    chunks = {
        key: {k: v for k, v in vars(chunk).items() if "path" not in k}
        for key, chunk in state["chunks"].items()
    }
    return {**state, "chunks": chunks, "specs": _strip_paths(state["specs"])}


def _strip_paths(value):
    if isinstance(value, dict):
        return {k: _strip_paths(v) for k, v in value.items() if "path" not in str(k)}
    if isinstance(value, list | tuple):
        return [_strip_paths(v) for v in value]
    return value


def run_write_kills(tmp: Path, rounds: int, seed: int) -> list[int]:
    specs, data = build_corpus(tmp)
    rng = random.Random(seed)
    landed = [-1]
    for _ in range(rounds):
        out = kill_at_random(WRITER, specs, data, rng, 6.0, str(landed[-1] + 1))
        landed.append(check_writer_survivor(specs, out, landed[-1]))
    converges(specs, data, tmp)
    return landed[1:]


def run_ingest_kills(tmp: Path, rounds: int, seed: int) -> None:
    specs, data = build_corpus(tmp)
    rng = random.Random(seed)
    for round_ in range(rounds):
        # Something to do for each killed run: an edit, a new spec, a deletion.
        readme = specs / "001-auth-design" / "README.md"
        readme.write_text(readme.read_text() + f"\n## Note {round_}\nMore words {round_}.\n")
        write_spec(
            specs, f"{100 + round_:03d}-extra", f"---\nstatus: planned\n---\n# Extra {round_}\n"
        )
        if round_ % 2:
            shutil.rmtree(specs / f"{99 + round_:03d}-extra")
        kill_at_random(INGESTER, specs, data, rng, most=3.0)
    converges(specs, data, tmp)


def test_cli_writes_killed_at_random_moments_leave_whole_files_and_a_convergent_index(tmp_path):
    landed = run_write_kills(
        tmp_path, rounds=int(os.environ.get("SPECMEM_FAULT_ROUNDS", "2")), seed=7
    )
    assert landed == sorted(landed)


def test_ingest_killed_at_random_moments_converges_to_a_clean_run(tmp_path):
    run_ingest_kills(tmp_path, rounds=int(os.environ.get("SPECMEM_FAULT_ROUNDS", "2")), seed=11)


# -- Chroma going away under the HTTP service ---------------------------------------------------


class ChromaProcess:
    def __init__(self, path: Path) -> None:
        self.path, self.port = path, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(CHROMA),
                "run",
                "--path",
                str(self.path),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        pytest.fail("chroma server did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop_all(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait()


@pytest.fixture
def chroma(tmp_path: Path) -> Iterator[ChromaProcess]:
    if not CHROMA.exists():
        pytest.skip(f"no chroma CLI at {CHROMA}")
    server = ChromaProcess(tmp_path / "chroma")
    server.start()
    try:
        yield server
    finally:
        server.stop_all()


def drop_vector_cache(data: Path) -> None:
    """Remove the warm loader's vector cache, so the next cold load must read Chroma."""
    from retriever.ranking.warm_loader import VECTOR_CACHE

    (data / VECTOR_CACHE).unlink(missing_ok=True)


def _app(specs: Path, data: Path) -> TestClient:
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    return TestClient(create_app(memory, token="t", mount_mcp=False))


@pytest.mark.server
@pytest.mark.timeout(180)  # a hang guard, not a speed assertion
def test_chroma_gone_is_a_503_with_a_stable_code_and_the_service_recovers(
    chroma: ChromaProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SPECMEM_CHROMA_URL", chroma.url)
    specs, data = build_corpus(tmp_path)
    auth = {"Authorization": "Bearer t"}
    with _app(specs, data) as warm, _app(specs, data) as cold:
        assert warm.get("/search", params={"q": "token"}).status_code == 200

        chroma.kill()
        # A warm copy of the index keeps answering without Chroma, and so does a cold one while
        # the vector cache file matches the index; without that file a cold one needs Chroma.
        assert warm.get("/search", params={"q": "token"}).status_code == 200
        drop_vector_cache(data)
        down = cold.get("/search", params={"q": "token"})
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "backend_unavailable"
        assert "SPECMEM_CHROMA_URL" in down.json()["error"]["message"]
        # Reads that do not need Chroma keep working.
        assert cold.get("/specs/001", headers=auth).status_code == 200
        etag = cold.get("/specs/001", headers=auth).headers["etag"]
        # A status callback embeds nothing (spec 032), so it is indexed in full without Chroma.
        patched = cold.patch(
            "/specs/001", json={"status": "planned"}, headers={**auth, "If-Match": etag}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["warnings"] == []
        assert SpecMemory(specs, tmp_path / "peek").get_spec("001").meta.status == "planned"
        # A tag changes every chunk's header: the file write lands and its re-index cannot. The
        # write is acknowledged (the file is the source of truth) with a warning naming the
        # backend, and its ETag is the new version.
        etag = patched.headers["etag"]
        tagged = cold.patch(
            "/specs/001", json={"tags": {"add": ["outage"]}}, headers={**auth, "If-Match": etag}
        )
        assert tagged.status_code == 200, tagged.text
        assert any("backend_unavailable" in w for w in tagged.json()["warnings"])
        assert "outage" in SpecMemory(specs, tmp_path / "peek").get_spec("001").meta.tags
        assert tagged.headers["etag"] == cold.get("/specs/001", headers=auth).headers["etag"]

        chroma.start()
        assert cold.get("/search", params={"q": "token"}).status_code == 200

        # Frozen rather than gone: the heartbeat times out instead of hanging the request.
        assert chroma.process is not None
        chroma.process.send_signal(signal.SIGSTOP)
        drop_vector_cache(data)
        with _app(specs, data) as frozen_cold:
            frozen = frozen_cold.get("/search", params={"q": "token"})
            assert frozen.status_code == 503
            assert frozen.json()["error"]["code"] == "backend_unavailable"
            chroma.process.send_signal(signal.SIGCONT)
            assert frozen_cold.get("/search", params={"q": "token"}).status_code == 200

    # Once Chroma is back the next ingest converges: the tag written during the outage is in.
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    memory.ingest()
    hits = memory.search("Authentication design", mode="lexical", status="planned", tags="outage")
    assert any(hit.spec == "001-auth-design" for hit in hits)
