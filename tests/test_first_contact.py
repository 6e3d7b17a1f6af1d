"""First contact (issue 12): a missing or mistyped specs dir is an error for every command,
never "0 specs" with exit 0, and no index is built beside it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from retriever.cli import cli

COMMANDS = [
    ["list"],
    ["board"],
    ["validate"],
    ["ingest"],
    ["search", "tokens"],
    ["context", "tokens"],
    ["view", "1"],
    ["tokens", "1"],
    ["deps", "1"],
    ["create", "A title"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_missing_specs_dir_is_a_usage_error_naming_it(tmp_path, command):
    missing = tmp_path / "spesc"
    result = CliRunner().invoke(cli, ["--specs-dir", str(missing), *command])
    assert result.exit_code == 2, result.output
    assert f"specs dir {missing}: no such directory" in result.output
    assert list(tmp_path.iterdir()) == []  # no index, no data dir, nothing created


def test_a_file_given_as_the_specs_dir_is_refused(tmp_path):
    file = tmp_path / "README.md"
    file.write_text("# not a specs dir\n")
    result = CliRunner().invoke(cli, ["--specs-dir", str(file), "list"])
    assert result.exit_code == 2
    assert "is a file" in result.output
