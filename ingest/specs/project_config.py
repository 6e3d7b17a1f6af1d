"""A LeanSpec project's own settings: `.lean-spec/config.json` beside the specs dir.

LeanSpec projects carry `{"specsDir", "template", "templates", "structure": {"pattern",
"sequenceDigits", "defaultFile", ...}, "variables"}` and keep their templates in
`.lean-spec/templates/`. specmem reads what changes its behaviour: where the specs are, which
templates `create` offers and which is the default, how many digits a new number has, and the
variables a template may name. A value it cannot honour is refused naming the file and the
field, never ignored: a project whose specs live under another file name would otherwise look
empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .frontmatter import PROJECT_STATUSES

__all__ = ["CONFIG_FILE", "LeanSpecConfig"]

CONFIG_FILE = Path(".lean-spec") / "config.json"
TEMPLATES_DIR = Path(".lean-spec") / "templates"
PATTERNS = ("flat", "date-grouped")
DATE_FORMATS = ("YYYYMMDD", "YYYY-MM-DD")  # the folder names ingest.specs.store.DATE_GROUP reads


@dataclass(frozen=True)
class LeanSpecConfig:
    project_root: Path
    specs_dir: str = "specs"
    default_template: str | None = None  # a file name in .lean-spec/templates/
    templates: dict[str, str] = field(default_factory=dict)  # name -> file name
    pattern: str = "flat"
    sequence_digits: int = 3
    variables: dict[str, str] = field(default_factory=dict)
    date_format: str = "YYYYMMDD"
    statuses: tuple[str, ...] = ()  # declared beyond the five: blocked, cancelled

    def date_folder(self, day: str) -> str:
        """The date-grouped folder of `day` (YYYY-MM-DD) in this project's date format."""
        return day if self.date_format == "YYYY-MM-DD" else day.replace("-", "")

    @property
    def templates_dir(self) -> Path:
        return self.project_root / TEMPLATES_DIR

    @classmethod
    def beside(cls, specs_root: Path) -> LeanSpecConfig | None:
        """The config of the project whose specs dir this is: in the specs dir's parent, or in
        the specs dir itself; None when there is none."""
        for root in (Path(specs_root).parent, Path(specs_root)):
            if (root / CONFIG_FILE).is_file():
                return cls.load(root)
        return None

    @classmethod
    def load(cls, project_root: Path) -> LeanSpecConfig:
        path = Path(project_root) / CONFIG_FILE
        shown = str(CONFIG_FILE)
        try:
            raw = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidInput(f"{shown}: cannot read it ({err})") from None
        except json.JSONDecodeError as err:
            raise InvalidInput(f"{shown}:{err.lineno}: not JSON ({err.msg})") from None
        if not isinstance(raw, dict):
            raise InvalidInput(f"{shown}: must be a JSON object")
        structure = _object(raw, "structure", shown)
        default_file = structure.get("defaultFile", "README.md")
        if default_file != "README.md":
            raise InvalidInput(
                f"{shown}: structure.defaultFile is {default_file!r}; specmem reads spec dirs "
                "whose main file is README.md"
            )
        pattern = structure.get("pattern", "flat")
        if pattern not in PATTERNS:
            raise InvalidInput(
                f"{shown}: structure.pattern must be one of {', '.join(PATTERNS)}, got {pattern!r}"
            )
        digits = structure.get("sequenceDigits", 3)
        if not isinstance(digits, int) or isinstance(digits, bool) or not 1 <= digits <= 6:
            raise InvalidInput(f"{shown}: structure.sequenceDigits must be 1 to 6, got {digits!r}")
        date_format = structure.get("dateFormat", "YYYYMMDD")
        if date_format not in DATE_FORMATS:
            raise InvalidInput(
                f"{shown}: structure.dateFormat must be one of {', '.join(DATE_FORMATS)}, "
                f"got {date_format!r}"
            )
        specs_dir = raw.get("specsDir", "specs")
        if not isinstance(specs_dir, str) or not specs_dir.strip() or Path(specs_dir).is_absolute():
            raise InvalidInput(f"{shown}: specsDir must be a path inside the project")
        templates = _strings(_object(raw, "templates", shown), "templates", shown)
        template = raw.get("template")
        if template is not None and not isinstance(template, str):
            raise InvalidInput(f"{shown}: template must be a file name")
        variables = {
            str(k): str(v)
            for k, v in _object(raw, "variables", shown).items()
            if isinstance(v, str | int | float)
        }
        statuses = raw.get("statuses", [])
        if not isinstance(statuses, list) or not all(s in PROJECT_STATUSES for s in statuses):
            raise InvalidInput(
                f"{shown}: statuses lists the statuses used beyond the five, any of "
                f"{', '.join(PROJECT_STATUSES)}; got {statuses!r}"
            )
        return cls(
            Path(project_root),
            specs_dir.strip(),
            template,
            templates,
            pattern,
            digits,
            variables,
            date_format,
            tuple(statuses),
        )


def _object(raw: dict[str, Any], key: str, shown: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise InvalidInput(f"{shown}: {key} must be a JSON object")
    return value


def _strings(value: dict[str, Any], key: str, shown: str) -> dict[str, str]:
    for name, item in value.items():
        if not isinstance(item, str):
            raise InvalidInput(f"{shown}: {key}.{name} must be a file name")
    return dict(value)
