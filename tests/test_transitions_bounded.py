"""Status callbacks keep working for the life of a spec (issue 11, class 9; spec 025).

Every status change appends a transition. The README keeps the latest KEEP_TRANSITIONS; older
ones move, verbatim and oldest first, to OLDER_TRANSITIONS_FILE beside it. Before, ~1,165
changes filled the 64,000-character frontmatter limit and every later change was refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ingest import atomic
from ingest.authoring import writes
from ingest.authoring.spec_changes import SpecChange
from ingest.authoring.writes import OLDER_TRANSITIONS_FILE, SpecWriter, catalog_with
from ingest.specs.frontmatter import normalize_frontmatter
from ingest.specs.store import SpecStore
from ingest.specs.validate import find_stray_files
from retriever.cli import cli
from tests.conftest import write_spec

STATUSES = ("in-progress", "planned", "complete")


class Clock:
    def __init__(self) -> None:
        self.tick = 0

    def __call__(self) -> str:
        self.tick += 1
        return f"2026-01-01T00:00:00.{self.tick:06d}Z"


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(atomic, "DURABLE", False)
    specs = tmp_path / "specs"
    write_spec(
        specs,
        "001-callbacks",
        """
        ---
        status: draft
        created: 2025-10-24
        tags: [agents]
        ---
        # Callbacks

        ## Overview
        A spec whose status an orchestrator changes again and again.
        """,
    )
    return specs


def change_status(root: Path, count: int, clock: Clock, start: int = 0) -> SpecWriter:
    store = SpecStore(root)
    writer = SpecWriter(store, root.parent / "data", clock=clock)
    catalog = store.scan()
    for index in range(start, start + count):
        spec = writer.update(catalog, "001", SpecChange(status=STATUSES[index % 3]))
        catalog = catalog_with(catalog, spec)
    return writer


def readme_transitions(root: Path) -> list[dict[str, str]]:
    return SpecStore(root).scan().get("001").meta.transitions


def older(root: Path) -> list[dict[str, str]]:
    path = root / "001-callbacks" / OLDER_TRANSITIONS_FILE
    return yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else []


def test_the_readme_keeps_the_latest_and_the_rest_move_beside_it(root, monkeypatch) -> None:
    monkeypatch.setattr(writes, "KEEP_TRANSITIONS", 5)
    clock = Clock()
    change_status(root, 23, clock)
    kept = readme_transitions(root)
    assert len(kept) == 5
    moved = older(root)
    assert len(moved) == 18
    every = normalize_frontmatter({"transitions": moved}).transitions + kept
    assert every == [
        {"status": STATUSES[i % 3], "at": f"2026-01-01T00:00:00.{i + 1:06d}Z"} for i in range(23)
    ]
    spec = SpecStore(root).scan().get("001")
    assert spec.sub_files == [] and spec.meta.status == STATUSES[22 % 3]
    assert find_stray_files(SpecStore(root).scan()) == []  # a dot file, like editor state


def test_a_change_reports_what_it_moved(root, monkeypatch) -> None:
    monkeypatch.setattr(writes, "KEEP_TRANSITIONS", 2)
    writer = change_status(root, 2, Clock())
    store = writer.store
    written = writer.update(store.scan(), "001", SpecChange(status="archived"))
    assert {"field": "transitions", "moved": 1, "to": OLDER_TRANSITIONS_FILE} in written.changes
    assert str(root / "001-callbacks" / OLDER_TRANSITIONS_FILE) in written.files_written
    assert len(written.meta.transitions) == 2


def test_items_move_verbatim_with_their_own_keys_and_comments(root, monkeypatch) -> None:
    monkeypatch.setattr(writes, "KEEP_TRANSITIONS", 2)
    readme = root / "001-callbacks" / "README.md"
    text = readme.read_text(encoding="utf-8").replace(
        "tags: [agents]\n",
        "tags: [agents]\ntransitions:\n"
        "- status: planned\n  at: '2025-01-01T00:00:00Z'\n  by: relay  # first\n"
        "- note: no status, ignored by readers\n"
        "- status: in_progress\n  at: 2025-01-02\n  files:\n  - a.py\n  - b.py\n",
    )
    readme.write_text(text, encoding="utf-8")
    change_status(root, 1, Clock(), start=2)
    moved_text = (root / "001-callbacks" / OLDER_TRANSITIONS_FILE).read_text(encoding="utf-8")
    assert "- status: planned\n  at: '2025-01-01T00:00:00Z'\n  by: relay  # first\n" in moved_text
    assert older(root)[1] == {"note": "no status, ignored by readers"}
    kept = readme_transitions(root)
    assert [t["status"] for t in kept] == ["in-progress", "complete"]
    assert "  files:\n  - a.py\n  - b.py\n" in readme.read_text(encoding="utf-8")


def test_a_readme_already_holding_hundreds_moves_them_in_one_change(root) -> None:
    readme = root / "001-callbacks" / "README.md"
    items = "".join(
        f"  - status: {STATUSES[i % 3]}\n    at: '2025-01-01T00:00:{i % 60:02d}.{i:06d}Z'\n"
        for i in range(900)
    )
    text = readme.read_text(encoding="utf-8")
    readme.write_text(text.replace("tags: [agents]\n", "tags: [agents]\ntransitions:\n" + items))
    change_status(root, 1, Clock())
    assert len(readme_transitions(root)) == writes.KEEP_TRANSITIONS
    assert len(older(root)) == 900 + 1 - writes.KEEP_TRANSITIONS


def test_a_crash_between_the_two_files_leaves_no_duplicate(root, monkeypatch) -> None:
    monkeypatch.setattr(writes, "KEEP_TRANSITIONS", 3)
    clock = Clock()
    change_status(root, 5, clock)  # 2 moved
    real_write = writes.atomic_write

    def crash(path: Path, data: bytes) -> None:
        raise OSError("killed before the README was replaced")

    monkeypatch.setattr(writes, "atomic_write", crash)
    with pytest.raises(OSError):
        change_status(root, 1, clock, start=5)  # appended one more to the older file, then died
    assert len(older(root)) == 3 and len(readme_transitions(root)) == 5 - 2
    monkeypatch.setattr(writes, "atomic_write", real_write)
    change_status(root, 2, clock, start=6)
    ats = [t["at"] for t in older(root)] + [t["at"] for t in readme_transitions(root)]
    assert len(ats) == len(set(ats)) == 7  # the crashed change's own transition was never written
    assert readme_transitions(root)[-1]["status"] == STATUSES[7 % 3]


def test_the_cli_archive_works_after_many_changes(root, monkeypatch) -> None:
    monkeypatch.setattr(writes, "KEEP_TRANSITIONS", 4)
    change_status(root, 12, Clock())
    args = ["--specs-dir", str(root), "--data-dir", str(root.parent / "data"), "archive", "001"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert readme_transitions(root)[-1]["status"] == "archived"
    assert len(older(root)) == 12 + 1 - 4
