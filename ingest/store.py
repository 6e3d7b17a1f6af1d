"""Read a specs dir: discover spec directories, load them, and resolve references strictly.

Loading never stops at a broken spec: each file that cannot be read becomes a LoadProblem naming
the path and the reason, and every other spec still loads. Nothing outside the specs dir is read:
references are checked before they touch the filesystem, and symlinks that resolve outside the
root are refused.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AmbiguousSpecRef, SpecNotFound, SpecParseError, UnsafeReference
from .frontmatter import normalize_frontmatter, parse_yaml, split_document
from .model import LoadProblem, Spec, SpecFile, parse_dir_name
from .sections import document_title, split_lines

__all__ = [
    "ARCHIVE_DIR",
    "Catalog",
    "SpecStore",
    "check_reference",
    "content_hash",
    "is_inside",
    "read_spec_text",
]

ARCHIVE_DIR = "archived"
MAX_FILE_BYTES = 4 * 1024 * 1024
_SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def check_reference(ref: object) -> str:
    """Return `ref` as a clean reference, or raise UnsafeReference if it could name a path."""
    if not isinstance(ref, str | int):
        raise UnsafeReference(f"spec reference must be a string, not {type(ref).__name__}")
    text = str(ref).strip()
    if not text:
        raise UnsafeReference("spec reference is empty")
    if ".." in text or "/" in text or "\\" in text or "\x00" in text or not _SAFE_REF.match(text):
        raise UnsafeReference(
            f"spec reference {text[:80]!r} is not a spec directory name or number "
            "(references may not contain path separators or '..')"
        )
    return text


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
        raise SpecParseError(shown, "refused: the file resolves outside the specs dir")
    try:
        size = path.stat().st_size
    except OSError as err:
        raise SpecParseError(shown, f"cannot read: {err.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise SpecParseError(shown, f"file is {size} bytes, over the {MAX_FILE_BYTES}-byte limit")
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
        raise SpecParseError(shown, "binary file (contains NUL bytes), not markdown")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SpecParseError(shown, f"not valid UTF-8 (byte {err.start})", line) from None
    if not text.strip():
        raise SpecParseError(shown, "empty file")
    return text, raw, warnings


def _title(body: str, fallback: str) -> str:
    return document_title(split_lines(body)) or fallback


@dataclass
class Catalog:
    """Every spec of one scan, the problems met, and strict reference resolution."""

    root: Path
    specs: list[Spec] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)
    broken: dict[str, LoadProblem] = field(default_factory=dict)  # dir name -> why it failed

    def __post_init__(self) -> None:
        self.by_name: dict[str, Spec] = {s.dir_name: s for s in self.specs}
        self.by_number: dict[int, list[str]] = defaultdict(list)
        for name in sorted([*self.by_name, *self.broken]):
            parsed = parse_dir_name(name)
            if parsed:
                self.by_number[parsed[0]].append(name)

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def resolve_name(self, ref: object) -> str:
        """The directory name a reference means: exact name, or a number exactly one spec has."""
        text = check_reference(ref)
        if text in self.by_name or text in self.broken:
            return text
        if text.isdigit():
            names = self.by_number.get(int(text), [])
            if len(names) == 1:
                return names[0]
            if len(names) > 1:
                raise AmbiguousSpecRef(text, names)
        raise SpecNotFound(f"no spec {text!r} in {self.root}")

    def get(self, ref: object) -> Spec:
        name = self.resolve_name(ref)
        if name in self.broken:
            problem = self.broken[name]
            raise SpecParseError(problem.path, problem.reason, problem.line)
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

    def spec_dirs(self) -> Iterable[tuple[Path, bool]]:
        """(directory, lives-under-archived) for every NNN-slug directory, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for base, archived in ((self.root, False), (self.root / ARCHIVE_DIR, True)):
            if not base.is_dir():
                continue
            for child in base.iterdir():
                if parse_dir_name(child.name) and child.is_dir():
                    found.append((child, archived))
        return sorted(found, key=lambda item: (parse_dir_name(item[0].name), item[1]))

    def scan(self) -> Catalog:
        specs: list[Spec] = []
        problems: list[LoadProblem] = []
        broken: dict[str, LoadProblem] = {}
        seen: set[str] = set()
        for directory, archived in self.spec_dirs():
            name = directory.name
            if name in seen:
                problems.append(
                    LoadProblem(
                        str(directory),
                        "duplicate directory name (also outside archived/)",
                        spec=name,
                    )
                )
                continue
            seen.add(name)
            try:
                spec = self.load(directory, archived)
            except SpecParseError as err:
                problem = LoadProblem(err.path, err.reason, err.line, spec=name)
                problems.append(problem)
                broken[name] = problem
                continue
            specs.append(spec)
            problems.extend(spec.load_problems)
        return Catalog(self.root, specs, problems, broken)

    def load(self, directory: Path, archived: bool = False) -> Spec:
        parsed = parse_dir_name(directory.name)
        if parsed is None:
            raise SpecParseError(str(directory), "not a spec directory (expected NNN-slug)")
        if not is_inside(self.root, directory):
            raise SpecParseError(
                str(directory), "refused: the directory resolves outside the specs dir"
            )
        readme_path = directory / "README.md"
        if not readme_path.is_file():
            raise SpecParseError(str(readme_path), "missing README.md")
        name = directory.name
        text, raw, readme_warnings = read_spec_text(readme_path, self.root)
        notes = [_note(readme_path, message, name) for message in readme_warnings]
        doc = split_document(text)
        meta_raw = parse_yaml(doc.yaml_text, str(readme_path)) if doc.yaml_text is not None else {}
        meta = normalize_frontmatter(meta_raw)
        if doc.yaml_text is None:
            notes.append(LoadProblem(str(readme_path), "no frontmatter", spec=name))
        sub_files = []
        for path in sorted(directory.glob("*.md")):
            if path.name == "README.md" or not path.is_file():
                continue
            try:
                sub_text, sub_raw, sub_warnings = read_spec_text(path, self.root)
            except SpecParseError as err:
                notes.append(LoadProblem(err.path, err.reason, err.line, spec=name))
                continue
            notes.extend(_note(path, message, name) for message in sub_warnings)
            sub_files.append(SpecFile(path.name, path, sub_text, content_hash(sub_raw)))
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


def _note(path: Path, message: str, spec: str) -> LoadProblem:
    """A read_spec_text warning ("<path>: <reason>") as a LoadProblem naming that file."""
    prefix = f"{path}: "
    reason = message[len(prefix) :] if message.startswith(prefix) else message
    return LoadProblem(str(path), reason, spec=spec)
