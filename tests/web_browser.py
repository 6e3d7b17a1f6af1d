"""A real `specmem serve` over a copy of the LeanSpec corpus, and Debian's Chromium driven by
Playwright, for the web page's tests (spec 089).

Playwright comes from PyPI and never downloads a browser here: it launches /usr/bin/chromium
with the flags this closed network needs. The index of the corpus is built once into
`.specmem-eval/leanspec` (the same cache `make eval` uses; ingest is incremental, so a warm cache
costs a second) and copied for each run, so the board's writes never touch the shared corpus.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.live_server import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
SPECMEM = Path(sys.executable).with_name("specmem")
INDEX_CACHE = REPO / ".specmem-eval" / "leanspec"
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# machine's network refuses; --no-sandbox because tests run as root in CI.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "web-page-test-token-0123456789"

__all__ = [
    "ARTIFACTS",
    "CHROMIUM_ARGS",
    "SPECMEM",
    "TOKEN",
    "chromium_or_skip",
    "commit_change",
    "free_port",
    "served_corpus",
    "wait_for_health",
]


def chromium_or_skip() -> str:
    for candidate in CHROMIUM_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.skip(
        "browser tests skipped: Chromium is not installed (/usr/bin/chromium). `make test` "
        "installs Debian's chromium when it runs as root; otherwise `apt-get install chromium`."
    )


def _specmem(*args: str, env: dict[str, str], **kwargs) -> subprocess.CompletedProcess:
    command = [str(SPECMEM), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False, **kwargs)


@contextmanager
def served_corpus(corpus_specs: Path, workdir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (base URL, specs dir) of a real `specmem serve` over a copy of the corpus."""
    env = {**os.environ, "SPECMEM_API_TOKEN": TOKEN}
    env.pop("SPECMEM_SPECS_DIR", None)
    env.pop("SPECMEM_DATA_DIR", None)
    built = _specmem(
        "--specs-dir", str(corpus_specs), "--data-dir", str(INDEX_CACHE), "ingest", env=env
    )
    assert built.returncode == 0, built.stdout + built.stderr
    specs = workdir / "specs"
    data = workdir / "data"
    shutil.copytree(corpus_specs, specs, symlinks=True)
    shutil.copytree(INDEX_CACHE, data, ignore=shutil.ignore_patterns("*.lock", "events.sqlite*"))
    _commit_all(workdir, "Import the LeanSpec specs")
    port = free_port()
    log = (workdir / "serve.log").open("w")
    command = [str(SPECMEM), "--specs-dir", str(specs)]
    command += ["--data-dir", str(data), "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, server, workdir / "serve.log")
        yield base, specs
    finally:
        stop_process(server)
        log.close()


def _commit_all(repo: Path, message: str) -> None:
    """A git work tree around the copy, so a spec's history has commits as it would in a real
    repository (spec 088)."""
    git = ["git", "-C", str(repo), "-c", "user.name=Web Test", "-c", "user.email=web@test"]
    if not (repo / ".git").exists():
        subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A", "specs"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)


def commit_change(specs: Path, spec: str, text: str, message: str) -> None:
    """Append `text` to a spec's README and commit it with `message`."""
    readme = specs / spec / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + text, encoding="utf-8")
    _commit_all(specs.parent, message)


def wait_for_health(base: str, server: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise AssertionError(log.read_text() if log.exists() else "specmem serve exited")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"specmem serve did not answer /health in {timeout:.0f} s")
        time.sleep(0.2)
