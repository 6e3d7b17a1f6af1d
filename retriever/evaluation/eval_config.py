"""What an evaluation ranks with: a search mode, or the plain-BM25 baseline, plus ranking settings.

Every door that evaluates (`specmem eval`, `make eval`, the Python API) states a configuration the
same way, as text:

    hybrid | lexical | dense          a search mode with the default ranking settings
    bm25                              the plain-BM25 baseline over specmem's chunks
    bm25-windows                      the plain-BM25 baseline over 200-word windows
                                      (both in retriever.ranking.baseline)
    fusion=rrf,rrf_k=20               RankingParams overrides, on the mode given beside it
    lexical,second_weight=0           both

The keys are read from `RankingParams` itself (dataclasses.fields and their types), so a field
added to the ranking is settable here the moment it exists, and a key that is no field is refused
by name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from ingest.errors import InvalidInput

from ..ranking.search import MODES, RankingParams

__all__ = [
    "BASELINE",
    "BASELINES",
    "CONFIG_MODES",
    "WINDOWS_BASELINE",
    "EvalConfig",
    "parse_config",
]

BASELINE = "bm25"
WINDOWS_BASELINE = "bm25-windows"
BASELINES = (BASELINE, WINDOWS_BASELINE)
CONFIG_MODES = (*MODES, *BASELINES)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class EvalConfig:
    mode: str = "hybrid"
    params: RankingParams | None = None

    def __post_init__(self) -> None:
        if self.mode not in CONFIG_MODES:
            raise InvalidInput(f"mode must be one of {', '.join(CONFIG_MODES)}, got {self.mode!r}")
        if self.mode in BASELINES and self.params is not None:
            raise InvalidInput(f"the {self.mode} baseline takes no ranking settings")
        unread = _unread(self.mode, self.params) if self.params is not None else []
        if unread:
            raise InvalidInput(
                f"{', '.join(unread)}: not read by {self.label}, so a comparison would measure "
                "no change (rrf_k is read by fusion=rrf; the weights by fusion=zscore; "
                "dense_weight by hybrid or dense; lexical and identifier weights by hybrid or lexical)"
            )

    @property
    def label(self) -> str:
        """The configuration as text that `parse_config` reads back: the mode, then any setting
        that differs from the default."""
        if self.params is None:
            return self.mode
        changed = [f"{name}={getattr(self.params, name)}" for name in _changed(self.params)]
        return ",".join([self.mode, *changed])


def _changed(params: RankingParams) -> list[str]:
    """The settings that differ from their default, in field order."""
    default = RankingParams()
    return [
        f.name
        for f in dataclasses.fields(RankingParams)
        if getattr(params, f.name) != getattr(default, f.name)
    ]


def _unread(mode: str, params: RankingParams) -> list[str]:
    """The settings changed from their default that this mode and fusion never read."""
    changed = set(_changed(params))
    unread: set[str] = set()
    if mode == "dense":
        unread |= changed - {"second_weight"}
    if mode == "lexical":
        unread |= changed & {"dense_weight"}
    if params.fusion == "zscore":
        unread |= changed & {"rrf_k"}
    else:  # rrf reads identifier_weight only as "is the identifier signal on"
        unread |= changed & {"lexical_weight", "dense_weight"}
    return sorted(unread)


def parse_config(text: str, default_mode: str = "hybrid") -> EvalConfig:
    """An EvalConfig from its text form; the mode is `default_mode` unless the text names one."""
    mode = default_mode
    overrides: dict[str, Any] = {}
    kinds = _field_types()
    for item in (part.strip() for part in str(text).split(",")):
        if not item:
            continue
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals:
            if key not in CONFIG_MODES:
                raise InvalidInput(
                    f"unknown configuration {key!r}: expected one of {', '.join(CONFIG_MODES)} "
                    "or key=value ranking settings"
                )
            mode = key
            continue
        if key not in kinds:
            raise InvalidInput(
                f"unknown ranking setting {key!r} (RankingParams has {', '.join(kinds)})"
            )
        overrides[key] = _convert(key, raw.strip(), kinds[key])
    if not overrides:
        return EvalConfig(mode)
    return EvalConfig(mode, dataclasses.replace(RankingParams(), **overrides))


def _field_types() -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(RankingParams)
    except Exception:  # an annotation only importable under TYPE_CHECKING: fall back to its text
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(RankingParams)}


def _convert(key: str, raw: str, kind: Any) -> Any:
    if isinstance(kind, str):
        options: tuple[Any, ...] = tuple(part.strip() for part in kind.split("|"))
    else:
        options = typing.get_args(kind) if _is_union(kind) else (kind,)
    if type(None) in options or "None" in options:
        if raw.lower() == "none":
            return None
        options = tuple(o for o in options if o not in (type(None), "None"))
    for option in options:
        try:
            return _convert_one(raw, option)
        except ValueError:
            continue
    names = " | ".join(getattr(o, "__name__", str(o)) for o in options)
    raise InvalidInput(f"ranking setting {key}={raw!r} is not a {names}")


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (typing.Union, types.UnionType)


def _convert_one(raw: str, kind: Any) -> Any:
    name = kind if isinstance(kind, str) else getattr(kind, "__name__", "")
    if name == "bool":
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise ValueError(raw)
    if name == "int":
        return int(raw)
    if name == "float":
        return float(raw)
    if name == "str":
        return raw
    if typing.get_origin(kind) is typing.Literal:
        for value in typing.get_args(kind):
            if str(value) == raw:
                return value
        raise ValueError(raw)
    raise ValueError(f"cannot parse a {kind!r} from text")
