"""Devlog's events as Devlog sends them, kept whole, and each session linked to a spec.

Devlog's collector (codervisor/devlog, `internal/client`) posts `POST {base}/api/events/batch`
with a bare JSON array of events and `POST {base}/api/events` with one, `Authorization: Bearer`,
and retries a whole batch on any non-2xx answer. An event is camelCase (`id`, `timestamp`,
`eventType`, `agentId`, `agentVersion`, `sessionId`, `projectId`, optional `machineId`,
`workspaceId`, `legacyProjectId`, `context`, `data`, `metrics`) and names no spec.

So each event is stored in the event log's `events` table as it came (the whole event is the
row's `data`), with a short summary and the files it names for full-text search, under no spec
(`spec` empty) until its session is linked. A session is linked by attribution
(retriever.attribution) over what its events carry together: prompts and commands as text,
file paths, the branch and the commit; the link keeps the confidence and the evidence. Linked
events take their spec and so appear in its history, its bundles and event search. Unlinked
ones stay stored and searchable, and `relink` attributes every session again (after the specs
changed, or a better model). The event `id` is the idempotency key: a retried batch stores
nothing twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ingest.errors import InvalidInput, SpecmemError

from .attribution.evidence import Attribution
from .events import EventStore, normalize_event, parse_timestamp, utc_now
from .request_model import AttributionRequest

Attribute = Callable[[AttributionRequest], Attribution]

__all__ = [
    "DEVLOG_BATCH_MAX",
    "DEVLOG_TYPES",
    "DevlogEvent",
    "DevlogLog",
    "SessionWork",
]

DEVLOG_BATCH_MAX = 1_000  # Devlog's own API takes at most 1,000 events per batch
DEVLOG_TYPES = (
    "llm_request",
    "llm_response",
    "tool_use",
    "file_read",
    "file_write",
    "file_modify",
    "command_execution",
    "user_interaction",
    "error_encountered",
    "session_start",
    "session_end",
)
_TEXT_KEYS = ("prompt", "command", "message", "summary", "title", "description")
_FILE_KEYS = ("filePath", "path", "file")
_FILES_KEYS = ("files", "filePaths", "filesChanged")
_SUMMARY_CHARS = 300
_NO_NUL = r"^[^\x00]*$"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS devlog_events (
    event_id TEXT PRIMARY KEY,
    row_id INTEGER NOT NULL,
    session_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS devlog_by_session ON devlog_events (session_id);
CREATE TABLE IF NOT EXISTS session_links (
    session_id TEXT PRIMARY KEY,
    spec TEXT,
    confidence REAL NOT NULL,
    evidence TEXT NOT NULL,
    linked_at TEXT NOT NULL
);
"""
# The same tables on PostgreSQL: byte order for the session list, eight-byte ids and confidences.
_POSTGRES_SCHEMA = (
    _SCHEMA.replace("INTEGER", "BIGINT")
    .replace("REAL", "DOUBLE PRECISION")
    .replace("session_id TEXT", 'session_id TEXT COLLATE "C"')
)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="allow")
    tokenCount: int | None = Field(None, ge=0)
    durationMs: float | None = Field(None, ge=0)
    promptTokens: int | None = Field(None, ge=0)
    responseTokens: int | None = Field(None, ge=0)
    cost: float | None = Field(None, ge=0)


class DevlogEvent(BaseModel):
    """One Devlog event as its collector sends it. Fields a later Devlog adds are kept (the event
    is stored whole) rather than refused: a refusal would fail the collector's whole batch, and
    it would retry the same batch forever."""

    model_config = ConfigDict(extra="allow")
    # No NUL: it is stored as text of its own, which PostgreSQL cannot hold (spec 093).
    id: str = Field(min_length=1, max_length=200, pattern=_NO_NUL)
    timestamp: str
    eventType: Literal[DEVLOG_TYPES] = Field(description=", ".join(DEVLOG_TYPES))  # type: ignore[valid-type]
    agentId: str = Field(min_length=1, max_length=200)
    agentVersion: str = Field(max_length=200)
    sessionId: str = Field(min_length=1, max_length=200, pattern=_NO_NUL)
    projectId: int
    machineId: str | None = Field(None, max_length=200)
    workspaceId: str | None = Field(None, max_length=200)
    legacyProjectId: str | int | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    metrics: Metrics | None = None

    @field_validator("timestamp")
    @classmethod
    def _a_moment(cls, value: str) -> str:
        # Go's time.Time marshals nanoseconds (…05.123456789Z); Python reads six digits.
        if parse_timestamp(_micro(value)) is None:
            raise ValueError(f"timestamp must be an ISO 8601 time, got {value[:60]!r}")
        return value

    def as_event(self) -> dict[str, Any]:
        """The event log row for this event, under no spec yet; InvalidInput names the field."""
        whole = self.model_dump(mode="json", exclude_none=True)
        return normalize_event(
            "",
            self.eventType,
            {
                "agent": self.agentId,
                "session_id": self.sessionId,
                "summary": _summary(self),
                "files_changed": _files(self),
                "at": _micro(self.timestamp),
                "data": whole,
            },
        )


class SessionWork(BaseModel):
    """What one session's events carry together, as an attribution reads it."""

    message: str | None = None
    files: list[str] = Field(default_factory=list)
    branch: str | None = None
    at: str | None = None


class DevlogLog:
    """Devlog's tables in the event log: which event ids are stored, and each session's link."""

    def __init__(self, events: EventStore):
        self.events = events
        schema = _POSTGRES_SCHEMA if events.database.dialect == "postgresql" else _SCHEMA
        events.database.require(lambda conn: conn.executescript(schema))

    def store(self, batch: Sequence[DevlogEvent]) -> dict[str, Any]:
        """Store every event not stored before, in one transaction; the sessions they touched.
        An event refused by the log's checks refuses the batch, naming its index and field."""
        rows = []
        for index, event in enumerate(batch):
            try:
                rows.append(event.as_event())
            except InvalidInput as err:
                raise InvalidInput(f"events[{index}] ({event.id!r}): {err}") from None
        stored = duplicates = 0
        sessions: list[str] = []
        recorded = utc_now()
        with self.events.database.transaction() as conn:
            for event, row in zip(batch, rows, strict=True):
                if conn.execute(
                    "SELECT 1 FROM devlog_events WHERE event_id = ?", (event.id,)
                ).fetchone():
                    duplicates += 1
                    continue
                spec = _linked_spec(conn, event.sessionId)
                row_id = self.events.insert(conn, {**row, "spec": spec or ""}, recorded)
                conn.execute(
                    "INSERT INTO devlog_events (event_id, row_id, session_id) VALUES (?, ?, ?)",
                    (event.id, row_id, event.sessionId),
                )
                stored += 1
                if event.sessionId not in sessions:
                    sessions.append(event.sessionId)
        return {"received": len(batch), "stored": stored, "duplicates": duplicates,
                "sessions": sessions}  # fmt: skip

    def record(self, batch: Sequence[DevlogEvent], attribute: Attribute) -> dict[str, Any]:
        """Store the batch, then link each session it touched (`link_session`)."""
        outcome = self.store(batch)
        outcome["sessions"] = [self.link_session(s, attribute) for s in outcome["sessions"]]
        return outcome

    def link_session(self, session_id: str, attribute: Attribute) -> dict[str, Any]:
        """Attribute what the session's events carry together and keep the link (or none)."""
        work = self.work(session_id)
        answer: dict[str, Any] = {"sessionId": session_id, "spec": None, "confidence": 0.0}
        if not (work.message or work.files or work.branch):
            answer["abstained"] = True
            return answer
        try:
            result = attribute(AttributionRequest(**work.model_dump(), limit=3))
        except SpecmemError as err:
            # Stored is stored: the events wait unlinked for `attribute --events`.
            answer.update(abstained=True, note=f"not linked: {err}")
            return answer
        first = result.specs[0] if result.specs else None
        spec = None if result.abstained or first is None else first.spec
        evidence = {
            "evidence": first.to_dict()["evidence"] if first else [],
            "reason": result.reason,
        }
        confidence = first.confidence if first else 0.0
        self.link(session_id, spec, confidence, evidence)
        answer.update(spec=spec, confidence=round(confidence, 3), abstained=result.abstained)
        return answer

    def sessions(self) -> list[str]:
        with self.events.database.reader() as conn:
            if conn is None:
                return []
            rows = conn.execute("SELECT DISTINCT session_id FROM devlog_events ORDER BY 1")
            return [r[0] for r in rows.fetchall()]

    def work(self, session_id: str) -> SessionWork:
        """The session's prompts and commands (as one text), files, branch, commit and start."""
        with self.events.database.reader() as conn:
            if conn is None:
                return SessionWork()
            rows = conn.execute(
                "SELECT e.data, e.files_changed, e.at FROM events e JOIN devlog_events d "
                "ON d.row_id = e.id WHERE d.session_id = ? ORDER BY e.at, e.id",
                (session_id,),
            ).fetchall()
        texts: list[str] = []
        files: list[str] = []
        branch = None
        at = None
        for data_text, files_text, moment in rows:
            event = json.loads(data_text)
            at = at or moment
            for source in (event.get("data") or {}, event.get("context") or {}):
                for key in _TEXT_KEYS:
                    if isinstance(source.get(key), str) and source[key].strip():
                        texts.append(source[key].strip())
                for key in ("branch", "gitBranch"):
                    if isinstance(source.get(key), str) and source[key].strip():
                        branch = branch or source[key].strip()
                if isinstance(source.get("commit"), str):
                    texts.append(f"commit {source['commit'].strip()}")
            files.extend(f for f in json.loads(files_text) if f not in files)
        message = "\n".join(dict.fromkeys(texts))[:10_000] or None
        return SessionWork(message=message, files=files[:1_000], branch=branch, at=at)

    def link(self, session_id: str, spec: str | None, confidence: float, evidence: Any) -> int:
        """Give the session's events its spec (None: unlinked) and keep why; rows changed."""
        with self.events.database.transaction() as conn:
            conn.execute(
                "INSERT INTO session_links (session_id, spec, confidence, evidence, linked_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(session_id) DO UPDATE SET spec = excluded.spec,"
                " confidence = excluded.confidence, evidence = excluded.evidence,"
                " linked_at = excluded.linked_at",
                (session_id, spec, confidence, json.dumps(evidence), utc_now()),
            )
            cursor = conn.execute(
                "UPDATE events SET spec = ? WHERE id IN "
                "(SELECT row_id FROM devlog_events WHERE session_id = ?) AND spec != ?",
                (spec or "", session_id, spec or ""),
            )
            return cursor.rowcount

    def links(self, sessions: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        with self.events.database.reader() as conn:
            if conn is None:
                return {}
            rows = conn.execute("SELECT * FROM session_links").fetchall()
        wanted = set(sessions) if sessions is not None else None
        return {
            r["session_id"]: {"spec": r["spec"], "confidence": r["confidence"],
                              "evidence": json.loads(r["evidence"]), "linked_at": r["linked_at"]}
            for r in rows
            if wanted is None or r["session_id"] in wanted
        }  # fmt: skip


def _linked_spec(conn: Any, session_id: str) -> str | None:
    row = conn.execute(
        "SELECT spec FROM session_links WHERE session_id = ?", (session_id,)
    ).fetchone()
    return row[0] if row else None


def _summary(event: DevlogEvent) -> str:
    for key in _TEXT_KEYS:
        value = event.data.get(key)
        if isinstance(value, str) and value.strip():
            text = " ".join(value.split())
            return f"{event.eventType}: {text[:_SUMMARY_CHARS]}"
    files = _files(event)
    return f"{event.eventType}: {files[0]}" if files else event.eventType


def _files(event: DevlogEvent) -> list[str]:
    found = [event.data[k] for k in _FILE_KEYS if isinstance(event.data.get(k), str)]
    for key in _FILES_KEYS:
        value = event.data.get(key)
        if isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
    return [f.strip() for f in dict.fromkeys(found) if f.strip()][:1_000]


def _micro(value: str) -> str:
    """Fractional seconds cut to six digits, which is what Python's ISO parser reads."""
    text = value.strip()
    head, dot, rest = text.partition(".")
    if not dot:
        return text
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
