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


def _resolved_imports(path: Path) -> set[str]:
    """Every module `path` imports, relative imports resolved against its package."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            if node.level == 0:
                names.add(node.module or "")
            else:
                names.add(".".join([*base, *([node.module] if node.module else [])]))
    return names


DOORS = ("retriever.http", "retriever.cli", "retriever.mcp_server", "retriever.mcp_tools")
SERVICE = (
    "retriever.service",
    "retriever.live_catalog",
    "retriever.index_follower",
    "retriever.projects",
)
LAYERS = {
    # package: what it must never import (specs/079). ingest.specs is the bottom: reading a
    # specs dir needs neither writing nor indexing them.
    "ingest/specs": ("ingest.authoring", "ingest.index", "retriever"),
    "ingest/authoring": ("ingest.index", "retriever"),
    "ingest/index": ("ingest.authoring", "retriever"),
    # ranking -> bundles -> service -> doors on the way out.
    "retriever/ranking": (*DOORS, *SERVICE, "retriever.bundles", "retriever.evaluation"),
    "retriever/bundles": (*DOORS, *SERVICE, "retriever.evaluation"),
    "retriever/evaluation": (*DOORS, *SERVICE, "retriever.bundles"),
    "retriever/attribution": (*DOORS, *SERVICE, "retriever.bundles", "retriever.evaluation"),
}


def test_each_layer_imports_only_the_layers_below_it():
    offenders = []
    for package, forbidden in LAYERS.items():
        for path in (REPO / package).rglob("*.py"):
            for name in _resolved_imports(path):
                if any(name == f or name.startswith(f + ".") for f in forbidden):
                    offenders.append(f"{path.relative_to(REPO)} imports {name}")
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


def test_settings_are_read_in_one_place():
    """Every SPECMEM_ setting is read by ingest.config.Settings (issue 12); only the crash hooks
    the crash tests set are read where they fire."""
    allowed = {"SPECMEM_INGEST_CRASH_AT", "CRASH_ENV"}
    readers = []
    for path in [*REPO.glob("ingest/**/*.py"), *REPO.glob("retriever/**/*.py")]:
        if path.name == "config.py" and path.parent.name == "ingest":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if ("environ.get(" in line or "getenv(" in line or "environ[" in line) and not any(
                name in line for name in allowed
            ):
                readers.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert readers == []


def test_settings_carry_the_event_log_folder_the_backend_and_the_model_cache(tmp_path, monkeypatch):
    from ingest.config import Settings
    from retriever.events import event_log_path

    monkeypatch.setenv("SPECMEM_EVENTS_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("SPECMEM_EMBED_BACKEND", "torch")
    monkeypatch.setenv("SPECMEM_MODEL_CACHE", str(tmp_path / "models"))
    settings = Settings.load(tmp_path / "specs", tmp_path / "data")
    assert event_log_path(settings) == tmp_path / "log" / "events.sqlite"
    assert settings.embed_backend == "torch"
    assert settings.model_cache == tmp_path / "models"
    monkeypatch.delenv("SPECMEM_EVENTS_DIR")
    plain = Settings.load(tmp_path / "specs", tmp_path / "data")
    assert event_log_path(plain) == tmp_path / "data" / "events.sqlite"


def test_problem_codes_are_set_where_problems_are_found_never_read_from_their_wording():
    """Issue 12: validate chose a load problem's code by searching its reason for phrases."""
    source = (REPO / "ingest" / "specs" / "validate.py").read_text(encoding="utf-8")
    assert "in problem.reason" not in source and "_LOAD_REASONS" not in source
    from ingest.specs.model import LoadProblem
    from ingest.specs.validate import CODES

    assert LoadProblem("x", "why").code in CODES  # the default names a real code too
