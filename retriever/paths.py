"""Server paths as the front doors show them: relative to the specs dir, never absolute.

The service and the Python API work with absolute paths (a library caller can open them). What
leaves through a door (HTTP and MCP answers, CLI JSON and error messages) names a spec's file
relative to the specs dir (`001-auth/README.md`, `archived/012-old/README.md`): a client learns
nothing about the server's file system, and the same answer is right on every checkout. The
specs dir itself is shown as `<specs dir>`, the data dir as `<data dir>`, the built-in templates
as `<builtin templates>` (spec 074).

One rewrite of the text covers every field and message, including ones other modules add later,
instead of each producer remembering to shorten its own paths.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

__all__ = ["PathDisplay", "ShowsPaths"]

SPECS_DIR_LABEL = "<specs dir>"
DATA_DIR_LABEL = "<data dir>"
TEMPLATES_LABEL = "<builtin templates>"


class ShowsPaths(Protocol):
    """What a door needs to show paths: a PathDisplay, or one that follows a set of projects."""

    def text(self, text: str) -> str: ...

    def json_text(self, text: str) -> str: ...

    def data(self, value: Any) -> Any: ...


class PathDisplay:
    """Rewrites absolute paths under the specs dir, the data dir and the built-in templates."""

    def __init__(
        self,
        specs_dir: Path | None,
        data_dir: Path | None = None,
        *,
        projects: Iterable[tuple[str, Path, Path]] = (),
    ):
        from ingest.authoring.create import BUILTIN_TEMPLATES

        # (absolute prefix, what a path under it starts with instead, what it alone becomes)
        places: list[tuple[list[str], str, str]] = [
            (_forms(specs_dir) if specs_dir is not None else [], "", SPECS_DIR_LABEL),
            (
                _forms(data_dir) if data_dir is not None else [],
                f"{DATA_DIR_LABEL}/",
                DATA_DIR_LABEL,
            ),
            (_forms(BUILTIN_TEMPLATES), f"{TEMPLATES_LABEL}/", TEMPLATES_LABEL),
        ]
        for name, specs, data in projects:  # a path's project is in the answer beside it
            places.append((_forms(specs), "", f"<specs dir of {name}>"))
            places.append((_forms(data), f"<data dir of {name}>/", f"<data dir of {name}>"))
        roots: list[tuple[str, str, str]] = []
        for paths, inside, alone in places:
            roots.extend((path, inside, alone) for path in paths)
        # Longest first, so a data dir inside the specs dir is shown as the data dir.
        roots.sort(key=lambda root: len(root[0]), reverse=True)
        self._plain = _Rewriter((prefix, inside, alone) for prefix, inside, alone in roots)
        self._json = _Rewriter(
            (_json_escaped(prefix), inside, alone) for prefix, inside, alone in roots
        )

    @classmethod
    def of(cls, settings: Any) -> PathDisplay:
        return cls(settings.specs_dir, settings.data_dir)

    def text(self, text: str) -> str:
        """`text` with every absolute path under a known root shown relative to it."""
        return self._plain(text)

    def json_text(self, text: str) -> str:
        """The same for JSON-encoded text, whose strings may escape characters of a path."""
        return self._json(text)

    def data(self, value: Any) -> Any:
        """JSON-ready `value` with every string (keys included) rewritten by `text`."""
        if isinstance(value, str):
            return self._plain(value)
        if isinstance(value, dict):
            return {self.data(k): self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


class _Rewriter:
    def __init__(self, roots: Iterable[tuple[str, str, str]]):
        self.shown: dict[str, tuple[str, str]] = {}
        for prefix, inside, alone in roots:
            self.shown.setdefault(prefix, (inside, alone))
        alternatives = "|".join(re.escape(prefix) for prefix in self.shown)
        # A root followed by `/` starts a path under it; a root followed by a name character is
        # some other path (`/srv/specs2`), left alone.
        self.pattern = re.compile(f"({alternatives})(/|(?![\\w.~-]))") if self.shown else None

    def __call__(self, text: str) -> str:
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(self._replace, text)

    def _replace(self, match: re.Match[str]) -> str:
        inside, alone = self.shown[match.group(1)]
        return inside if match.group(2) == "/" else alone


def _forms(path: Path) -> list[str]:
    """The spellings of `path` an answer may carry: as configured and with symlinks resolved."""
    forms = {str(Path(path).absolute())}
    with contextlib.suppress(OSError):
        forms.add(str(Path(path).resolve()))
    return sorted(form.rstrip("/") for form in forms if form.rstrip("/"))


def _json_escaped(prefix: str) -> str:
    return json.dumps(prefix, ensure_ascii=False)[1:-1]
