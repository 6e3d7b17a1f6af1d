"""`/specs`: list, read (with ETag), create, update (If-Match required), archive, dependencies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ingest.authoring.create import next_number
from ingest.authoring.spec_changes import LIST_CHANGE_MAX, NewSpec, SpecChange
from ingest.authoring.writes import utc_now
from ingest.errors import InvalidInput
from ingest.specs.frontmatter import canonical_priority, canonical_status
from ingest.specs.model import Spec, parse_dir_name

from ..events import parse_timestamp
from ..pages import LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, SpecPage
from ..projects import across
from ..service import SpecMemory
from ..wire import jsonable
from .deps import (
    Answer,
    AuthRefused,
    IdempotencyKey,
    Reader,
    Scope,
    Target,
    Writer,
    reply,
)

__all__ = ["router"]

router = APIRouter(tags=["specs"])


class ListChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    add: list[str] = Field(default_factory=list, max_length=LIST_CHANGE_MAX)
    remove: list[str] = Field(default_factory=list, max_length=LIST_CHANGE_MAX)


class SpecPatch(BaseModel):
    """The wire shape of a SpecChange: the fields a status callback or an editor may change;
    omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")
    status: str | None = Field(None, description="draft, planned, in-progress, complete, archived")
    priority: str | None = Field(None, description="low, medium, high, critical")
    tags: ListChange | None = None
    depends_on: ListChange | None = None
    assignee: str | None = Field(None, description="Who is working on it")

    def change(self) -> SpecChange:
        tags = self.tags or ListChange()
        deps = self.depends_on or ListChange()
        return SpecChange(
            status=self.status,
            priority=self.priority,
            add_tags=tuple(tags.add),
            remove_tags=tuple(tags.remove),
            add_deps=tuple(deps.add),
            remove_deps=tuple(deps.remove),
            assignee=self.assignee,
        )


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="The spec's current hash (its ETag). Required."),
]


def etag(spec: Spec) -> str:
    return f'"{spec.content_hash}"'


def required_hash(if_match: str | None) -> str:
    """The hash an If-Match header names; 428 when it is missing, since writes must name a version."""
    value = (if_match or "").strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"').strip()
    if not value or value == "*":
        raise AuthRefused(
            428,
            "precondition_required",
            "send If-Match with the spec's current hash (the ETag from GET /specs/{id})",
        )
    return value


def _written(spec: Spec, status: int = 200, project: str | None = None) -> Answer:
    headers = {"ETag": etag(spec)}
    if status == 201:  # on a server of several projects, a Location no other project shares
        headers["Location"] = f"/specs/{project + ':' if project else ''}{spec.dir_name}"
    return status, jsonable(spec.to_dict(with_body=False)), headers


# -- after a crash: did the interrupted attempt commit? (spec 084) --------------------------------
# A keyed write claims its key with an intent before it writes. When the process dies between
# the file write and storing the answer, the retry gets those intents back and looks at the file:
# a status write is found by the transition stamped with the intent's moment (chosen in advance,
# to the microsecond; If-Match guarantees no other write came between), an edit of tags,
# priority or dependencies by whether the spec already says what was asked, which is the same
# answer a second application of the edit would give.


def _stamped(spec: Spec, status: str | None, intents: list[dict[str, Any]]) -> bool:
    moments = {parse_timestamp(intent.get("at")) for intent in intents} - {None}
    return any(
        isinstance(t, dict)
        and t.get("status") == status
        and parse_timestamp(t.get("at")) in moments
        for t in spec.meta.transitions
    )


def _reflected(spec: Spec, change: SpecChange, memory: SpecMemory) -> bool:
    meta = spec.meta
    if change.priority is not None and canonical_priority(change.priority) != meta.priority:
        return False
    if change.assignee is not None and change.assignee.strip() != meta.assignee:
        return False
    tags = set(meta.tags)
    if (
        not {t.strip() for t in change.add_tags} <= tags
        or {t.strip() for t in change.remove_tags} & tags
    ):
        return False
    if change.add_deps or change.remove_deps:
        catalog = memory.catalog()
        held = {catalog.try_resolve(raw) for raw in meta.depends_on}
        if any(catalog.try_resolve(ref) not in held for ref in change.add_deps):
            return False
        if any(catalog.try_resolve(ref) in held - {None} for ref in change.remove_deps):
            return False
    return True


def _created(memory: SpecMemory, title: str, intents: list[dict[str, Any]]) -> Spec | None:
    """The spec an interrupted create made: numbered from the first free number when it claimed
    its key, with the title it asked for."""
    first = min(int(intent.get("from", 0)) for intent in intents)
    for spec in memory.list_specs(include_archived=True):
        number = (parse_dir_name(spec.dir_name) or (0, ""))[0]
        if number >= first and spec.title.strip() == title.strip():
            return spec
    return None


@router.get("/specs", dependencies=[Reader], summary="List specs")
def list_specs(
    scope: Scope,
    status: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    tag: Annotated[list[str], Query(description="All must match")] = [],  # noqa: B006
    priority: Annotated[list[str], Query()] = [],  # noqa: B006
    archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = LIST_LIMIT_DEFAULT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    found = across.list_specs(
        scope.projects,
        scope.name,
        status=status,
        tags=tag,
        priority=priority,
        include_archived=archived,
    )
    project_of = {id(spec): project.name for project, spec in found}

    def shown(spec: Spec) -> dict[str, Any]:
        name = project_of[id(spec)]
        return jsonable(spec.summary() if name is None else {"project": name, **spec.summary()})

    page = SpecPage.of([spec for _, spec in found], limit, offset).to_dict(shown)
    problems = sum(len(p.memory.catalog().problems) for p in scope.projects.scope(scope.name))
    return {**page, "problems": problems}


@router.get("/specs/{spec_id}", dependencies=[Reader], summary="Read one spec")
def get_spec(
    target: Target,
    files: bool = False,
    if_none_match: Annotated[str | None, Header(alias="If-None-Match")] = None,
) -> Response:
    memory, spec_id = target.memory, target.ref
    spec = memory.get_spec(spec_id)
    if if_none_match and spec.content_hash in if_none_match:
        return Response(status_code=304, headers={"ETag": etag(spec)})
    return JSONResponse(
        jsonable(spec.to_dict(with_body=True, with_files=files)), headers={"ETag": etag(spec)}
    )


@router.post("/specs", dependencies=[Writer], status_code=201, summary="Create a spec")
async def create_spec(
    new: NewSpec, request: Request, scope: Scope, key: IdempotencyKey = None
) -> JSONResponse:
    payload = new.model_dump(mode="json")
    project = scope.projects.one(scope.name)
    memory = project.memory

    def produce() -> Answer:
        return _written(memory.create_spec(new), 201, project.name)

    def recover(intents: list[dict[str, Any]]) -> Answer | None:
        spec = _created(memory, new.title, intents)
        if spec is None:
            return None
        return _written(memory.committed_write(spec.dir_name), 201, project.name)

    def write() -> JSONResponse:
        intent = {"from": next_number(memory.settings.specs_dir)} if key else None
        return reply(request, memory, key, payload, produce, intent=intent, recover=recover)

    return await memory.writes.run(write)


@router.patch(
    "/specs/{spec_id}", dependencies=[Writer], summary="Update status, priority, tags, deps"
)
async def update_spec(
    target: Target,
    patch: SpecPatch,
    request: Request,
    if_match: IfMatch = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """A status change appends a transition, stamps the timestamps and re-indexes the spec.

    If-Match must carry the spec's current hash: 428 without it, 412 (with `current_hash`) when
    the spec changed since it was read. With an Idempotency-Key a retried callback is answered
    from the first response and never records a second transition.
    """
    memory, spec_id = target.memory, target.ref
    payload = patch.model_dump(exclude_none=True)
    if not payload:
        raise InvalidInput("nothing to change: send status, priority, tags, depends_on or assignee")
    change = patch.change()
    # A keyed write stamps its transition with a moment chosen now, so that a retry after a crash
    # can find it; without a key the writer stamps the moment it writes.
    stamp = utc_now() if key else None
    status = canonical_status(patch.status) if patch.status is not None else None

    def produce() -> Answer:
        spec = memory.update_spec(spec_id, change, expected_hash=required_hash(if_match), at=stamp)
        return _written(spec)

    def recover(intents: list[dict[str, Any]]) -> Answer | None:
        spec = memory.get_spec(spec_id)
        if patch.status is not None:
            landed = _stamped(spec, status, intents)
        else:
            landed = _reflected(spec, change, memory)
        return _written(memory.committed_write(spec.dir_name)) if landed else None

    # A replay is checked before If-Match: a retried callback carries the hash it first sent,
    # which is stale by now precisely because the first attempt succeeded.
    body = {"spec": spec_id, **payload}
    return await memory.writes.run(
        lambda: reply(request, memory, key, body, produce, intent={"at": stamp}, recover=recover)
    )


@router.post("/specs/{spec_id}/archive", dependencies=[Writer], summary="Archive a spec")
async def archive_spec(
    target: Target,
    request: Request,
    if_match: IfMatch = None,
    key: IdempotencyKey = None,
) -> JSONResponse:
    memory, spec_id = target.memory, target.ref
    stamp = utc_now() if key else None

    def produce() -> Answer:
        spec = memory.archive_spec(spec_id, expected_hash=required_hash(if_match), at=stamp)
        return _written(spec)

    def recover(intents: list[dict[str, Any]]) -> Answer | None:
        spec = memory.get_spec(spec_id)
        landed = _stamped(spec, "archived", intents)
        return _written(memory.committed_write(spec.dir_name)) if landed else None

    return await memory.writes.run(
        lambda: reply(
            request, memory, key, {"spec": spec_id}, produce, intent={"at": stamp}, recover=recover
        )
    )


@router.get("/specs/{spec_id}/dependencies", dependencies=[Reader], summary="Spec dependencies")
def dependencies(
    target: Target,
    direction: str = "both",
    depth: Annotated[int | None, Query(ge=1, le=20)] = None,
) -> Any:
    memory, spec_id = target.memory, target.ref
    return jsonable(memory.dependencies(spec_id, direction=direction, depth=depth))


@router.get("/specs/{spec_id}/tokens", dependencies=[Reader], summary="Tokens per file and section")
def count_tokens(target: Target) -> Any:
    return jsonable(target.memory.count_tokens(target.ref))


@router.get("/validate", dependencies=[Reader], summary="Validate specs")
def validate(scope: Scope, spec: str | None = None) -> Any:
    """One spec (`project:spec`, or found in whichever project holds it), the project named, or
    every project of the server (retriever.projects.across.validate)."""
    return across.validate(scope.projects, scope.name, spec)
