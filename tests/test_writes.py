"""Updates through the service: style-faithful edits, validation, stale hashes, cycles, safety."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from ingest.authoring.frontmatter_edit import EditableDocument
from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.errors import (
    AmbiguousSpecRef,
    DependencyCycle,
    InvalidInput,
    SpecNotFound,
    SpecParseError,
    StaleWrite,
    UnsafeReference,
)
from ingest.specs.store import SpecStore
from retriever.service import SpecMemory
from tests.conftest import write_spec


def _memory(root: Path) -> SpecMemory:
    return SpecMemory(root, root.parent / "data")


def _readme(root: Path, name: str) -> str:
    return (root / name / "README.md").read_bytes().decode("utf-8")


def test_status_alias_written_canonically_with_transition_and_timestamps(tiny_specs):
    memory = _memory(tiny_specs)
    spec = memory.update_spec("003", SpecChange(status="completed"))
    text = _readme(tiny_specs, "003-search-ui")
    assert text.startswith("---\nstatus: complete\npriority: low\ntags: [ui]\n")
    assert spec.meta.status == "complete"
    assert spec.meta.transitions == [{"status": "complete", "at": spec.meta.updated_at}]
    assert spec.meta.completed_at == spec.meta.updated_at
    assert spec.meta.updated_at.endswith("Z")
    assert [c["field"] for c in spec.changes] == [
        "status",
        "transitions",
        "updated_at",
        "completed_at",
    ]
    assert memory.get_spec("003").meta.status == "complete"  # reads see the write at once


def test_same_status_is_a_no_op(tiny_specs):
    memory = _memory(tiny_specs)
    before = _readme(tiny_specs, "002-token-refresh")
    spec = memory.update_spec("002", SpecChange(status="in-progress"))  # the file says in_progress
    assert spec.changes == [] and spec.summary()["changed"] is False
    assert _readme(tiny_specs, "002-token-refresh") == before


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [("status", {"status": "finished"}), ("priority", {"priority": "whenever"})],
)
def test_unknown_values_refused_naming_the_field(tiny_specs, field, kwargs):
    with pytest.raises(InvalidInput, match=rf"^{field}: unknown {field}"):
        _memory(tiny_specs).update_spec("001", SpecChange(**kwargs))


def test_bad_tags_and_empty_updates_refused(tiny_specs):
    memory = _memory(tiny_specs)
    for tag in ["a,b", "x]", "", "line\nbreak"]:
        with pytest.raises(InvalidInput, match=r"^tags:"):
            memory.update_spec("001", SpecChange(add_tags=[tag]))
    with pytest.raises(InvalidInput, match="nothing to update"):
        memory.update_spec("001", SpecChange())


def test_priority_alias_and_comma_string_tags_keep_their_style(tiny_specs):
    memory = _memory(tiny_specs)
    memory.update_spec(
        "002", SpecChange(priority="urgent", add_tags=["retry"], remove_tags=["auth"])
    )
    text = _readme(tiny_specs, "002-token-refresh")
    assert "priority: critical\ntags: tokens, retry\ndepends_on:\n  - 001-auth-design\n" in text


def test_block_list_indent_quotes_and_comments_survive(tmp_path):
    root = tmp_path / "specs"
    write_spec(
        root,
        "010-styled",
        """
        ---
        status: 'planned'   # set by hand
        created: '2025-11-04'
        tags:
          - 'alpha'
          - beta
        # a comment between keys
        depends_on:
          - '11'
        created_at: '2025-11-04T00:00:00Z'
        ---
        # Styled
        """,
    )
    write_spec(root, "011-other", "---\nstatus: planned\n---\n# Other\n")
    write_spec(root, "012-third", "---\nstatus: planned\n---\n# Third\n")
    spec = _memory(root).update_spec(
        "10", SpecChange(status="in_progress", add_tags=["gamma"], add_deps=["12"])
    )
    text = _readme(root, "010-styled")
    at = spec.meta.updated_at
    assert text == textwrap.dedent(
        f"""\
        ---
        status: 'in-progress'   # set by hand
        created: '2025-11-04'
        tags:
          - 'alpha'
          - beta
          - 'gamma'
        # a comment between keys
        depends_on:
          - '11'
          - '012'
        created_at: '2025-11-04T00:00:00Z'
        updated_at: '{at}'
        transitions:
          - status: in-progress
            at: '{at}'
        ---
        # Styled
        """
    )
    assert spec.meta.depends_on == ["11", "012"]  # bare numbers, as the file writes them


def test_crlf_and_bom_are_kept(tmp_path):
    root = tmp_path / "specs"
    directory = root / "001-windows"
    directory.mkdir(parents=True)
    original = (
        b"\xef\xbb\xbf---\r\nstatus: planned\r\ntags: [a]\r\n---\r\n# Windows\r\n\r\nBody.\r\n"
    )
    (directory / "README.md").write_bytes(original)
    memory = _memory(root)
    memory.update_spec("1", SpecChange(add_tags=["b"], status="draft"))
    data = (directory / "README.md").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf---\r\nstatus: draft\r\ntags: [a, b]\r\n")
    assert data.endswith(b"---\r\n# Windows\r\n\r\nBody.\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    memory.update_spec("1", SpecChange(remove_tags=["b"]))
    assert b"tags: [a]\r\n" in (directory / "README.md").read_bytes()


def test_flow_list_edits_keep_padding_and_round_trip():
    doc = EditableDocument.parse(b"---\ntags: [ a , 'b' ]  # keep\n---\n", "x")
    doc.add_to_list("tags", ["c d"])
    assert doc.render() == b"---\ntags: [ a , 'b', 'c d' ]  # keep\n---\n"
    doc.remove_from_list("tags", {"c d"})
    assert doc.render() == b"---\ntags: [ a , 'b' ]  # keep\n---\n"
    doc.remove_from_list("tags", {"a", "b"})
    assert doc.render() == b"---\ntags: []  # keep\n---\n"


def test_file_without_frontmatter_gets_one(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "001-bare", "# Bare\n\nNo frontmatter yet.\n")
    spec = _memory(root).update_spec("1", SpecChange(priority="high"))
    assert _readme(root, "001-bare") == "---\npriority: high\n---\n# Bare\n\nNo frontmatter yet.\n"
    assert spec.meta.priority == "high"


def test_stale_expected_hash_refused_with_current_hash(tiny_specs):
    memory = _memory(tiny_specs)
    old_hash = memory.get_spec("001").content_hash
    fresh = memory.update_spec("001", SpecChange(add_tags=["x"]), expected_hash=old_hash)
    assert fresh.content_hash != old_hash
    before = _readme(tiny_specs, "001-auth-design")
    with pytest.raises(StaleWrite) as caught:
        memory.update_spec("001", SpecChange(status="draft"), expected_hash=old_hash)
    assert caught.value.current == fresh.content_hash
    assert fresh.content_hash in str(caught.value)
    assert _readme(tiny_specs, "001-auth-design") == before
    with pytest.raises(StaleWrite):
        memory.archive_spec("001", expected_hash=old_hash)


def test_archive_is_status_only(tiny_specs):
    memory = _memory(tiny_specs)
    spec = memory.archive_spec("002")
    assert spec.path == tiny_specs / "002-token-refresh"
    assert spec.meta.status == "archived"
    assert spec.meta.transitions[-1]["status"] == "archived"
    assert [s.dir_name for s in memory.list_specs()] == ["001-auth-design", "003-search-ui"]


def test_new_dependencies_written_as_full_names_unless_the_file_uses_numbers(tiny_specs):
    write_spec(tiny_specs, "004-audit-log", "---\nstatus: draft\n---\n# Audit log\n")
    memory = _memory(tiny_specs)
    spec = memory.update_spec("4", SpecChange(add_deps=["1"]))
    assert spec.meta.depends_on == ["001-auth-design"]
    spec = memory.update_spec("002", SpecChange(add_deps=["4", "004-audit-log"]))
    assert spec.meta.depends_on == ["001-auth-design", "004-audit-log"]
    assert _readme(tiny_specs, "002-token-refresh").count("  - 004-audit-log\n") == 1
    assert memory.update_spec("002", SpecChange(add_deps=["001"])).changes == []  # already there


def test_cycle_refused_on_tiny_fixture(tiny_specs):
    memory = _memory(tiny_specs)
    before = _readme(tiny_specs, "001-auth-design")
    with pytest.raises(DependencyCycle) as caught:
        memory.update_spec("001", SpecChange(add_deps=["003-search-ui"]))
    assert "001-auth-design -> 003-search-ui -> 002-token-refresh -> 001-auth-design" in str(
        caught.value
    )
    with pytest.raises(DependencyCycle):
        memory.update_spec("001", SpecChange(add_deps=["1"]))
    assert _readme(tiny_specs, "001-auth-design") == before


def test_dependency_add_and_remove(tiny_specs):
    memory = _memory(tiny_specs)
    spec = memory.update_spec(
        "003", SpecChange(add_deps=["001"], remove_deps=["002-token-refresh"])
    )
    assert spec.meta.depends_on == ["001"]  # flow list of numbers: the number is written
    assert "depends_on: ['001']\n" in _readme(tiny_specs, "003-search-ui")
    spec = memory.update_spec("003", SpecChange(remove_deps=["1"]))
    assert spec.meta.depends_on == []
    with pytest.raises(SpecNotFound):
        memory.update_spec("003", SpecChange(add_deps=["404"]))


def test_cycle_refused_on_corpus_fresh_pair_and_ambiguous_numbers(corpus_copy):
    memory = _memory(corpus_copy)
    memory.update_spec("302", SpecChange(add_deps=["305"]))
    with pytest.raises(
        DependencyCycle,
        match=r"305-ui-layout-alignment-overhaul -> 302-models-dev-integration -> 305",
    ):
        memory.update_spec("305", SpecChange(add_deps=["302"]))
    with pytest.raises(AmbiguousSpecRef):
        memory.update_spec("302", SpecChange(add_deps=["038"]))


@pytest.mark.parametrize("ref", ["../../x/999-evil", "/etc/passwd", "001/../../x", "..", "a\\b"])
@pytest.mark.parametrize("action", ["update", "archive", "split"])
def test_traversal_refused(tiny_specs, ref, action):
    memory = _memory(tiny_specs)
    with pytest.raises(UnsafeReference):
        if action == "update":
            memory.update_spec(ref, SpecChange(status="draft"))
        elif action == "archive":
            memory.archive_spec(ref)
        else:
            memory.split_spec(ref, ["Overview"])


@pytest.mark.parametrize("action", ["update", "archive", "split"])
def test_symlinked_spec_dir_pointing_outside_is_refused(tmp_path, tiny_specs, action):
    outside = tmp_path / "outside" / "999-evil"
    write_spec(outside.parent, "999-evil", "---\nstatus: planned\n---\n# Evil\n\n## Overview\nx\n")
    os.symlink(outside, tiny_specs / "999-evil")
    before = (outside / "README.md").read_bytes()
    memory = _memory(tiny_specs)
    with pytest.raises((UnsafeReference, SpecParseError)):
        if action == "update":
            memory.update_spec("999-evil", SpecChange(status="draft"))
        elif action == "archive":
            memory.archive_spec("999")
        else:
            memory.split_spec("999-evil", ["Overview"])
    assert (outside / "README.md").read_bytes() == before
    assert sorted(p.name for p in outside.iterdir()) == ["README.md"]


def test_locks_live_under_the_data_dir(tiny_specs):
    memory = _memory(tiny_specs)
    memory.update_spec("001", SpecChange(add_tags=["x"]))
    assert (tiny_specs.parent / "data" / "locks" / "001-auth-design.lock").exists()
    assert sorted(p.name for p in (tiny_specs / "001-auth-design").iterdir()) == ["README.md"]


def test_unparseable_edit_is_refused_before_writing(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "001-odd", "---\nstatus: planned\ntags: {a: 1}\n---\n# Odd\n")
    before = _readme(root, "001-odd")
    with pytest.raises(InvalidInput, match=r"001-odd/README\.md:3: cannot edit tags"):
        _memory(root).update_spec("1", SpecChange(add_tags=["x"]))
    assert _readme(root, "001-odd") == before


def _view(catalog):
    return [s.summary() for s in catalog], sorted(str(p) for p in catalog.problems)


def test_catalog_after_writes_matches_a_fresh_scan(tiny_specs):
    memory = _memory(tiny_specs)
    memory.catalog()
    memory.update_spec("002", SpecChange(status="complete", add_tags=["x"]))
    memory.create_spec(NewSpec(title="Fourth", tags=["y"]))
    memory.split_spec("1", ["Decision"])
    assert _view(memory.catalog()) == _view(memory.store.scan())
    # another writer changes a different spec behind this memory's back: both writes are seen
    other = _memory(tiny_specs)
    other.update_spec("003", SpecChange(priority="high"))
    memory.update_spec("001", SpecChange(priority="low"))
    assert memory.get_spec("003").meta.priority == "high"
    assert memory.get_spec("001").meta.priority == "low"
    assert _view(memory.catalog()) == _view(memory.store.scan())
    assert type(memory.get_spec("002")).__name__ == "Spec"  # listings never carry `changes`


def test_comments_after_empty_values_and_escaped_quotes_survive():
    doc = EditableDocument.parse(
        b"---\ncreated:  # fill me\ntags: # none\ntitle: 'it''s # not a comment'  # real\n---\n",
        "x",
    )
    doc.set_scalar("created", "2026-01-01", plain=True)
    doc.add_to_list("tags", ["a"])
    doc.set_scalar("title", "new")
    assert doc.render() == (
        b"---\ncreated:  2026-01-01 # fill me\ntags: # none\n- a\ntitle: 'new'  # real\n---\n"
    )


def test_hand_written_odd_tags_can_be_removed(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "001-odd", '---\nstatus: planned\ntags:\n- "it\'s"\n- ok\n---\n# Odd\n')
    spec = _memory(root).update_spec("1", SpecChange(remove_tags=["it's"]))
    assert spec.meta.tags == ["ok"]
    assert _readme(root, "001-odd") == "---\nstatus: planned\ntags:\n- ok\n---\n# Odd\n"


def test_cycle_check_sees_edges_written_after_the_callers_catalog(tiny_specs):
    write_spec(tiny_specs, "004-audit-log", "---\nstatus: draft\n---\n# Audit log\n")
    memory = _memory(tiny_specs)
    stale = memory.catalog()
    # another tool gives 004 a dependency behind this memory's back
    write_spec(tiny_specs, "004-audit-log", "---\nstatus: draft\ndepends_on: ['3']\n---\n# A\n")
    with pytest.raises(DependencyCycle, match="001-auth-design -> 004-audit-log -> 003"):
        memory._writer().update(stale, "001", SpecChange(add_deps=["004"]))


def test_refreshed_catalog_matches_a_full_scan(tiny_specs):
    from ingest.authoring.writes import refreshed_catalog

    store = SpecStore(tiny_specs)
    before = store.scan()
    write_spec(tiny_specs, "004-new", "---\nstatus: draft\n---\n# New\n")
    write_spec(tiny_specs, "001-auth-design", "---\nstatus: draft\ntags: [x]\n---\n# Changed\n")
    (tiny_specs / "002-token-refresh" / "README.md").unlink()
    (tiny_specs / "002-token-refresh").rmdir()
    write_spec(tiny_specs, "005-broken", "---\nstatus: [unclosed\n---\n# Broken\n")
    refreshed = refreshed_catalog(store, before)
    full = store.scan()
    assert [s.summary() for s in refreshed] == [s.summary() for s in full]
    assert [str(p) for p in refreshed.problems] == [str(p) for p in full.problems]
    assert refreshed.broken.keys() == full.broken.keys() == {"005-broken"}
