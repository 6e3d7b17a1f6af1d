"""Project metrics, as lean-spec's `stats` shows them: specs by status and priority, the
commonest tags, the share complete."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ingest.specs.model import Spec

__all__ = ["project_stats"]


def project_stats(specs: Sequence[Spec], problems: int) -> dict[str, Any]:
    """Over `specs` (archived ones included: they count by status, not in the total)."""
    live = [s for s in specs if not s.is_archived]
    statuses = Counter(s.meta.status or "unknown" for s in specs)
    return {
        "total": len(live),
        "archived": len(specs) - len(live),
        "by_status": dict(statuses.most_common()),
        "by_priority": dict(Counter(s.meta.priority or "none" for s in live).most_common()),
        "top_tags": dict(Counter(t for s in live for t in s.meta.tags).most_common(10)),
        "complete_share": round(statuses.get("complete", 0) / len(live), 3) if live else 0.0,
        "problems": problems,
    }
