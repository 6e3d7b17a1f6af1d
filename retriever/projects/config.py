"""Where the projects of one server come from: a TOML file, or `--project NAME=SPECS_DIR` options.

    # specmem-projects.toml; relative paths are relative to this file
    default = "web"                  # optional: the project of a request that names none

    [projects.web]
    specs = "../web/specs"
    data = "../web/.specmem"         # optional: .specmem beside the specs dir
    events_url = "postgresql://..."  # optional: this project's event log (spec 093)

The file is read again whenever it changes (retriever.projects.registry), so adding or removing
a project is an edit of it, with no restart. A project whose entry is wrong (no such specs dir, a
bad name) is left out with a problem naming the file and the field; the others are served.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ingest.config import check_events_url
from ingest.errors import InvalidInput

__all__ = [
    "NAME_PATTERN",
    "ProjectEntry",
    "ProjectSources",
    "ProjectTable",
    "parse_option",
    "read_table",
]

# No `:` (it separates a project from a spec in `web:045`) and nothing a URL or a shell quotes.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEYS = {"specs", "data", "events_url"}


@dataclass(frozen=True)
class ProjectEntry:
    name: str
    specs_dir: Path
    data_dir: Path | None = None
    events_url: str | None = None


@dataclass(frozen=True)
class ProjectTable:
    """The projects one source names, the default among them, and what was wrong with the rest."""

    entries: tuple[ProjectEntry, ...]
    default: str | None = None
    problems: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class ProjectSources:
    """Where a server's projects come from, picklable for worker processes: a projects file
    (read again when it changes) or the fixed `--project` entries."""

    file: Path | None = None
    entries: tuple[ProjectEntry, ...] = ()

    def __post_init__(self) -> None:
        if self.file is not None and self.entries:
            raise InvalidInput("give either a projects file or --project options, not both")
        names = [entry.name for entry in self.entries]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidInput(f"--project {twice[0]} is given twice")


def check_name(name: str, where: str) -> str:
    if not NAME_PATTERN.match(name):
        raise InvalidInput(
            f"{where}: project name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no ':', which separates project and spec)"
        )
    return name


def parse_option(value: str) -> ProjectEntry:
    """`NAME=SPECS_DIR` from the command line."""
    name, sep, specs = value.partition("=")
    if not sep or not specs:
        raise InvalidInput(f"--project {value!r}: expected NAME=SPECS_DIR")
    check_name(name, "--project")
    path = Path(specs).expanduser().absolute()
    if not path.is_dir():
        raise InvalidInput(f"--project {value!r}: specs dir {path}: no such directory")
    return ProjectEntry(name, path)


def read_table(path: Path) -> ProjectTable:
    """The file's projects. A file that cannot be read or parsed is InvalidInput naming it (and
    the line, from tomllib); a wrong entry is a problem, and the others still count."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InvalidInput(f"{path}: cannot read the projects file: {err.strerror or err}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InvalidInput(f"{path}: not valid TOML: {err}") from err
    unknown = sorted(set(data) - {"projects", "default"})
    if unknown:
        raise InvalidInput(f"{path}: unknown key {unknown[0]!r} (accepted: default, projects)")
    table = data.get("projects", {})
    if not isinstance(table, dict):
        raise InvalidInput(f"{path}: 'projects' must be a table of [projects.NAME] entries")
    entries: list[ProjectEntry] = []
    problems: list[str] = []
    for name, raw in table.items():
        try:
            entries.append(_entry(path, name, raw))
        except InvalidInput as err:
            problems.append(str(err))
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise InvalidInput(f"{path}: 'default' must be a project name, not {default!r}")
    if default is not None and default not in table:
        raise InvalidInput(f"{path}: default project {default!r} is not one of [projects.*]")
    return ProjectTable(tuple(entries), default, tuple(problems))


def _entry(path: Path, name: str, raw: object) -> ProjectEntry:
    where = f"{path}: [projects.{name}]"
    check_name(name, where)
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: must be a table with 'specs'")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown key {unknown[0]!r} (accepted: {', '.join(sorted(_KEYS))})"
        )
    for key in _KEYS & set(raw):
        if not isinstance(raw[key], str) or not raw[key]:
            raise InvalidInput(f"{where}: {key} must be a non-empty string")
    if "specs" not in raw:
        raise InvalidInput(f"{where}: 'specs' (the specs dir) is required")
    base = path.parent
    specs = (base / Path(raw["specs"]).expanduser()).absolute()
    if not specs.is_dir():
        raise InvalidInput(f"{where}: specs = {raw['specs']!r}: no such directory ({specs})")
    data = (base / Path(raw["data"]).expanduser()).absolute() if "data" in raw else None
    if data is not None and data.exists() and not data.is_dir():
        raise InvalidInput(f"{where}: data = {raw['data']!r}: not a directory ({data})")
    events_url = raw.get("events_url")
    if events_url is not None:
        check_events_url(events_url, f"{where}: events_url")
    return ProjectEntry(name, specs, data, events_url)
