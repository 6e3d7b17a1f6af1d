"""Slow: 5,000 status changes on one spec keep working and its README stays bounded (spec 025).

Before, change 1,191 was refused for ever: the transitions filled the 64,000-character frontmatter.
The last changes go through the HTTP door (PATCH with If-Match, then archive), as callbacks do.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest import atomic
from ingest.authoring import writes
from ingest.index.embedding import FakeEmbedder
from ingest.specs.frontmatter import MAX_FRONTMATTER_CHARS, split_document
from retriever import SpecMemory
from retriever.http import create_app
from tests.test_transitions_bounded import Clock, change_status, older, readme_transitions
from tests.test_transitions_bounded import root as root  # the fixture

pytestmark = pytest.mark.slow
TOKEN = "stress-token-1234567890"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_five_thousand_status_changes_keep_working_and_the_file_stays_bounded(root: Path) -> None:
    clock = Clock()
    readme = root / "001-callbacks" / "README.md"
    sizes = []
    started = time.perf_counter()
    for block in range(10):
        change_status(root, 499 if block == 9 else 500, clock, start=block * 500)
        sizes.append(len(split_document(readme.read_text(encoding="utf-8")).yaml_text or ""))
    seconds = time.perf_counter() - started
    memory = SpecMemory(root, root.parent / "data", embedder=FakeEmbedder())
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as client:
        etag = client.get("/specs/001").headers["etag"]
        patch = client.patch(
            "/specs/001", json={"status": "planned"}, headers={**AUTH, "If-Match": etag}
        )
        assert patch.status_code == 200, patch.text
        etag = patch.headers["etag"]
        archive = client.post("/specs/001/archive", headers={**AUTH, "If-Match": etag})
        assert archive.status_code == 200, archive.text
    assert len(readme_transitions(root)) == writes.KEEP_TRANSITIONS
    assert readme_transitions(root)[-1]["status"] == "archived"
    assert len(older(root)) == 5001 - writes.KEEP_TRANSITIONS
    assert max(sizes) < MAX_FRONTMATTER_CHARS // 10  # ~5.5 kB: 100 transitions
    assert max(sizes) - min(sizes) < 20  # only the status names' lengths vary
    assert atomic.DURABLE is False  # the fixture's: 5,000 fsyncs are not what is measured
    print(f"5000 status changes in {seconds:.1f} s; frontmatter {max(sizes)} chars")
