"""Files that activity events already linked to specs: an agent's session that logged
`files_changed` on spec 045 says those files are 045's work."""

from __future__ import annotations

from collections.abc import Sequence

from ..events import EventStore

__all__ = ["linked_files"]

# SQLite's default limit on bound parameters is 999 on older builds; a request holds at most
# 1,000 files, so they are looked up in slices.
_SLICE = 500


def linked_files(events: EventStore, files: Sequence[str]) -> dict[str, set[str]]:
    """Each of `files` that an event names, to the specs of those events."""
    found: dict[str, set[str]] = {}
    wanted = [*dict.fromkeys(files)]
    if not wanted:
        return found
    with events.database.reader() as conn:
        if conn is None:
            return found
        for start in range(0, len(wanted), _SLICE):
            part = wanted[start : start + _SLICE]
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                "SELECT DISTINCT e.spec, f.value FROM events e, json_each(e.files_changed) f "
                f"WHERE f.value IN ({marks})",
                part,
            ).fetchall()
            for spec, path in rows:
                found.setdefault(path, set()).add(spec)
    return found
