"""Creating specs: numbering, slugs, templates (built-in and project), validation, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.authoring.create import list_templates, next_number, slugify
from ingest.authoring.spec_changes import NewSpec
from ingest.errors import AmbiguousSpecRef, InvalidInput, SpecNotFound, UnsafeReference
from retriever.cli import cli
from retriever.service import SpecMemory
from tests.conftest import write_spec


def _memory(root: Path) -> SpecMemory:
    return SpecMemory(root, root.parent / "data")


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Token refresh: retries & back-off!", "token-refresh-retries-back-off"),
        ("  Ünïcödé  Café ", "unicode-cafe"),
        ("../../etc/passwd", "etc-passwd"),
        ("日本語のタイトル", "spec"),
        ("word " * 40, "-".join(["word"] * 10)),
        ("a" * 80, "a" * 50),
    ],
)
def test_slugify(title, slug):
    assert slugify(title) == slug


def test_next_number_counts_archived_and_broken_dirs(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "007-one", "---\nstatus: planned\n---\n# One\n")
    (root / "archived" / "042-old").mkdir(parents=True)
    (root / "099-no-readme").mkdir()
    (root / "notes").mkdir()
    assert next_number(root) == 100
    assert next_number(tmp_path / "missing") == 1
    (root / "_archived" / "120-older").mkdir(parents=True)
    assert next_number(root) == 121


def test_create_numbers_after_a_spec_that_only_underscore_archived_holds(tiny_specs):
    write_spec(tiny_specs / "_archived", "040-gone", "---\nstatus: archived\n---\n# Gone\n")
    spec = _memory(tiny_specs).create_spec(NewSpec(title="After the archive"))
    assert spec.dir_name == "041-after-the-archive"


def test_create_with_every_option(tiny_specs):
    memory = _memory(tiny_specs)
    spec = memory.create_spec(
        NewSpec(
            title="Rate limits",
            status="in_progress",
            priority="med",
            tags=["api", "limits", "api"],
            depends_on=["1", "002-token-refresh"],
            parent="003",
        )
    )
    assert spec.dir_name == "004-rate-limits"
    text = (tiny_specs / "004-rate-limits" / "README.md").read_text(encoding="utf-8")
    created_at = spec.meta.created_at
    assert text.startswith(
        "---\nstatus: in-progress\n"
        f"created: {created_at[:10]}\npriority: medium\ntags:\n- api\n- limits\n"
        "depends_on:\n- 001-auth-design\n- 002-token-refresh\nparent: 003-search-ui\n"
        f"created_at: {created_at}\n---\n# Rate limits\n\n## Overview\n"
    )
    assert spec.summary()["changes"][0]["template"] == "default"
    assert memory.get_spec("4").title == "Rate limits"


def test_templates_builtin_and_project_override(tiny_specs):
    project = tiny_specs / ".templates"
    project.mkdir()
    (project / "decision.md").write_text(
        "---\nstatus: draft\nowner: platform  # who decides\ntags: [adr]\n---\n"
        "# {{title}}\n\nSpec {{number}} ({{name}}) opened {{date}}. {{unknown}}\n",
        encoding="utf-8",
    )
    (project / "rfc.md").write_text("# {{title}}\n", encoding="utf-8")
    (project / "bad name.md").write_text("# x\n", encoding="utf-8")
    listed = {t.name: t for t in list_templates(tiny_specs)}
    assert set(listed) == {"default", "minimal", "decision", "rfc"}
    assert listed["decision"].source == "project" and listed["decision"].overrides_builtin
    assert listed["minimal"].source == "builtin"
    assert {t["name"] for t in _memory(tiny_specs).templates()} == set(listed)

    spec = _memory(tiny_specs).create_spec(
        NewSpec(title="Use {{date}} literally", template="decision", tags=["x"])
    )
    text = spec.readme.path.read_text(encoding="utf-8")
    assert "owner: platform  # who decides\ntags: [adr, x]\n" in text
    assert spec.meta.status == "planned"
    assert "# Use {{date}} literally\n\nSpec 004 (004-use-date-literally) opened 20" in text
    assert "{{unknown}}" in text
    assert spec.meta.extra == {"owner": "platform"}

    bare = _memory(tiny_specs).create_spec(NewSpec(title="No frontmatter", template="rfc"))
    assert bare.readme.text.startswith("---\nstatus: planned\ncreated: ")


def test_create_with_body_keeps_template_frontmatter(tiny_specs):
    spec = _memory(tiny_specs).create_spec(
        NewSpec(title="Body", template="decision", body="## Why\n\nBecause.")
    )
    assert spec.meta.tags == ["decision"]
    assert spec.body.endswith("# Body\n\n## Why\n\nBecause.\n")


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"status": "finished"}, InvalidInput, "status"),
        ({"priority": "asap"}, InvalidInput, "priority"),
        ({"tags": ["a,b"]}, InvalidInput, "tags"),
        ({"template": "nope"}, InvalidInput, "template"),
        ({"depends_on": ["404"]}, SpecNotFound, "404"),
        ({"parent": "../../etc"}, UnsafeReference, "parent"),
    ],
)
def test_create_refuses_bad_input_and_writes_nothing(tiny_specs, kwargs, error, field):
    before = sorted(p.name for p in tiny_specs.iterdir())
    with pytest.raises(error) as caught:
        _memory(tiny_specs).create_spec(NewSpec(title="Something", **kwargs))
    assert field in str(caught.value) or error is UnsafeReference
    assert sorted(p.name for p in tiny_specs.iterdir()) == before


@pytest.mark.parametrize("title", ["", "   ", "two\nlines", "x" * 201])
def test_create_refuses_bad_titles(tiny_specs, title):
    with pytest.raises(InvalidInput, match=r"^title:"):
        _memory(tiny_specs).create_spec(NewSpec(title=title))


@pytest.mark.parametrize("title", ["../../outside", "/etc/cron.d/x", "..", "a/../../b", "~root"])
def test_create_never_writes_outside_the_specs_dir(tmp_path, tiny_specs, title):
    spec = _memory(tiny_specs).create_spec(NewSpec(title=title))
    assert spec.path.parent == tiny_specs.resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "specs"]  # data: the locks
    assert len(list(tiny_specs.iterdir())) == 4


def test_ambiguous_dependency_refused(corpus_copy):
    with pytest.raises(AmbiguousSpecRef):
        _memory(corpus_copy).create_spec(NewSpec(title="x", depends_on=["038"]))
    memory = _memory(corpus_copy)
    highest = max(spec.number for spec in memory.catalog())
    spec = memory.create_spec(NewSpec(title="Next after the corpus", template="minimal"))
    assert spec.dir_name == f"{highest + 1:03d}-next-after-the-corpus"


def test_cli_create_templates_update_archive(tiny_specs):
    runner = CliRunner()
    base = ["--specs-dir", str(tiny_specs), "--data-dir", str(tiny_specs.parent / "data")]
    result = runner.invoke(
        cli, [*base, "create", "CLI made", "--tag", "cli", "--priority", "high", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert created["spec"] == "004-cli-made" and created["changed"] is True

    result = runner.invoke(cli, [*base, "templates"])
    assert result.exit_code == 0 and "default" in result.output and "builtin" in result.output

    result = runner.invoke(
        cli, [*base, "update", "4", "--status", "complete", "--expected-hash", created["hash"]]
    )
    assert result.exit_code == 0, result.output
    assert "status: planned -> complete" in result.output

    result = runner.invoke(cli, [*base, "archive", "4", "--expected-hash", created["hash"]])
    assert result.exit_code == 1
    assert "changed since you read it" in result.output and "current hash" in result.output

    result = runner.invoke(cli, [*base, "archive", "4", "-o", "json"])
    archived = json.loads(result.output)
    assert archived["status"] == "archived" and archived["archived"] is True
    assert {c["field"] for c in archived["changes"]} >= {"status", "transitions"}

    result = runner.invoke(cli, [*base, "update", "4", "--status", "nope"])
    assert result.exit_code == 1 and "error: status: unknown status" in result.output
    result = runner.invoke(cli, [*base, "update", "../../x/999-evil", "--status", "draft"])
    assert result.exit_code == 1 and "path separators" in result.output


def test_first_spec_of_a_new_project_creates_the_specs_dir(tmp_path):
    root = tmp_path / "project" / "specs"
    spec = _memory(root).create_spec(NewSpec(title="First decision", template="decision"))
    assert spec.dir_name == "001-first-decision"
    assert [s.dir_name for s in _memory(root).list_specs()] == ["001-first-decision"]
