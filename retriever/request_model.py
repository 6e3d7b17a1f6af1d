"""The requests every door builds, with one table of defaults and limits (issue 12).

HTTP, MCP and the CLI each spelled out a context request's limits (budget 100-100,000 over HTTP,
200-20,000 over MCP, 1-200,000 capped in the CLI; default 4,000 or 8,000), so a bundle that
worked at one door was refused at another. Each door now builds a `ContextRequest` and calls
`SpecMemory.context` with what it holds. Where a door must differ it says so here, as that door's
policy:

| field  | default | limits                                                       |
|--------|---------|--------------------------------------------------------------|
| query  | none    | at most 2,000 characters; a query, spec ids, or both         |
| specs  | none    | at most 50 ids                                               |
| budget | 4,000   | 100 to 100,000 tokens (cl100k); MCP: 8,000, at most 20,000   |
| depth  | 2       | 0 to 5 dependency hops                                       |

An attribution (`AttributionRequest`, specs/085) takes a message of at most 10,000 characters,
at most 1,000 file paths, a branch of at most 255 characters and a moment; at least one of the
first three.

MCP's budget is its policy: a tool result past ~25,000 tokens is refused by clients, and an
agent calls the tool once per task, so its default bundle is larger.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.errors import InvalidInput

from .events import parse_timestamp

__all__ = [
    "BUDGET_DEFAULT",
    "BUDGET_MAX",
    "BUDGET_MIN",
    "DEPTH_DEFAULT",
    "DEPTH_MAX",
    "MCP_BUDGET_DEFAULT",
    "MCP_BUDGET_MAX",
    "QUERY_MAX_CHARS",
    "SPECS_MAX",
    "AttributionRequest",
    "ContextRequest",
    "built",
]

QUERY_MAX_CHARS = 2_000
SPECS_MAX = 50
BUDGET_MIN, BUDGET_DEFAULT, BUDGET_MAX = 100, 4_000, 100_000
MCP_BUDGET_DEFAULT, MCP_BUDGET_MAX = 8_000, 20_000
DEPTH_DEFAULT, DEPTH_MAX = 2, 5
MESSAGE_MAX_CHARS = 10_000
FILES_MAX = 1_000
PATH_MAX_CHARS = 4_096
BRANCH_MAX_CHARS = 255
ATTRIBUTION_LIMIT_DEFAULT, ATTRIBUTION_LIMIT_MAX = 5, 20


class ContextRequest(BaseModel):
    """Ask for a token-budgeted bundle about a question, some specs, or both."""

    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(None, max_length=QUERY_MAX_CHARS)
    specs: list[str] = Field(default_factory=list, max_length=SPECS_MAX)
    budget: int = Field(BUDGET_DEFAULT, ge=BUDGET_MIN, le=BUDGET_MAX, description="Tokens (cl100k)")
    depth: int = Field(DEPTH_DEFAULT, ge=0, le=DEPTH_MAX, description="Dependency hops to follow")

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_in_range(cls, value: Any) -> Any:
        # Our words, before pydantic's: every door refuses a budget with the same sentence.
        if isinstance(value, int) and not isinstance(value, bool):
            if value < BUDGET_MIN:
                raise ValueError(f"budget must be at least {BUDGET_MIN} tokens, got {value}")
            if value > BUDGET_MAX:
                raise ValueError(f"budget must be at most {BUDGET_MAX:,} tokens, got {value}")
        return value

    @model_validator(mode="after")
    def _query_or_specs(self) -> ContextRequest:
        if not (self.query and self.query.strip()) and not self.specs:
            raise ValueError("a context bundle needs a query or at least one spec")
        return self

    def service_arguments(self) -> dict[str, Any]:
        """What SpecMemory.context takes."""
        return {"specs": list(self.specs), "budget": self.budget, "depth": self.depth}


class AttributionRequest(BaseModel):
    """Which specs govern this work: a commit message or free text, the files it changed, its
    branch and when it happened; any of the first three, the more the better."""

    model_config = ConfigDict(extra="forbid")
    message: str | None = Field(None, max_length=MESSAGE_MAX_CHARS)
    files: list[Annotated[str, Field(max_length=PATH_MAX_CHARS)]] = Field(
        default_factory=list, max_length=FILES_MAX
    )
    branch: str | None = Field(None, max_length=BRANCH_MAX_CHARS)
    at: str | None = Field(None, description="ISO 8601 date or time of the work; naive is UTC")
    limit: int = Field(ATTRIBUTION_LIMIT_DEFAULT, ge=1, le=ATTRIBUTION_LIMIT_MAX)

    @field_validator("at")
    @classmethod
    def _readable_moment(cls, value: str | None) -> str | None:
        if value is not None and parse_timestamp(value) is None:
            raise ValueError(f"at: {value!r} is not an ISO 8601 date or time")
        return value

    @model_validator(mode="after")
    def _something_to_attribute(self) -> AttributionRequest:
        if not ((self.message and self.message.strip()) or self.files or self.branch):
            raise ValueError("an attribution needs a message, files or a branch")
        return self

    def moment(self) -> dt.datetime | None:
        return parse_timestamp(self.at) if self.at else None


def built(model: type[BaseModel], **fields: Any) -> Any:
    """`model(**fields)` for doors without their own validation layer (the CLI, MCP inside a
    tool): a refusal is InvalidInput naming each field and why, as HTTP's 422 does."""
    try:
        return model(**fields)
    except ValidationError as err:
        reasons = "; ".join(
            e["msg"].removeprefix("Value error, ")
            if not e["loc"] or e["msg"].startswith("Value error, ")
            else f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in err.errors()
        )
        raise InvalidInput(reasons) from None
