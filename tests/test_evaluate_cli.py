"""`specmem eval` through the CLI and the `make eval` runner, on tiny specs with the FakeEmbedder
(SPECMEM_MODEL=fake): options, files, comparisons and the table, not ranking quality."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from retriever.cli import cli
from tests.bench import eval_corpora

DEV = [
    {"qid": "d1", "query": "bearer tokens for headless agents", "relevant": ["001-auth-design"]},
    {"qid": "d2", "query": "refresh tokens before they expire", "relevant": ["2"]},
    {"qid": "d3", "query": "a page to search specs", "relevant": ["003-search-ui"]},
]
DEPS = [
    {
        "qid": "b1",
        "query": "Token refresh. Refresh tokens before they expire.",
        "relevant": ["001-auth-design"],
        "exclude": ["002-token-refresh"],
        "set": "overview-to-depends-on",
    },
    {
        "qid": "b2",
        "query": "Search UI. A page to search specs.",
        "relevant": ["002-token-refresh"],
        "exclude": ["003-search-ui"],
        "set": "overview-to-depends-on",
    },
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def project(tiny_specs, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    data = tmp_path / "data"
    dev = write_jsonl(tmp_path / "queries-dev.jsonl", DEV)
    deps = write_jsonl(tmp_path / "queries-deps.jsonl", DEPS)
    base = ["--specs-dir", str(tiny_specs), "--data-dir", str(data)]
    assert CliRunner().invoke(cli, [*base, "ingest", "-q"]).exit_code == 0
    return base, dev, deps


def run(base, *args):
    return CliRunner().invoke(cli, [*base, "eval", *args])


def test_eval_reads_several_files_and_honours_exclude(project):
    base, dev, deps = project
    result = run(base, str(dev), str(deps), "--mode", "lexical", "-o", "json", "--details")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == 5 and report["config"] == "lexical"
    assert set(report["sets"]) == {"queries-dev", "overview-to-depends-on"}
    by_qid = {entry["qid"]: entry for entry in report["queries"]}
    assert by_qid["d1"]["file"] == str(dev) and by_qid["b1"]["file"] == str(deps)
    assert by_qid["b1"]["excluded"] == ["002-token-refresh"]
    assert "002-token-refresh" not in by_qid["b1"]["top"]
    assert "003-search-ui" not in by_qid["b2"]["top"]


def test_compare_reports_both_configs_and_an_interval(project):
    base, dev, deps = project
    result = run(
        base, str(dev), str(deps), "--config", "lexical", "--compare", "bm25", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    compare = json.loads(result.output)["compare"]
    assert compare["config"] == "bm25"
    for block in (compare["overall"], *compare["sets"].values()):
        for metric in ("mrr@10", "recall@1"):
            interval = block["difference"][metric]
            assert interval["low"] <= interval["mean"] <= interval["high"]
    assert compare["overall"]["base"]["n"] == compare["overall"]["other"]["n"] == 5
    text = run(base, str(dev), "--compare", "dense")
    assert text.exit_code == 0, text.output
    assert "hybrid vs dense" in text.output and "difference" in text.output
    assert "MRR@10 " in text.output and "[" in text.output


def test_compare_takes_ranking_settings_and_names_an_unknown_one(project):
    base, dev, _ = project
    result = run(base, str(dev), "--compare", "second_weight=0", "-o", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["compare"]["config"] == "hybrid,second_weight=0.0"
    bad = run(base, str(dev), "--compare", "lexical,no_such_knob=3")
    assert bad.exit_code == 1
    assert "no_such_knob" in bad.output


def test_the_make_eval_runner_on_a_fixture_corpus(tiny_specs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    corpus = tmp_path / "corpora" / "tiny"
    shutil.copytree(tiny_specs, corpus / "specs")
    write_jsonl(corpus / "queries-dev.jsonl", DEV)
    write_jsonl(corpus / "queries-deps.jsonl", DEPS)
    (tmp_path / "corpora" / "notes").mkdir()  # no specs/: not a corpus
    out = tmp_path / "eval.json"
    code = eval_corpora.main(
        [
            "--corpora",
            str(tmp_path / "corpora"),
            "--data-root",
            str(tmp_path / "data"),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    assert (tmp_path / "data" / "tiny" / "manifest.json").is_file()
    assert not (corpus / ".specmem").exists()  # nothing written into the corpora dir
    result = json.loads(out.read_text())
    assert result["corpora"] == ["tiny"]
    assert result["compare"] == ["lexical", "bm25", "bm25-windows"]
    rows = {(row["corpus"], row["set"]): row for row in result["rows"]}
    assert list(rows) == [
        ("tiny", "commit"),
        ("tiny", "deps"),
        ("pooled", "commit"),
        ("pooled", "deps"),
        ("pooled", "all"),
    ]
    assert rows[("pooled", "all")]["n"] == 5
    assert set(rows[("tiny", "deps")]["configs"]) == {"hybrid", "lexical", "bm25", "bm25-windows"}
    assert set(rows[("tiny", "deps")]["difference"]) == {"lexical", "bm25", "bm25-windows"}
    table = capsys.readouterr().out
    assert "cov@10" in table and "hybrid - this" in table and "pooled    all" in table


def test_the_runner_refuses_an_unknown_config(tiny_specs, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    corpus = tmp_path / "corpora" / "tiny"
    shutil.copytree(tiny_specs, corpus / "specs")
    write_jsonl(corpus / "queries-dev.jsonl", DEV)
    args = ["--corpora", str(tmp_path / "corpora"), "--data-root", str(tmp_path / "data")]
    assert eval_corpora.main([*args, "--compare", "lexical,no_such_knob=1"]) == 1
    assert "no_such_knob" in capsys.readouterr().err
