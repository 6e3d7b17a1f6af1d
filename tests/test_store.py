"""Unit tests of the read path's foundations: frontmatter, the store, the model and the graph."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import AmbiguousSpecRef, SpecNotFound, SpecParseError, UnsafeReference
from ingest.specs.frontmatter import (
    canonical_priority,
    canonical_status,
    normalize_frontmatter,
    parse_yaml,
    split_document,
)
from ingest.specs.graph import SpecGraph
from ingest.specs.store import SpecStore, check_file_name, check_reference

from .conftest import write_spec

# -- frontmatter -------------------------------------------------------------------------------


def test_split_document_reports_fence_lines():
    doc = split_document("---\nstatus: draft\npriority: low\n---\n# Title\n")
    assert doc.yaml_text == "status: draft\npriority: low\n"
    assert (doc.fm_first_line, doc.fm_last_line, doc.body_start_line) == (2, 3, 5)
    assert doc.body == "# Title\n"


def test_split_document_without_closing_fence_keeps_everything_as_body():
    doc = split_document("---\nstatus: draft\n# no end\n")
    assert doc.yaml_text is None
    assert doc.body.startswith("---")


def test_dates_become_iso_strings():
    raw = parse_yaml(
        "created: 2025-10-24\nupdated_at: 2025-12-26T06:32:10.135558Z\ncompleted_at: 2025-01-02 03:04:05\n",
        "x.md",
    )
    meta = normalize_frontmatter(raw)
    assert meta.created == "2025-10-24"
    assert meta.updated_at == "2025-12-26T06:32:10.135558Z"
    assert meta.completed_at == "2025-01-02T03:04:05"


def test_aware_datetimes_are_converted_to_utc():
    meta = normalize_frontmatter(
        {"updated_at": dt.datetime(2025, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))}
    )
    assert meta.updated_at == "2025-01-01T10:00:00Z"


def test_impossible_dates_stay_text_instead_of_failing_the_file():
    assert parse_yaml("created: 2025-13-45\n", "x.md") == {"created": "2025-13-45"}
    assert normalize_frontmatter({"created": "2025-13-45"}).created == "2025-13-45"


def test_numbers_in_reference_lists_become_strings():
    meta = normalize_frontmatter(
        parse_yaml("depends_on:\n- 185\n- '186'\nrelated: [7, 7]\nparent: 12\n", "x.md")
    )
    assert meta.depends_on == ["185", "186"]
    assert meta.related == ["7"]  # duplicates dropped
    assert meta.parent == "12"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ("auth, tokens", ["auth", "tokens"]),
        (["a", "b", "a"], ["a", "b"]),
        ("solo", ["solo"]),
        (None, []),
        ([1, None, "x"], ["1", "x"]),
    ],
)
def test_tags_accept_lists_and_comma_strings(tags, expected):
    assert normalize_frontmatter({"tags": tags}).tags == expected


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("in_progress", "in-progress"),
        ("In Progress", "in-progress"),
        ("completed", "complete"),
        ("done", "complete"),
        ("draft", "draft"),
    ],
)
def test_status_aliases(raw, status):
    assert normalize_frontmatter({"status": raw}).status == status
    assert canonical_status(raw) == status


def test_priority_aliases_and_unknown_values_are_problems_not_exceptions():
    meta = normalize_frontmatter({"priority": "med", "status": "someday"})
    assert meta.priority == "medium"
    assert meta.status is None
    assert meta.problems == [
        (
            "status",
            # LeanSpec's blocked and cancelled read too (spec 087).
            "unknown status 'someday' (expected one of draft, planned, in-progress, complete, "
            "archived, blocked, cancelled)",
        )
    ]
    assert canonical_priority("urgent") == "critical"
    assert canonical_priority("whenever") is None


def test_transitions_are_normalized_and_odd_shapes_ignored():
    meta = normalize_frontmatter(
        {"transitions": [{"status": "in_progress", "at": dt.date(2025, 1, 2)}, "junk", {"at": "x"}]}
    )
    assert meta.transitions == [{"status": "in-progress", "at": "2025-01-02"}]
    assert normalize_frontmatter({"transitions": 5}).transitions == []


def test_unknown_keys_are_kept_in_extra():
    assert normalize_frontmatter({"status": "draft", "owner": "ana"}).extra == {"owner": "ana"}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("status: draft\ntags: [a\n", 3, "invalid YAML"),
        ("a: &x [1]\nb: *x\n", 3, "aliases are not allowed"),
        ("- just\n- a list\n", 2, "must be a YAML mapping"),
        ("a: !!int zz\n", 2, "ValueError"),
        ("x: !!python/object:os.system {}\n", 2, "could not determine a constructor"),
    ],
)
def test_parse_yaml_errors_name_the_file_line(text, line, reason):
    with pytest.raises(SpecParseError) as info:
        parse_yaml(text, "specs/001-x/README.md")
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith(f"specs/001-x/README.md:{line}: ")


def test_parse_yaml_refuses_an_alias_bomb_quickly():
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for index, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[index]
        bomb += f"{name}: &{name} [*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous},*{previous}]\n"
    with pytest.raises(SpecParseError, match="aliases are not allowed"):
        parse_yaml(bomb, "x.md")


def test_parse_yaml_refuses_oversized_frontmatter_and_deep_nesting():
    with pytest.raises(SpecParseError, match="larger than"):
        parse_yaml("a: " + "x" * 70_000, "x.md")
    with pytest.raises(SpecParseError):
        parse_yaml("a: &x " + "[" * 30000 + "]" * 30000 + "\nb: *x\n", "x.md")  # the alias check
    with pytest.raises(SpecParseError):
        parse_yaml("a: " + "[" * 2000 + "]" * 2000, "x.md")  # the C loader


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-7))])),
    st.binary(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    [
        "status",
        "priority",
        "tags",
        "depends_on",
        "related",
        "parent",
        "assignee",
        "created",
        "created_at",
        "updated_at",
        "completed_at",
        "transitions",
        "other",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _values, max_size=8))
def test_normalize_frontmatter_never_raises(raw):
    meta = normalize_frontmatter(raw)
    assert all(isinstance(tag, str) for tag in meta.tags)
    assert all(isinstance(dep, str) for dep in meta.depends_on)
    assert meta.status is None or canonical_status(meta.status) == meta.status


_yaml_alphabet = st.sampled_from(
    [
        *"abc:- \n\t[]{}&*!|>'\"#%@`,?0129.eE+",
        *("!!int ", "!!float ", "!!timestamp ", "2025-13-45", "\x85", "\ufeff", "&a ", "*a"),
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), st.lists(_yaml_alphabet, max_size=60).map("".join)))
def test_parse_yaml_raises_only_spec_parse_error(text):
    try:
        result = parse_yaml(text, "x.md")
    except SpecParseError as err:
        assert err.path == "x.md"
        assert err.line is None or err.line >= 2
    else:
        assert isinstance(result, dict)
        normalize_frontmatter(result)


# -- references and the store ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref",
    ["../001-x", "001/../../etc", "/etc/passwd", "a\\b", "x\x00y", "", " ", "-rf", "a\nb", 3.5],
)
def test_check_reference_refuses_anything_path_like(ref):
    with pytest.raises(UnsafeReference):
        check_reference(ref)


def test_resolution_is_exact_or_a_unique_number(tiny_specs: Path):
    write_spec(tiny_specs, "004-dup-a", "---\nstatus: draft\n---\n# A\n")
    write_spec(tiny_specs, "004-dup-b", "---\nstatus: draft\n---\n# B\n")
    catalog = SpecStore(tiny_specs).scan()
    assert catalog.resolve_name("1") == catalog.resolve_name("0001") == "001-auth-design"
    assert catalog.resolve_name("002-token-refresh") == "002-token-refresh"
    with pytest.raises(AmbiguousSpecRef) as info:
        catalog.resolve_name("4")
    assert info.value.candidates == ["004-dup-a", "004-dup-b"]
    for ref in ("00", "auth", "001-auth", "5"):
        with pytest.raises(SpecNotFound):
            catalog.resolve_name(ref)
    assert catalog.try_resolve("4") is None


def test_store_loads_normalized_specs_and_sub_files(tiny_specs: Path):
    catalog = SpecStore(tiny_specs).scan()
    assert [s.dir_name for s in catalog] == [
        "001-auth-design",
        "002-token-refresh",
        "003-search-ui",
    ]
    spec = catalog.get("2")
    assert (spec.meta.status, spec.meta.priority, spec.meta.tags) == (
        "in-progress",
        "medium",
        ["auth", "tokens"],
    )
    assert spec.title == "Token refresh"
    assert catalog.get("3").sub_files[0].name == "DESIGN.md"
    assert catalog.problems == []


def test_a_sub_spec_problem_names_the_sub_spec_file(tiny_specs: Path):
    (tiny_specs / "003-search-ui" / "NOTES.md").write_bytes(b"ok\n\xff\xfe\n")
    (tiny_specs / "001-auth-design" / "README.md").write_bytes(
        b"\xef\xbb\xbf" + (tiny_specs / "001-auth-design" / "README.md").read_bytes()
    )
    catalog = SpecStore(tiny_specs).scan()
    by_path = {Path(p.path).name + "@" + str(p.spec): p for p in catalog.problems}
    notes = by_path["NOTES.md@003-search-ui"]
    assert notes.line == 2 and "not valid UTF-8" in notes.reason
    assert "byte-order mark" in by_path["README.md@001-auth-design"].reason
    assert catalog.get("1").meta.status == "complete"  # the BOM is stripped before the frontmatter


def test_archived_dir_and_duplicate_names(tiny_specs: Path):
    write_spec(tiny_specs / "archived", "009-old", "---\nstatus: complete\n---\n# Old\n")
    write_spec(tiny_specs / "archived", "001-auth-design", "---\nstatus: complete\n---\n# Again\n")
    catalog = SpecStore(tiny_specs).scan()
    assert catalog.get("9").is_archived
    assert catalog.get("1").title == "Authentication design"
    assert any("duplicate directory name" in p.reason for p in catalog.problems)


def test_summary_and_to_dict_are_json_ready(tiny_specs: Path):
    spec = SpecStore(tiny_specs).scan().get("1")
    data = spec.to_dict(with_files=True)
    assert data["created"] == "2025-10-24"
    assert data["hash"] == spec.content_hash and len(spec.content_hash) == 16
    assert data["frontmatter"]["tags"] == ["auth", "security"]


# -- graph -------------------------------------------------------------------------------------


def _graph_of(root: Path, deps: dict[str, list[str]]) -> SpecGraph:
    for name, needs in deps.items():
        listed = "".join(f"\n- '{n}'" for n in needs)
        write_spec(root, name, f"---\nstatus: draft\ndepends_on:{listed or ' []'}\n---\n# {name}\n")
    return SpecGraph.from_catalog(SpecStore(root).scan())


def test_graph_walks_cycles_and_dangling(tmp_path: Path):
    graph = _graph_of(
        tmp_path,
        {"001-a": ["2"], "002-b": ["3", "999"], "003-c": ["1"], "004-d": ["004-d"], "005-e": ["1"]},
    )
    assert graph.cycles() == [["001-a", "002-b", "003-c"]]
    assert graph.walk("001-a", "upstream") == [("002-b", 1), ("003-c", 2)]
    assert graph.walk("001-a", "downstream", depth=1) == [("003-c", 1), ("005-e", 1)]
    assert sorted(link.raw for link in graph.dangling()) == ["004-d", "999"]  # a self-link dangles
    assert graph.would_cycle("005-e", "002-b") is None
    assert graph.would_cycle("002-b", "005-e") == ["002-b", "005-e", "001-a", "002-b"]
    assert graph.would_cycle("001-a", "001-a") == ["001-a", "001-a"]


def test_corpus_graph_has_the_known_cycles(corpus_specs: Path):
    graph = SpecGraph.from_catalog(SpecStore(corpus_specs).scan())
    cycles = graph.cycles()
    assert ["184-ui-packages-consolidation", "185-ui-components-extraction"] in cycles
    assert ["184-ui-packages-consolidation", "186-rust-http-server"] in cycles
    assert ["184-ui-packages-consolidation", "187-vite-spa-migration"] in cycles


# -- what a spec dir holds: sub-folders, hidden names, bounds, archive folders -------------------


def _nested_spec(root: Path) -> Path:
    return write_spec(
        root,
        "072-evals",
        """
        ---
        status: planned
        ---
        # Evals
        """,
        **{
            "DESIGN.md": "# Design\n",
            "research/evals.md": "# Evals research\n\n## Results\nRecall went up.\n",
            "docs/a/b.md": "# Deep doc\n",
            "research/.draft.md": "# Hidden draft\n",
            ".obsidian/workspace.md": "# Tool state\n",
            "assets/logo.png": "not markdown",
        },
    )


def test_nested_files_load_named_by_their_path_in_the_spec_dir(tmp_path: Path):
    directory = _nested_spec(tmp_path / "specs")
    spec = SpecStore(tmp_path / "specs").scan().get("72")
    assert [f.name for f in spec.sub_files] == ["DESIGN.md", "docs/a/b.md", "research/evals.md"]
    evals = spec.sub_files[2]
    assert evals.path == directory / "research" / "evals.md"
    assert "Recall went up." in evals.text
    assert spec.load_problems == []


def test_an_unreadable_nested_file_is_a_problem_and_the_spec_still_loads(tmp_path: Path):
    directory = _nested_spec(tmp_path / "specs")
    (directory / "research" / "broken.md").write_bytes(b"ok\n\xff\n")
    catalog = SpecStore(tmp_path / "specs").scan()
    spec = catalog.get("72")
    assert "research/evals.md" in [f.name for f in spec.sub_files]
    (problem,) = catalog.problems
    assert problem.path == str(directory / "research" / "broken.md")
    assert (problem.spec, problem.line) == ("072-evals", 2) and "UTF-8" in problem.reason


def test_sub_folders_linking_out_or_back_are_not_entered(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n")
    directory = _nested_spec(tmp_path / "specs")
    (directory / "leak").symlink_to(outside, target_is_directory=True)
    (directory / "research" / "loop").symlink_to(directory, target_is_directory=True)
    (directory / "docs" / "alias").symlink_to(directory / "research", target_is_directory=True)
    spec = SpecStore(tmp_path / "specs").scan().get("72")
    names = [f.name for f in spec.sub_files]
    assert names == [
        "DESIGN.md",
        "docs/a/b.md",
        "docs/alias/evals.md",  # a link inside the specs dir is followed
        "research/evals.md",
    ]
    reasons = {Path(p.path).name: p.reason for p in spec.load_problems}
    assert reasons["leak"] == "refused: the directory resolves outside the specs dir"
    assert "links back" in reasons["loop"]
    assert not any("Secret" in f.text for f in spec.sub_files)


def test_the_bounds_on_files_and_depth_are_reported(tmp_path: Path, monkeypatch):
    from ingest.specs import store

    monkeypatch.setattr(store, "MAX_SPEC_FILES", 3)
    monkeypatch.setattr(store, "MAX_FOLDER_DEPTH", 1)
    directory = _nested_spec(tmp_path / "specs")
    spec = SpecStore(tmp_path / "specs").scan().get("72")
    # README.md and DESIGN.md, then docs/ holds no file of its own and docs/a/ is too deep.
    assert [f.name for f in spec.sub_files] == ["DESIGN.md", "research/evals.md"]
    (deep,) = spec.load_problems
    assert deep.path == str(directory / "docs" / "a") and "depth limit" in deep.reason
    (directory / "research" / "more.md").write_text("# More\n")
    spec = SpecStore(tmp_path / "specs").scan().get("72")
    assert [f.name for f in spec.sub_files] == ["DESIGN.md", "research/evals.md"]
    assert any(
        p.path == str(directory / "research" / "more.md") and "3-file limit" in p.reason
        for p in spec.load_problems
    )


def test_both_archive_folders_hold_archived_specs(tiny_specs: Path):
    write_spec(tiny_specs / "_archived", "008-older", "---\nstatus: complete\n---\n# Older\n")
    write_spec(tiny_specs / "archived", "009-old", "---\nstatus: complete\n---\n# Old\n")
    write_spec(tiny_specs / "_archived", "009-old", "---\nstatus: complete\n---\n# Twice\n")
    catalog = SpecStore(tiny_specs).scan()
    older = catalog.get("8")
    assert older.archived_dir and older.is_archived
    assert older.path == tiny_specs / "_archived" / "008-older"
    assert catalog.get("009-old").title == "Old"  # archived/ comes before _archived/
    (duplicate,) = catalog.problems
    assert duplicate.path == str(tiny_specs / "_archived" / "009-old")
    assert "duplicate directory name" in duplicate.reason


@pytest.mark.parametrize("name", ["README.md", "DESIGN.md", "research/evals.md", "a/b/c.md"])
def test_check_file_name_takes_paths_inside_the_spec_dir(name):
    assert check_file_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "../x.md", "a/../../x.md", "/etc/passwd", "a//b.md", "./x.md", "a\\b.md", "x\x00.md", 7],
)
def test_check_file_name_refuses_anything_that_could_leave_it(name):
    with pytest.raises(UnsafeReference):
        check_file_name(name)
