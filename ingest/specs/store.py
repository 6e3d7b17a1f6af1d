"""Read a specs dir: discover spec directories, load them, and resolve references strictly.

Spec dirs live in the specs dir, in its date folders (LeanSpec's date-grouped layout,
`specs/20251101/001-x/`) and in its archive folders (ARCHIVE_DIRS). A spec is its
README.md plus every other markdown file in its dir, sub-folders included (`research/evals.md`),
each named by its POSIX path relative to the spec dir. Every other folder there is reported, not
skipped (hidden ones aside), and a symlink to another spec dir is an alias, never a second spec
(spec 008).

Loading never stops at a broken spec: each file that cannot be read becomes a LoadProblem naming
the path and the reason, and every other spec still loads. Nothing outside the specs dir is read:
references are checked before they touch the filesystem, and symlinks that resolve outside the
root are refused.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ..errors import AmbiguousSpecRef, SpecNotFound, SpecParseError, UnsafeReference
from .frontmatter import normalize_frontmatter, parse_yaml, split_document
from .model import (
    NOT_A_SPEC_NAME,
    LoadProblem,
    Spec,
    SpecFile,
    derive_once,
    dir_name_code,
    dir_name_problem,
    parse_dir_name,
    reference_problem,
)
from .sections import document_title, split_lines

T = TypeVar("T")

__all__ = [
    "ARCHIVE_DIRS",
    "MAX_FOLDER_DEPTH",
    "MAX_SPEC_FILES",
    "Catalog",
    "DirListing",
    "SpecDirState",
    "SpecFiles",
    "SpecStore",
    "check_file_name",
    "check_reference",
    "content_hash",
    "is_inside",
    "list_spec_files",
    "read_spec_text",
    "shown",
    "spec_bases",
    "within_base",
]

# LeanSpec moves finished specs to `archived/`; some projects name that folder `_archived/`.
ARCHIVE_DIRS = ("archived", "_archived")
# LeanSpec's date-grouped layout puts spec dirs in a folder per day (`structure.dateFormat`).
DATE_GROUP = re.compile(r"^(?:\d{8}|\d{4}-\d{2}-\d{2})$")
MAX_FILE_BYTES = 4 * 1024 * 1024
# Bounds on one spec dir's tree, so a vendored folder or a link farm cannot make every scan slow:
# real specs keep their notes one or two folders down and a few dozen files at most.
MAX_FOLDER_DEPTH = 4
MAX_SPEC_FILES = 256  # README.md included
MAX_FILE_NAME = 1024
# Folders tools leave beside specs; hidden ones (`.templates`, `.lean-spec`, `.git`) are skipped too.
_QUIET_DIRS = frozenset({"__pycache__", "node_modules"})


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def check_reference(ref: object) -> str:
    """Return `ref` as a clean reference, or raise UnsafeReference if it could name a path."""
    if not isinstance(ref, str | int):
        raise UnsafeReference(f"spec reference must be a string, not {type(ref).__name__}")
    if isinstance(ref, int) and ref.bit_length() > 64:
        raise UnsafeReference("spec reference is an integer far past any spec number")
    text = str(ref).strip()
    if not text:
        raise UnsafeReference("spec reference is empty")
    problem = reference_problem(text)
    if problem is not None:
        raise UnsafeReference(
            f"spec reference {shown(text[:80])!r} is not a spec directory name or number: "
            f"{problem} (references may not contain path separators or '..')"
        )
    return text


def shown(text: str) -> str:
    """A path or name as safe text for messages and JSON: undecodable bytes as `\\xNN`, control
    and invisible characters as escapes, so a hostile directory name cannot forge output."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte (from JSON, say)
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")
        else c
        for c in text
    )


def check_file_name(name: object) -> str:
    """`name` as a spec file's name (POSIX, relative to the spec dir, e.g. `research/evals.md`),
    or UnsafeReference. Callers look the name up among the files a spec has and never join it
    onto a path; refusing `..`, absolute names and backslashes too means a slip there still
    cannot leave the spec dir."""
    if not isinstance(name, str):
        raise UnsafeReference(f"file name must be a string, not {type(name).__name__}")
    parts = name.split("/")
    if (
        not name
        or len(name) > MAX_FILE_NAME
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UnsafeReference(
            f"file name {name[:80]!r} is not a spec file name "
            "(a path relative to the spec dir, such as DESIGN.md or research/evals.md)"
        )
    return name


def is_inside(root: Path, path: Path) -> bool:
    """Whether `path`, symlinks resolved, lies inside `root` (itself already resolved)."""
    try:
        path.resolve().relative_to(root)
    except (ValueError, OSError):
        return False
    return True


def read_spec_text(path: Path, root: Path) -> tuple[str, bytes, list[str]]:
    """Read one markdown file as text: (text, raw bytes, warnings). Raises SpecParseError."""
    shown = str(path)
    if not is_inside(root, path):
        raise SpecParseError(
            shown, "refused: the file resolves outside the specs dir", problem="outside-specs-dir"
        )
    try:
        size = path.stat().st_size
    except OSError as err:
        raise SpecParseError(shown, f"cannot read: {err.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise SpecParseError(
            shown,
            f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit",
            problem="file-too-large",
        )
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SpecParseError(shown, f"cannot read: {err.strerror}") from None
    warnings = []
    data = raw
    if data.startswith(b"\xef\xbb\xbf"):
        warnings.append(f"{shown}: starts with a UTF-8 byte-order mark")
        data = data[3:]
    if b"\x00" in data:
        raise SpecParseError(
            shown, "binary file (contains NUL bytes), not markdown", problem="file-binary"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SpecParseError(
            shown, f"not valid UTF-8 (byte {err.start})", line, problem="file-not-utf8"
        ) from None
    if not text.strip():
        raise SpecParseError(shown, "empty file", problem="file-empty")
    return text, raw, warnings


def spec_bases(root: Path) -> list[tuple[Path, bool]]:
    """(folder, holds archived specs) of every folder spec dirs live in: the root, its date
    folders by name, then each archive folder. The one list every walk over spec dirs uses."""
    try:
        with os.scandir(root) as scan:
            dates = sorted(e.name for e in scan if DATE_GROUP.match(e.name) and e.is_dir())
    except OSError:
        dates = []
    return [
        (root, False),
        *((root / name, False) for name in dates),
        *((root / name, True) for name in ARCHIVE_DIRS),
    ]


def within_base(parts: tuple[str, ...]) -> tuple[str, ...]:
    """A path's parts relative to the specs dir, less a leading archive or date folder: what
    starts with the spec dir's name."""
    if parts and (parts[0] in ARCHIVE_DIRS or DATE_GROUP.match(parts[0])):
        return parts[1:]
    return parts


@dataclass
class SpecFiles:
    """The markdown files of one spec dir, in reading order, and what the walk left unread."""

    found: list[tuple[str, str]] = field(default_factory=list)  # (name, path); POSIX name
    left_out: list[tuple[str, str, str]] = field(default_factory=list)  # (path, reason, code)
    truncated: bool = False  # MAX_SPEC_FILES was reached with files still to come


@dataclass(frozen=True)
class SpecDirState:
    """One spec dir as change detection sees it: which markdown files, at which (mtime, size)."""

    name: str
    directory: Path
    archived: bool
    files: dict[str, tuple[int, int]]  # file name relative to the spec dir -> (mtime_ns, size)


def list_spec_files(directory: Path, root: Path) -> SpecFiles:
    """Every markdown file of a spec dir, README.md included, each named relative to the dir.

    Each folder's files come by name, then its sub-folders by name, so the order (and which
    files a bound leaves out) is the same on every machine. Names starting with "." are editor,
    VCS and tool state, never spec text. A file that links outside `root` is listed (reading it
    is refused and reported); a folder that does is not entered.
    """
    listing = SpecFiles()
    _walk(listing, str(directory), "", 0, root)
    return listing


def _walk(listing: SpecFiles, folder: str, prefix: str, depth: int, root: Path) -> None:
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
    except OSError as err:
        listing.left_out.append((folder, f"cannot read: {err.strerror}", "file-unreadable"))
        return
    folders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.name.endswith(".md") and _entry_is(entry.is_file):
            if len(listing.found) >= MAX_SPEC_FILES:
                reason = (
                    f"over the {MAX_SPEC_FILES}-file limit for one spec: it and the rest unread"
                )
                listing.left_out.append((entry.path, reason, "files-over-limit"))
                listing.truncated = True
                return
            listing.found.append((prefix + entry.name, entry.path))
        elif _entry_is(entry.is_dir):
            folders.append(entry)
    for entry in folders:
        if listing.truncated:
            return
        refused = _refusal(entry, folder, depth, root)
        if refused is not None:
            listing.left_out.append((entry.path, *refused))
            continue
        _walk(listing, entry.path, f"{prefix}{entry.name}/", depth + 1, root)


def _sub_folders(folder: str, depth: int, root: Path) -> list[Path]:
    """The sub-folders `_walk` enters below `folder`, whether or not they hold markdown yet."""
    try:
        with os.scandir(folder) as scan:
            entries = [e for e in scan if not e.name.startswith(".") and _entry_is(e.is_dir)]
    except OSError:
        return []
    found = []
    for entry in entries:
        if _refusal(entry, folder, depth, root) is None:
            found.append(Path(entry.path))
            found.extend(_sub_folders(entry.path, depth + 1, root))
    return found


def _refusal(
    entry: os.DirEntry[str], parent: str, depth: int, root: Path
) -> tuple[str, str] | None:
    """Why the walk must not enter this sub-folder, and validate's code for it; or None."""
    if depth >= MAX_FOLDER_DEPTH:
        reason = f"folder over the {MAX_FOLDER_DEPTH}-level depth limit for one spec: not read"
        return reason, "files-over-limit"
    if not _entry_is(entry.is_symlink):
        return None
    if not is_inside(root, Path(entry.path)):
        return "refused: the directory resolves outside the specs dir", "outside-specs-dir"
    target = os.path.realpath(entry.path)
    if os.path.commonpath([target, os.path.realpath(parent)]) == target:
        return "refused: the directory links back to a folder that holds it", "folder-link-loop"
    return None


def _entry_is(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except OSError:
        return False


def _title(body: str, fallback: str) -> str:
    return document_title(split_lines(body)) or fallback


@dataclass
class DirListing:
    """What a walk over the spec folders found: spec dirs, aliases, and the folders that are not
    specs, each a LoadProblem naming it and why."""

    dirs: list[tuple[Path, bool]] = field(default_factory=list)  # (directory, archived)
    aliases: dict[str, str] = field(default_factory=dict)  # alias name -> the spec's name
    problems: list[LoadProblem] = field(default_factory=list)


class _Found(NamedTuple):
    parsed: tuple[int, str]
    rank: int  # which spec base: the specs dir first, then each archive folder
    path: str
    archived: bool
    is_link: bool

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


@dataclass
class Catalog:
    """Every spec of one scan, the problems met, and strict reference resolution."""

    root: Path
    specs: list[Spec] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    broken: dict[str, LoadProblem] = field(default_factory=dict)  # dir name -> why it failed
    # A symlink to another spec dir is no second spec (spec 008): alias name -> the spec's name.
    aliases: dict[str, str] = field(default_factory=dict)
    # What readers derive from this version of the whole catalog (the section index, the
    # graph): it lives and dies with the version, as a Spec's `derived` does (spec 077).
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def derive(self, kind: str, compute: Callable[[], T]) -> T:
        """`compute()` once per catalog version and `kind`."""
        return derive_once(self.derived, kind, compute)

    def __post_init__(self) -> None:
        self.by_name: dict[str, Spec] = {s.dir_name: s for s in self.specs}
        self.by_number: dict[int, list[str]] = defaultdict(list)
        # Names outside ASCII by their NFC form: macOS hands out `café` decomposed (NFD), a person
        # or a YAML file types it composed, and both must name the same spec.
        self.by_nfc: dict[str, list[str]] = defaultdict(list)
        for name in sorted([*self.by_name, *self.broken]):
            parsed = parse_dir_name(name)
            if parsed:
                self.by_number[parsed[0]].append(name)
            if not name.isascii():
                self.by_nfc[unicodedata.normalize("NFC", name)].append(name)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def resolve_name(self, ref: object) -> str:
        """The directory name a reference means: exact name, or a number exactly one spec has."""
        text = check_reference(ref)
        if text in self.by_name or text in self.broken:
            return text
        if text in self.aliases:
            target = self.aliases[text]
            raise UnsafeReference(
                f"refused: {text} is a symlink alias of spec {target}, not a spec of its own; "
                f"name {target}"
            )
        if text.isascii() and text.isdigit():  # `str.isdigit()` alone takes `٤٥` and `４５` too
            names = self.by_number.get(int(text), [])
        else:
            names = self.by_nfc.get(unicodedata.normalize("NFC", text), [])
        if len(names) == 1:
            return names[0]
        if len(names) > 1:
            raise AmbiguousSpecRef(text, names)
        raise SpecNotFound(f"no spec {text!r} in {self.root}")

    def get(self, ref: object) -> Spec:
        name = self.resolve_name(ref)
        if name in self.broken:
            problem = self.broken[name]
            raise SpecParseError(problem.path, problem.reason, problem.line, problem=problem.code)
        return self.by_name[name]

    def try_resolve(self, ref: str) -> str | None:
        """For links inside specs: the target's name, or None when dangling or ambiguous."""
        try:
            return self.resolve_name(ref)
        except (SpecNotFound, AmbiguousSpecRef, UnsafeReference):
            return None


class SpecStore:
    """The specs dir on disk. Reads are stateless: each `scan()` sees the files as they are now."""

    def __init__(self, specs_dir: str | Path):
        self.root = Path(specs_dir).absolute().resolve()

    def spec_dirs(self) -> list[tuple[Path, bool]]:
        """(directory, lives in an archive folder) for every spec dir: by number, and for one
        name the specs dir's own before the archive folders' (the first one wins)."""
        return self.listing().dirs

    def listing(self) -> DirListing:
        """Every folder in the specs dir and its archive folders: the spec dirs, and a problem
        for each other one (a name no reference can name, a folder without a number, a link
        to nothing, an alias of another spec dir). Hidden folders, the archive folders
        themselves and _QUIET_DIRS are skipped without a word; so are plain files."""
        listing = DirListing()
        found = []
        for rank, (base, archived) in enumerate(spec_bases(self.root)):
            try:
                with os.scandir(base) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name)
            except OSError:
                continue  # no such archive folder, or the specs dir itself is missing
            for entry in entries:
                name = entry.name
                if (
                    name.startswith(".")
                    or name in _QUIET_DIRS
                    or (rank == 0 and (name in ARCHIVE_DIRS or DATE_GROUP.match(name)))
                ):
                    continue
                is_dir, is_link = _entry_is(entry.is_dir), _entry_is(entry.is_symlink)
                problem = dir_name_problem(name)
                if problem is not None:
                    if is_dir:
                        code = dir_name_code(name)
                        listing.problems.append(LoadProblem(shown(entry.path), problem, code=code))
                    continue
                number, slug = name.split("-", 1)  # dir_name_problem found NNN-slug
                if not is_dir:
                    if is_link:
                        reason = "cannot read: a symlink to nothing (or to a file), not a spec dir"
                        listing.problems.append(LoadProblem(entry.path, reason, spec=name))
                    continue
                found.append(_Found((int(number), slug), rank, entry.path, archived, is_link))
        found.sort(key=lambda item: (item.parsed, item.rank))
        kept = self._without_aliases(found, listing)
        listing.dirs = [(Path(item.path), item.archived) for item in kept]
        return listing

    def _without_aliases(self, found: list[_Found], listing: DirListing) -> list[_Found]:
        """`found` less each symlink to a directory another entry already is: one directory is
        one spec, whatever names point at it. Real folders claim their directory first, then
        links in listing order; a link to the specs dir or an archive folder is no spec."""
        real_bases = {str(base): os.path.realpath(base) for base, _ in spec_bases(self.root)}
        owner: dict[str, _Found] = {}
        for item in found:
            if not item.is_link:
                base, name = os.path.split(item.path)
                owner.setdefault(os.path.join(real_bases[base], name), item)
        kept = []
        for item in found:
            if not item.is_link:
                kept.append(item)
                continue
            real = os.path.realpath(item.path)
            if real in real_bases.values():
                reason = "alias of the specs dir or an archive folder (a symlink to it): not read"
                listing.problems.append(
                    LoadProblem(item.path, reason, spec=item.name, code="dir-alias")
                )
                continue
            first = owner.setdefault(real, item)
            if first is item:
                kept.append(item)
                continue
            reason = (
                f"alias of {first.name} (a symlink to the same directory): not a second spec "
                f"and never written through; name {first.name}"
            )
            listing.problems.append(
                LoadProblem(item.path, reason, spec=item.name, code="dir-alias")
            )
            if first.name != item.name:  # same name in another base: that name is the spec's
                listing.aliases[item.name] = first.name
        return kept

    def watched_folders(self) -> list[Path]:
        """Every folder whose change can change a scan: the specs dir, its archive folders, each
        spec dir and each sub-folder its walk enters (ingest.index.dir_watch watches them)."""
        folders = [base for base, _ in spec_bases(self.root) if base.is_dir()]
        for directory, _ in self.spec_dirs():
            folders.append(directory)
            folders.extend(_sub_folders(str(directory), 0, self.root))
        return folders

    def file_states(self) -> list[SpecDirState]:
        """Every spec dir with the (mtime_ns, size) of each markdown file `load` would read: what
        change detection compares, without reading a byte."""
        states = []
        for directory, archived in self.spec_dirs():
            files = {}
            for name, path in list_spec_files(directory, self.root).found:
                try:
                    stat = os.stat(path)
                except OSError:
                    continue  # vanished, or a dangling link: loading it reports why
                files[name] = (stat.st_mtime_ns, stat.st_size)
            states.append(SpecDirState(directory.name, directory, archived, files))
        return states

    def scan(self) -> Catalog:
        specs: list[Spec] = []
        problems: list[LoadProblem] = []
        broken: dict[str, LoadProblem] = {}
        seen: set[str] = set()
        listing = self.listing()
        for directory, archived in listing.dirs:
            name = directory.name
            if name in seen:
                problems.append(
                    LoadProblem(
                        str(directory),
                        "duplicate directory name (the specs dir or another archive folder "
                        "has a spec dir of this name too)",
                        spec=name,
                        code="dir-duplicate",
                    )
                )
                continue
            seen.add(name)
            try:
                spec = self.load(directory, archived)
            except SpecParseError as err:
                problem = LoadProblem.of(err, spec=name)
                problems.append(problem)
                broken[name] = problem
                continue
            specs.append(spec)
            problems.extend(spec.load_problems)
        problems.extend(listing.problems)
        return Catalog(self.root, specs, problems, broken, listing.aliases)

    def load(self, directory: Path, archived: bool = False) -> Spec:
        parsed = parse_dir_name(directory.name)
        if parsed is None:
            reason = dir_name_problem(directory.name) or NOT_A_SPEC_NAME
            code = dir_name_code(directory.name)
            raise SpecParseError(shown(str(directory)), reason, problem=code)
        if not is_inside(self.root, directory):
            raise SpecParseError(
                str(directory),
                "refused: the directory resolves outside the specs dir",
                problem="outside-specs-dir",
            )
        readme_path = directory / "README.md"
        if not readme_path.is_file():
            raise SpecParseError(str(readme_path), "missing README.md", problem="readme-missing")
        name = directory.name
        text, raw, readme_warnings = read_spec_text(readme_path, self.root)
        notes = [_note(readme_path, message, name) for message in readme_warnings]
        doc = split_document(text)
        meta_raw = parse_yaml(doc.yaml_text, str(readme_path)) if doc.yaml_text is not None else {}
        meta = normalize_frontmatter(meta_raw)
        if doc.unclosed:
            reason = "the frontmatter's opening `---` is never closed by a second `---` line"
            notes.append(
                LoadProblem(str(readme_path), reason, 1, spec=name, code="frontmatter-missing")
            )
        elif doc.yaml_text is None:
            notes.append(
                LoadProblem(
                    str(readme_path), "no frontmatter", spec=name, code="frontmatter-missing"
                )
            )
        sub_files = self._sub_files(directory, notes)
        number, slug = parsed
        return Spec(
            dir_name=directory.name,
            number=number,
            slug=slug,
            path=directory,
            title=_title(doc.body, directory.name),
            meta=meta,
            body=doc.body,
            body_start_line=doc.body_start_line,
            readme=SpecFile("README.md", readme_path, text, content_hash(raw)),
            sub_files=sub_files,
            archived_dir=archived,
            warnings=[str(note) for note in notes],
            load_problems=notes,
        )

    def _sub_files(self, directory: Path, notes: list[LoadProblem]) -> list[SpecFile]:
        """Every markdown file but the README; each one that cannot be read becomes a note."""
        spec = directory.name
        listing = list_spec_files(directory, self.root)
        notes.extend(
            LoadProblem(path, reason, spec=spec, code=code)
            for path, reason, code in listing.left_out
        )
        sub_files = []
        for name, shown in listing.found:
            if name == "README.md":
                continue
            path = Path(shown)
            try:
                text, raw, warnings = read_spec_text(path, self.root)
            except SpecParseError as err:
                notes.append(LoadProblem.of(err, spec=spec))
                continue
            notes.extend(_note(path, message, spec) for message in warnings)
            sub_files.append(SpecFile(name, path, text, content_hash(raw)))
        return sub_files


def _note(path: Path, message: str, spec: str) -> LoadProblem:
    """A read_spec_text warning ("<path>: <reason>") as a LoadProblem naming that file."""
    prefix = f"{path}: "
    reason = message[len(prefix) :] if message.startswith(prefix) else message
    return LoadProblem(str(path), reason, spec=spec, code="bom")
