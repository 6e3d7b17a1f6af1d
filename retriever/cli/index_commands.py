"""Building the index: ingest."""

from __future__ import annotations

from . import cli  # noqa: F401
