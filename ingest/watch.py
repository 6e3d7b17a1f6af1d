"""`specmem ingest --watch`: re-index the specs a change touched, debounced.

An editor's save is often several events (write temp, rename, chmod) and `git checkout` is
hundreds; watchfiles groups everything within the debounce window (500 ms) into one batch, and
each batch becomes one incremental ingest of just the specs it touched. Only markdown files
inside spec directories (and spec directories themselves, for a deleted or renamed spec) count:
the data dir, editor swap files and stray files do not wake the indexer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import SpecmemError
from .model import parse_dir_name
from .store import ARCHIVE_DIR

__all__ = ["DEBOUNCE_MS", "affected_specs", "spec_of_path", "watch_specs"]

DEBOUNCE_MS = 500
log = logging.getLogger(__name__)


def spec_of_path(root: Path, path: str | Path) -> str | None:
    """The spec dir name a changed path belongs to, or None when the change cannot matter:
    `<root>/NNN-x/*.md`, `<root>/archived/NNN-x/*.md`, or the spec dir itself."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return None
    if parts and parts[0] == ARCHIVE_DIR:
        parts = parts[1:]
    if not parts or parse_dir_name(parts[0]) is None:
        return None
    if len(parts) == 1:
        return parts[0]  # the directory: created, deleted or renamed
    if len(parts) == 2 and parts[1].endswith(".md") and not parts[1].startswith("."):
        return parts[0]
    return None


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
    `stop_event` is set or Ctrl-C. A failing re-index is reported and watching goes on."""
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
