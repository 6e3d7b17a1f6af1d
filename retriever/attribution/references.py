"""Explicit spec references in commit messages, free text and branch names.

The forms are the ones real commits use (read from LeanSpec's own history): `spec 354`,
`Spec #372`, `spec-314`, `spec(049)`, `specs/018`, `specs 307 and 308`, `spec-97-99` (a pull
request branch naming two), `specs: add 045` (a subject scoped to specs, naming a number), a
full dir name (`045-api-redesign`) and a branch like `045-api-redesign` or
`feature/045-api-redesign`. What is found here is only text: whether `045` names a spec is the
catalog's question (the caller resolves each reference).

Numbers that are not spec references stay out: a pull request (`#18`, `pull request #20`), a
version (`v0.2.19`, `0.2.19`), a count (`3 files`), a phase (`Phase 1-2`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Reference", "branch_references", "text_references"]

# "spec" or "specs", then a separator the forms above use, then a number; more numbers may
# follow joined by `and`, `&`, `,`, `/` or `-` ("specs 307 and 308", "spec-97-99").
_NUMBER = r"#?0*(\d{1,5})(?![\d.])"
_JOIN = r"(?:\s*(?:,|&|and|/)\s*|-)"
_SPEC_WORD = re.compile(
    rf"\bspecs?(?:\s+|\s*#|-|_|\(|/|:\s*)(?P<numbers>{_NUMBER}(?:{_JOIN}{_NUMBER})*)",
    re.IGNORECASE,
)
_EACH_NUMBER = re.compile(r"#?0*(\d{1,5})(?![\d.])")
# A subject scoped to specs (`specs: add 045 ...`, `docs(specs): ...`) names specs by their
# zero-padded number alone.
_SPECS_SCOPE = re.compile(r"^\s*(?:[a-z]+\()?specs?\)?\s*:", re.IGNORECASE)
_PADDED = re.compile(r"(?<![\w.#-])(0\d{2}|\d{3})(?![\w.]|-\d)")
_DIR_NAME = re.compile(r"(?<![\w/.-])(\d{2,5}-[a-z0-9]+(?:-[a-z0-9]+)*)(?![\w])")
_BRANCH_DIR = re.compile(r"(?:^|/)(\d{2,5})[-_]([a-z0-9][a-z0-9-]*)", re.IGNORECASE)


@dataclass(frozen=True)
class Reference:
    """A piece of text that names a spec: a number or a dir name, and how it was written."""

    ref: str  # what to resolve: "354" or "045-api-redesign"
    text: str  # the words that named it, as written
    form: str  # "spec-number", "specs-scope", "dir-name", "branch"


def text_references(text: str) -> list[Reference]:
    """Every spec reference in a commit message or free text, in order, each once."""
    found: list[Reference] = []
    for match in _SPEC_WORD.finditer(text):
        for number in _EACH_NUMBER.findall(match.group("numbers")):
            found.append(Reference(str(int(number)), match.group(0).strip(), "spec-number"))
    first_line = text.splitlines()[0] if text else ""
    if _SPECS_SCOPE.match(first_line):
        for number in _PADDED.findall(first_line):
            found.append(Reference(str(int(number)), number, "specs-scope"))
    for name in _DIR_NAME.findall(text):
        if not _looks_like_a_date_or_version(name):
            found.append(Reference(name.lower(), name, "dir-name"))
    return _unique(found)


def branch_references(branch: str) -> list[Reference]:
    """References in a branch name: `045-api-redesign`, `feature/045-x`, `copilot/implement-spec-75`."""
    found = [
        Reference(f"{match.group(1)}-{match.group(2)}".lower(), match.group(0).strip("/"), "branch")
        for match in _BRANCH_DIR.finditer(branch)
    ]
    found.extend(
        Reference(r.ref, r.text, "branch") for r in text_references(branch) if r.form != "dir-name"
    )
    return _unique(found)


def _looks_like_a_date_or_version(name: str) -> bool:
    head, _, rest = name.partition("-")
    return len(head) == 4 and rest[:2].isdigit()  # 2025-11-01


def _unique(found: list[Reference]) -> list[Reference]:
    seen: set[str] = set()
    kept = []
    for reference in found:
        if reference.ref not in seen:
            seen.add(reference.ref)
            kept.append(reference)
    return kept
