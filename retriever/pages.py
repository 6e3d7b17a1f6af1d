"""One shape for a page of specs, whichever door lists them (issue 12).

HTTP answered `total`/`limit`, MCP `next_offset`, the CLI `count`: a client moving between doors
had to learn three. Every door now answers `specs`, `total`, `limit`, `offset` and
`next_offset` (None on the last page) from this one object; what a door adds (HTTP's problem
count, the CLI's problem list, MCP's compact spec fields) is that door's own policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ingest.specs.model import Spec

__all__ = ["LIST_LIMIT_DEFAULT", "LIST_LIMIT_MAX", "SpecPage"]

LIST_LIMIT_DEFAULT = 50
LIST_LIMIT_MAX = 500


@dataclass(frozen=True)
class SpecPage:
    specs: Sequence[Spec]  # the page
    total: int  # how many matched
    limit: int | None  # None: every match (the CLI's default)
    offset: int

    @classmethod
    def of(cls, matched: Sequence[Spec], limit: int | None, offset: int = 0) -> SpecPage:
        end = None if limit is None else offset + limit
        return cls(matched[offset:end], len(matched), limit, offset)

    @property
    def next_offset(self) -> int | None:
        after = self.offset + len(self.specs)
        return after if after < self.total else None

    def to_dict(self, shown: Callable[[Spec], dict[str, Any]] | None = None) -> dict[str, Any]:
        show = shown or (lambda spec: spec.summary())
        return {
            "specs": [show(spec) for spec in self.specs],
            "total": self.total,
            "limit": self.limit,
            "offset": self.offset,
            "next_offset": self.next_offset,
        }
