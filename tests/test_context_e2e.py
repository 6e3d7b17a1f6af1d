"""End to end through the CLI with the real model: ingest a corpus slice, then ask for context.

Seeds come from hybrid search over the real index (not the lexical fallback), and the bundle
keeps its invariant and its reasons.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.index.tokens import count_tokens
from retriever.cli import cli

pytestmark = pytest.mark.model

# Four of the smallest specs, linked: 365 depends on the other three (~3k tokens to embed).
SLICE = [
    "361-configurable-data-directory",
    "362-production-runtime-hardening",
    "363-api-authentication-middleware",
    "365-cloud-platform-deploy-configs",
]


@pytest.fixture(scope="module")
def indexed(corpus_specs: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("context-e2e")
    for name in SLICE:
        shutil.copytree(corpus_specs / name, root / "specs" / name)
    base = ["--specs-dir", str(root / "specs"), "--data-dir", str(root / "data")]
    result = CliRunner().invoke(cli, [*base, "ingest"])
    assert result.exit_code == 0, result.output
    return base


def test_context_through_the_cli_with_search_seeds(indexed: list[str]) -> None:
    result = CliRunner().invoke(
        cli,
        [
            *indexed,
            "context",
            "authenticate API requests with a token",
            "--budget",
            "600",
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tokens"] == count_tokens(data["rendered"]) <= 600
    assert data["tokens"] >= 0.9 * 600
    assert data["notes"] == []  # seeded by search, not the lexical fallback
    first = data["items"][0]
    assert first["spec"] == "363-api-authentication-middleware"
    assert first["reason"].startswith("matches the query (")
    assert first["resolution"] in ("sections", "full")


def test_named_spec_through_the_cli_brings_its_dependents(indexed: list[str]) -> None:
    result = CliRunner().invoke(cli, [*indexed, "context", "--spec", "361", "--budget", "3000"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Context: 361-configurable-data-directory")
    assert "depends on 361-configurable-data-directory_" in result.stdout
    assert count_tokens(result.stdout.rstrip("\n")) <= 3000
