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
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import (
    ResourceError,
    ToolError,
    UnexpectedResourceError,
    UnexpectedToolError,
)
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from mcp.types import Tool as ToolInfo
from pydantic import BeforeValidator, Field, WithJsonSchema

from ingest.errors import SpecmemError

from .paths import ShowsPaths
from .projects import Projects
from .service import SpecMemory

__all__ = [
    "MAX_BODY_CHARS",
    "READ_TOOLS",
    "WRITE_TOOLS",
    "SpecId",
    "StrList",
    "StrictArgumentsMCPServer",
    "build_mcp_server",
    "bundle_for_agent",
    "cap_lists",
    "compact_result",
    "tool_errors",
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
PROJECTS_INSTRUCTIONS = """
This server holds several projects: search_specs, list_specs and get_context cover all of them
unless you pass `project`; each hit names its `project`. Name a spec of one project as
'project:045' (or pass `project`) where several projects have a spec 045."""

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


def tool_errors(func: F) -> F:
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
    display: ShowsPaths | None = None

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


def build_mcp_server(memory: SpecMemory | Projects, *, allow_writes: bool = True) -> MCPServer:
    """An MCPServer over `memory`, or over several named projects (every tool then takes an
    optional `project`); `allow_writes=False` leaves out create/update/log tools."""
    from .mcp_tools import register_read_tools, register_resources, register_write_tools

    projects = memory if isinstance(memory, Projects) else Projects.single(memory)
    instructions = INSTRUCTIONS + (PROJECTS_INSTRUCTIONS if projects.named else "")
    server = StrictArgumentsMCPServer(
        "specmem", instructions=instructions, version="0.1.0", log_level="WARNING"
    )
    server.display = projects.paths
    register_read_tools(server, projects)
    if allow_writes:
        register_write_tools(server, projects)
    register_resources(server, projects)
    return server
