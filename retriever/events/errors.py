"""The event log's own failures: both are 503s, the log is there to be fixed, not the request."""

from __future__ import annotations

from ingest.errors import BackendUnavailable


class EventLogMissing(BackendUnavailable):
    """The log this process opened was deleted or replaced underneath it (HTTP 503)."""

    code = "event_log_missing"


class EventLogUnavailable(BackendUnavailable):
    """SQLite could not read or write the log: disk full, read-only, locked too long (HTTP 503)."""

    code = "event_log_unavailable"
