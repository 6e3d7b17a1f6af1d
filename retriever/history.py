"""A spec's history: its status transitions (frontmatter), its events (the log) and its commits
(git), in one list, newest first."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from ingest.specs.model import Spec

from .events import parse_timestamp

__all__ = [
    "merge_history",
    "merge_parsed",
    "parsed_transitions",
    "since_filter",
    "spec_transitions",
]

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
    return merge_parsed(parsed_transitions(transitions), events, limit, commits)


Dated = tuple[dt.datetime, dict[str, Any]]


def parsed_transitions(transitions: Sequence[Mapping[str, Any]]) -> tuple[Dated, ...]:
    """A spec's frontmatter transitions as history items with their moments: parsing is most of
    what merging costs, and a spec version's transitions never change (Spec.derive keeps them)."""
    items = [
        {"kind": "transition", "at": t.get("at") or None, "status": t.get("status")}
        for t in transitions
        if isinstance(t, Mapping)
    ]
    return tuple((_moment(item), item) for item in items)


def merge_parsed(
    transitions: Sequence[Dated],
    events: Sequence[Mapping[str, Any]],
    limit: int,
    commits: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """merge_history of transitions parsed already (parsed_transitions)."""
    dated: list[Dated] = [(moment, dict(item)) for moment, item in transitions]
    dated.extend((_moment(item), item) for item in ({"kind": "event", **e} for e in events))
    dated.extend((_moment(item), item) for item in (dict(commit) for commit in commits))
    # Ties on the moment go to the later item: frontmatter lists transitions oldest first.
    ordered = sorted(range(len(dated)), key=lambda i: (dated[i][0], i), reverse=True)
    return [dated[i][1] for i in ordered][: max(0, limit)]


def _moment(item: Mapping[str, Any]) -> dt.datetime:
    return parse_timestamp(item.get("at")) or _OLDEST


def since_filter(items: Sequence[dict[str, Any]], since: dt.datetime) -> list[dict[str, Any]]:
    """The items at or after `since`; an item whose time cannot be read is kept out."""
    return [item for item in items if _moment(item) >= since]


def spec_transitions(spec: Spec) -> tuple[Dated, ...]:
    """parsed_transitions of the spec's frontmatter, once per spec version."""
    return spec.derive("parsed_transitions", lambda: parsed_transitions(spec.meta.transitions))
