"""Create a spec from a template: the next free number, a slug from the title, the options set.

Templates are markdown files with frontmatter. Built-in ones ship in `ingest/templates/`; a
LeanSpec project's `.lean-spec/templates/*.md` (and the names its `.lean-spec/config.json` gives
them) come next, and `<specs_dir>/.templates/<name>.md` (a dot dir, so the scan never mistakes it
for a spec) overrides both. A LeanSpec template's body names `{name}`, `{date}`, `{status}`,
`{priority}` and the config's variables in single braces, and those are filled too. In the body, `{{title}}`, `{{date}}`, `{{number}}`, `{{name}}` and
`{{slug}}` are replaced; the frontmatter is never templated as text (a title holding `: ` would
break the YAML) but set through the same line editor updates use, so a project template's extra
keys, comments and list style survive.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import CREATE_LOCK, atomic_write, named_lock, storage_errors
from ..errors import InvalidInput, UnsafeReference
from ..specs.model import dir_number
from ..specs.project_config import LeanSpecConfig
from ..specs.store import Catalog, SpecStore, spec_bases
from .frontmatter_edit import EditableDocument
from .spec_changes import NewSpec
from .writes import (
    WrittenSpec,
    check_assignee,
    check_tag,
    parse_frontmatter,
    require_priority,
    require_status,
    utc_now,
    verify_edit,
)

__all__ = [
    "BUILTIN_TEMPLATES",
    "PROJECT_TEMPLATES",
    "Template",
    "create_spec",
    "find_template",
    "list_templates",
    "next_number",
    "slugify",
]

BUILTIN_TEMPLATES = Path(__file__).parent.parent / "templates"
PROJECT_TEMPLATES = ".templates"
DEFAULT_TEMPLATE = "default"
MAX_SLUG = 50
MAX_TITLE = 200
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+)\s*\}\}")
_LEAN_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


@dataclass(frozen=True)
class Template:
    name: str
    source: str  # "builtin" or "project"
    path: Path
    overrides_builtin: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "path": str(self.path),
            "overrides_builtin": self.overrides_builtin,
        }


def list_templates(specs_root: Path) -> list[Template]:
    """Every template `create` can use; a project template shadows the built-in of its name."""
    return _templates(specs_root, LeanSpecConfig.beside(specs_root))


def _templates(specs_root: Path, config: LeanSpecConfig | None) -> list[Template]:
    found = {
        path.stem: Template(path.stem, "builtin", path)
        for path in sorted(BUILTIN_TEMPLATES.glob("*.md"))
    }
    if config is not None and config.templates_dir.is_dir():
        lean = config.templates_dir
        inside = lean.resolve()
        for path in sorted(lean.glob("*.md")):
            # A symlink out of the templates folder is not a template we will read.
            if (
                _TEMPLATE_NAME.match(path.stem)
                and path.is_file()
                and (path.resolve().parent == inside)
            ):
                found[path.stem] = Template(path.stem, "lean-spec", path, path.stem in found)
        for alias, file_name in config.templates.items():
            path = lean / file_name
            if _TEMPLATE_NAME.match(alias) and path.is_file() and path.resolve().parent == inside:
                found[alias] = Template(alias, "lean-spec", path, alias in found)
    project_dir = Path(specs_root) / PROJECT_TEMPLATES
    if project_dir.is_dir():
        root = Path(specs_root).resolve()
        for path in sorted(project_dir.glob("*.md")):
            if not _TEMPLATE_NAME.match(path.stem) or not path.is_file():
                continue
            try:
                path.resolve().relative_to(root)
            except ValueError:
                continue  # a symlink out of the specs dir is not a template we will read
            found[path.stem] = Template(path.stem, "project", path, path.stem in found)
    return sorted(found.values(), key=lambda t: t.name)


def find_template(specs_root: Path, name: str | None) -> Template:
    return _find_template(specs_root, name, LeanSpecConfig.beside(specs_root))


def _find_template(specs_root: Path, name: str | None, config: LeanSpecConfig | None) -> Template:
    default = DEFAULT_TEMPLATE
    if config is not None and config.default_template:
        default = Path(config.default_template).stem
    wanted = (name or default).strip().removesuffix(".md")
    templates = {t.name: t for t in _templates(specs_root, config)}
    if wanted not in templates:
        raise InvalidInput(
            f"template: no template {wanted!r} (available: {', '.join(sorted(templates))})"
        )
    return templates[wanted]


def slugify(title: str, max_length: int = MAX_SLUG) -> str:
    """`Token refresh: retries & back-off!` -> `token-refresh-retries-back-off`."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > max_length:
            break
        slug = candidate
    if not slug and words:
        slug = words[0][:max_length]
    return slug or "spec"


def next_number(specs_root: Path) -> int:
    """One more than the highest number used anywhere, archived specs included."""
    highest = 0
    for base, _archived in spec_bases(Path(specs_root)):
        if not base.is_dir():
            continue
        for child in base.iterdir():
            # Misnamed `099-x\ty` too (spec 008): it is reported, and renamed later it must
            # not collide with a spec created meanwhile.
            number = dir_number(child.name)
            if number is not None:
                highest = max(highest, number)
    return highest + 1


def _check_title(title: str) -> str:
    text = str(title).strip()
    if not text:
        raise InvalidInput("title: a spec needs a title")
    if len(text) > MAX_TITLE:
        raise InvalidInput(f"title: {len(text)} characters, over the {MAX_TITLE}-character limit")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise InvalidInput("title: must be one line without control characters")
    return text


def _with_body(text: str, title: str, body: str) -> str:
    """The template's frontmatter with `body` (under the title heading) as everything else."""
    doc = EditableDocument.parse(text.encode("utf-8"), "template")
    head = "" if doc.created_frontmatter else doc.head + doc.yaml_text() + "---\n"
    return f"{head}# {title}\n\n{body.strip()}\n"


def create_spec(
    store: SpecStore,
    data_dir: Path,
    catalog: Catalog,
    new: NewSpec,
    *,
    clock: Callable[[], str] = utc_now,
) -> WrittenSpec:
    """Write `<NNN>-<slug>/README.md` under the specs dir and return the spec as loaded."""
    title = _check_title(new.title)
    root = store.root
    config = LeanSpecConfig.beside(root)  # read once: templates, statuses, number width
    status = require_status(new.status, config.statuses if config is not None else ())
    priority = require_priority(new.priority) if new.priority else None
    tag_list = list(dict.fromkeys(check_tag(t) for t in new.tags))
    deps = list(dict.fromkeys(catalog.resolve_name(d) for d in new.depends_on))
    parent_name = catalog.resolve_name(new.parent) if new.parent else None
    assignee = check_assignee(new.assignee) if new.assignee is not None else None
    template, body = new.template, new.body
    chosen = _find_template(root, template, config)
    template_text = chosen.path.read_text(encoding="utf-8-sig")
    slug = slugify(title)
    now = clock()
    digits = config.sequence_digits if config is not None else 3
    with named_lock(data_dir, CREATE_LOCK):
        number = next_number(root)
        name = f"{number:0{digits}d}-{slug}"
        values = {
            "title": title,
            "date": now[:10],
            "number": f"{number:0{digits}d}",
            "name": name,
            "slug": slug,
        }
        text = _fill(template_text, values)
        if chosen.source == "lean-spec":
            variables = dict(config.variables) if config is not None else {}
            text = _fill_lean_spec(
                text,
                {**variables, "name": title, "title": title, "date": now[:10], "status": status,
                 "priority": priority or "", "number": values["number"], "slug": slug},
            )  # fmt: skip
        if body is not None:
            text = _with_body(text, title, body)
        doc = EditableDocument.parse(text.encode("utf-8"), f"{name}/README.md")
        before, meta = parse_frontmatter(doc)
        doc.set_scalar("status", status)
        doc.set_scalar("created", now[:10], plain=True)
        if priority:
            doc.set_scalar("priority", priority)
        doc.add_to_list("tags", [t for t in tag_list if t not in meta.tags])
        doc.add_to_list("depends_on", [d for d in deps if d not in meta.depends_on])
        if parent_name:
            doc.set_scalar("parent", parent_name)
        if assignee:
            doc.set_scalar("assignee", assignee)
        doc.set_scalar("created_at", now, plain=True)
        expected: dict[str, Any] = {"status": status, "created_at": now}
        if priority:
            expected["priority"] = priority
        if parent_name:
            expected["parent"] = parent_name
        if assignee:
            expected["assignee"] = assignee
        verify_edit(doc, before, expected)
        base = root
        if config is not None and config.pattern == "date-grouped":
            base = root / config.date_folder(now[:10])
        directory = base / name
        with storage_errors(directory, "create"):
            base.mkdir(parents=True, exist_ok=True)  # the first spec of a project, or of a day
            # The new dir must be a child of the specs dir or of one of its date folders, even
            # if a link was planted where the date folder goes.
            expected_parent = root if base == root else root / base.name
            if directory.resolve().parent != expected_parent:
                raise UnsafeReference(f"refused: {directory} would be outside the specs dir {root}")
            try:
                directory.mkdir()
            except FileExistsError:
                raise InvalidInput(f"{directory} already exists; try again") from None
        try:
            atomic_write(directory / "README.md", doc.render())
        except BaseException:
            directory.rmdir()
            raise
    spec = store.load(directory)
    change = {"field": "created", "new": name, "template": chosen.name, "source": chosen.source}
    return WrittenSpec.of(spec, [change], [str(directory / "README.md")])


def _fill_lean_spec(text: str, values: dict[str, str]) -> str:
    """LeanSpec's `{name}` placeholders, in the body only: the frontmatter is set through the
    line editor, and a YAML value is never built from a title."""
    head, body = "", text
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            cut = text.find("\n", end + 4)
            cut = len(text) if cut == -1 else cut + 1
            head, body = text[:cut], text[cut:]
    filled = _LEAN_PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body)
    return head + filled


def _fill(text: str, values: dict[str, str]) -> str:
    # One pass, so a title that itself contains `{{date}}` is not expanded again.
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
