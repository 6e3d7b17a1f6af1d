"""Context bundles: context."""

from __future__ import annotations

from . import cli  # noqa: F401
