"""`specmem ingest --watch`: re-index the specs a change touched, debounced.

An editor's save is often several events (write temp, rename, chmod) and `git checkout` is
hundreds; watchfiles groups everything within the debounce window (500 ms) into one batch, and
each batch becomes one incremental ingest of just the specs it touched. Only markdown files
inside spec directories, sub-folders included, and folders themselves (a deleted or renamed spec,
a moved folder of notes) count: the data dir, hidden files, editor swap files and stray files do
not wake the indexer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import SpecmemError
from ..specs.model import parse_dir_name
from ..specs.store import MAX_FOLDER_DEPTH, within_base

__all__ = ["DEBOUNCE_MS", "affected_specs", "spec_of_path", "watch_specs"]

DEBOUNCE_MS = 500
log = logging.getLogger(__name__)


def spec_of_path(root: Path, path: str | Path) -> str | None:
    """The spec dir name a changed path belongs to, or None when the change cannot matter:
    a markdown file or a folder in `<root>/NNN-x/` (or in an archive folder's `NNN-x/`), at
    any depth the store reads, or the spec dir itself."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return None
    parts = within_base(parts)
    if not parts or parse_dir_name(parts[0]) is None:
        return None
    inside = parts[1:]
    if not inside:
        return parts[0]  # the directory: created, deleted or renamed
    if len(inside) > MAX_FOLDER_DEPTH + 1 or any(part.startswith(".") for part in inside):
        return None
    if inside[-1].endswith(".md") or _is_folder(Path(path), inside[-1]):
        return parts[0]
    return None


def _is_folder(path: Path, name: str) -> bool:
    """A folder now, or (deleted or moved away, so nothing to ask) a name without a suffix: a
    moved folder of notes sends one event for the folder, none for the files inside it."""
    return "." not in name or path.is_dir()


def affected_specs(root: Path, changes: Iterable[tuple[Any, str]]) -> list[str]:
    """Sorted spec names touched by a batch of (change, path) pairs."""
    names = {spec_of_path(root, path) for _, path in changes}
    return sorted(name for name in names if name)


def watch_specs(
    specs_dir: str | Path,
    on_change: Callable[[list[str]], Any],
    *,
    debounce_ms: int = DEBOUNCE_MS,
    stop_event: Any = None,
    on_error: Callable[[SpecmemError], Any] | None = None,
) -> None:
    """Call `on_change(spec names)` after each debounced batch of relevant changes, until
    `stop_event` is set or Ctrl-C. A failing re-index, whatever it raised, is reported and
    watching goes on."""
    import watchfiles

    root = Path(specs_dir).absolute().resolve()

    def relevant(_change: Any, path: str) -> bool:
        return spec_of_path(root, path) is not None

    for changes in watchfiles.watch(
        root,
        watch_filter=relevant,
        debounce=debounce_ms,
        stop_event=stop_event,
        rust_timeout=1000,  # how often the stop event is checked
    ):
        names = affected_specs(root, changes)
        if not names:
            continue
        try:
            on_change(names)
        except SpecmemError as err:
            if on_error is None:
                log.error("re-index of %s failed: %s", ", ".join(names), err)
            else:
                on_error(err)
        except Exception:
            # A bug met on one batch (one odd file) must not end the watch: the next save of
            # the file, fixed, is a new batch that must still be indexed.
            log.exception("re-index of %s failed", ", ".join(names))
