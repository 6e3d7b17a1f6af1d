"""Inspecting specs: validate, deps, tokens."""

from __future__ import annotations

from . import cli  # noqa: F401
