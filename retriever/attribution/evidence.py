r"""Which spec governs a piece of work: evidence of each kind, weighed and combined.

    message, branch --> explicit references ----------------\
    files ------------> a spec's own dir ---------------------+-> per spec: evidence, each with a
                   \--> paths a spec mentions, or that         |   strength in [0, 1], combined as
                        events already linked to it ----------+   1 - prod(1 - strength)
    message ----------> search over the index ---------------/   -> ranked, or abstained

Each kind's strength says how often that kind alone names the right spec: an explicit
reference almost always does, a spec's own dir does when the work touched one spec dir, a
mentioned path does when few specs mention it, and a search hit does as far as it stands out
from the next one. Combining them as independent chances ("noisy OR") keeps one strong piece of
evidence decisive and lets weak ones add up without ever passing 1. The strengths and the
abstention threshold are few, shared by every project, and were set on the LeanSpec dev set
(specs/085 records them with the figures).

A spec created after the work's date cannot have governed it: it is dropped from the weak
evidence (search, mentioned paths), never from an explicit reference or its own dir.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from ingest.errors import BackendUnavailable, IndexMismatch, NoIndex
from ingest.specs.model import Spec
from ingest.specs.store import Catalog

from ..events import parse_timestamp
from ..ranking.identifiers import identifiers
from .references import Reference, branch_references, text_references

__all__ = [
    "ABSTAIN_BELOW",
    "AttributedSpec",
    "Attribution",
    "Evidence",
    "attribute_work",
    "mentioned_paths",
    "routine_change",
]

REFERENCE = 0.95  # `spec 354`, a dir name, a branch naming the spec
SCOPED_NUMBER = 0.85  # `specs: add 045`: a bare number in a subject scoped to specs
OWN_DIR = 0.9  # files under the spec's dir, when the work touched that spec dir alone
MENTIONED_PATH = 0.3  # a changed file a spec names, shared among the specs naming it
MENTIONED_CAP = 0.45
LINKED_PATH = 0.5  # a changed file that events already linked to the spec
SEARCH = 0.85  # the top search hit's share, over the hits after it
# Fused scores are sums of z-scores: at half a standard deviation per e-fold, a top hit one unit
# above the next takes ~0.88 of the share, level with how often such a hit was right on dev.
SEARCH_TEMPERATURE = 0.5
ABSTAIN_BELOW = 0.4
SEARCH_HITS = 10
SLACK = dt.timedelta(days=1)  # a commit may create its spec the same day, in another time zone

_VERSION = re.compile(r"\bv?\d+\.\d+(?:\.\d+)?(?:[-+][\w.]+)?\b")
_ROUTINE_WORDS = re.compile(
    r"\b(release|released|releasing|bump|bumped|bumps|version|publish|changelog|"
    r"deps|dependencies|dependency|upgrade|lockfile)\b",
    re.IGNORECASE,
)
_MANIFESTS = frozenset(
    [
        "package.json",
        "package-lock.json",
        "pnpm-lock.yaml",
        "yarn.lock",
        "cargo.toml",
        "cargo.lock",
        "pyproject.toml",
        "poetry.lock",
        "uv.lock",
        "requirements.txt",
        "go.mod",
        "go.sum",
        "changelog.md",
        "gemfile.lock",
    ]
)
# Files nearly every project has: a spec naming one says nothing about which spec a change is for.
_GENERIC = _MANIFESTS | frozenset(
    ["readme.md", "agents.md", "claude.md", "contributing.md", ".gitignore", "license", "makefile"]
)


@dataclass(frozen=True)
class Evidence:
    kind: str  # reference, own-dir, mentioned-path, linked-path, search
    detail: str
    strength: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "strength": round(self.strength, 3)}


@dataclass
class AttributedSpec:
    spec: str
    title: str
    evidence: list[Evidence] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        return 1.0 - math.prod(1.0 - e.strength for e in self.evidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "title": self.title,
            "confidence": round(self.confidence, 3),
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(frozen=True)
class Attribution:
    specs: tuple[AttributedSpec, ...]
    abstained: bool
    reason: str | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "specs": [s.to_dict() for s in self.specs],
            "abstained": self.abstained,
        }
        if self.reason:
            answer["reason"] = self.reason
        if self.notes:
            answer["notes"] = list(self.notes)
        return answer


Search = Callable[[str, int], Sequence[tuple[str, float]]]


def attribute_work(
    catalog: Catalog,
    *,
    message: str | None = None,
    files: Sequence[str] = (),
    branch: str | None = None,
    at: dt.datetime | None = None,
    search: Search | None = None,
    linked_files: Mapping[str, set[str]] | None = None,
    limit: int = 5,
) -> Attribution:
    """The specs that govern this work, best first, or abstained when none is confident."""
    found: dict[str, AttributedSpec] = {}
    notes: list[str] = []

    def add(name: str, evidence: Evidence) -> None:
        spec = catalog.by_name.get(name)
        if spec is None:
            return
        entry = found.setdefault(name, AttributedSpec(name, spec.title))
        entry.evidence.append(evidence)

    def possible(name: str) -> bool:
        spec = catalog.by_name.get(name)
        return spec is not None and not _created_after(spec, at)

    references = [*text_references(message or ""), *branch_references(branch or "")]
    for reference in references:
        name = catalog.try_resolve(reference.ref)
        if name is not None:
            add(name, _reference_evidence(reference))
    own = _own_dirs(catalog, files)
    for name, count in own.items():
        share = count / sum(own.values())
        strength = OWN_DIR if len(own) == 1 else OWN_DIR * share
        add(name, Evidence("own-dir", f"{count} changed file(s) in {name}/", strength))
    code_files = [f for f in files if not _spec_dir_of(catalog, f)]
    for name, weighed in _mentions(catalog, code_files).items():
        if possible(name):
            strength = min(MENTIONED_CAP, sum(weight for _, weight in weighed))
            shown = ", ".join(path for path, _ in weighed[:3])
            add(name, Evidence("mentioned-path", f"the spec names {shown}", strength))
    for name, paths in _linked(linked_files or {}, code_files).items():
        if possible(name):
            add(name, Evidence("linked-path", f"events linked {', '.join(paths[:3])}", LINKED_PATH))
    routine = routine_change(message or "", files)
    if message and message.strip() and not routine:
        try:
            shares = _search_shares(search, message, possible) if search is not None else None
        except (BackendUnavailable, IndexMismatch, NoIndex) as err:
            shares = None
            notes.append(f"search unavailable ({err}): the text was not matched against specs")
        for name, share in shares or []:
            add(
                name, Evidence("search", f"text match, {share:.0%} of the top hits", SEARCH * share)
            )
    ranked = sorted(found.values(), key=lambda s: (-s.confidence, s.spec))[:limit]
    if not ranked:
        return Attribution((), True, routine or "no evidence names a spec", tuple(notes))
    if routine and not any(e.kind in ("reference", "own-dir") for s in ranked for e in s.evidence):
        return Attribution(tuple(ranked), True, routine, tuple(notes))
    if ranked[0].confidence < ABSTAIN_BELOW:
        return Attribution(
            tuple(ranked), True, f"no spec reaches confidence {ABSTAIN_BELOW}", tuple(notes)
        )
    return Attribution(tuple(ranked), False, None, tuple(notes))


def routine_change(message: str, files: Sequence[str]) -> str | None:
    """Why this looks like a release or a dependency bump, which no spec governs, or None."""
    subject = (message.splitlines() or [""])[0].strip()
    if subject and _VERSION.fullmatch(subject.lstrip("v")):
        return "a version number alone: a release"
    if subject and _VERSION.search(subject) and _ROUTINE_WORDS.search(subject):
        return "a release or version bump"
    names = [PurePosixPath(f).name.lower() for f in files]
    if names and all(n in _MANIFESTS for n in names) and _ROUTINE_WORDS.search(subject):
        return "only manifests, lockfiles and changelogs changed: a dependency or version bump"
    return None


def mentioned_paths(catalog: Catalog) -> dict[str, dict[str, set[str]]]:
    """Per catalog version: each path-like identifier the specs mention (`src/cli.ts`,
    `create.rs`), and its tail of two parts, to the specs that mention it."""

    def compute() -> dict[str, dict[str, set[str]]]:
        by_path: dict[str, set[str]] = {}
        for spec in catalog.specs:
            for path in _paths_in(spec):
                by_path.setdefault(path, set()).add(spec.dir_name)
        by_tail: dict[str, set[str]] = {}
        for path, specs in by_path.items():
            by_tail.setdefault(_tail(path), set()).update(specs)
        return {"path": by_path, "tail": by_tail}

    return catalog.derive("attribution.mentioned_paths", compute)


def _paths_in(spec: Spec) -> set[str]:
    def compute() -> set[str]:
        texts = [spec.readme.text, *(f.text for f in spec.sub_files)]
        found = set()
        for text in texts:
            for token in identifiers(text):
                token = token.strip("`'\"()[]<>").lstrip("./")
                if "." in PurePosixPath(token).name and not token.startswith("@"):
                    found.add(token)
        return found

    return spec.derive("attribution.paths", compute)


def _tail(path: str) -> str:
    parts = PurePosixPath(path.lower()).parts
    return "/".join(parts[-2:])


def _mentions(catalog: Catalog, files: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
    """Specs that name a changed file (by its path, or its last two parts); each file's weight
    is shared among the specs naming it, so a path every spec names says little."""
    if not files:
        return {}
    index = mentioned_paths(catalog)
    found: dict[str, list[tuple[str, float]]] = {}
    for path in files:
        lowered = path.lower().lstrip("./")
        if lowered in _GENERIC:
            continue
        specs = set(index["path"].get(lowered, set()))
        if len(PurePosixPath(lowered).parts) >= 2:
            specs |= index["tail"].get(_tail(lowered), set())
        for name in specs:
            found.setdefault(name, []).append((path, MENTIONED_PATH / len(specs)))
    return found


def _linked(linked: Mapping[str, set[str]], files: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in files:
        for name in linked.get(path, set()):
            found.setdefault(name, []).append(path)
    return found


def _spec_dir_of(catalog: Catalog, path: str) -> str | None:
    """The spec whose dir holds `path` (`specs/045-x/README.md`, `archived/045-x/a.md`)."""
    for part in PurePosixPath(path).parts[:-1]:
        if part in catalog.by_name:
            return part
    return None


def _own_dirs(catalog: Catalog, files: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in files:
        name = _spec_dir_of(catalog, path)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return counts


def _reference_evidence(reference: Reference) -> Evidence:
    strength = SCOPED_NUMBER if reference.form == "specs-scope" else REFERENCE
    return Evidence("reference", f"{reference.form}: {reference.text!r}", strength)


def _search_shares(
    search: Search, message: str, possible: Callable[[str], bool]
) -> list[tuple[str, float]]:
    """The search hits that could have governed the work, each with its softmax share of the
    fused scores: a hit far above the next takes most of it, a flat ranking spreads it."""
    hits = [(name, score) for name, score in search(message, SEARCH_HITS) if possible(name)]
    if not hits:
        return []
    top = max(score for _, score in hits)
    weights = [math.exp((score - top) / SEARCH_TEMPERATURE) for _, score in hits]
    total = sum(weights)
    return [(name, w / total) for (name, _), w in zip(hits, weights, strict=True)][:3]


def _created_after(spec: Spec, at: dt.datetime | None) -> bool:
    if at is None:
        return False
    # The earlier of the two: tools that backfill `created_at` from git can stamp it after the
    # day the spec was written.
    moments = (parse_timestamp(spec.meta.created), parse_timestamp(spec.meta.created_at))
    dates = [d for d in moments if d is not None]
    return bool(dates) and min(dates) > at + SLACK
