"""Activity events: what agents and tools did on a spec, kept durably beside the index.

An observability tool (Devlog) or an orchestrator reports `{spec, type, agent, session_id, summary,
files_changed, at, data}`; specmem stores it in the event log, keeps a full-text index over the
summary and the changed files, and hands the events to `SpecMemory.history` so context bundles can
show what happened. The same database holds the HTTP idempotency keys
(retriever.http.idempotency) and Devlog's tables, so that an event and the key that asked for it
commit in one transaction.

Events are a log, not a cache (spec 084). Two engines hold it, with the same tables and the same
semantics (spec 093):

- `events.sqlite`, the embedded default (sqlite_log): SQLite in WAL mode, so readers never wait
  for the one writer, in `$SPECMEM_EVENTS_DIR` when set, else in the data dir beside the index,
  which `ingest --full` rebuilds around it without touching it. A process refuses every operation
  with `event_log_missing` once the file it opened is deleted or replaced.
- PostgreSQL, when `SPECMEM_EVENTS_URL=postgresql://…` names a database (postgres_log): for
  several hosts, or workers that should not share a file.
"""

from .errors import EventLogMissing, EventLogUnavailable
from .postgres_log import EVENTS_URL_ENV, PostgresDatabase
from .records import EVENT_FIELDS, Unreadable, normalize_event, parse_timestamp, utc_now
from .sqlite_log import EVENTS_DIR_ENV, WalDatabase
from .store import EventDatabase, EventHook, EventStore, event_log_path, open_event_log

__all__ = [
    "EVENTS_DIR_ENV",
    "EVENTS_URL_ENV",
    "EVENT_FIELDS",
    "EventDatabase",
    "EventHook",
    "EventLogMissing",
    "EventLogUnavailable",
    "EventStore",
    "PostgresDatabase",
    "Unreadable",
    "WalDatabase",
    "event_log_path",
    "normalize_event",
    "open_event_log",
    "parse_timestamp",
    "utc_now",
]
