"""The two write requests every door builds: a change to a spec, and a new spec.

HTTP's PATCH body, MCP's `update_spec` and `create_spec` arguments, the CLI's options and the
Python API used to spell these fields out one by one, in each of five layers, with limits that
differed by door (HTTP refused 101 tags; MCP and the CLI took any number). Each door now builds
a `SpecChange` or a `NewSpec` and hands it to `SpecMemory.update_spec` / `create_spec`, which
hand it to the writer unchanged. The shapes and size limits live here; what a value means
(a status is known, a tag has no comma, a dependency resolves) is checked by the writer, which
knows the catalog (and a title's length, one line of at most 200 characters):

| field                    | limit                               |
|--------------------------|-------------------------------------|
| tags, depends_on         | at most 50 / 100 in a new spec      |
| add_/remove_tags, _deps  | at most 100 each in one change      |
| body                     | at most 200,000 characters          |
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BODY_MAX_CHARS", "LIST_CHANGE_MAX", "NewSpec", "SpecChange"]

BODY_MAX_CHARS = 200_000
LIST_CHANGE_MAX = 100
NEW_TAGS_MAX = 50


class SpecChange(BaseModel):
    """What to change in a spec's frontmatter; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    status: str | None = Field(
        default=None, description="draft, planned, in-progress, complete, archived"
    )
    priority: str | None = Field(default=None, description="low, medium, high, critical")
    add_tags: tuple[str, ...] = Field(default=(), max_length=LIST_CHANGE_MAX)
    remove_tags: tuple[str, ...] = Field(default=(), max_length=LIST_CHANGE_MAX)
    add_deps: tuple[str, ...] = Field(
        default=(), max_length=LIST_CHANGE_MAX, description="Spec ids"
    )
    remove_deps: tuple[str, ...] = Field(
        default=(), max_length=LIST_CHANGE_MAX, description="Spec ids"
    )
    assignee: str | None = Field(default=None, description="Who is working on it")

    def is_empty(self) -> bool:
        return not (
            self.status is not None
            or self.priority is not None
            or self.add_tags
            or self.remove_tags
            or self.add_deps
            or self.remove_deps
            or self.assignee is not None
        )


class NewSpec(BaseModel):
    """A spec to create with the next free number, from a template."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    title: str
    template: str | None = Field(default=None, description="A template name; see `templates`")
    status: str = "planned"
    priority: str | None = None
    tags: tuple[str, ...] = Field(default=(), max_length=NEW_TAGS_MAX)
    depends_on: tuple[str, ...] = Field(
        default=(), max_length=LIST_CHANGE_MAX, description="Spec ids"
    )
    parent: str | None = Field(default=None, description="The parent (umbrella) spec id")
    assignee: str | None = Field(default=None, description="Who is working on it")
    body: str | None = Field(
        None, max_length=BODY_MAX_CHARS, description="Markdown after the title"
    )
