"""Front doors: serve (HTTP + MCP over streamable HTTP) and mcp (stdio)."""

from __future__ import annotations

from . import cli  # noqa: F401
