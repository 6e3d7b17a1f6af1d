"""Every error specmem raises on purpose, so each front door can map them to its own idiom.

    SpecmemError                      base: a message a user can act on, and a stable `code`
    ├── SpecNotFound                  no spec answers to a reference          (HTTP 404)
    ├── ProjectNotFound               no served project has that name          (HTTP 404)
    ├── AmbiguousSpecRef              a bare number that several specs share   (HTTP 409)
    ├── UnsafeReference               a reference that would leave the specs dir (HTTP 400)
    ├── SpecParseError                a file that cannot be read as a spec     (HTTP 422)
    ├── InvalidInput                  a bad value for a field or an option     (HTTP 422)
    │   ├── DependencyCycle           a new dependency would close a cycle
    │   ├── ProjectRequired           several projects served, the request needs one
    │   └── NoIndex                   no complete index yet: run an ingest     (HTTP 409)
    ├── StaleWrite                    `expected_hash` no longer matches       (HTTP 412)
    ├── IndexMismatch                 the index was built by another model    (HTTP 409)
    ├── IndexDamaged                  a file of the index cannot be read       (HTTP 409)
    ├── BackendUnavailable            the vector store cannot be reached       (HTTP 503)
    │   └── Busy                      a lock or a write slot not free in time  (HTTP 503 + Retry-After)
    └── StorageUnavailable            the disk refused a write (read-only...)  (HTTP 503)
        └── DiskFull                  no space left on the device             (HTTP 507)

The CLI prints `error: <message>` and exits 1 (2 for usage); HTTP answers JSON
`{"error": {"code", "message"}}`; MCP returns a tool error carrying the same message.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousSpecRef",
    "BackendUnavailable",
    "Busy",
    "DependencyCycle",
    "DiskFull",
    "IndexDamaged",
    "IndexMismatch",
    "InvalidInput",
    "NoIndex",
    "ProjectNotFound",
    "ProjectRequired",
    "SpecNotFound",
    "SpecParseError",
    "SpecmemError",
    "StaleWrite",
    "StorageUnavailable",
    "UnsafeReference",
]


class SpecmemError(Exception):
    """Base class: `str(err)` is a complete sentence meant for the user."""

    code = "specmem_error"


class SpecNotFound(SpecmemError):
    code = "spec_not_found"


class AmbiguousSpecRef(SpecmemError):
    code = "ambiguous_reference"

    def __init__(self, ref: str, candidates: list[str]):
        self.ref = ref
        self.candidates = candidates
        super().__init__(
            f"spec reference {ref!r} is ambiguous: it matches {', '.join(candidates)}; "
            "use the full directory name"
        )


class UnsafeReference(SpecmemError):
    code = "unsafe_reference"


class SpecParseError(SpecmemError):
    """A file that cannot be read as a spec. `problem` is validate's code for it (a key of
    ingest.specs.validate.CODES), set where the problem is found, never read back from `reason`."""

    code = "spec_parse_error"

    def __init__(
        self, path: str, reason: str, line: int | None = None, *, problem: str = "file-unreadable"
    ):
        self.path = path
        self.reason = reason
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {reason}")


class InvalidInput(SpecmemError):
    code = "invalid_input"


class DependencyCycle(InvalidInput):
    code = "dependency_cycle"


class ProjectNotFound(SpecmemError):
    """A `project` (or a `proj:045` reference) that no served project answers to."""

    code = "project_not_found"


class ProjectRequired(InvalidInput):
    """A request that works on one project (a write, a spec's history) named none, on a server of
    several projects and no default one."""

    code = "project_required"


class StaleWrite(SpecmemError):
    code = "stale_write"

    def __init__(self, spec: str, expected: str, current: str):
        self.spec = spec
        self.expected = expected
        self.current = current
        super().__init__(
            f"{spec} changed since you read it: expected hash {expected}, current hash {current}"
        )


class IndexMismatch(SpecmemError):
    code = "index_mismatch"


class BackendUnavailable(SpecmemError):
    code = "backend_unavailable"


class Busy(BackendUnavailable):
    """Nothing was written: the write could not get its slot or lock within its bound (another
    write or ingest holds it). Safe to retry after `retry_after` seconds (spec 076)."""

    code = "busy"

    def __init__(self, message: str, retry_after: float = 1.0):
        self.retry_after = retry_after
        super().__init__(message)


class NoIndex(InvalidInput):
    """Search was asked before any ingest completed in the data dir (or while a rebuild is
    still running): a valid request the server cannot answer yet, so HTTP 409, not 422. An
    InvalidInput still for callers of the Python API that catch it."""

    code = "no_index"


class IndexDamaged(SpecmemError):
    """A file of the index (the manifest, lexical.sqlite, the Chroma store) cannot be read as
    one: `specmem ingest --full` rebuilds it from the markdown (spec 043)."""

    code = "index_damaged"

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(
            f"the index is damaged: {path}: {reason}; run `specmem ingest --full` to rebuild it "
            "from the specs"
        )


class StorageUnavailable(SpecmemError):
    """The filesystem refused a write (read-only, no permission): nothing was changed."""

    code = "storage_unavailable"


class DiskFull(StorageUnavailable):
    code = "disk_full"
