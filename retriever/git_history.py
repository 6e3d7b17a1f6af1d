"""The history of intent from git: the commits that changed a spec's files, and those citing it.

When the specs dir sits in a git work tree, each spec's history gains its commits: sha, author,
date, subject, and what changed in its files (frontmatter fields set, `##` sections added or
removed), plus the commits anywhere in the repository whose message cites the spec
(retriever.attribution.references). One `git log` reads all of it, once per HEAD: a warm server
answers from memory, and knows HEAD moved by stat-ing three files under `.git`, never by running
git per request. Without git, outside a work tree, or in a shallow clone (whose history simply
ends early), nothing breaks: there are fewer or no commits.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ingest.errors import InvalidInput
from ingest.specs.store import Catalog, within_base

from .attribution.references import text_references
from .events import parse_timestamp

__all__ = ["GitLog", "SpecCommit"]

GIT_TIMEOUT = 60.0
_RECORD = "\x1e"
_FIELD = "\x1f"
_FORMAT = f"{_RECORD}%H{_FIELD}%an{_FIELD}%aI{_FIELD}%s{_FIELD}%b{_FIELD}"
_FRONTMATTER_LINE = re.compile(r"^([a-z_]+):\s*(.*)$")
_HEADING = re.compile(r"^##\s+(.+?)\s*$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@")
FRONTMATTER_LINES = 40  # a hunk starting past this line is body, not frontmatter


@dataclass
class SpecCommit:
    sha: str
    author: str
    at: str
    subject: str
    cites: bool = False  # the message names the spec
    files: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    sections_added: list[str] = field(default_factory=list)
    sections_removed: list[str] = field(default_factory=list)

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "kind": "commit",
            "at": self.at,
            "sha": self.sha,
            "author": self.author,
            "subject": self.subject,
            "cites": self.cites,
        }
        if self.files:
            item["files"] = self.files
        changes: dict[str, Any] = {}
        if self.fields:
            changes["fields"] = self.fields
        if self.sections_added:
            changes["sections_added"] = self.sections_added
        if self.sections_removed:
            changes["sections_removed"] = self.sections_removed
        if changes:
            item["changes"] = changes
        return item


@dataclass(frozen=True)
class _Built:
    fingerprint: tuple[Any, ...]
    by_spec: dict[str, list[SpecCommit]]


class GitLog:
    """The commits of each spec in the work tree holding `specs_dir`, built once per HEAD."""

    def __init__(self, specs_dir: Path, catalog: Callable[[], Catalog]):
        self.specs_dir = Path(specs_dir).resolve()
        self._catalog = catalog  # the live catalog: git names specs as they were
        self._lock = threading.Lock()
        self._built: _Built | None = None
        self._top: Path | bool | None = False  # False: not looked up yet

    def commits(self, spec: str) -> list[SpecCommit]:
        return self.commits_of([spec]).get(spec, [])

    def commits_of(self, specs: Sequence[str]) -> dict[str, list[SpecCommit]]:
        """The commits of each of `specs` that has any: one check of HEAD for all of them (a
        bundle asks for twenty specs' history at once)."""
        built = self._current()
        if built is None:
            return {}
        return {name: list(built.by_spec[name]) for name in specs if name in built.by_spec}

    def moment(self, since: str) -> dt.datetime:
        """`since` as a moment: an ISO 8601 date or time, or a commit git knows here."""
        moment = parse_timestamp(since) or self.since(since)
        if moment is None:
            raise InvalidInput(
                f"since: {since!r} is neither an ISO 8601 date or time nor a git commit here"
            )
        return moment

    def _resolve(self, ref: str) -> str | None:
        """A spec dir named in git (a path's folder, a message's reference) as the spec it is
        now: by name, or by its number when the dir was renamed since."""
        catalog = self._catalog()
        found = catalog.try_resolve(ref)
        if found is None and "-" in ref and ref.split("-", 1)[0].isdigit():
            found = catalog.try_resolve(ref.split("-", 1)[0])
        return found

    def since(self, ref: str) -> dt.datetime | None:
        """The moment of a commit reference (`HEAD~3`, a sha, a tag), or None if git has none."""
        top = self._work_tree()
        if top is None:
            return None
        out = _git(top, "log", "-1", "--format=%aI", ref, "--")
        return parse_timestamp(out.strip()) if out else None

    # -- building -------------------------------------------------------------------------------

    def _work_tree(self) -> Path | None:
        if self._top is False:
            if shutil.which("git") is None:
                self._top = None
            else:
                out = _git(self.specs_dir, "rev-parse", "--show-toplevel")
                self._top = Path(out.strip()).resolve() if out and out.strip() else None
        return self._top if isinstance(self._top, Path) else None

    def _current(self) -> _Built | None:
        top = self._work_tree()
        if top is None:
            return None
        fingerprint = _head_fingerprint(top)
        with self._lock:
            if self._built is None or self._built.fingerprint != fingerprint:
                self._built = _Built(fingerprint, self._read(top))
            return self._built

    def _read(self, top: Path) -> dict[str, list[SpecCommit]]:
        by_spec: dict[str, dict[str, SpecCommit]] = {}
        relative = os.path.relpath(self.specs_dir, top)
        changed = _git(top, "log", "-p", "-U0", "--no-color", "--no-renames",
                       f"--format={_FORMAT}", "--", relative)  # fmt: skip
        for commit, diffs in _commits(changed or ""):
            for path, lines in diffs.items():
                name = _spec_of(path, relative)
                spec = self._resolve(name) if name else None
                if spec is None:
                    continue
                entry = by_spec.setdefault(spec, {}).setdefault(commit.sha, _copy(commit))
                entry.files.append(PurePosixPath(path).relative_to(relative).as_posix())
                _read_diff(entry, lines)
        cited = _git(top, "log", "--no-color", f"--format={_FORMAT}")
        for commit, _ in _commits(cited or ""):
            for reference in text_references(f"{commit.subject}\n{commit.body}"):
                spec = self._resolve(reference.ref)
                if spec is not None:
                    entry = by_spec.setdefault(spec, {}).setdefault(commit.sha, _copy(commit))
                    entry.cites = True
        return {
            spec: sorted(commits.values(), key=lambda c: c.at, reverse=True)
            for spec, commits in by_spec.items()
        }


@dataclass
class _Commit:
    sha: str
    author: str
    at: str
    subject: str
    body: str


def _copy(commit: _Commit) -> SpecCommit:
    return SpecCommit(commit.sha, commit.author, commit.at, commit.subject)


def _commits(text: str) -> list[tuple[_Commit, dict[str, list[str]]]]:
    """`git log` output in _FORMAT, with or without `-p`: each commit and its diff per file."""
    found = []
    for record in text.split(_RECORD)[1:]:
        parts = record.split(_FIELD, 5)
        if len(parts) < 6:
            continue
        sha, author, at, subject, body, patch = parts
        diffs: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in patch.splitlines():
            if line.startswith("diff --git "):
                current = None
            elif line.startswith("+++ "):
                target = line[4:]
                current = diffs.setdefault(target[2:], []) if target != "/dev/null" else None
            elif line.startswith("--- ") and current is None:
                source = line[4:]
                if source != "/dev/null":  # a deleted file: its lines are all "-"
                    current = diffs.setdefault(source[2:], [])
            elif current is not None:
                current.append(line)
        found.append((_Commit(sha, author, at, subject, body.strip()), diffs))
    return found


def _spec_of(path: str, specs_relative: str) -> str | None:
    try:
        parts = PurePosixPath(path).relative_to(PurePosixPath(specs_relative)).parts
    except ValueError:
        return None
    parts = within_base(parts)
    return parts[0] if len(parts) >= 2 else None


def _read_diff(commit: SpecCommit, lines: Sequence[str]) -> None:
    """Frontmatter fields a commit set and `##` sections it added or removed, from `-U0` hunks."""
    start = 0
    added: list[str] = []
    removed: list[str] = []
    for line in lines:
        hunk = _HUNK.match(line)
        if hunk:
            start = int(hunk.group(1))
            continue
        sign, text = line[:1], line[1:]
        heading = _HEADING.match(text)
        if heading:
            (added if sign == "+" else removed).append(heading.group(1))
            continue
        field_line = _FRONTMATTER_LINE.match(text)
        if sign == "+" and field_line and start <= FRONTMATTER_LINES:
            commit.fields[field_line.group(1)] = field_line.group(2).strip().strip("'\"")
    commit.sections_added += [h for h in added if h not in removed]
    commit.sections_removed += [h for h in removed if h not in added]


def _head_fingerprint(top: Path) -> tuple[Any, ...]:
    """What says HEAD moved without running git: HEAD, the ref it names, and packed-refs."""
    git_dir = top / ".git"
    if git_dir.is_file():  # a worktree or submodule: `gitdir: <path>`
        text = git_dir.read_text(encoding="utf-8", errors="replace").strip()
        git_dir = (top / text.removeprefix("gitdir:").strip()).resolve()
    paths = [git_dir / "HEAD", git_dir / "packed-refs"]
    try:
        head = (git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        head = ""
    if head.startswith("ref:"):
        paths.append(git_dir / head[4:].strip())
    stats: list[tuple[str, int | None, int | None]] = []
    for path in paths:
        try:
            stat = path.stat()
            stats.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            stats.append((str(path), None, None))
    return (head, *stats)


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(cwd), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
            encoding="utf-8",
            errors="replace",
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
