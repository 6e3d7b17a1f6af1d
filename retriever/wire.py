"""The JSON shapes the front doors send: one conversion for whatever the service returns.

HTTP and MCP both serialize service results (specs, search hits, context bundles, reports) that
other modules define; each of those offers `to_dict()` or is a dataclass, so one function turns any
of them into plain JSON values instead of each door knowing every type.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """Plain JSON values for `value`: to_dict() first, then dataclasses, mappings and sequences.
    A float JSON cannot carry (NaN, infinity) becomes null: a strict encoder (the HTTP one)
    would otherwise fail the whole answer."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | bool | int | float):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return tolist()
    return str(value)
