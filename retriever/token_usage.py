"""How many tokens a spec (every file) or one file inside the specs dir costs, per `##` section.

A target is a spec reference (`045`, `045-unified-dashboard`) or a path. Paths are checked before
anything is read: they must resolve, symlinks followed, inside the specs dir, or the answer is
UnsafeReference, so `tokens /etc/passwd` cannot be used to read or probe files elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.errors import SpecNotFound, UnsafeReference
from ingest.index.tokens import count_tokens, section_tokens
from ingest.specs.store import Catalog, check_reference, is_inside, read_spec_text, within_base

__all__ = ["every_spec_tokens", "resolve_specs_file", "token_usage"]


def resolve_specs_file(root: Path, target: str, cwd: Path | None = None) -> Path:
    """The file `target` names inside `root`, or UnsafeReference / SpecNotFound.

    A relative path is read relative to the specs dir, or, failing that, to the working directory
    (so `specs/045-x/README.md` typed at the repo root works). Either way it must stay inside.
    """
    if "\x00" in target:
        raise UnsafeReference("file path contains a NUL byte")
    raw = Path(target).expanduser()
    candidates = [raw] if raw.is_absolute() else [root / raw, (cwd or Path.cwd()) / raw]
    for candidate in candidates:
        if not is_inside(root, candidate):
            continue
        if candidate.is_file():
            return candidate
    if not any(is_inside(root, candidate) for candidate in candidates):
        raise UnsafeReference(f"{target!r} is outside the specs dir {root}; refusing to read it")
    raise SpecNotFound(f"no file {target!r} in the specs dir {root}")


def _spec_of(relative: Path) -> str | None:
    """The spec dir a file (relative to the specs dir) sits in, at any depth, if any."""
    folders = within_base(relative.parts[:-1])
    return folders[0] if folders else None


def _file_entry(
    name: str, path: Path, text: str, encoding: str, threshold: int | None
) -> dict[str, Any]:
    tokens = count_tokens(text, encoding)
    return {
        "file": name,
        "path": str(path),
        "tokens": tokens,
        "over_threshold": threshold is not None and tokens > threshold,
        "sections": [
            {"heading": s.heading, "line": s.line, "tokens": s.tokens}
            for s in section_tokens(text, encoding)
        ],
    }


def token_usage(
    catalog: Catalog,
    target: str,
    *,
    encoding: str,
    threshold: int | None = None,
    cwd: Path | None = None,
) -> dict[str, Any]:
    """Tokens per file and per section of a spec (by reference) or of one file (by path)."""
    looks_like_path = "/" in target or "\\" in target or target.endswith(".md")
    files: list[dict[str, Any]] = []
    spec_name: str | None = None
    if not looks_like_path:
        check_reference(target)
        spec = catalog.get(target)
        spec_name = spec.dir_name
        for spec_file in [spec.readme, *spec.sub_files]:
            files.append(
                _file_entry(spec_file.name, spec_file.path, spec_file.text, encoding, threshold)
            )
    else:
        path = resolve_specs_file(catalog.root, target, cwd)
        text, _raw, _warnings = read_spec_text(path, catalog.root)
        relative = path.resolve().relative_to(catalog.root)
        spec_name = _spec_of(relative)
        files.append(_file_entry(str(relative), path, text, encoding, threshold))
    return {
        "target": target,
        "spec": spec_name,
        "encoding": encoding,
        "threshold": threshold,
        "total": sum(f["tokens"] for f in files),
        "files": files,
    }


def every_spec_tokens(catalog: Catalog, *, encoding: str, threshold: int | None) -> dict[str, Any]:
    """Each spec's total tokens (all its files), largest first, and the sum."""
    rows = []
    for spec in catalog.specs:
        usage = token_usage(catalog, spec.dir_name, encoding=encoding, threshold=threshold)
        rows.append({"spec": spec.dir_name, "tokens": usage["total"], "files": len(usage["files"])})
    rows.sort(key=lambda row: (-row["tokens"], row["spec"]))
    return {"specs": rows, "total": sum(row["tokens"] for row in rows), "encoding": encoding}
