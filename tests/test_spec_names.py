"""Spec dir names (spec 008): ASCII numbers only, every folder listed or reported, aliases refused,
and one lock per directory however many names lead to it."""

from __future__ import annotations

import json
import os
import sys
import threading
import unicodedata
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from ingest.authoring import writes
from ingest.authoring.create import next_number
from ingest.authoring.spec_changes import SpecChange
from ingest.authoring.writes import SpecWriter, _lock_name
from ingest.errors import AmbiguousSpecRef, SpecNotFound, UnsafeReference
from ingest.index.embedding import FakeEmbedder
from ingest.index.pipeline import _scope
from ingest.specs.frontmatter import normalize_frontmatter, parse_yaml, split_document
from ingest.specs.model import dir_name_problem, parse_dir_name
from ingest.specs.store import SpecStore, check_reference
from ingest.specs.validate import CODES, validate_catalog
from retriever import SpecMemory
from retriever.cli import cli
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server
from tests.conftest import write_spec

SPEC = "---\nstatus: planned\ntags: []\n---\n# {title}\n\nBody.\n"
# Every character Python's `isdigit()` (so `int()` or `\d`) takes that is not 0-9: Arabic-Indic,
# Devanagari, fullwidth, superscripts, circled digits...
NON_ASCII_DIGITS = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isdigit() and c > 127]


def spec(root: Path, name: str, title: str = "T") -> Path:
    return write_spec(root, name, SPEC.format(title=title))


def problems_by_path(catalog) -> dict[str, str]:
    return {p.path: p.reason for p in catalog.problems}


def codes(catalog) -> dict[str, str]:
    return {p.path: p.code for p in validate_catalog(catalog).problems}


def run(root: Path, tmp_path: Path, *args: str):
    return CliRunner().invoke(
        cli, ["--specs-dir", str(root), "--data-dir", str(tmp_path / "data"), *args]
    )


# -- numbers are ASCII digits ---------------------------------------------------------------------


def test_no_non_ascii_digit_makes_a_spec_number():
    assert len(NON_ASCII_DIGITS) > 100  # the class, not one script
    for digit in NON_ASCII_DIGITS:
        for name in (f"{digit}45-x", f"0{digit}5-x", f"04{digit}-x", digit * 3 + "-x"):
            assert parse_dir_name(name) is None, repr(name)
            assert "not a spec directory name" in (dir_name_problem(name) or ""), repr(name)
        with pytest.raises(UnsafeReference):
            check_reference(f"{digit}45")


def test_a_non_ascii_digit_dir_does_not_shadow_the_real_spec(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "045-real")
    for name in ("٠٤٥-arabic", "０４５-fullwidth", "⁰⁴⁵-superscript", "०४५-devanagari"):
        spec(root, name)
    catalog = SpecStore(root).scan()
    assert [s.dir_name for s in catalog] == ["045-real"]
    assert catalog.resolve_name("45") == catalog.resolve_name("045") == "045-real"
    assert list(catalog.by_number) == [45]
    reported = problems_by_path(catalog)
    assert len(reported) == 4
    for path, reason in reported.items():
        assert "its number is not in ASCII digits 0-9" in reason, path
    assert set(codes(catalog).values()) == {"dir-name-invalid"}
    assert validate_catalog(catalog).failed()
    for ref in ("٤٥", "４５", "⁴⁵", "٠٤٥-arabic"):
        with pytest.raises(UnsafeReference):
            catalog.resolve_name(ref)


def test_ingest_scope_and_create_count_only_ascii_numbers(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "045-real")
    spec(root, "٩٩٩-arabic")
    spec(root, "099-bad\tname")  # misnamed, but an ASCII 99: create numbers past it
    assert next_number(root) == 100
    disk = {"045-real": None, "٩٩٩-arabic": None}
    assert _scope(["45"], disk, set()) == {"045-real"}  # type: ignore[arg-type]
    with pytest.raises(UnsafeReference):
        _scope(["٤٥"], disk, set())  # type: ignore[arg-type]


def test_a_dependency_written_as_a_bare_number_only_for_ascii_numbers(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "001-a")
    spec(root, "002-b")
    write_spec(root, "003-c", "---\nstatus: planned\ndepends_on: ['٤']\n---\n# C\n")
    catalog = SpecStore(root).scan()
    written = SpecWriter(SpecStore(root), tmp_path / "data").update(
        catalog, "3", SpecChange(add_deps=["2"])
    )
    assert written.meta.depends_on == ["٤", "002-b"]  # `٤` is no number: the full name is used


# -- every folder is a spec or a reported problem ------------------------------------------------


def test_names_with_spaces_and_any_script_are_specs_named_exactly(tmp_path: Path):
    root = tmp_path / "specs"
    names = ["045-café", "046-my spec", "047-日本語の仕様", "048-ünïcödé and spaces", "049-_x"]
    for name in names:
        spec(root, name, title=name)
    catalog = SpecStore(root).scan()
    assert [s.dir_name for s in catalog] == names
    assert catalog.problems == []
    assert validate_catalog(catalog).problems == []
    for number, name in zip(range(45, 50), names, strict=True):
        assert catalog.resolve_name(name) == catalog.resolve_name(str(number)) == name
    # macOS hands names out decomposed; a person or a YAML file types them composed.
    assert catalog.resolve_name(unicodedata.normalize("NFD", "045-café")) == "045-café"


def test_a_decomposed_name_on_disk_is_named_composed(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, unicodedata.normalize("NFD", "045-café"))
    catalog = SpecStore(root).scan()
    assert catalog.resolve_name("045-café") == unicodedata.normalize("NFD", "045-café")


def test_every_folder_that_is_not_a_spec_is_reported_with_path_and_reason(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "001-good")
    bad = {
        "045-trailing ": ("dir-name-invalid", "ends with whitespace"),
        "046-tab\there": ("dir-name-invalid", "U+0009"),
        "047-new\nline": ("dir-name-invalid", "U+000A"),
        "048-rtl\u202eevil": ("dir-name-invalid", "RIGHT-TO-LEFT OVERRIDE"),
        "049-zero\u200bwidth": ("dir-name-invalid", "ZERO WIDTH SPACE"),
        "050-v1..v2": ("dir-name-invalid", "'..'"),
        "051": ("dir-name-invalid", "expected NNN-slug"),
        "052-": ("dir-name-invalid", "expected NNN-slug"),
        "1234567-too-long": ("dir-name-invalid", "expected NNN-slug"),
        "notes": ("dir-not-spec", "no NNN- number"),
        "my spec": ("dir-not-spec", "no NNN- number"),
        "_drafts": ("dir-not-spec", "no NNN- number"),
    }
    for name in bad:
        spec(root, name)
    (root / "archived").mkdir()
    spec(root / "archived", "060-old")
    spec(root / "archived", "٠٦١-old")
    (root / "archived" / "attic").mkdir()
    os.mkdir(os.fsencode(root) + b"/053-not-utf8-\xff")
    # Quietly skipped: hidden folders, tool folders, plain files.
    for quiet in (".templates", ".lean-spec", ".git", "__pycache__", "node_modules"):
        (root / quiet).mkdir()
    (root / "README.md").write_text("# Specs\n")
    (root / "045-a-file.md").write_text("not a dir\n")

    catalog = SpecStore(root).scan()
    assert [s.dir_name for s in catalog] == ["001-good", "060-old"]
    found = codes(catalog)
    reasons = problems_by_path(catalog)
    for name, (code, words) in bad.items():
        path = str(root / name).replace("\t", "\\t").replace("\n", "\\n")
        path = path.replace("\u202e", "\\u202e").replace("\u200b", "\\u200b")
        assert found[path] == code, name
        assert words in reasons[path], name
    assert found[f"{root}/053-not-utf8-\\xff"] == "dir-name-invalid"
    assert found[str(root / "archived" / "٠٦١-old")] == "dir-name-invalid"
    assert found[str(root / "archived" / "attic")] == "dir-not-spec"
    assert len(found) == len(bad) + 3
    assert all(CODES[code][0] == "error" for code in found.values() if code != "dir-not-spec")
    assert CODES["dir-not-spec"][0] == "warning"


def test_hostile_names_cannot_break_or_forge_output(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "001-good")
    spec(root, "002-x\nerror: forged line")
    os.mkdir(os.fsencode(root) + b"/003-\xff\xfe")
    listing = run(root, tmp_path, "list", "-o", "json")
    assert listing.exit_code == 0, listing.output
    data = json.loads(listing.output)
    assert [s["spec"] for s in data["specs"]] == ["001-good"]
    assert len(data["problems"]) == 2
    text = run(root, tmp_path, "list")
    assert text.exit_code == 0, text.output
    assert "\nerror: forged line" not in text.output and "\\nerror: forged line" in text.output
    report = run(root, tmp_path, "validate", "-o", "json")
    assert report.exit_code == 1
    assert {p["code"] for p in json.loads(report.output)["problems"]} == {"dir-name-invalid"}


def test_a_dangling_link_named_like_a_spec_is_reported(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "001-good")
    (root / "002-gone").symlink_to(root / "nowhere")
    catalog = SpecStore(root).scan()
    assert [s.dir_name for s in catalog] == ["001-good"]
    (problem,) = catalog.problems
    assert problem.spec == "002-gone" and "symlink to nothing" in problem.reason
    assert validate_catalog(catalog).failed()


def test_a_running_service_reports_a_new_folder_at_once(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "001-good")
    memory = SpecMemory(root, tmp_path / "data")
    assert memory.catalog().problems == []
    spec(root, "٠٠٢-late")
    (root / "003-alias").symlink_to("001-good")
    assert {p.spec for p in memory.catalog().problems} == {None, "003-alias"}


# -- aliases ---------------------------------------------------------------------------------------


@pytest.fixture
def aliased(tmp_path: Path) -> Path:
    root = tmp_path / "specs"
    spec(root, "045-real", title="Real")
    (root / "046-alias").symlink_to("045-real", target_is_directory=True)
    return root


def test_an_alias_is_no_second_spec_and_names_its_target(aliased: Path, tmp_path: Path):
    catalog = SpecStore(aliased).scan()
    assert [s.dir_name for s in catalog] == ["045-real"]
    (problem,) = catalog.problems
    assert problem.spec == "046-alias" and "alias of 045-real" in problem.reason
    assert codes(catalog) == {str(aliased / "046-alias"): "dir-alias"}
    with pytest.raises(UnsafeReference, match="alias of spec 045-real"):
        catalog.resolve_name("046-alias")
    with pytest.raises(SpecNotFound):
        catalog.resolve_name("46")
    assert [state.name for state in SpecStore(aliased).file_states()] == [
        "045-real"
    ]  # indexed once
    writer = SpecWriter(SpecStore(aliased), tmp_path / "data")
    with pytest.raises(UnsafeReference):
        writer.update(catalog, "046-alias", SpecChange(add_tags=["x"]))
    result = run(aliased, tmp_path, "update", "046-alias", "--add-tag", "x")
    assert result.exit_code == 1 and "alias of spec 045-real" in result.output


def test_an_alias_with_the_spec_number_does_not_make_it_ambiguous(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "045-real")
    (root / "045-old-name").symlink_to("045-real")  # a rename that left a link behind
    catalog = SpecStore(root).scan()
    assert catalog.resolve_name("45") == "045-real"


def test_links_to_a_hidden_folder_one_spec_however_many_names(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root / ".stash", "real")
    (root / "045-first").symlink_to(".stash/real")
    (root / "046-second").symlink_to(".stash/real")
    catalog = SpecStore(root).scan()
    assert [s.dir_name for s in catalog] == ["045-first"]
    assert catalog.aliases == {"046-second": "045-first"}


def test_a_link_to_the_specs_dir_or_an_archive_folder_is_not_read(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "001-good")
    (root / "archived").mkdir()
    (root / "002-root").symlink_to(".")
    (root / "003-archive").symlink_to("archived")
    catalog = SpecStore(root).scan()
    assert [s.dir_name for s in catalog] == ["001-good"]
    assert {p.spec for p in catalog.problems} == {"002-root", "003-archive"}
    assert set(codes(catalog).values()) == {"dir-alias"}


def test_a_link_into_the_archive_under_the_same_name_writes_the_real_folder(tmp_path: Path):
    root = tmp_path / "specs"
    real = spec(root / "archived", "045-x")
    (root / "045-x").symlink_to("archived/045-x")
    catalog = SpecStore(root).scan()
    (only,) = catalog.specs
    assert only.path == real and only.archived_dir
    written = SpecWriter(SpecStore(root), tmp_path / "data").update(
        catalog, "45", SpecChange(add_tags=["t"])
    )
    assert written.path == real and written.archived_dir


# -- one lock per directory ------------------------------------------------------------------------


def test_two_names_for_one_directory_share_one_lock(aliased: Path, tmp_path: Path):
    root = aliased
    assert _lock_name(root, root / "045-real") == _lock_name(root, root / "046-alias") == "045-real"
    spec(root, "047-café")
    assert _lock_name(root, root / "047-café").startswith("_dir-")
    assert _lock_name(root, root / "047-café") != _lock_name(root, root / "045-real")


def _tags(readme: Path) -> list[str]:
    meta = normalize_frontmatter(parse_yaml(split_document(readme.read_text()).yaml_text or "", ""))
    return list(meta.tags)


def _race(root: Path, data_dir: Path, catalog, names: list[str]) -> tuple[set[str], list]:
    """Fifty threads, each adding its own tag through one of `names`: (acknowledged, errors)."""
    writer = SpecWriter(SpecStore(root), data_dir)
    done: set[str] = set()
    errors: list[Exception] = []
    start = threading.Barrier(50)

    def work(i: int) -> None:
        start.wait()
        try:
            writer.update(catalog, names[i % len(names)], SpecChange(add_tags=[f"w{i}"]))
            done.add(f"w{i}")
        except Exception as err:  # collected: the test asserts on them
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return done, errors


@pytest.fixture
def stale_catalog(tmp_path: Path):
    """A catalog read while 046-b was a spec of its own; since then it became a link to 045-a."""
    root = tmp_path / "specs"
    spec(root, "045-a")
    spec(root, "046-b")
    catalog = SpecStore(root).scan()
    (root / "046-b" / "README.md").unlink()
    (root / "046-b").rmdir()
    (root / "046-b").symlink_to("045-a")
    return root, catalog


def test_fifty_writers_through_two_names_lose_no_update(stale_catalog, tmp_path: Path, monkeypatch):
    root, catalog = stale_catalog
    # Even with the alias check out of the way, the lock is the directory's: nothing is lost.
    monkeypatch.setattr(writes, "_refuse_alias", lambda *args: None)
    done, errors = _race(root, tmp_path / "data", catalog, ["045-a", "046-b"])
    assert errors == [] and len(done) == 50
    assert sorted(_tags(root / "045-a" / "README.md")) == sorted(done)


def test_fifty_writers_through_an_alias_are_refused_and_the_rest_all_land(
    stale_catalog, tmp_path: Path
):
    root, catalog = stale_catalog
    done, errors = _race(root, tmp_path / "data", catalog, ["045-a", "046-b"])
    assert len(done) == 25 and len(errors) == 25
    assert all(isinstance(e, UnsafeReference) and "alias of spec 045-a" in str(e) for e in errors)
    assert sorted(_tags(root / "045-a" / "README.md")) == sorted(done)


def test_an_ambiguous_number_still_lists_names_of_any_script(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "045-café")
    spec(root, "045-my spec")
    with pytest.raises(AmbiguousSpecRef) as info:
        SpecStore(root).scan().resolve_name("45")
    assert info.value.candidates == ["045-café", "045-my spec"]


def test_ingest_search_and_update_work_on_such_names(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "045-café", title="Coffee menu design")
    spec(root, "046-my spec", title="Spaced out naming")
    (root / "047-alias").symlink_to("045-café")
    memory = SpecMemory(root, tmp_path / "data", embedder=FakeEmbedder())
    summary = memory.ingest()
    assert summary.specs == 2 and summary.skipped == []
    hits = memory.search("coffee menu", limit=5)
    assert hits[0].spec == "045-café"
    written = memory.update_spec("046-my spec", SpecChange(add_tags=["x"]))
    assert written.meta.tags == ["x"]
    assert memory.ingest().specs == 2


def test_http_and_mcp_name_such_specs_exactly(tmp_path: Path):
    root = tmp_path / "specs"
    spec(root, "045-café", title="Cafe")
    spec(root, "046-my spec", title="Spaced")
    (root / "047-alias").symlink_to("045-café")
    memory = SpecMemory(root, tmp_path / "data", embedder=FakeEmbedder())
    with TestClient(create_app(memory, mount_mcp=False)) as client:
        assert client.get("/specs/045-caf%C3%A9").json()["spec"] == "045-café"
        assert client.get("/specs/046-my%20spec").json()["spec"] == "046-my spec"
        assert client.get("/specs/46").json()["spec"] == "046-my spec"
        refused = client.get("/specs/047-alias")
        assert refused.status_code == 400 and "alias of spec 045-café" in refused.text
        assert client.get("/specs/%D9%A4%D9%A5").status_code == 400  # `٤٥`

    async def scenario():
        async with Client(build_mcp_server(memory)) as mcp:
            return await mcp.call_tool("get_spec", {"spec": "046-my spec"})

    result = anyio.run(scenario)
    assert not result.is_error and "046-my spec" in result.content[0].text
