"""Line edits are faithful on every spec of the real corpus: untouched bytes never change."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from ingest import atomic
from ingest.authoring.spec_changes import SpecChange
from ingest.authoring.writes import SpecWriter
from ingest.specs.frontmatter import normalize_frontmatter, parse_yaml, split_document
from ingest.specs.store import SpecStore

FIXED_NOW = "2026-11-24T12:00:00.000001Z"
PROBE_TAG = "specmem-probe"


def _changed_lines(before: bytes, after: bytes) -> tuple[list[str], list[str]]:
    old = before.decode("utf-8").splitlines(keepends=True)
    new = after.decode("utf-8").splitlines(keepends=True)
    removed, added = [], []
    for line in difflib.ndiff(old, new):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


@pytest.fixture
def writer_and_catalog(corpus_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # ~900 rewrites: durability is not what this test is about, and fsync dominates its time
    monkeypatch.setattr(atomic, "DURABLE", False)
    store = SpecStore(corpus_copy)
    writer = SpecWriter(store, tmp_path / "data", clock=lambda: FIXED_NOW)
    return writer, store.scan()


def test_updates_on_every_corpus_readme_change_only_what_they_must(writer_and_catalog):
    writer, catalog = writer_and_catalog
    assert len(catalog) > 250
    for spec in catalog:
        original = spec.readme.path.read_bytes()
        _add_then_remove_tag_restores_bytes(writer, catalog, spec, original)
        _status_change_touches_only_status_and_appends_history(writer, catalog, spec, original)


def _add_then_remove_tag_restores_bytes(writer, catalog, spec, original: bytes) -> None:
    added = writer.update(catalog, spec.dir_name, SpecChange(add_tags=[PROBE_TAG]))
    assert PROBE_TAG in added.meta.tags, spec.dir_name
    assert added.meta.tags[: len(spec.meta.tags)] == spec.meta.tags, spec.dir_name
    removed, new_lines = _changed_lines(original, spec.readme.path.read_bytes())
    # a tag is one new line (block lists, new keys) or one rewritten line (flow, comma)
    assert len(new_lines) <= 2 and len(removed) <= 1, (spec.dir_name, removed, new_lines)
    writer.update(catalog, spec.dir_name, SpecChange(remove_tags=[PROBE_TAG]))
    assert spec.readme.path.read_bytes() == original, spec.dir_name


def _status_change_touches_only_status_and_appends_history(
    writer, catalog, spec, original: bytes
) -> None:
    target = "draft" if spec.meta.status != "draft" else "planned"
    written = writer.update(catalog, spec.dir_name, SpecChange(status=target))
    after = spec.readme.path.read_bytes()
    removed, added = _changed_lines(original, after)
    # only the status line and (when present) the old updated_at line may go
    assert all(line.startswith(("status:", "updated_at:")) for line in removed), (
        spec.dir_name,
        removed,
    )
    assert sum(line.startswith("status:") for line in added) == 1
    assert written.meta.status == target
    assert written.meta.transitions[-1] == {"status": target, "at": FIXED_NOW}
    assert written.meta.transitions[:-1] == spec.meta.transitions
    assert written.meta.updated_at == FIXED_NOW
    # everything but those keys reads back exactly as before
    before_raw = parse_yaml(split_document(original.decode("utf-8")).yaml_text or "", "x")
    after_raw = parse_yaml(split_document(after.decode("utf-8")).yaml_text or "", "x")
    for key in set(before_raw) - {"status", "updated_at", "transitions"}:
        assert after_raw[key] == before_raw[key], (spec.dir_name, key)
    assert written.body == spec.body
    before_problems = normalize_frontmatter(before_raw).problems
    assert normalize_frontmatter(after_raw).problems == [
        p for p in before_problems if p[0] != "status"
    ]
