"""Validate a specs dir: every problem with its file, line, severity and a stable code.

`validate_catalog` is a pure function over what a scan produced (the Catalog, its SpecGraph, token
counts per file and the stray files found beside the specs) so it is cheap to test and the same
answer comes out of every front door. The two helpers below it do the I/O: counting tokens and
listing stray files.

Severities: an *error* means specmem cannot trust the spec or its links (an unreadable file, a
missing status, a dangling dependency, a cycle); a *warning* means something a person should fix
but that loses nothing today (a BOM, a duplicate number, a file over the token threshold); *info*
is a remark (a stray non-markdown file). Codes are stable strings that scripts may match on.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AmbiguousSpecRef, SpecNotFound, UnsafeReference
from .frontmatter import split_document
from .graph import SpecGraph
from .model import LoadProblem, Spec
from .sections import document_title, split_lines
from .store import Catalog, is_inside, spec_bases

__all__ = [
    "CODES",
    "SEVERITIES",
    "Problem",
    "ValidationReport",
    "file_token_counts",
    "find_stray_files",
    "frontmatter_key_lines",
    "validate_catalog",
]

SEVERITIES = ("error", "warning", "info")

# code -> (severity, what it means). The table is the contract: tests check every code is here.
CODES: dict[str, tuple[str, str]] = {
    "yaml-invalid": ("error", "the frontmatter is not valid YAML (or uses aliases)"),
    "value-out-of-range": ("error", "a frontmatter value no reader can hold (a huge integer)"),
    "frontmatter-not-mapping": ("error", "the frontmatter is YAML but not a mapping of keys"),
    "frontmatter-too-large": ("error", "the frontmatter is over the size limit"),
    "frontmatter-missing": ("error", "the README has no frontmatter, so no status"),
    "file-empty": ("error", "the file is empty or only whitespace"),
    "file-binary": ("error", "the file holds NUL bytes: not markdown"),
    "file-not-utf8": ("error", "the file is not valid UTF-8"),
    "file-too-large": ("error", "the file is over the size limit"),
    "file-unreadable": ("error", "the file could not be read"),
    "outside-specs-dir": ("error", "the file or directory resolves outside the specs dir"),
    "readme-missing": ("error", "the spec directory has no README.md"),
    "dir-duplicate": ("error", "the same directory name exists twice (one in an archive folder)"),
    "dir-name-invalid": (
        "error",
        "a folder numbered like a spec whose name is not NNN-slug in ASCII digits, or that no "
        "reference can name (control characters, '..', trailing whitespace)",
    ),
    "dir-alias": ("error", "a symlink to another spec dir (or the specs dir): not a second spec"),
    "dir-not-spec": (
        "warning",
        "a folder among the specs with no NNN- number: nothing in it is read",
    ),
    "files-over-limit": (
        "warning",
        "a spec dir holds more markdown files, or deeper folders, than specmem reads",
    ),
    "folder-link-loop": ("warning", "a sub-folder links back to a folder that holds it"),
    "bom": ("warning", "the file starts with a UTF-8 byte-order mark"),
    "status-missing": ("error", "the frontmatter has no status"),
    "status-unknown": ("error", "the status is not one specmem knows"),
    "priority-unknown": ("warning", "the priority is not one specmem knows"),
    "title-missing": ("warning", "the README has no `# ` heading"),
    "date-invalid": ("warning", "a date field is not an ISO 8601 date or time"),
    "value-normalized": (
        "warning",
        "a frontmatter value was replaced by a safe one (NaN, infinity, an out-of-range time)",
    ),
    "number-duplicate": ("warning", "another spec directory has the same number"),
    "reference-dangling": ("error", "a depends_on or parent link names no spec"),
    "reference-ambiguous": ("error", "a link's bare number matches several specs"),
    "reference-self": ("warning", "a spec links to itself"),
    "related-dangling": ("warning", "a related link names no spec"),
    "dependency-cycle": ("error", "depends_on links form a cycle"),
    "tokens-over-threshold": ("warning", "a file is over the token threshold"),
    "stray-file": ("info", "a non-markdown file inside a spec directory"),
}

_TOP_LEVEL_KEY = re.compile(r"""^(?:"([^"]+)"|'([^']+)'|([^\s#:'"-][^:#]*?))\s*:(?:\s|$)""")
_DATE_FIELDS = ("created", "created_at", "updated_at", "completed_at")


@dataclass(frozen=True)
class Problem:
    severity: str  # "error", "warning" or "info"
    code: str  # a key of CODES
    spec: str | None  # the spec directory name, None for a file that belongs to none
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity} [{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "spec": self.spec,
            "path": self.path,
            "line": self.line,
            "message": self.message,
        }


@dataclass
class ValidationReport:
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0  # specs looked at (loaded or broken)

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity == "error")

    @property
    def warnings(self) -> int:
        return sum(1 for p in self.problems if p.severity == "warning")

    def failed(self, strict: bool = False) -> bool:
        """Errors fail; with `strict`, warnings fail too. Info never does."""
        return self.errors > 0 or (strict and self.warnings > 0)

    @property
    def ok(self) -> bool:
        return not self.failed()

    def to_dict(self, strict: bool = False) -> dict[str, Any]:
        return {
            "ok": not self.failed(strict),
            "errors": self.errors,
            "warnings": self.warnings,
            "checked": self.checked,
            "problems": [p.to_dict() for p in self.problems],
        }


def _problem(code: str, spec: str | None, path: str, line: int | None, message: str) -> Problem:
    return Problem(CODES[code][0], code, spec, path, line, message)


def frontmatter_key_lines(text: str) -> dict[str, int]:
    """File line of each top-level frontmatter key in a spec file's text (BOM already stripped).

    Line numbers come from the YAML text itself, not from a parser, so they exist even for keys
    whose values the normalizer rejected.
    """
    doc = split_document(text)
    if doc.yaml_text is None:
        return {}
    lines: dict[str, int] = {}
    for offset, line in enumerate(doc.yaml_text.splitlines()):
        match = _TOP_LEVEL_KEY.match(line)
        if match:
            key = next(group for group in match.groups() if group is not None).strip()
            lines.setdefault(key, doc.fm_first_line + offset)
    return lines


def _reference_line(text: str, key_lines: Mapping[str, int], key: str, raw: str) -> int | None:
    """The line naming `raw` under `key` (a block list item), else the key's own line."""
    start = key_lines.get(key)
    if start is None:
        return None
    later = [line for line in key_lines.values() if line > start]
    end = min(later) if later else split_document(text).fm_last_line + 1
    file_lines = text.splitlines()
    for number in range(start + 1, min(end, len(file_lines) + 1)):
        item = file_lines[number - 1].strip()
        if item.startswith("-") and item[1:].strip().strip("'\"") == raw:
            return number
    return start


def _has_title(body: str) -> bool:
    return document_title(split_lines(body)) is not None


def _is_iso_time(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _load_problem(problem: LoadProblem) -> Problem:
    # The code was set where the problem was found (ingest.specs.store, ingest.specs.frontmatter).
    return _problem(problem.code, problem.spec, problem.path, problem.line, problem.reason)


def _frontmatter_problems(spec: Spec, key_lines: Mapping[str, int]) -> Iterable[Problem]:
    path = str(spec.readme.path)
    status_rejected = any(name == "status" for name, _ in spec.meta.problems)
    # With no frontmatter at all, the load problem `frontmatter-missing` already says it.
    has_frontmatter = split_document(spec.readme.text).yaml_text is not None
    if spec.meta.status is None and not status_rejected and has_frontmatter:
        line = key_lines.get("status")
        yield _problem("status-missing", spec.dir_name, path, line, "no status in frontmatter")
    for field_name, message in spec.meta.problems:
        code = f"{field_name}-unknown"
        if code in CODES:
            yield _problem(code, spec.dir_name, path, key_lines.get(field_name), message)
    for key, message in spec.meta.normalized:
        yield _problem("value-normalized", spec.dir_name, path, key_lines.get(key), message)
    for field_name in _DATE_FIELDS:
        value = getattr(spec.meta, field_name)
        if value is not None and not _is_iso_time(value):
            message = f"{field_name} {value!r} is not an ISO 8601 date or time"
            yield _problem("date-invalid", spec.dir_name, path, key_lines.get(field_name), message)
    if not _has_title(spec.body):
        yield _problem("title-missing", spec.dir_name, path, spec.body_start_line, "no `# ` title")


def _link_problems(spec: Spec, catalog: Catalog, key_lines: Mapping[str, int]) -> Iterable[Problem]:
    path = str(spec.readme.path)
    refs = [("depends_on", r) for r in spec.meta.depends_on]
    refs += [("related", r) for r in spec.meta.related]
    if spec.meta.parent:
        refs.append(("parent", spec.meta.parent))
    for kind, raw in refs:
        line = _reference_line(spec.readme.text, key_lines, kind, raw)
        try:
            target = catalog.resolve_name(raw)
        except AmbiguousSpecRef as err:
            yield _problem(
                "reference-ambiguous",
                spec.dir_name,
                path,
                line,
                f"{kind} {raw!r} matches several specs: {', '.join(err.candidates)}",
            )
            continue
        except (SpecNotFound, UnsafeReference):
            code = "related-dangling" if kind == "related" else "reference-dangling"
            yield _problem(code, spec.dir_name, path, line, f"{kind} {raw!r} names no spec")
            continue
        if target == spec.dir_name:
            yield _problem("reference-self", spec.dir_name, path, line, f"{kind} names itself")


def _duplicate_number_problems(catalog: Catalog, only: str | None) -> Iterable[Problem]:
    paths = {spec.dir_name: str(spec.readme.path) for spec in catalog}
    paths.update({name: problem.path for name, problem in catalog.broken.items()})
    for number, names in sorted(catalog.by_number.items()):
        if len(names) < 2:
            continue
        for name in names:
            if only is not None and name != only:
                continue
            others = ", ".join(n for n in names if n != name)
            yield _problem(
                "number-duplicate",
                name,
                paths.get(name, str(catalog.root / name)),
                None,
                f"number {number:03d} is also used by {others}; a bare {number} is ambiguous",
            )


def _cycle_problems(
    catalog: Catalog,
    graph: SpecGraph,
    only: str | None,
    key_lines: Callable[[Spec], dict[str, int]],
) -> Iterable[Problem]:
    for cycle in graph.cycles():
        if only is not None:
            if only not in cycle:
                continue
            pivot = cycle.index(only)
            cycle = cycle[pivot:] + cycle[:pivot]
        head = catalog.by_name[cycle[0]]
        line = _dependency_line(catalog, head, cycle[1], key_lines(head))
        shown = " -> ".join([*cycle, cycle[0]])
        yield _problem(
            "dependency-cycle", head.dir_name, str(head.readme.path), line, f"cycle: {shown}"
        )


def _dependency_line(
    catalog: Catalog, spec: Spec, target: str, key_lines: Mapping[str, int]
) -> int | None:
    """The line of the depends_on entry of `spec` that points at `target`."""
    for raw in spec.meta.depends_on:
        if catalog.try_resolve(raw) == target:
            return _reference_line(spec.readme.text, key_lines, "depends_on", raw)
    return key_lines.get("depends_on")


def _token_problems(
    spec: Spec, token_counts: Mapping[str, int], threshold: int
) -> Iterable[Problem]:
    for spec_file in [spec.readme, *spec.sub_files]:
        tokens = token_counts.get(str(spec_file.path))
        if tokens is not None and tokens > threshold:
            yield _problem(
                "tokens-over-threshold",
                spec.dir_name,
                str(spec_file.path),
                None,
                f"{tokens} tokens, over the {threshold}-token threshold; consider splitting it",
            )


def validate_catalog(
    catalog: Catalog,
    graph: SpecGraph | None = None,
    token_counts: Mapping[str, int] | None = None,
    *,
    threshold: int | None = None,
    stray_files: Iterable[tuple[str, str]] = (),
    only: str | None = None,
) -> ValidationReport:
    """Every problem of `catalog`, or only those about spec `only` (a resolved dir name).

    `token_counts` maps a file path to its tokens (see `file_token_counts`); files over
    `threshold` are warned about. `stray_files` are (spec dir name, path) pairs.
    """
    graph = graph if graph is not None else SpecGraph.from_catalog(catalog)
    token_counts = token_counts or {}
    problems: list[Problem] = []
    for load_problem in catalog.problems:
        if only is None or load_problem.spec == only:
            problems.append(_load_problem(load_problem))
    known_lines: dict[str, dict[str, int]] = {}

    def key_lines(spec: Spec) -> dict[str, int]:
        if spec.dir_name not in known_lines:
            known_lines[spec.dir_name] = frontmatter_key_lines(spec.readme.text)
        return known_lines[spec.dir_name]

    for spec in catalog:
        if only is not None and spec.dir_name != only:
            continue
        lines = key_lines(spec)
        problems.extend(_frontmatter_problems(spec, lines))
        problems.extend(_link_problems(spec, catalog, lines))
        if threshold is not None:
            problems.extend(_token_problems(spec, token_counts, threshold))
    problems.extend(_duplicate_number_problems(catalog, only))
    problems.extend(_cycle_problems(catalog, graph, only, key_lines))
    for name, path in stray_files:
        if only is None or name == only:
            problems.append(_problem("stray-file", name, path, None, "not a markdown file"))
    problems.sort(key=lambda p: (p.spec or "", p.path, p.line or 0, p.code))
    checked = 1 if only is not None else len(catalog.specs) + len(catalog.broken)
    return ValidationReport(problems, checked)


def file_token_counts(
    catalog: Catalog,
    count: Callable[[str], int],
    cache: dict[str, int] | None = None,
    *,
    only: str | None = None,
) -> dict[str, int]:
    """Tokens of every markdown file of every spec, keyed by path. `count(text) -> int`.

    `cache` (content hash -> tokens) lets a long-lived service count only files that changed.
    """
    counts: dict[str, int] = {}
    for spec in catalog:
        if only is not None and spec.dir_name != only:
            continue
        for spec_file in [spec.readme, *spec.sub_files]:
            key = spec_file.content_hash
            if cache is not None and key in cache:
                counts[str(spec_file.path)] = cache[key]
                continue
            tokens = count(spec_file.text)
            if cache is not None:
                cache[key] = tokens
            counts[str(spec_file.path)] = tokens
    return counts


def find_stray_files(catalog: Catalog) -> list[tuple[str, str]]:
    """(spec, path) of each file in a spec directory that is not markdown (a backup, a YAML)."""
    stray = []
    directories = [(spec.dir_name, spec.path) for spec in catalog]
    for name in catalog.broken:
        for base, _archived in spec_bases(catalog.root):
            if (base / name).is_dir():
                directories.append((name, base / name))
    for name, directory in directories:
        if not is_inside(catalog.root, directory):
            continue  # a symlink out of the specs dir: reported as broken, never listed
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.suffix.lower() != ".md" and _is_plain_file(entry) and entry.name[0] != ".":
                stray.append((name, str(entry)))
    return stray


def _is_plain_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False
