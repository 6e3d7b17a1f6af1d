"""A spec's history: its status transitions (frontmatter), its events (the log) and its commits
(git), in one list, newest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from .events import parse_timestamp

__all__ = ["merge_history", "since_filter"]

_OLDEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def merge_history(
    transitions: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    limit: int,
    commits: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Transitions, events and commits in one list, newest first, at most `limit`.

    Timestamps come from different writers in different shapes (`2025-11-05`, `...Z`, offsets),
    so items are ordered by their parsed UTC moment; unreadable ones (and moments UTC cannot
    hold) sort last.
    """
    items: list[dict[str, Any]] = [
        {"kind": "transition", "at": t.get("at") or None, "status": t.get("status")}
        for t in transitions
        if isinstance(t, Mapping)
    ]
    items.extend({"kind": "event", **event} for event in events)
    items.extend(dict(commit) for commit in commits)

    def moment(item: dict[str, Any]) -> dt.datetime:
        return parse_timestamp(item.get("at")) or _OLDEST

    # Ties on the moment go to the later item: frontmatter lists transitions oldest first.
    ordered = sorted(enumerate(items), key=lambda pair: (moment(pair[1]), pair[0]), reverse=True)
    return [item for _, item in ordered][: max(0, limit)]


def since_filter(items: Sequence[dict[str, Any]], since: dt.datetime) -> list[dict[str, Any]]:
    """The items at or after `since`; an item whose time cannot be read is kept out."""
    return [item for item in items if (parse_timestamp(item.get("at")) or _OLDEST) >= since]
