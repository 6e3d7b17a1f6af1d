"""Writing specs: create, update, archive, split, templates."""

from __future__ import annotations

from . import cli  # noqa: F401
