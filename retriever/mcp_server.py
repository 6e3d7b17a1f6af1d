"""The MCP front door: specmem's tools and `spec://` resources for coding agents.

Each tool parses its arguments, calls one SpecMemory method, and returns compact JSON; service
errors become tool errors whose text starts with the stable code (`[spec_not_found] ...`) so an
agent can correct itself. Listings are paginated and bodies capped, because a tool result over
~25,000 tokens is cut off by clients: get_context defaults to 8,000 tokens and stops at 20,000.

Served over stdio (`specmem mcp`) and streamable HTTP (`/mcp` in `specmem serve`). Over HTTP
without an API token the server is read-only: the write tools are not offered at all.
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import json
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Annotated, Any, Literal, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ResourceNotFoundError,
    ToolError,
    UnexpectedResourceError,
    UnexpectedToolError,
)
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from mcp.types import Tool as ToolInfo
from pydantic import BeforeValidator, Field, WithJsonSchema

from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.errors import SpecmemError, SpecNotFound, UnsafeReference
from ingest.specs.store import check_file_name

from .pages import SpecPage
from .paths import PathDisplay
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
from .service import SpecMemory
from .wire import jsonable

__all__ = [
    "MAX_BODY_CHARS",
    "READ_TOOLS",
    "WRITE_TOOLS",
    "StrictArgumentsMCPServer",
    "build_mcp_server",
    "unknown_arguments_message",
]

MAX_BODY_CHARS = 40_000
MAX_LIST_ITEMS = 100
READ_TOOLS = (
    "attribute_work",
    "spec_history",
    "search_specs",
    "get_spec",
    "list_specs",
    "get_context",
    "spec_dependencies",
    "count_tokens",
    "validate_specs",
)
WRITE_TOOLS = ("create_spec", "update_spec", "log_event")

INSTRUCTIONS = """\
specmem holds this project's specs: design decisions, plans and their status, as markdown.
Start with search_specs (a question in plain words) or get_context (a token-budgeted bundle
for a task). Spec ids are directory names such as '045-unified-dashboard' or a unique number.
To change a spec, read it first (get_spec gives its `hash`) and pass that hash to update_spec.
attribute_work says which spec a commit or a session belongs to, before you log_event on it."""

F = TypeVar("F", bound=Callable[..., Any])
READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
APPENDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
CHANGES = ToolAnnotations(
    read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=False
)


def _spec_id_text(value: Any) -> Any:
    # Real clients send a spec number as a JSON number ({"spec": 45}); it names the same spec
    # as "45" would. A bool is no number here.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


SpecId = Annotated[
    str,
    BeforeValidator(_spec_id_text),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string"}, {"type": "integer"}],
            "description": "Spec id: directory name or unique number, e.g. '045' or 45",
        }
    ),
]
StrList = Annotated[list[str] | None, Field(description="Zero or more values")]


def _tool_errors(func: F) -> F:
    """Service errors become tool errors an agent can read and act on."""

    if inspect.iscoroutinefunction(func):

        @wraps(func)
        async def waiting(*args: Any, **kwargs: Any) -> Any:
            with _as_tool_errors():
                return compact_result(await func(*args, **kwargs))

        return waiting  # type: ignore[return-value]

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _as_tool_errors():
            return compact_result(func(*args, **kwargs))

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def _as_tool_errors() -> Iterator[None]:
    try:
        yield
    except SpecmemError as err:
        raise ToolError(f"[{err.code}] {err}") from err
    except NotImplementedError as err:
        raise ToolError(f"[not_implemented] not available in this build {err}".strip()) from err


def compact_result(data: dict[str, Any] | CallToolResult) -> CallToolResult:
    """The result as structured content plus one compact JSON text block.

    The SDK's default text block is the same JSON indented by two spaces, which costs the agent
    roughly a third more tokens for nothing.
    """
    if isinstance(data, CallToolResult):
        return data
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


AGENT_ITEM_FIELDS = (
    "spec",
    "title",
    "status",
    "kind",
    "resolution",
    "reason",
    "tokens",
    "score",
    "source",
)


def bundle_for_agent(bundle: dict[str, Any]) -> CallToolResult:
    """The bundle's text once, as markdown, then a compact index of what is in it and why.

    The full bundle carries every item's text twice (in `rendered` and in each item) plus section
    lists and absolute paths: at a 20,000-token budget that was a 48,000-token result, past the
    ~25,000-token tool-result limit. This shape measured 21,417 tokens at that budget.
    """
    items = [
        {key: item[key] for key in AGENT_ITEM_FIELDS if key in item}
        for item in bundle.get("items", [])
    ]
    index = {key: bundle.get(key) for key in ("query", "seeds", "budget", "tokens", "notes")}
    index["items"] = items
    rendered = bundle.get("rendered") or ""
    compact = json.dumps(index, ensure_ascii=False, separators=(",", ":"), default=str)
    return CallToolResult(
        content=[TextContent(type="text", text=rendered), TextContent(type="text", text=compact)],
        structured_content={**index, "rendered": rendered},
    )


def cap_lists(data: Any, limit: int = MAX_LIST_ITEMS) -> Any:
    """Shorten long lists inside a result, saying how many were left out, to keep results small.

    A list the result itself already cut (`upstream` beside `upstream_omitted`, as dependency
    trees do) keeps one count: what this cut left out plus what was already missing."""
    if isinstance(data, dict):
        capped: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, list) and len(value) > limit:
                capped[key] = [cap_lists(v, limit) for v in value[:limit]]
                already = data.get(f"{key}_omitted")
                already = already if isinstance(already, int) else 0
                capped[f"{key}_omitted"] = len(value) - limit + already
            elif key not in capped:  # `X_omitted` is already set when its list X was cut
                capped[key] = cap_lists(value, limit)
        return capped
    if isinstance(data, list):
        return [cap_lists(v, limit) for v in data]
    return data


# LeanSpec's own MCP server (packages/cli/src/mcp/tools) names the same arguments its way on the
# tools both servers have (view, update, deps, tokens, validate, create): a client written for
# it keeps working. Each name is renamed before the strict check; sending both is refused.
LEAN_SPEC_ARGUMENTS: dict[str, dict[str, str]] = {
    "get_spec": {"specPath": "spec"},
    "update_spec": {"specPath": "spec"},
    "spec_dependencies": {"specPath": "spec", "mode": "direction"},
    "count_tokens": {"specPath": "target"},
    "validate_specs": {"specPath": "spec"},
    "spec_history": {"specPath": "spec"},
    "create_spec": {"name": "title", "content": "body", "dependsOn": "depends_on"},
}
# LeanSpec's deps modes, as spec_dependencies directions.
_LEAN_SPEC_MODES = {"complete": "both", "impact": "both", "upstream": "upstream",
                    "downstream": "downstream"}  # fmt: skip


def lean_spec_arguments(tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` with LeanSpec MCP's names for `tool` renamed to specmem's."""
    names = LEAN_SPEC_ARGUMENTS.get(tool, {})
    renamed = dict(arguments)
    if tool == "create_spec" and "description" in renamed:
        # LeanSpec's Overview text, below `content` in precedence: specmem's body.
        text = renamed.pop("description")
        renamed.setdefault("content", f"## Overview\n\n{text}")
    if tool == "create_spec" and "name" in renamed and "title" in renamed:
        renamed.pop("name")  # LeanSpec's slug beside a title: the title decides here
    for theirs, ours in names.items():
        if theirs not in renamed:
            continue
        if ours in renamed:
            raise ToolError(
                f"[invalid_input] both {theirs!r} (LeanSpec's name) and {ours!r} given to {tool!r}"
            )
        value = renamed.pop(theirs)
        if theirs == "mode" and isinstance(value, str):
            value = _LEAN_SPEC_MODES.get(value, value)
        renamed[ours] = value
    return renamed


class StrictArgumentsMCPServer(MCPServer):
    """An MCPServer whose tools refuse arguments they do not declare, as the HTTP API does (422).

    The SDK's argument models ignore unknown keys, so `search_specs(query="x", limt=5)` ran with
    the default limit and the agent never learnt of its typo. Here every tool's inputSchema says
    `additionalProperties: false`, and a call with any other argument is a tool error naming it
    and the accepted ones, before the tool runs. Only public MCPServer methods are overridden.
    """

    async def list_tools(self) -> list[ToolInfo]:
        return [
            tool.model_copy(
                update={"input_schema": {**tool.input_schema, "additionalProperties": False}}
            )
            for tool in await super().list_tools()
        ]

    # Set by build_mcp_server: how results and errors show server paths (retriever.paths).
    display: PathDisplay | None = None

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        arguments = lean_spec_arguments(name, arguments or {})
        accepted = await self._accepted_arguments(name)
        unknown = [key for key in arguments if key not in accepted] if accepted is not None else []
        if unknown:
            raise ToolError(unknown_arguments_message(name, unknown, accepted or ()))
        try:
            result = await super().call_tool(name, arguments, context)
        except UnexpectedToolError as err:
            # A crash, not a refusal: the SDK logs it with its traceback, and the agent gets the
            # stable code and nothing of the exception (spec 074).
            message = f"[internal_error] tool {name!r} failed unexpectedly"
            raise UnexpectedToolError(message) from err.__cause__
        except ToolError as err:
            shown = self._shown(str(err))
            if shown == str(err):
                raise
            raise type(err)(shown) from err.__cause__
        return self._shown_result(result)

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        try:
            return await super().read_resource(uri, context)
        except UnexpectedResourceError as err:
            message = f"[internal_error] reading {uri} failed unexpectedly"
            raise UnexpectedResourceError(message) from err.__cause__
        except ResourceError as err:
            shown = self._shown(str(err))
            if shown == str(err):
                raise
            raise type(err)(shown) from err.__cause__

    def _shown(self, text: str) -> str:
        return self.display.text(text) if self.display is not None else text

    def _shown_result(self, result: Any) -> Any:
        """A tool result whose texts and structured content show paths relative to the specs
        dir, as every door's answers do."""
        if self.display is None or not isinstance(result, CallToolResult):
            return result
        content = [
            block.model_copy(update={"text": self.display.text(block.text)})
            if isinstance(block, TextContent)
            else block
            for block in result.content
        ]
        structured = result.structured_content
        if structured is not None:
            structured = self.display.data(structured)
        return result.model_copy(update={"content": content, "structured_content": structured})

    async def _accepted_arguments(self, name: str) -> tuple[str, ...] | None:
        """The tool's argument names in signature order; None for an unknown tool (the SDK
        answers that itself)."""
        for tool in await super().list_tools():
            if tool.name == name:
                return tuple(tool.input_schema.get("properties", {}))
        return None


def unknown_arguments_message(tool: str, unknown: list[str], accepted: tuple[str, ...]) -> str:
    """`[invalid_input] unknown argument 'limt' for tool 'search_specs'; did you mean 'limit'?
    (accepted: query, limit, ...)`: enough for an agent to correct the call in one step."""
    guesses = [
        (key, close[0])
        for key in unknown
        if (close := difflib.get_close_matches(key, accepted, n=1, cutoff=0.6))
    ]
    if len(unknown) == 1 and guesses:
        hint = f"; did you mean {guesses[0][1]!r}?"
    elif guesses:
        hint = "; did you mean " + ", ".join(f"{good!r} for {bad!r}" for bad, good in guesses) + "?"
    else:
        hint = ""
    names = ", ".join(repr(key) for key in unknown)
    plural = "s" if len(unknown) > 1 else ""
    listed = ", ".join(accepted) or "none"
    return (
        f"[invalid_input] unknown argument{plural} {names} for tool {tool!r}{hint}"
        f" (accepted: {listed})"
    )


def build_mcp_server(memory: SpecMemory, *, allow_writes: bool = True) -> MCPServer:
    """An MCPServer over `memory`; `allow_writes=False` leaves out create/update/log tools."""
    server = StrictArgumentsMCPServer(
        "specmem", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING"
    )
    server.display = PathDisplay.of(memory.settings)
    _register_read_tools(server, memory)
    if allow_writes:
        _register_write_tools(server, memory)
    _register_resources(server, memory)
    return server


def _register_read_tools(server: MCPServer, memory: SpecMemory) -> None:
    @server.tool(annotations=READ_ONLY)
    @_tool_errors
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
    ) -> dict[str, Any]:
        """Find the specs most relevant to a question, best first, with the matching passages.
        Filter by status (draft, planned, in-progress, complete, archived), tags, or priority."""
        hits = memory.search(
            query, limit=limit, status=status, tags=tags, priority=priority, mode=mode
        )
        return {"query": query, "mode": mode, "results": jsonable(hits)}

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
    def get_spec(
        spec: SpecId,
        include_files: Annotated[bool, Field(description="Also return sub-spec files")] = False,
    ) -> dict[str, Any]:
        """Read one spec: metadata, body, and its `hash` (pass it to update_spec).
        Body and sub-spec files together are cut at 40,000 characters: `body_truncated` and
        `files_left_out` say what was cut; read `spec://{id}` and `spec://{id}/{file}` for it."""
        data = jsonable(memory.get_spec(spec).to_dict(with_body=True, with_files=include_files))
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
    @_tool_errors
    def list_specs(
        status: StrList = None,
        tags: Annotated[list[str] | None, Field(description="All must match")] = None,
        priority: StrList = None,
        include_archived: bool = False,
        limit: Annotated[int, Field(ge=1, le=MAX_LIST_ITEMS)] = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
    ) -> dict[str, Any]:
        """List specs (id, title, status, priority, tags, dependencies), a page at a time;
        `total` says how many match, so raise `offset` to read further."""
        specs = memory.list_specs(
            status=status, tags=tags, priority=priority, include_archived=include_archived
        )
        fields = ("spec", "title", "status", "priority", "tags", "depends_on", "hash")
        # The compact fields are this door's policy: an agent's context is the scarce thing.
        return SpecPage.of(specs, limit, offset).to_dict(
            lambda s: {k: v for k, v in s.summary().items() if k in fields}
        )

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
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
    ) -> dict[str, Any]:
        """A context bundle for a task: the most relevant spec passages, their dependencies and
        recent history, packed to fit `budget` tokens, each item with why it was included."""
        request = built(ContextRequest, query=query, specs=specs or [], budget=budget, depth=depth)
        bundle = jsonable(memory.context(request.query, **request.service_arguments()))
        return bundle_for_agent(bundle)  # type: ignore[return-value]  # already a tool result

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
    def attribute_work(
        message: Annotated[str | None, Field(description="A commit message or any text")] = None,
        files: Annotated[list[str] | None, Field(description="Paths the work changed")] = None,
        branch: Annotated[str | None, Field(description="The branch it is on")] = None,
        at: Annotated[str | None, Field(description="When it happened (ISO 8601)")] = None,
        limit: Annotated[int, Field(ge=1, le=20)] = 5,
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
        return memory.attribute(request).to_dict()

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
    def spec_history(
        spec: SpecId,
        since: Annotated[
            str | None, Field(description="ISO 8601 date or time, or a git commit like HEAD~5")
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 30,
    ) -> dict[str, Any]:
        """What happened to a spec, newest first: status transitions, activity events and the
        git commits that changed its files or cite it (with the fields and sections changed)."""
        name = memory.get_spec(spec).dir_name
        return {
            "spec": name,
            "history": cap_lists(jsonable(memory.history(name, limit=limit, since=since))),
        }

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
    def spec_dependencies(
        spec: SpecId,
        direction: Annotated[str, Field(description="both, upstream or downstream")] = "both",
        depth: Annotated[int | None, Field(ge=1, le=20)] = None,
    ) -> dict[str, Any]:
        """What a spec depends on and what depends on it, with related specs and cycles."""
        return cap_lists(jsonable(memory.dependencies(spec, direction=direction, depth=depth)))

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
    def count_tokens(
        target: Annotated[str, Field(description="A spec id, or a file path inside the specs dir")],
    ) -> dict[str, Any]:
        """Tokens per file and per `##` section, to see whether a spec is too long for context."""
        return cap_lists(jsonable(memory.count_tokens(target)))

    @server.tool(annotations=READ_ONLY)
    @_tool_errors
    def validate_specs(
        spec: Annotated[str | None, Field(description="One spec id, or omit for all")] = None,
    ) -> dict[str, Any]:
        """Check specs for broken frontmatter, dangling or cyclic dependencies and oversize files;
        each problem names its file, line, severity and code."""
        return cap_lists(jsonable(memory.validate(spec)))


def _register_write_tools(server: MCPServer, memory: SpecMemory) -> None:
    @server.tool(annotations=CHANGES)
    @_tool_errors
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
        updated = await memory.writes.run(
            lambda: memory.update_spec(spec, change, expected_hash=expected_hash)
        )
        return jsonable(updated.summary())

    @server.tool(annotations=APPENDS)
    @_tool_errors
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
        created = await memory.writes.run(lambda: memory.create_spec(new))
        return jsonable(created.summary())

    @server.tool(annotations=APPENDS)
    @_tool_errors
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
    ) -> dict[str, Any]:
        """Record what you did on a spec (a session summary, a commit, a decision) so later
        agents see it in the spec's history and in context bundles. A value the log could not
        give back (NaN, an integer past 64 bits, a timestamp outside UTC's range) is an
        `[invalid_input]` error naming it; `[event_log_missing]` when the server's event log was
        deleted or replaced under it (nothing is recorded then)."""
        return memory.log_event(
            spec,
            type,
            summary=summary,
            agent=agent,
            session_id=session_id,
            files_changed=files_changed or [],
            at=at,
            data=data or {},
        )


def _register_resources(server: MCPServer, memory: SpecMemory) -> None:
    def _spec_or_missing(spec_id: str):
        try:
            return memory.get_spec(spec_id)
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
