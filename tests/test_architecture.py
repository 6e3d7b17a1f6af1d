"""Architecture rules kept as tests."""

from __future__ import annotations

import ast
from pathlib import Path

import click

from retriever.cli import cli

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ingest_never_imports_retriever():
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "ingest").rglob("*.py")
        if any(name == "retriever" or name.startswith("retriever.") for name in _imports(path))
    ]
    assert offenders == []


def test_every_cli_command_has_help_text():
    def walk(group: click.Group, prefix: str):
        for name, command in group.commands.items():
            yield f"{prefix}{name}", command
            if isinstance(command, click.Group):
                yield from walk(command, f"{prefix}{name} ")

    missing = [name for name, command in walk(cli, "") if not (command.help or "").strip()]
    assert missing == []


def test_modules_stay_small():
    """Split a module past ~600 lines: one idea per module."""
    large = [
        f"{path.relative_to(REPO)} ({n})"
        for path in [*REPO.glob("ingest/**/*.py"), *REPO.glob("retriever/**/*.py")]
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 650
    ]
    assert large == []
