"""The spec as specmem sees it: one directory, its README, its sub-spec files, normalized metadata."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .frontmatter import Frontmatter

T = TypeVar("T")

__all__ = [
    "MAX_NAME",
    "NOT_A_SPEC_NAME",
    "LoadProblem",
    "Spec",
    "SpecFile",
    "derive_once",
    "dir_name_code",
    "dir_name_problem",
    "dir_number",
    "parse_dir_name",
    "reference_problem",
]

# A spec dir name: a number in ASCII digits, a dash, a slug. `\d` and `str.isdigit()` also take
# Arabic-Indic, fullwidth and superscript digits, which made `٠٤٥-x` a second spec 45 (spec 008).
_DIR_NAME = re.compile(r"([0-9]{1,6})-(.+)", re.DOTALL)
_NUMBER_PREFIX = re.compile(r"([0-9]{1,6})-")
MAX_NAME = 255  # a directory name's limit on common filesystems; no longer reference can match
# Zero-width (non-)joiners are part of how some scripts and emoji are written; every other
# format character (bidi overrides, zero-width space, BOM) only hides what a name says.
_JOINERS = frozenset("\u200c\u200d")
NOT_A_SPEC_NAME = "not a spec directory name"
# Printable ASCII less `/` and `\\`: the names of nearly every real spec, checked in one match.
_PLAIN_REFERENCE = re.compile(r"[A-Za-z0-9][\x20-\x2e\x30-\x5b\x5d-\x7e]*")


def _char(c: str) -> str:
    name = unicodedata.name(c, "") if not 0xD800 <= ord(c) <= 0xDFFF else ""
    return f"U+{ord(c):04X} {name}".rstrip()


def reference_problem(text: str) -> str | None:
    """Why `text` cannot be a spec reference (nor a spec dir's name), or None when it can.

    A reference is one path component that a person can type back: it starts with an ASCII
    letter or digit (so never `.`, `..` or `-rf`), holds no path separator, no `..`, no control,
    line-separator or invisible format character, and no undecodable byte. Letters of any
    script and inner spaces are fine: `045-café`, `045-my spec`.
    """
    if _PLAIN_REFERENCE.fullmatch(text) and ".." not in text and len(text) <= MAX_NAME:
        return None
    if not text:
        return "it is empty"
    if len(text) > MAX_NAME:
        return f"it is over {MAX_NAME} characters"
    if not (text[0].isascii() and text[0].isalnum()):
        return "it does not start with an ASCII letter or digit"
    if ".." in text:
        return "it holds '..'"
    for c in text:
        if c in "/\\":
            return f"it holds {c!r}, a path separator"
        category = unicodedata.category(c)
        if category == "Cs":
            return "it holds bytes that are no UTF-8 text"
        if category in ("Cc", "Zl", "Zp") or (category == "Cf" and c not in _JOINERS):
            return f"it holds {_char(c)}, a control or invisible character"
    return None


def dir_name_code(name: str) -> str:
    """validate's code for a directory `dir_name_problem` refuses: a folder without any number
    is something else (info), anything else that starts like a number is a misnamed spec."""
    return "dir-name-invalid" if name[:1].isnumeric() else "dir-not-spec"


def dir_name_problem(name: str) -> str | None:
    """Why a directory in the specs dir is not a spec dir, or None when its name is one.

    The wording is the contract `ingest.specs.validate` maps to a code: a name that starts like a
    number but is not `NNN-slug` in ASCII digits, or that no reference could name, is
    NOT_A_SPEC_NAME (an error); a name without any number is a folder of something else.
    """
    match = _DIR_NAME.fullmatch(name)
    if match is None:
        if not name[:1].isnumeric():
            return "not a spec directory: its name has no NNN- number, so nothing in it is read"
        lead = name.split("-", 1)[0]
        odd = next((c for c in lead if c.isnumeric() and not c.isascii()), None)
        if odd is not None:
            return f"{NOT_A_SPEC_NAME}: its number is not in ASCII digits 0-9 ({_char(odd)})"
        return f"{NOT_A_SPEC_NAME}: expected NNN-slug (1 to 6 ASCII digits, a dash, a name)"
    problem = reference_problem(name)
    if problem is None and name[-1].isspace():
        problem = "it ends with whitespace"
    if problem is not None:
        return f"{NOT_A_SPEC_NAME}: {problem}, so no reference can name it; rename it"
    return None


def parse_dir_name(name: str) -> tuple[int, str] | None:
    """`045-unified-dashboard` -> (45, "unified-dashboard"); None for anything that is not a
    spec dir name (see `dir_name_problem`). Every name this accepts is a valid reference."""
    match = _DIR_NAME.fullmatch(name)
    if match is None or dir_name_problem(name) is not None:
        return None
    return int(match.group(1)), match.group(2)


def dir_number(name: str) -> int | None:
    """The ASCII number a directory name starts with (`045-` -> 45), spec dir or not: `create`
    numbers past a misnamed `099-x\\ty` too, so renaming it later cannot collide."""
    match = _NUMBER_PREFIX.match(name)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SpecFile:
    """One markdown file of a spec: the README or a sub-spec such as DESIGN.md."""

    name: str  # POSIX path relative to the spec dir: "README.md", "DESIGN.md", "research/evals.md"
    path: Path
    text: str  # the whole file, frontmatter included, BOM stripped
    content_hash: str


def derive_once(derived: dict[str, Any], kind: str, compute: Callable[[], T]) -> T:
    """`derived[kind]`, computed on first use. Two threads may both compute a value the first
    time; both results are equal, and the last one stays."""
    try:
        return derived[kind]
    except KeyError:
        value = derived[kind] = compute()
        return value


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
    archived_dir: bool = False  # lives in an archive folder (specs/archived/, specs/_archived/)
    warnings: list[str] = field(default_factory=list)
    # The same notes as `warnings`, each naming its own file and line (a sub-spec's problem names
    # the sub-spec, not the README), for `validate` and the scan's problem list.
    load_problems: list[LoadProblem] = field(default_factory=list)
    # What readers derive from this version of the spec (its sections, their terms, its first
    # sentence): kept with it, so it lives and dies with the version and no module holds a
    # cache (spec 077). A changed file is a new Spec, with nothing derived yet.
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def derive(self, kind: str, compute: Callable[[], T]) -> T:
        """`compute()` once per spec version and `kind`."""
        return derive_once(self.derived, kind, compute)

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
        meta.pop("normalized", None)
        data["frontmatter"] = _jsonable(meta)
        data["assignee"] = self.meta.assignee
        data["transitions"] = list(self.meta.transitions)
        data["sub_files"] = [f.name for f in self.sub_files]
        data["warnings"] = (
            list(self.warnings)
            + [f"{k}: {m}" for k, m in self.meta.problems]
            + [message for _key, message in self.meta.normalized]
        )
        if with_body:
            data["body"] = self.body
        if with_files:
            data["files"] = {f.name: f.text for f in self.sub_files}
        return data


def _jsonable(value: Any) -> Any:
    """Frontmatter values are JSON-safe already (normalize_frontmatter sees to it); this only
    turns tuples into lists and anything a caller put in by hand into text."""
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

    # validate's code for it (a key of ingest.specs.validate.CODES), set where the problem is found.
    code: str = "file-unreadable"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.reason}"

    @classmethod
    def of(cls, err: Any, spec: str | None = None) -> LoadProblem:
        """The problem a SpecParseError describes."""
        return cls(err.path, err.reason, err.line, spec=spec, code=err.problem)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "spec": self.spec, "reason": self.reason}
