"""Reading the index: search, eval."""

from __future__ import annotations

from . import cli  # noqa: F401
