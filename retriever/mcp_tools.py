"""The MCP tools and `spec://` resources (retriever.mcp_server builds the server around them).

Every tool takes an optional `project`: on a server of several projects, search_specs,
list_specs and get_context read across all of them unless it is given, and a spec is named as
`project:045` or by a number only one project has (retriever.projects).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import Field

from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.errors import SpecmemError, SpecNotFound, UnsafeReference
from ingest.specs.model import Spec
from ingest.specs.store import check_file_name

from .mcp_server import (
    APPENDS,
    CHANGES,
    MAX_BODY_CHARS,
    MAX_LIST_ITEMS,
    READ_ONLY,
    SpecId,
    StrList,
    bundle_for_agent,
    cap_lists,
    tool_errors,
)
from .pages import SpecPage
from .projects import Project, Projects, across, split_ref
from .request_model import (
    BUDGET_MIN,
    DEPTH_DEFAULT,
    DEPTH_MAX,
    MCP_BUDGET_DEFAULT,
    MCP_BUDGET_MAX,
    AttributionRequest,
    ContextRequest,
    built,
)
from .wire import jsonable

__all__ = ["register_read_tools", "register_resources", "register_write_tools"]

ProjectArg = Annotated[
    str | None,
    Field(
        description="The project, on a server of several: omit to search all of them, or to "
        "write to the only or default one"
    ),
]


def _project_of_text(projects: Projects, name: str | None, text: str) -> tuple[Project, str]:
    """For an argument that is a spec id or a file path: `web:045-x/README.md` names its project;
    anything else is in the project named, the only one, or the default one."""
    qualifier, local = split_ref(text) if projects.named else (None, text)
    if qualifier is not None:
        return projects.spec(name, text)[0], str(local)
    head = text.split("/", 1)[0]
    if projects.named and head and not text.startswith(("/", "~")):
        try:  # a bare `045` or `045-x/README.md`: the project that holds spec 045
            return projects.spec(name, head)[0], text
        except SpecNotFound:
            pass  # not a spec's name: a path the project's own lookup reports on
    return projects.one(name), text


def register_read_tools(server: MCPServer, projects: Projects) -> None:
    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def search_specs(
        query: Annotated[str, Field(description="A question or keywords, in plain words")],
        limit: Annotated[int, Field(ge=1, le=50)] = 10,
        status: StrList = None,
        tags: StrList = None,
        priority: StrList = None,
        mode: Annotated[
            Literal["hybrid", "lexical", "dense"],
            Field(description="hybrid (default), lexical (exact words), dense (meaning)"),
        ] = "hybrid",
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Find the specs most relevant to a question, best first, with the matching passages.
        Filter by status (draft, planned, in-progress, complete, archived), tags, or priority."""
        found = across.search(
            projects,
            project,
            query,
            limit=limit,
            status=status,
            tags=tags,
            priority=priority,
            mode=mode,
        )
        return jsonable(found.to_dict(query, mode))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def get_spec(
        spec: SpecId,
        include_files: Annotated[bool, Field(description="Also return sub-spec files")] = False,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Read one spec: metadata, body, and its `hash` (pass it to update_spec).
        Body and sub-spec files together are cut at 40,000 characters: `body_truncated` and
        `files_left_out` say what was cut; read `spec://{id}` and `spec://{id}/{file}` for it."""
        where, ref = projects.spec(project, spec)
        found = where.memory.get_spec(ref)
        data = jsonable(found.to_dict(with_body=True, with_files=include_files))
        if where.name is not None:
            data = {"project": where.name, **data}
        if len(data.get("body") or "") > MAX_BODY_CHARS:
            data["body"] = data["body"][:MAX_BODY_CHARS]
            data["body_truncated"] = True
        room = MAX_BODY_CHARS - len(data.get("body") or "")
        if "files" in data:
            # One bound for the whole answer: a spec with many research files was 27k tokens.
            kept, left_out = {}, []
            for name, text in data["files"].items():
                if len(text) <= room:
                    kept[name], room = text, room - len(text)
                else:
                    left_out.append(name)
            data["files"] = kept
            if left_out:
                data["files_left_out"] = left_out
        return data

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def list_specs(
        status: StrList = None,
        tags: Annotated[list[str] | None, Field(description="All must match")] = None,
        priority: StrList = None,
        include_archived: bool = False,
        limit: Annotated[int, Field(ge=1, le=MAX_LIST_ITEMS)] = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """List specs (id, title, status, priority, tags, dependencies), a page at a time;
        `total` says how many match, so raise `offset` to read further."""
        found = across.list_specs(
            projects,
            project,
            status=status,
            tags=tags,
            priority=priority,
            include_archived=include_archived,
        )
        project_of = {id(spec): where.name for where, spec in found}
        fields = ("spec", "title", "status", "priority", "tags", "depends_on", "hash")

        # The compact fields are this door's policy: an agent's context is the scarce thing.
        def shown(spec: Spec) -> dict[str, Any]:
            data = {k: v for k, v in spec.summary().items() if k in fields}
            name = project_of[id(spec)]
            return data if name is None else {"project": name, **data}

        return SpecPage.of([spec for _, spec in found], limit, offset).to_dict(shown)

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def get_context(
        query: Annotated[str | None, Field(description="What you are working on")] = None,
        specs: Annotated[list[str] | None, Field(description="Spec ids to center on")] = None,
        budget: Annotated[
            int,
            Field(ge=BUDGET_MIN, le=MCP_BUDGET_MAX, description="Token budget (cl100k)"),
        ] = MCP_BUDGET_DEFAULT,
        depth: Annotated[int, Field(ge=0, le=DEPTH_MAX, description="Dependency hops")] = (
            DEPTH_DEFAULT
        ),
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """A context bundle for a task: the most relevant spec passages, their dependencies and
        recent history, packed to fit `budget` tokens, each item with why it was included."""
        request = built(ContextRequest, query=query, specs=specs or [], budget=budget, depth=depth)
        arguments = request.service_arguments()
        bundle = jsonable(across.context(projects, project, request.query, **arguments))
        return bundle_for_agent(bundle)  # type: ignore[return-value]  # already a tool result

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def attribute_work(
        message: Annotated[str | None, Field(description="A commit message or any text")] = None,
        files: Annotated[list[str] | None, Field(description="Paths the work changed")] = None,
        branch: Annotated[str | None, Field(description="The branch it is on")] = None,
        at: Annotated[str | None, Field(description="When it happened (ISO 8601)")] = None,
        limit: Annotated[int, Field(ge=1, le=20)] = 5,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Which specs govern this work: ranked specs, each with a confidence in [0, 1] and
        the evidence (an explicit reference, files in its dir, paths it names, a text match),
        or `abstained` when none is confident. Use it to know which spec to log work against."""
        request = built(
            AttributionRequest,
            message=message,
            files=files or [],
            branch=branch,
            at=at,
            limit=limit,
        )
        return projects.one(project).memory.attribute(request).to_dict()

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def spec_history(
        spec: SpecId,
        since: Annotated[
            str | None, Field(description="ISO 8601 date or time, or a git commit like HEAD~5")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 30,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """What happened to a spec, newest first: status transitions, activity events and the
        git commits that changed its files or cite it (with the fields and sections changed)."""
        where, ref = projects.spec(project, spec)
        memory = where.memory
        name = memory.get_spec(ref).dir_name
        return {
            "spec": name,
            "history": cap_lists(jsonable(memory.history(name, limit=limit, since=since))),
        }

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def spec_dependencies(
        spec: SpecId,
        direction: Annotated[str, Field(description="both, upstream or downstream")] = "both",
        depth: Annotated[int | None, Field(ge=1, le=20)] = None,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """What a spec depends on and what depends on it, with related specs and cycles."""
        where, ref = projects.spec(project, spec)
        found = where.memory.dependencies(ref, direction=direction, depth=depth)
        return cap_lists(jsonable(found))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def count_tokens(
        target: Annotated[str, Field(description="A spec id, or a file path inside the specs dir")],
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Tokens per file and per `##` section, to see whether a spec is too long for context."""
        where, local = _project_of_text(projects, project, target)
        return cap_lists(jsonable(where.memory.count_tokens(local)))

    @server.tool(annotations=READ_ONLY)
    @tool_errors
    def validate_specs(
        spec: Annotated[str | None, Field(description="One spec id, or omit for all")] = None,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Check specs for broken frontmatter, dangling or cyclic dependencies and oversize files;
        each problem names its file, line, severity and code. On a server of several projects,
        omitting both checks every project."""
        return cap_lists(jsonable(across.validate(projects, project, spec)))


def register_write_tools(server: MCPServer, projects: Projects) -> None:
    @server.tool(annotations=CHANGES)
    @tool_errors
    async def update_spec(
        spec: SpecId,
        expected_hash: Annotated[
            str, Field(description="The spec's `hash` from get_spec; refused if it changed since")
        ],
        status: Annotated[
            str | None, Field(description="draft, planned, in-progress, complete, archived")
        ] = None,
        priority: Annotated[str | None, Field(description="low, medium, high, critical")] = None,
        add_tags: StrList = None,
        remove_tags: StrList = None,
        add_deps: Annotated[list[str] | None, Field(description="Spec ids to depend on")] = None,
        remove_deps: StrList = None,
        assignee: Annotated[str | None, Field(description="Who is working on it")] = None,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Change a spec's status, priority, tags, dependencies or assignee. A status change is recorded as
        a transition. If the spec changed since you read it, the error carries the new hash:
        re-read the spec and try again. `[busy]` means nothing was written: retry shortly."""
        change = built(
            SpecChange,
            status=status,
            priority=priority,
            add_tags=add_tags or (),
            remove_tags=remove_tags or (),
            add_deps=add_deps or (),
            remove_deps=remove_deps or (),
            assignee=assignee,
        )
        where, ref = projects.spec(project, spec)
        memory = where.memory
        updated = await memory.writes.run(
            lambda: memory.update_spec(ref, change, expected_hash=expected_hash)
        )
        return jsonable(updated.summary())

    @server.tool(annotations=APPENDS)
    @tool_errors
    async def create_spec(
        title: Annotated[str, Field(min_length=1, max_length=200)],
        status: str = "planned",
        priority: str | None = None,
        tags: StrList = None,
        depends_on: Annotated[list[str] | None, Field(description="Spec ids")] = None,
        parent: Annotated[str | None, Field(description="Parent spec id")] = None,
        body: Annotated[str | None, Field(description="Markdown after the title")] = None,
        template: str | None = None,
        assignee: Annotated[str | None, Field(description="Who is working on it")] = None,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Create a new spec directory with the next free number; returns its id and hash."""
        new = built(
            NewSpec,
            title=title,
            template=template,
            status=status,
            priority=priority,
            tags=tags or (),
            depends_on=depends_on or (),
            parent=parent,
            body=body,
            assignee=assignee,
        )
        memory = projects.one(project).memory
        created = await memory.writes.run(lambda: memory.create_spec(new))
        return jsonable(created.summary())

    @server.tool(annotations=APPENDS)
    @tool_errors
    def log_event(
        spec: SpecId,
        type: Annotated[str, Field(description="Short kind: 'commit', 'session', 'note', ...")],
        summary: Annotated[str | None, Field(description="What happened, in a sentence")] = None,
        agent: str | None = None,
        session_id: str | None = None,
        files_changed: StrList = None,
        at: Annotated[
            str | None, Field(description="ISO 8601 within years 0001-9999 in UTC; default now")
        ] = None,
        data: dict[str, Any] | None = None,
        project: ProjectArg = None,
    ) -> dict[str, Any]:
        """Record what you did on a spec (a session summary, a commit, a decision) so later
        agents see it in the spec's history and in context bundles. A value the log could not
        give back (NaN, an integer past 64 bits, a timestamp outside UTC's range) is an
        `[invalid_input]` error naming it; `[event_log_missing]` when the server's event log was
        deleted or replaced under it (nothing is recorded then)."""
        where, ref = projects.spec(project, spec)
        return where.memory.log_event(
            ref,
            type,
            summary=summary,
            agent=agent,
            session_id=session_id,
            files_changed=files_changed or [],
            at=at,
            data=data or {},
        )


def register_resources(server: MCPServer, projects: Projects) -> None:
    def _spec_or_missing(spec_id: str):
        try:
            where, ref = projects.spec(None, spec_id)
            return where.memory.get_spec(ref)
        except SpecNotFound as err:
            raise ResourceNotFoundError(str(err)) from err
        except SpecmemError as err:
            raise ResourceError(f"[{err.code}] {err}") from err

    @server.resource("spec://{spec_id}", mime_type="text/markdown")
    def spec_readme(spec_id: str) -> str:
        """A spec's README.md, frontmatter included."""
        return _spec_or_missing(spec_id).readme.text

    # `{+file}`: a sub-spec file may sit in a sub-folder (`spec://072/research/evals.md`), and a
    # plain `{file}` stops at the first `/`.
    @server.resource("spec://{spec_id}/{+file}", mime_type="text/markdown")
    def spec_file(spec_id: str, file: str) -> str:
        """One file of a spec: README.md, a sub-spec such as DESIGN.md, or one in a sub-folder
        such as research/evals.md."""
        try:
            check_file_name(file)
        except UnsafeReference as err:
            raise ResourceError(f"[{err.code}] {err}") from err
        spec = _spec_or_missing(spec_id)
        for candidate in (spec.readme, *spec.sub_files):
            if candidate.name == file:
                return candidate.text
        names = ", ".join(f.name for f in (spec.readme, *spec.sub_files))
        raise ResourceNotFoundError(f"{spec.dir_name} has no file {file!r} (files: {names})")
