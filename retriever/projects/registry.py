"""Projects: the spec folders one server holds, each its own SpecMemory, and which one a request means.

A server of one spec folder (`specmem serve` as before) holds one unnamed project: requests need
no `project`, answers carry no `project` field, and a `project` named is refused. A server of
named projects (a projects file, or `--project NAME=DIR`) reads the file again when it changes, so
a project is added or removed with no restart of the others; each project keeps its own index,
event log, write gate and locks, so one project's re-index never holds another's reads.

References: `web:045` names spec 045 of project `web`; a bare `045` is looked up in every
project (or the one the request names) and is ambiguous when several have it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.config import Settings
from ingest.errors import (
    AmbiguousSpecRef,
    Busy,
    InvalidInput,
    ProjectNotFound,
    ProjectRequired,
    SpecmemError,
    SpecNotFound,
)

from ..paths import PathDisplay
from ..service import SpecMemory
from .config import ProjectEntry, ProjectSources, ProjectTable, read_table

__all__ = ["Project", "Projects", "split_ref"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Project:
    name: str | None  # None: the one unnamed project of a single-folder server
    memory: SpecMemory
    entry: ProjectEntry | None = None  # where it came from; a changed entry reopens it

    def qualified(self, spec: str) -> str:
        return f"{self.name}:{spec}" if self.name else spec


def split_ref(ref: object) -> tuple[str | None, object]:
    """`web:045` -> ("web", "045"); anything else is a bare reference."""
    if isinstance(ref, str) and ":" in ref:
        project, _, spec = ref.partition(":")
        return project, spec
    return None, ref


class _Source:
    """A projects file and the signature it was last read at."""

    def __init__(self, path: Path):
        self.path = path
        self.seen: tuple[int, int, int] | None = None

    def signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def changed(self) -> bool:
        return self.signature() != self.seen

    def read(self) -> ProjectTable:
        self.seen = self.signature()
        return read_table(self.path)


class Projects:
    """The served projects by name. One owner of each project's SpecMemory: opened when the
    project first appears, dropped when it leaves the file."""

    def __init__(
        self,
        table: ProjectTable | None = None,
        *,
        source: Path | None = None,
        open_memory: Callable[[ProjectEntry], SpecMemory] | None = None,
        single: SpecMemory | None = None,
        tune: Callable[[Settings], Settings] | None = None,
        build_missing: bool = False,
    ):
        """`tune` adjusts each project's settings (a worker's share of the cores);
        `build_missing` starts an ingest, in the background, of a project that has no index
        yet, so that a project added to the file is searchable without anyone running ingest."""
        self._lock = threading.Lock()
        self._source = _Source(source) if source is not None else None
        self._open = open_memory or self._open_memory
        self._tune = tune
        self._build_missing = build_missing
        self.building: set[str] = set()  # projects whose first ingest is running
        self._embedder: Any = None  # one model for every project (each would load its own copy)
        self._by_name: dict[str | None, Project] = {}
        self._default: str | None = None
        self.problems: tuple[str, ...] = ()
        self.named = single is None
        self._display: tuple[tuple[Any, ...], PathDisplay] | None = None
        self.paths = LivePaths(self)
        if single is not None:
            self._by_name = {None: Project(None, single)}
            return
        first = table if table is not None else self._source.read() if self._source else None
        if first is None:
            raise InvalidInput("no projects: give a projects file or --project NAME=SPECS_DIR")
        self._apply(first)
        if not self._by_name:
            raise InvalidInput(
                "no project could be opened: "
                + "; ".join(self.problems or ("the file names none",))
            )

    @classmethod
    def single(cls, memory: SpecMemory) -> Projects:
        return cls(single=memory)

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> Projects:
        return cls(source=Path(path).expanduser().absolute(), **options)

    @classmethod
    def open(cls, sources: ProjectSources, **options: Any) -> Projects:
        if sources.file is not None:
            return cls.from_file(sources.file, **options)
        return cls(ProjectTable(sources.entries), **options)

    # -- which projects there are ----------------------------------------------------------------

    def current(self) -> dict[str | None, Project]:
        """The projects now: the file is read again when its signature changed. A file that no
        longer parses keeps the last good set (and says why in `problems`)."""
        if self._source is not None and self._source.changed():
            with self._lock:
                if self._source.changed():
                    try:
                        table = self._source.read()
                    except SpecmemError as err:
                        log.warning("projects file not applied: %s", err)
                        self.problems = (str(err),)
                    else:
                        self._apply(table)
        return self._by_name

    def _apply(self, table: ProjectTable) -> None:
        problems = list(table.problems)
        kept = {p.name: p for p in self._by_name.values()}
        # Projects already served and unchanged are placed first, whatever the file's order: an
        # entry added before one of them that shares its data dir or log is the one refused.
        unchanged = {e.name for e in table.entries if (old := kept.get(e.name)) and old.entry == e}
        fresh: dict[str | None, Project] = {name: kept[name] for name in unchanged}
        for entry in table.entries:
            if entry.name in unchanged:
                continue
            try:
                memory = self._open(entry)
                _check_apart(memory, fresh.values())
                fresh[entry.name] = Project(entry.name, memory, entry)
                if self._build_missing and not memory.index_follower.index_exists():
                    self._start_build(entry.name, memory)
            except SpecmemError as err:
                problems.append(f"project {entry.name}: {err}")
        if not fresh and self._by_name:
            # An edit that leaves nothing servable (every path mistyped, say) is a mistake to
            # report, not an instruction to serve nothing: the last good set stays.
            log.warning("projects file not applied, no project could be opened: %s", problems)
            self.problems = (
                "the edited projects file opens no project; still serving the last good set",
                *problems,
            )
            return
        default = table.default if table.default in fresh else None
        if table.default is not None and default is None:
            problems.append(f"default project {table.default!r} could not be opened")
        self._by_name, self._default, self.problems = fresh, default, tuple(problems)

    def _start_build(self, name: str, memory: SpecMemory) -> None:
        def build() -> None:
            try:
                summary = memory.ingest()
                log.info("project %s indexed: %s", name, summary)
            except Busy:  # another worker builds it; this one's searches follow its index
                log.info("project %s: another process is building its index", name)
            except Exception as err:  # a project that cannot be indexed still lists and reads
                log.warning("project %s could not be indexed: %s", name, err)
                self.problems = (*self.problems, f"project {name}: not indexed: {err}")
            finally:
                self.building.discard(name)

        self.building.add(name)
        threading.Thread(target=build, name=f"specmem-index-{name}", daemon=True).start()

    def _open_memory(self, entry: ProjectEntry) -> SpecMemory:
        settings = Settings.load(entry.specs_dir, entry.data_dir, events_url=entry.events_url)
        if self._tune is not None:
            settings = self._tune(settings)
        if self._embedder is None:
            from ingest.index.embedding import load_embedder

            from .shared_embedder import SharedEmbedder

            self._embedder = SharedEmbedder(load_embedder(settings))  # loads on first use
        return SpecMemory(settings=settings, embedder=self._embedder)

    def names(self) -> list[str]:
        return sorted(name for name in self.current() if name is not None)

    def all(self) -> list[Project]:
        current = self.current()  # one snapshot: the file may change between two reads
        return [current[name] for name in sorted(current, key=lambda n: n or "")]

    def display(self) -> PathDisplay:
        """How answers show these projects' paths (retriever.paths), for the set served now."""
        current = self.current()
        key = tuple(sorted((str(name), id(p.memory)) for name, p in current.items()))
        if self._display is None or self._display[0] != key:
            if not self.named:
                shown = PathDisplay.of(current[None].memory.settings)
            else:
                places = [
                    (str(p.name), p.memory.settings.specs_dir, p.memory.settings.data_dir)
                    for p in current.values()
                ]
                shown = PathDisplay(None, projects=places)
            self._display = (key, shown)
        return self._display[1]

    # -- what a request means --------------------------------------------------------------------

    def get(self, name: str | None) -> Project:
        projects = self.current()
        if name is None:
            raise ProjectRequired(self._required_message())
        if not self.named:
            raise ProjectNotFound(
                f"project {name!r}: this server holds one spec folder, not named projects; "
                "leave `project` out"
            )
        if name not in projects:
            known = ", ".join(self.names()) or "none"
            raise ProjectNotFound(f"no project named {name!r} (projects: {known})")
        return projects[name]

    def scope(self, name: str | None) -> list[Project]:
        """The projects a read across projects covers: the one named, else every one."""
        return [self.get(name)] if name is not None else self.all()

    def one(self, name: str | None) -> Project:
        """The project a request about no particular spec works on (a write, a log event): the
        one named, the only one, or the default one."""
        if name is not None:
            return self.get(name)
        projects = self.current()
        if len(projects) == 1:
            return next(iter(projects.values()))
        if self._default is not None:
            return projects[self._default]
        raise ProjectRequired(self._required_message())

    def spec(self, name: str | None, ref: object) -> tuple[Project, object]:
        """The project a spec reference lives in, and the reference within it. `web:045` names
        its project (which must agree with `name` when both are given); a bare reference is
        looked up in every project in scope and must resolve in exactly one."""
        qualifier, local = split_ref(ref) if self.named else (None, ref)
        if qualifier is not None:
            if name is not None and name != qualifier:
                raise InvalidInput(f"spec {ref!r} is in project {qualifier!r}, not {name!r}")
            return self.get(qualifier), local
        scope = self.scope(name)
        if len(scope) == 1:
            return scope[0], local
        found: list[tuple[Project, str]] = []
        for project in scope:
            try:
                found.append((project, project.memory.catalog().resolve_name(local)))
            except SpecNotFound:
                continue
            except AmbiguousSpecRef:  # ambiguous inside a project: that project answers it
                found.append((project, str(local)))
        if len(found) == 1:
            return found[0][0], local
        if not found:
            raise SpecNotFound(f"no spec {local!r} in any project ({', '.join(self.names())})")
        raise AmbiguousSpecRef(str(local), [project.qualified(name) for project, name in found])

    def _required_message(self) -> str:
        return (
            f"this server holds several projects ({', '.join(self.names())}) and no default: "
            "name one with `project`, or a spec as project:spec"
        )


class LivePaths:
    """A PathDisplay that follows the projects served (the HTTP answer shaper and the MCP
    server hold one for their lifetime, while projects come and go)."""

    def __init__(self, projects: Projects):
        self._projects = projects

    def text(self, text: str) -> str:
        return self._projects.display().text(text)

    def json_text(self, text: str) -> str:
        return self._projects.display().json_text(text)

    def data(self, value: Any) -> Any:
        return self._projects.display().data(value)


def _check_apart(memory: SpecMemory, others: Any) -> None:
    """Two projects on one index or one event log would answer with each other's specs and
    events: the second is refused, naming what they share."""
    mine = memory.settings
    for other in others:
        theirs = other.memory.settings
        if mine.data_dir == theirs.data_dir:
            raise InvalidInput(f"shares its data dir {mine.data_dir} with project {other.name}")
        log_of = (mine.events_url, mine.events_dir)
        if log_of != (None, None) and log_of == (theirs.events_url, theirs.events_dir):
            raise InvalidInput(
                f"would share its event log with project {other.name} (SPECMEM_EVENTS_URL or "
                "SPECMEM_EVENTS_DIR names one log for all): give each project its own "
                "events_url in the projects file"
            )
