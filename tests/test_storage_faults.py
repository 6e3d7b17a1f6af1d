"""Read-only and full disks (issue 11, class 12; spec 043).

Two levels, because chmod stops nobody here (the tests run as root):
- injected: the OSError a full or read-only disk raises (ENOSPC, EROFS) at the write points, so
  every door is tried in-process: HTTP 507 `disk_full` / 503 `storage_unavailable` JSON, CLI
  exit 1 with one line, MCP a tool error with the code; the spec file unchanged, no temp file
  left, and the idempotency key free for the retry (nothing was written);
- real: a private mount namespace (`unshare -m`, skipped where it is not allowed) with a small
  tmpfs that is really full and read-only bind mounts, where the kernel itself refuses.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient
from mcp import Client

import ingest.atomic
from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.cli import cli
from retriever.mcp_server import build_mcp_server
from tests.conftest import REPO

TOKEN = "storage-faults-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def memory(indexed_memory: SpecMemory) -> SpecMemory:
    return indexed_memory  # `client` (tests/conftest.py) serves it with this module's TOKEN


def refuse(monkeypatch: pytest.MonkeyPatch, code: int, at: str) -> None:
    """Make the disk refuse at one of the atomic write's steps: `fsync` (where a full disk with
    delayed allocation reports it), `mkstemp` (creating the temp file) or `replace`."""

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))

    target = {
        "fsync": (ingest.atomic.os, "fsync"),
        "mkstemp": (ingest.atomic.tempfile, "mkstemp"),
        "replace": (ingest.atomic.os, "replace"),
    }[at]
    monkeypatch.setattr(*target, refused)


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


CASES = [
    (errno.ENOSPC, "fsync", 507, "disk_full"),
    (errno.ENOSPC, "mkstemp", 507, "disk_full"),
    (errno.EDQUOT, "fsync", 507, "disk_full"),
    (errno.EROFS, "mkstemp", 503, "storage_unavailable"),
    (errno.EROFS, "replace", 503, "storage_unavailable"),
    (errno.EACCES, "mkstemp", 503, "storage_unavailable"),
]
IDS = [f"{errno.errorcode[c]}-at-{at}" for c, at, _, _ in CASES]


@pytest.mark.parametrize(("code", "at", "status", "name"), CASES, ids=IDS)
def test_http_writes_on_a_refusing_disk_are_clear_errors_and_change_nothing(
    code: int,
    at: str,
    status: int,
    name: str,
    client: TestClient,
    memory: SpecMemory,
    tiny_specs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = snapshot(tiny_specs)
    etag = client.get("/specs/2").headers["etag"]
    headers = {**AUTH, "If-Match": etag, "Idempotency-Key": f"k-{code}-{at}"}
    with monkeypatch.context() as patched:
        refuse(patched, code, at)
        answers = [
            client.patch("/specs/2", json={"status": "complete"}, headers=headers),
            client.post("/specs", json={"title": "Rate limits"}, headers=AUTH),
            client.post(
                "/specs/3/archive",
                headers={**AUTH, "If-Match": client.get("/specs/3").headers["etag"]},
            ),
        ]
    for answer in answers:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        error = answer.json()["error"]
        assert error["code"] == name and "nothing was changed" in error["message"]
        assert "/tmp" not in error["message"]
    assert snapshot(tiny_specs) == before  # no byte changed, no temp file, no new spec dir
    # Nothing was written, so the key is free: the same request succeeds once the disk does.
    retry = client.patch("/specs/2", json={"status": "complete"}, headers=headers)
    assert retry.status_code == 200, retry.text
    assert memory.get_spec("2").meta.status == "complete"


def specmem(memory: SpecMemory, *args: str) -> Result:
    settings = memory.settings
    return CliRunner().invoke(
        cli, ["--specs-dir", str(settings.specs_dir), "--data-dir", str(settings.data_dir), *args]
    )


@pytest.mark.parametrize(
    "args",
    [
        ("update", "2", "--status", "complete"),
        ("create", "Rate limits"),
        ("archive", "3"),
        ("split", "1", "--section", "Decision"),
    ],
    ids=["update", "create", "archive", "split"],
)
@pytest.mark.parametrize(
    ("code", "words"), [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "Read-only")]
)
def test_cli_writes_on_a_refusing_disk_exit_1_with_one_line(
    args: tuple[str, ...],
    code: int,
    words: str,
    memory: SpecMemory,
    tiny_specs: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = snapshot(tiny_specs)
    refuse(monkeypatch, code, "fsync" if code == errno.ENOSPC else "mkstemp")
    result = specmem(memory, *args)
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: cannot ") and words in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(tiny_specs) == before


def test_mcp_write_on_a_full_disk_is_a_tool_error_with_the_code(
    memory: SpecMemory, tiny_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(tiny_specs)
    refuse(monkeypatch, errno.ENOSPC, "fsync")
    current = memory.get_spec("2").content_hash

    async def scenario() -> Any:
        async with Client(build_mcp_server(memory)) as client:
            update = await client.call_tool(
                "update_spec", {"spec": "2", "expected_hash": current, "status": "complete"}
            )
            create = await client.call_tool("create_spec", {"title": "Rate limits"})
            return update, create

    for result in anyio.run(scenario):
        assert result.is_error and "[disk_full] cannot write" in result.content[0].text
    assert snapshot(tiny_specs) == before


def test_a_read_only_data_dir_refuses_writes_before_touching_the_spec(
    memory: SpecMemory, tiny_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-spec lock lives in the data dir: when it cannot be created, nothing is written."""
    before = snapshot(tiny_specs)
    shutil.rmtree(memory.settings.data_dir / "locks", ignore_errors=True)
    real_mkdir = Path.mkdir

    def read_only_mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self.name == "locks":
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only_mkdir)
    result = specmem(memory, "update", "2", "--status", "complete")
    assert result.exit_code == 1 and "cannot create the lock" in result.stderr, result.output
    assert snapshot(tiny_specs) == before


# -- the kernel refusing: a private mount namespace --------------------------------------------


def _unshare_works() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && umount /mnt"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


needs_unshare = pytest.mark.skipif(
    not _unshare_works(), reason="needs `unshare -m` and mount (root in a namespace)"
)


def in_namespace(mounts: str, script: str, tmp_path: Path, **env: str) -> dict[str, Any]:
    """Run `mounts` (shell) then the Python `script` in a private mount namespace; the script
    prints one JSON object, returned. Mounts vanish with the namespace."""
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent(script))
    child_env = dict(os.environ, PYTHONPATH=str(REPO), SPECMEM_MODEL="fake", **env)
    child_env.pop("SPECMEM_CHROMA_URL", None)
    done = subprocess.run(
        ["unshare", "-m", "sh", "-ec", f"{mounts}\nexec {sys.executable} {program}"],
        capture_output=True,
        text=True,
        timeout=240,
        env=child_env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


WRITES_SCRIPT = """
    import json, sys
    from click.testing import CliRunner
    from fastapi.testclient import TestClient
    from ingest.index.embedding import FakeEmbedder
    from retriever import SpecMemory
    from retriever.cli import cli
    from retriever.http import create_app

    specs, data = sys.argv[1:3] if len(sys.argv) > 2 else ("{specs}", "{data}")
    readme = open(specs + "/002-token-refresh/README.md", "rb").read()
    cli_result = CliRunner().invoke(
        cli, ["--specs-dir", specs, "--data-dir", data, "update", "2", "--status", "complete"]
    )
    memory = SpecMemory(specs, data, embedder=FakeEmbedder())
    auth = {{"Authorization": "Bearer {token}"}}
    with TestClient(create_app(memory, token="{token}", mount_mcp=False)) as client:
        etag = client.get("/specs/2").headers["etag"]
        patch = client.patch(
            "/specs/2", json={{"status": "complete"}}, headers={{**auth, "If-Match": etag}}
        )
        create = client.post("/specs", json={{"title": "Rate limits"}}, headers=auth)
        search = client.get("/search", params={{"q": "bearer tokens"}})
    print(json.dumps({{
        "cli_exit": cli_result.exit_code,
        "cli_stderr": cli_result.stderr,
        "cli_traceback": "Traceback" in cli_result.output,
        "patch": [patch.status_code, patch.json()],
        "create": [create.status_code, create.json()],
        "search": search.status_code,
        "unchanged": open(specs + "/002-token-refresh/README.md", "rb").read() == readme,
    }}))
"""


def _prepared(tiny_specs: Path, tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    memory = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    memory.ingest()
    return tiny_specs, data


@needs_unshare
def test_a_really_full_specs_disk(tiny_specs: Path, tmp_path: Path) -> None:
    specs, data = _prepared(tiny_specs, tmp_path)
    # A 512 KiB tmpfs over the specs dir, holding a copy of the specs and a filler that takes
    # every block left: the kernel answers ENOSPC to the next write.
    copy = tmp_path / "copy"
    shutil.copytree(specs, copy)
    mounts = (
        f"mount -t tmpfs -o size=512k tmpfs {specs}\n"
        f"cp -a {copy}/. {specs}/\n"
        f"dd if=/dev/zero of={specs}/.filler bs=4k 2>/dev/null || true\n"
    )
    script = WRITES_SCRIPT.format(specs=specs, data=data, token=TOKEN)
    result = in_namespace(mounts, script, tmp_path)
    assert result["cli_exit"] == 1 and not result["cli_traceback"]
    assert "the disk is full (No space left on device)" in result["cli_stderr"]
    assert result["patch"][0] == 507 and result["patch"][1]["error"]["code"] == "disk_full"
    assert result["create"][0] == 507 and result["create"][1]["error"]["code"] == "disk_full"
    assert result["unchanged"] and result["search"] == 200


@needs_unshare
def test_a_read_only_specs_disk(tiny_specs: Path, tmp_path: Path) -> None:
    specs, data = _prepared(tiny_specs, tmp_path)
    mounts = f"mount --bind {specs} {specs}\nmount -o remount,ro,bind {specs}\n"
    script = WRITES_SCRIPT.format(specs=specs, data=data, token=TOKEN)
    result = in_namespace(mounts, script, tmp_path)
    assert result["cli_exit"] == 1 and not result["cli_traceback"]
    assert "Read-only file system" in result["cli_stderr"]
    for answer in (result["patch"], result["create"]):
        assert answer[0] == 503 and answer[1]["error"]["code"] == "storage_unavailable"
    assert result["unchanged"] and result["search"] == 200


SERVE_SCRIPT = """
    import json, os, subprocess, sys, time
    import httpx

    specs, data, port = "{specs}", "{data}", {port}
    before = sorted(os.listdir(data))
    server = subprocess.Popen(
        [sys.executable, "-c", "from retriever.cli import main; main()", "--specs-dir", specs,
         "--data-dir", data, "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{{port}}"
    answers = {{}}
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        for name, path in [("health", "/health"), ("specs", "/specs"), ("spec", "/specs/2"),
                           ("search", "/search?q=bearer+tokens"),
                           ("lexical", "/search?q=bearer+tokens&mode=lexical"),
                           ("deps", "/specs/3/dependencies"), ("events", "/events")]:
            answer = httpx.get(base + path, timeout=30)
            answers[name] = [answer.status_code, answer.headers.get("content-type", "")]
            if answer.status_code >= 400:
                answers[name].append(answer.json()["error"])
        context = httpx.post(base + "/context", json={{"query": "bearer tokens"}}, timeout=30)
        answers["context"] = [context.status_code, context.headers.get("content-type", "")]
        if context.status_code >= 400:
            answers["context"].append(context.json()["error"])
        patch = httpx.patch(base + "/specs/2", json={{"status": "complete"}}, timeout=30)
        answers["patch"] = [patch.status_code, patch.headers.get("content-type", "")]
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    print(json.dumps({{"answers": answers, "before": before, "after": sorted(os.listdir(data)),
                      "traceback": "Traceback" in stderr, "alive": server.returncode is not None}}))
"""


@needs_unshare
def test_a_read_only_server_starts_and_reads_on_read_only_disks(
    tiny_specs: Path, tmp_path: Path
) -> None:
    """`specmem serve` without a token, on a read-only specs dir AND a read-only data dir (as a
    deployed, immutable copy): it starts, answers every read, and writes nothing, since the
    kernel would refuse any write. Search uses the vector cache the last ingest left."""
    specs, data = _prepared(tiny_specs, tmp_path)
    port = 20000 + os.getpid() % 20000
    mounts = "".join(
        f"mount --bind {path} {path}\nmount -o remount,ro,bind {path}\n" for path in (specs, data)
    )
    result = in_namespace(mounts, SERVE_SCRIPT.format(specs=specs, data=data, port=port), tmp_path)
    answers = result["answers"]
    for name in ("health", "specs", "spec", "search", "lexical", "deps", "context", "events"):
        assert answers[name][0] == 200, (name, answers)
    assert answers["patch"][0] in (401, 403) and "json" in answers["patch"][1]
    assert result["before"] == result["after"] and not result["traceback"]


@needs_unshare
def test_a_read_only_data_dir_without_a_current_vector_cache_says_so(
    tiny_specs: Path, tmp_path: Path
) -> None:
    """Chroma cannot open on a read-only mount, so without a matching `search-vectors.npz` a
    hybrid search has no vectors: 503 `backend_unavailable` naming the store, not a crash; a
    lexical search answers, and a context bundle falls back to lexical seeds."""
    specs, data = _prepared(tiny_specs, tmp_path)
    (data / "search-vectors.npz").unlink()
    port = 20000 + (os.getpid() + 7) % 20000
    mounts = f"mount --bind {data} {data}\nmount -o remount,ro,bind {data}\n"
    result = in_namespace(mounts, SERVE_SCRIPT.format(specs=specs, data=data, port=port), tmp_path)
    answers = result["answers"]
    assert answers["search"][0] == 503, answers
    assert answers["search"][2]["code"] == "backend_unavailable"
    assert "chroma" in answers["search"][2]["message"]
    for name in ("health", "specs", "spec", "lexical", "deps", "events", "context"):
        assert answers[name][0] == 200, (name, answers)
    assert result["before"] == result["after"] and not result["traceback"]


@needs_unshare
def test_a_full_data_disk_fails_the_ingest_and_keeps_the_index(
    tiny_specs: Path, tmp_path: Path
) -> None:
    """A full disk under the index is not damage: the write lands with a `disk_full` warning, a
    plain ingest fails with `disk_full` without throwing the index away, and once there is room
    the next ingest is incremental, not a rebuild."""
    data = tmp_path / "data"
    data.mkdir()
    script = f"""
    import json, subprocess
    from click.testing import CliRunner
    from retriever.cli import cli

    def specmem(*args):
        return CliRunner().invoke(
            cli, ["--specs-dir", "{tiny_specs}", "--data-dir", "{data}", *args]
        )

    first = specmem("ingest", "-q")
    subprocess.run("dd if=/dev/zero of={data}/filler bs=4k", shell=True, capture_output=True)
    write = specmem("update", "1", "--add-tag", "on-a-full-disk", "-o", "json")
    with open("{tiny_specs}/002-token-refresh/README.md", "a") as handle:
        handle.write("\\n## More\\nNew words to embed on a full disk.\\n")
    failed = specmem("ingest", "-o", "json")
    import os
    kept = sorted(os.listdir("{data}"))
    os.unlink("{data}/filler")
    after = specmem("ingest", "-o", "json")
    print(json.dumps({{
        "first": first.exit_code,
        "write": [write.exit_code, json.loads(write.stdout).get("warnings", [])],
        "failed": [failed.exit_code, failed.stderr, "Traceback" in failed.output],
        "kept": kept,
        "after": [after.exit_code, json.loads(after.stdout) if after.exit_code == 0 else after.output],
    }}))
    """
    result = in_namespace(f"mount -t tmpfs -o size=4m tmpfs {data}\n", script, tmp_path)
    assert result["first"] == 0
    assert result["write"][0] == 0
    assert any("not re-indexed: disk_full" in w for w in result["write"][1]), result["write"]
    exit_code, stderr, traceback = result["failed"]
    assert exit_code == 1 and not traceback and "the disk is full" in stderr, stderr
    assert {"manifest.json", "lexical.sqlite", "chroma"} <= set(result["kept"])
    code, summary = result["after"]
    assert code == 0 and not summary["full"] and not summary["damaged"], summary
    assert summary["updated"] == 2 and summary["embedded"] >= 1
