"""Update and archive specs: validated, locked, hash-checked, line-edited, verified, atomic.

Every write follows one path (`locked_readme`): resolve the reference strictly through the
Catalog, refuse anything that would leave the specs dir, take the spec's cross-process lock, read
README.md again *under the lock* and compare its hash with the caller's `expected_hash` (so two
agents cannot silently overwrite each other), edit lines, parse the result to check it says what
was meant, and only then replace the file atomically. Archiving is a status change, not a move,
so every reference to the spec stays valid.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import atomic
from ..atomic import GRAPH_LOCK, atomic_write, named_lock
from ..errors import (
    DependencyCycle,
    InvalidInput,
    SpecParseError,
    StaleWrite,
    UnsafeReference,
)
from ..specs.frontmatter import (
    PRIORITIES,
    PROJECT_STATUSES,
    STATUSES,
    Frontmatter,
    canonical_priority,
    canonical_status,
    normalize_frontmatter,
    parse_yaml,
    safe_values,
)
from ..specs.graph import SpecGraph
from ..specs.model import LoadProblem, Spec, parse_dir_name
from ..specs.project_config import LeanSpecConfig
from ..specs.store import Catalog, SpecStore, check_reference, content_hash, spec_bases
from .frontmatter_edit import EditableDocument, render_scalar
from .spec_changes import SpecChange

__all__ = [
    "KEEP_TRANSITIONS",
    "OLDER_TRANSITIONS_FILE",
    "LockedReadme",
    "SpecWriter",
    "WrittenSpec",
    "catalog_with",
    "check_assignee",
    "check_tag",
    "parse_frontmatter",
    "project_statuses",
    "refreshed_catalog",
    "require_priority",
    "require_status",
    "utc_now",
    "verify_edit",
]

# A status change appends a transition; past this many, the oldest move to OLDER_TRANSITIONS_FILE
# beside the README, so the frontmatter stays far below MAX_FRONTMATTER_CHARS for the life of
# the spec (spec 025: ~1,165 transitions used to fill it, and then every status change failed).
KEEP_TRANSITIONS = 100
OLDER_TRANSITIONS_FILE = ".transitions.yaml"
_OLDER_HEADER = (
    "# Older status transitions of this spec, oldest first. specmem moves them here from\n"
    f"# README.md, whose frontmatter keeps the latest {KEEP_TRANSITIONS}.\n"
)
_TAG = re.compile(r"^[^\s,\[\]{}#&*!|>'\"%@`][^,\[\]{}\n\r\t]{0,63}$")


def utc_now() -> str:
    """Now in UTC as ISO 8601 with a `Z`, to the microsecond so transitions sort in order."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


def _required(value: str, name: str, known: str | None, allowed: tuple[str, ...]) -> str:
    if known is None:
        raise InvalidInput(
            f"{name}: unknown {name} {value!r} (expected one of {', '.join(allowed)})"
        )
    return known


def require_status(value: str, declared: tuple[str, ...] = ()) -> str:
    """The canonical status `value` names (`in_progress`, `completed`... accepted) or InvalidInput:
    aliases are read, canonical names are written. `blocked` and `cancelled` only where the
    project declares them (`declared`)."""
    allowed = STATUSES + tuple(s for s in PROJECT_STATUSES if s in declared)
    known = canonical_status(str(value))
    if known is not None and known not in allowed:
        raise InvalidInput(
            f"status: {known!r} is not declared by this project (expected one of "
            f'{", ".join(allowed)}; declare it in .lean-spec/config.json "statuses")'
        )
    return _required(value, "status", known, allowed)


def require_priority(value: str) -> str:
    return _required(value, "priority", canonical_priority(str(value)), PRIORITIES)


def project_statuses(specs_root: Path) -> tuple[str, ...]:
    """The statuses beyond the five that the project's .lean-spec/config.json declares."""
    config = LeanSpecConfig.beside(specs_root)
    return config.statuses if config is not None else ()


def check_tag(tag: str) -> str:
    """A tag that can be written in any list style: no commas, brackets or line breaks."""
    text = str(tag).strip()
    if not _TAG.match(text):
        raise InvalidInput(
            f"tags: {tag!r} is not a usable tag (1-64 characters; no commas, brackets, "
            "quotes or line breaks)"
        )
    return text


def check_assignee(name: str) -> str:
    """A person or agent name: one line of visible text, at most 100 characters."""
    text = str(name).strip()
    if not text or len(text) > 100 or not text.isprintable():
        raise InvalidInput(
            f"assignee: must be one line of 1 to 100 visible characters, got {name[:40]!r}"
        )
    return text


def _removable_tag(tag: str) -> str:
    """Removal is lenient: a tag someone wrote by hand may be one `check_tag` would not create."""
    text = str(tag).strip()
    if not text or "\n" in text or "\r" in text:
        raise InvalidInput(f"tags: {tag!r} is not a tag")
    return text


@dataclass
class WrittenSpec(Spec):
    """A spec as a write left it, with what the write changed (`changes` is empty for a no-op)."""

    changes: list[dict[str, Any]] = field(default_factory=list)
    files_written: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, spec: Spec, changes: list[dict[str, Any]], files: list[str]) -> WrittenSpec:
        values = {f.name: getattr(spec, f.name) for f in fields(Spec)}
        return cls(**values, changes=changes, files_written=files)

    def summary(self) -> dict[str, Any]:
        data = super().summary()
        data["changed"] = bool(self.changes)
        data["changes"] = list(self.changes)
        data["files_written"] = list(self.files_written)
        if self.warnings:
            data["warnings"] = list(self.warnings)
        return data


@dataclass
class LockedReadme:
    """A spec's README as read under its lock: the bytes that `expected_hash` is checked against."""

    dir_name: str
    directory: Path
    archived: bool
    path: Path
    data: bytes

    @property
    def hash(self) -> str:
        return content_hash(self.data)


def _spec_directory(catalog: Catalog, name: str) -> tuple[Path, bool]:
    root = catalog.root
    spec = catalog.by_name.get(name)
    known = [(spec.path, spec.archived_dir)] if spec is not None else []
    for directory, archived in known or [(base / name, a) for base, a in spec_bases(root)]:
        if directory.is_dir() or directory.is_symlink():
            try:
                directory.resolve().relative_to(root)
            except (ValueError, OSError):
                raise UnsafeReference(
                    f"refused: spec {name} resolves outside the specs dir {root}"
                ) from None
            return directory, archived
    raise SpecParseError(str(root / name), "spec directory vanished")


_PLAIN_LOCK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def _lock_name(root: Path, directory: Path) -> str:
    """The lock of the directory itself, not of the name it was reached by, so that two names
    for one directory (a symlink, a catalog read before the link appeared) share one lock and
    cannot lose each other's updates (spec 008). A spec dir that is a real folder of a plain
    name keeps `<name>.lock`; any other gets a name from its real path."""
    real = os.path.realpath(directory)
    parent, name = os.path.split(real)
    bases = {os.path.realpath(base) for base, _archived in spec_bases(root)}
    if parent in bases and _PLAIN_LOCK_NAME.fullmatch(name):
        return name
    return "_dir-" + hashlib.sha256(os.fsencode(real)).hexdigest()[:24]


def _refuse_alias(root: Path, name: str, directory: Path) -> None:
    """Under the lock: a spec dir that has become a symlink to another spec dir since the
    caller's scan is an alias now, and no write goes through it."""
    if directory.is_symlink():
        target = SpecStore(root).listing().aliases.get(name)
        if target is not None:
            raise UnsafeReference(
                f"refused: {name} is a symlink alias of spec {target}, not a spec of its own; "
                f"name {target}"
            )


@contextlib.contextmanager
def locked_readme(
    catalog: Catalog, data_dir: Path, ref: object, expected_hash: str | None
) -> Iterator[LockedReadme]:
    """Resolve `ref`, hold its lock, and yield its README as on disk now, hash-checked."""
    name = catalog.resolve_name(ref)
    directory, archived = _spec_directory(catalog, name)
    if name in catalog.broken:
        problem = catalog.broken[name]
        raise SpecParseError(problem.path, problem.reason, problem.line, problem=problem.code)
    with named_lock(data_dir, _lock_name(catalog.root, directory)):
        _refuse_alias(catalog.root, name, directory)
        readme = directory / "README.md"
        if readme.is_symlink():
            raise UnsafeReference(f"refused: {readme} is a symlink; specmem writes only real files")
        try:
            data = readme.read_bytes()
        except OSError as err:
            raise SpecParseError(str(readme), f"cannot read: {err.strerror}") from None
        locked = LockedReadme(name, directory, archived, readme, data)
        if expected_hash is not None and expected_hash.strip() != locked.hash:
            raise StaleWrite(name, expected_hash.strip(), locked.hash)
        yield locked


def parse_frontmatter(doc: EditableDocument) -> tuple[dict[str, Any], Frontmatter]:
    """The document's frontmatter as plain JSON-safe values (what `verify_edit` compares: NaN
    read twice is not equal to itself, `.nan` is) and as normalized values."""
    raw = parse_yaml(doc.yaml_text(), doc.path) if doc.lines else {}
    return safe_values(raw), normalize_frontmatter(raw)


def verify_edit(
    doc: EditableDocument, before: dict[str, Any], expected: dict[str, Any]
) -> dict[str, Any]:
    """Refuse an edit whose result does not read back as `expected` with every other key as it was."""
    try:
        after_raw, after = parse_frontmatter(doc)
    except SpecParseError as err:
        raise InvalidInput(
            f"refused to write {doc.path}: the edit would not parse ({err})"
        ) from None
    for key in set(before) | set(after_raw):
        if key not in doc.touched and before.get(key) != after_raw.get(key):
            raise InvalidInput(f"refused to write {doc.path}: the edit would change {key!r}")
    for name, want in expected.items():
        got = getattr(after, name)
        if got != want:
            raise InvalidInput(
                f"refused to write {doc.path}: {name} would read back as {got!r}, not {want!r}"
            )
    return after_raw


class SpecWriter:
    """The write side of one specs dir. Locks live under `data_dir`; `clock` is for tests."""

    def __init__(self, store: SpecStore, data_dir: Path, clock: Callable[[], str] = utc_now):
        self.store = store
        self.data_dir = Path(data_dir)
        self.clock = clock

    def update(
        self,
        catalog: Catalog,
        ref: object,
        change: SpecChange,
        *,
        expected_hash: str | None = None,
    ) -> WrittenSpec:
        declared = project_statuses(self.store.root)
        new_status = require_status(change.status, declared) if change.status is not None else None
        new_priority = require_priority(change.priority) if change.priority is not None else None
        tags_in = [check_tag(t) for t in change.add_tags]
        tags_out = {_removable_tag(t) for t in change.remove_tags}
        deps_in = [check_reference(d) for d in change.add_deps]
        deps_out = [check_reference(d) for d in change.remove_deps]
        assignee = check_assignee(change.assignee) if change.assignee is not None else None
        if not (
            new_status or new_priority or tags_in or tags_out or deps_in or deps_out or assignee
        ):
            raise InvalidInput(
                "nothing to update: give a status, priority, tag, dependency or assignee"
            )
        # Adding a dependency reads the whole graph; two writers adding opposite edges under
        # their own spec locks could each miss the other's edge and close a cycle together.
        graph_guard = named_lock(self.data_dir, GRAPH_LOCK) if deps_in else contextlib.nullcontext()
        with (
            graph_guard,
            locked_readme(catalog, self.data_dir, ref, expected_hash) as locked,
        ):
            graph_catalog = refreshed_catalog(self.store, catalog) if deps_in else catalog
            doc = EditableDocument.parse(locked.data, str(locked.path))
            before, meta = parse_frontmatter(doc)
            expected: dict[str, Any] = {}
            changes: list[dict[str, Any]] = []
            moved: list[str] = []
            if new_status is not None and new_status != meta.status:
                moved = self._set_status(doc, before, meta, new_status, expected, changes)
            if new_priority is not None and new_priority != meta.priority:
                doc.set_scalar("priority", new_priority)
                expected["priority"] = new_priority
                changes.append({"field": "priority", "old": meta.priority, "new": new_priority})
            if assignee is not None and assignee != meta.assignee:
                doc.set_scalar("assignee", assignee)
                expected["assignee"] = assignee
                changes.append({"field": "assignee", "old": meta.assignee, "new": assignee})
            self._edit_tags(doc, meta, tags_in, tags_out, expected, changes)
            self._edit_deps(
                doc, meta, locked.dir_name, graph_catalog, deps_in, deps_out, expected, changes
            )
            return self._finish(doc, before, expected, changes, locked, moved)

    def archive(
        self, catalog: Catalog, ref: object, *, expected_hash: str | None = None
    ) -> WrittenSpec:
        """Archive in place: status `archived` plus a transition; the directory does not move."""
        return self.update(catalog, ref, SpecChange(status="archived"), expected_hash=expected_hash)

    # -- pieces of an update ---------------------------------------------------------------------

    def _set_status(
        self,
        doc: EditableDocument,
        before: dict[str, Any],
        meta: Frontmatter,
        status: str,
        expected: dict[str, Any],
        changes: list[dict[str, Any]],
    ) -> list[str]:
        """Edit status, timestamps and transitions; return the texts of the oldest transitions
        it took out of the README (for OLDER_TRANSITIONS_FILE), oldest first."""
        now = self.clock()
        stamp_quote = doc.quote_style("at", "updated_at", "created_at", "completed_at")
        doc.set_scalar("status", status)
        doc.set_scalar("updated_at", now, plain=True, new_quote=stamp_quote)
        transition = {"status": status, "at": now}
        doc.append_mapping(
            "transitions",
            [("status", render_scalar(status)), ("at", render_scalar(now, stamp_quote, True))],
        )
        kept_raw = before.get("transitions")
        kept_raw = list(kept_raw) if isinstance(kept_raw, list) else []
        moved = doc.take_first_items(
            "transitions", doc.count_items("transitions") - KEEP_TRANSITIONS
        )
        if moved:
            kept_raw = kept_raw[len(moved) :]
            kept = normalize_frontmatter({"transitions": [*kept_raw, transition]}).transitions
        else:
            kept = [*meta.transitions, transition]
        expected.update(status=status, updated_at=now, transitions=kept)
        changes.append({"field": "status", "old": meta.status, "new": status})
        changes.append({"field": "transitions", "added": transition})
        if moved:
            changes.append(
                {"field": "transitions", "moved": len(moved), "to": OLDER_TRANSITIONS_FILE}
            )
        changes.append({"field": "updated_at", "old": meta.updated_at, "new": now})
        if status == "complete":
            doc.set_scalar("completed_at", now, plain=True, new_quote=stamp_quote)
            expected["completed_at"] = now
            changes.append({"field": "completed_at", "old": meta.completed_at, "new": now})
        return moved

    @staticmethod
    def _edit_tags(
        doc: EditableDocument,
        meta: Frontmatter,
        add: list[str],
        remove: set[str],
        expected: dict[str, Any],
        changes: list[dict[str, Any]],
    ) -> None:
        added = [t for t in dict.fromkeys(add) if t not in meta.tags and t not in remove]
        removed = [t for t in meta.tags if t in remove]
        if not (added or removed):
            return
        doc.remove_from_list("tags", set(removed))
        doc.add_to_list("tags", added)
        expected["tags"] = [t for t in meta.tags if t not in remove] + added
        changes.append({"field": "tags", "added": added, "removed": removed})

    def _edit_deps(
        self,
        doc: EditableDocument,
        meta: Frontmatter,
        name: str,
        catalog: Catalog,
        add: list[str],
        remove: list[str],
        expected: dict[str, Any],
        changes: list[dict[str, Any]],
    ) -> None:
        current = list(meta.depends_on)
        removed = []
        for ref in remove:
            target = catalog.try_resolve(ref)
            for raw in current:
                if raw == ref or (target is not None and catalog.try_resolve(raw) == target):
                    removed.append(raw)
        removed = list(dict.fromkeys(removed))
        kept = [raw for raw in current if raw not in removed]
        held = {catalog.try_resolve(raw) for raw in kept} - {None}
        graph = SpecGraph.from_catalog(catalog) if add else SpecGraph()
        added = []
        for ref in add:
            target = catalog.resolve_name(ref)
            if target in held:
                continue
            cycle = [name, name] if target == name else graph.would_cycle(name, target)
            if cycle:
                raise DependencyCycle(
                    f"depends_on: {name} -> {target} would close the cycle {' -> '.join(cycle)}"
                )
            graph.depends.setdefault(name, []).append(target)
            held.add(target)
            added.append(_dependency_text(target, current, catalog))
        if not (added or removed):
            return
        doc.remove_from_list("depends_on", set(removed))
        doc.add_to_list("depends_on", added)
        expected["depends_on"] = kept + added
        changes.append({"field": "depends_on", "added": added, "removed": removed})

    def _finish(
        self,
        doc: EditableDocument,
        before: dict[str, Any],
        expected: dict[str, Any],
        changes: list[dict[str, Any]],
        locked: LockedReadme,
        moved: Sequence[str] = (),
    ) -> WrittenSpec:
        files = []
        if changes:
            verify_edit(doc, before, expected)
            if moved:
                # First the older file, then the README: a crash between them leaves the moved
                # transitions in both, and the next move skips what the file already ends with.
                older = locked.directory / OLDER_TRANSITIONS_FILE
                append_older_transitions(older, moved, doc.newline)
                files.append(str(older))
            atomic_write(locked.path, doc.render())
            files.append(str(locked.path))
        spec = self.store.load(locked.directory, locked.archived)
        return WrittenSpec.of(spec, changes, files)


def refreshed_catalog(store: SpecStore, catalog: Catalog) -> Catalog:
    """The specs as the disk has them now, for the dependency graph: every README is re-read, but
    only those whose bytes changed since `catalog` are parsed again (a full scan parses all ~300
    and is held under the specs-wide graph lock). Sub-spec files of unchanged specs are not
    re-read: the graph lives in README frontmatter."""
    specs: list[Spec] = []
    problems: list[LoadProblem] = []
    broken: dict[str, LoadProblem] = {}
    seen: set[str] = set()
    for directory, archived in store.spec_dirs():
        name = directory.name
        if name in seen:
            return store.scan()  # a duplicate name: the full scan knows how to report it
        seen.add(name)
        old = catalog.by_name.get(name)
        if old is not None and old.archived_dir == archived:
            with contextlib.suppress(OSError):
                if content_hash((directory / "README.md").read_bytes()) == old.content_hash:
                    specs.append(old)
                    problems.extend(old.load_problems)
                    continue
        try:
            spec = store.load(directory, archived)
        except SpecParseError as err:
            broken[name] = LoadProblem.of(err, spec=name)
            problems.append(broken[name])
            continue
        specs.append(spec)
        problems.extend(spec.load_problems)
    return Catalog(store.root, specs, problems, broken)


def catalog_with(catalog: Catalog, spec: Spec) -> Catalog:
    """`catalog` with `spec` (as a write just loaded it) in place of its old self: what a full
    rescan would give when nothing else changed, at the cost of one spec instead of all."""
    name = spec.dir_name
    plain = Spec(**{f.name: getattr(spec, f.name) for f in fields(Spec)})
    specs = [s for s in catalog.specs if s.dir_name != name] + [plain]
    specs.sort(key=lambda s: (parse_dir_name(s.dir_name) or (0, ""), s.archived_dir))
    problems = [p for p in catalog.problems if p.spec != name] + list(spec.load_problems)
    broken = {key: value for key, value in catalog.broken.items() if key != name}
    return Catalog(catalog.root, specs, problems, broken, catalog.aliases)


def _dependency_text(target: str, existing: list[str], catalog: Catalog) -> str:
    """Write a new dependency the way the file already does: bare numbers when every existing
    entry is one (and the number is unique), else the full directory name."""
    parsed = parse_dir_name(target)
    if existing and parsed and all(raw.isascii() and raw.isdigit() for raw in existing):
        number = target.split("-", 1)[0]
        if catalog.try_resolve(number) == target:
            return number
    return target


def append_older_transitions(path: Path, texts: Sequence[str], newline: str = "\n") -> None:
    """Append transition items (YAML list items at column 0) to `path`, skipping the leading
    ones the file already ends with (left there by a write that crashed before its README)."""
    if path.is_symlink():
        raise UnsafeReference(f"refused: {path} is a symlink; specmem writes only real files")
    batch = "".join(texts)
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, 2) - len(batch.encode("utf-8"))))
            tail = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        tail = None
    skip = next(
        (n for n in range(len(texts), 0, -1) if tail and tail.endswith("".join(texts[:n]))), 0
    )
    data = "".join(texts[skip:])
    if tail is None:
        data = _OLDER_HEADER.replace("\n", newline) + data
    elif tail and not tail.endswith("\n"):
        data = newline + data  # a torn last line stays as it is, on a line of its own
    if not data:
        return
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(path, flags, 0o644), "ab") as handle:
        handle.write(data.encode("utf-8"))
        handle.flush()
        if atomic.DURABLE:
            os.fsync(handle.fileno())
