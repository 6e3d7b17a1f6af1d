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

MCP's budget is its policy: a tool result past ~25,000 tokens is refused by clients, and an
agent calls the tool once per task, so its default bundle is larger.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ingest.errors import InvalidInput

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
    "ContextRequest",
    "built",
]

QUERY_MAX_CHARS = 2_000
SPECS_MAX = 50
BUDGET_MIN, BUDGET_DEFAULT, BUDGET_MAX = 100, 4_000, 100_000
MCP_BUDGET_DEFAULT, MCP_BUDGET_MAX = 8_000, 20_000
DEPTH_DEFAULT, DEPTH_MAX = 2, 5


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
