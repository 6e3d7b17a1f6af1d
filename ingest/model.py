"""The spec as specmem sees it: one directory, its README, its sub-spec files, normalized metadata."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .frontmatter import Frontmatter

__all__ = ["LoadProblem", "Spec", "SpecFile", "parse_dir_name"]

_DIR_NAME = re.compile(r"^(\d{1,6})-([A-Za-z0-9][A-Za-z0-9._-]*)$")


def parse_dir_name(name: str) -> tuple[int, str] | None:
    """`045-unified-dashboard` -> (45, "unified-dashboard"); None for anything else."""
    match = _DIR_NAME.match(name)
    if not match:
        return None
    return int(match.group(1)), match.group(2)


@dataclass(frozen=True)
class SpecFile:
    """One markdown file of a spec: the README or a sub-spec such as DESIGN.md."""

    name: str
    path: Path
    text: str  # the whole file, frontmatter included, BOM stripped
    content_hash: str


@dataclass
class Spec:
    dir_name: str
    number: int
    slug: str
    path: Path  # the spec directory
    title: str
    meta: Frontmatter
    body: str  # README body, frontmatter removed
    body_start_line: int
    readme: SpecFile
    sub_files: list[SpecFile] = field(default_factory=list)
    archived_dir: bool = False  # lives under specs/archived/
    warnings: list[str] = field(default_factory=list)
    # The same notes as `warnings`, each naming its own file and line (a sub-spec's problem names
    # the sub-spec, not the README), for `validate` and the scan's problem list.
    load_problems: list[LoadProblem] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.dir_name

    @property
    def status(self) -> str | None:
        return self.meta.status

    @property
    def is_archived(self) -> bool:
        return self.archived_dir or self.meta.status == "archived"

    @property
    def content_hash(self) -> str:
        """Hash of README.md's bytes: the version a writer must name to update the spec."""
        return self.readme.content_hash

    def summary(self) -> dict[str, Any]:
        """The compact JSON shape every front door uses for a spec in a listing."""
        return {
            "spec": self.dir_name,
            "number": self.number,
            "title": self.title,
            "status": self.meta.status,
            "priority": self.meta.priority,
            "tags": list(self.meta.tags),
            "depends_on": list(self.meta.depends_on),
            "related": list(self.meta.related),
            "parent": self.meta.parent,
            "created": self.meta.created,
            "updated_at": self.meta.updated_at,
            "archived": self.is_archived,
            "path": str(self.readme.path),
            "hash": self.content_hash,
        }

    def to_dict(self, with_body: bool = True, with_files: bool = False) -> dict[str, Any]:
        data = self.summary()
        meta = asdict(self.meta)
        meta.pop("problems", None)
        data["frontmatter"] = _jsonable(meta)
        data["assignee"] = self.meta.assignee
        data["transitions"] = list(self.meta.transitions)
        data["sub_files"] = [f.name for f in self.sub_files]
        data["warnings"] = list(self.warnings) + [f"{k}: {m}" for k, m in self.meta.problems]
        if with_body:
            data["body"] = self.body
        if with_files:
            data["files"] = {f.name: f.text for f in self.sub_files}
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass(frozen=True)
class LoadProblem:
    """A file specmem could not read as a spec; the others still load."""

    path: str
    reason: str
    line: int | None = None
    spec: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "spec": self.spec, "reason": self.reason}
