"""The Chroma half of the index: one collection of chunk vectors, keyed by chunk id.

Embedded by default (a PersistentClient under `<data dir>/chroma`, telemetry off); a Chroma
server when Settings.chroma_url / SPECMEM_CHROMA_URL is set. The collection's metadata records
the model and dimension, like the manifest, so a collection built by another model is refused
(IndexMismatch) instead of silently answering with incomparable vectors.

chromadb is imported only here and only when a store is opened: its import alone costs ~2 s,
which a no-op ingest must not pay.

An embedded store that Chroma cannot open or read (a corrupt chroma.sqlite3, broken segment
files, a collection gone or from another build) is IndexDamaged naming `<data dir>/chroma`, so
that `ingest --full` is known to fix it; one on a read-only mount is BackendUnavailable (Chroma
writes as it opens). A server's failures stay BackendUnavailable: its files are not ours.

Read API (for retriever/): `query(vector, limit, where)`, `get_vectors(ids)`, `ids()`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ..errors import (
    BackendUnavailable,
    DiskFull,
    IndexDamaged,
    IndexMismatch,
    InvalidInput,
    SpecmemError,
)
from .layout import COLLECTION_NAME, IndexLayout, Manifest, manifest_metadata, sqlite_damage

__all__ = [
    "HEARTBEAT_TIMEOUT_SECONDS",
    "VectorCache",
    "VectorStore",
    "chunk_metadata",
    "collection_name",
    "forget_embedded",
]

# A Chroma server that is down must fail fast: a CLI call or an agent's tool call should not hang.
HEARTBEAT_TIMEOUT_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 30.0
_METADATA_FIELDS = ("spec", "file", "section_kind")
_BUILD_KEY = "specmem_build"


def collection_name(chroma_url: str | None, layout: IndexLayout) -> str:
    """One collection per data dir on a shared server (two projects must not mix); the fixed
    name in an embedded store, which only ever serves its own data dir."""
    if not chroma_url:
        return COLLECTION_NAME
    digest = hashlib.sha256(str(layout.data_dir.resolve()).encode()).hexdigest()[:12]
    return f"{COLLECTION_NAME}-{digest}"


@contextlib.contextmanager
def _backend_errors(where: str) -> Iterator[None]:
    """Connection failures of any layer (httpx, the Rust bindings) become BackendUnavailable."""
    import httpx

    try:
        yield
    except (httpx.TransportError, ConnectionError, TimeoutError) as err:
        raise BackendUnavailable(f"Chroma at {where} is unavailable: {err}") from None


def _server_client(url: str) -> Any:
    import httpx

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if not parsed.hostname:
        raise InvalidInput(f"SPECMEM_CHROMA_URL {url!r} is not a URL like http://host:8000")
    ssl = parsed.scheme == "https"
    port = parsed.port or (443 if ssl else 8000)
    base = f"{parsed.scheme}://{parsed.hostname}:{port}"
    try:
        response = httpx.get(f"{base}/api/v2/heartbeat", timeout=HEARTBEAT_TIMEOUT_SECONDS)
        response.raise_for_status()
    except httpx.HTTPError as err:
        raise BackendUnavailable(
            f"the Chroma server at {base} (SPECMEM_CHROMA_URL) is not answering its heartbeat "
            f"within {HEARTBEAT_TIMEOUT_SECONDS:g} s ({type(err).__name__}: {err}); start it, "
            "or unset SPECMEM_CHROMA_URL to use the embedded store"
        ) from None
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.HttpClient(
        host=parsed.hostname,
        port=port,
        ssl=ssl,
        settings=ChromaSettings(anonymized_telemetry=False),
    )
    # chromadb's HTTP session has no timeout at all; a server that stops answering mid-ingest
    # would hang us forever.
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None:
        session.timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=HEARTBEAT_TIMEOUT_SECONDS)
    return client


def _embedded_client(layout: IndexLayout) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    where = str(layout.chroma_dir)
    if where in _OPENED and _OPENED[where] != _inode(layout.chroma_database):
        # Another process rebuilt the store since this one opened it (`ingest --full` removes
        # the directory): chromadb's cached client would still read and write the deleted files.
        forget_embedded(layout)
    try:
        layout.chroma_dir.mkdir(parents=True, exist_ok=True)
        client = chromadb.PersistentClient(
            path=where,
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
        )
        _OPENED[where] = _inode(layout.chroma_database)
        return client
    except (FileExistsError, NotADirectoryError):
        raise IndexDamaged(where, "is not a directory") from None
    except BaseException as err:
        if not _chroma_failure(err):
            raise
        # chromadb caches the client before starting it: a failed start would be handed out
        # again, half made, to the next open of this path.
        forget_embedded(layout)
        raise _embedded_failure(where, err) from None


def _is_panic(err: BaseException) -> bool:
    """Chroma's Rust layer panics on some I/O failures (a store replaced while it opens it);
    pyo3 raises that as a PanicException, a BaseException, which would otherwise escape every
    handler up to the server."""
    return type(err).__name__ == "PanicException"


def _chroma_failure(err: BaseException) -> bool:
    """Whether `err` is a failure of Chroma to report, not a signal to let through."""
    return isinstance(err, Exception) or _is_panic(err)


def _embedded_failure(where: str, err: BaseException) -> SpecmemError:
    """What a failure of the embedded Chroma store means: a full disk, a disk that refuses
    writes, or (anything else) damage. Chroma's Rust layer reports SQLite's result codes in the
    text: 13 is SQLITE_FULL, 8 SQLITE_READONLY."""
    text = str(err)
    low = text.lower()
    code = getattr(err, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT) or "(code: 13)" in text or "disk is full" in low:
        return DiskFull(f"the Chroma store at {where} cannot be written: the disk is full ({text})")
    if "(code: 1032)" in text:  # SQLITE_READONLY_DBMOVED: the files were replaced under it
        return BackendUnavailable(
            f"the Chroma store at {where} was replaced while open (a rebuild by another "
            f"process); retry ({text})"
        )
    if isinstance(err, OSError) or "readonly" in low or "read-only" in low or "(code: 8)" in text:
        # The vector store cannot be used here, as when a server is down: context bundles
        # fall back to lexical seeds, `mode=lexical` works (retriever.bundles.context).
        return BackendUnavailable(
            f"the Chroma store at {where} cannot be opened: {text} (Chroma writes to its files "
            "as it opens them, so a read-only data dir can only serve vectors from "
            "search-vectors.npz, which `specmem ingest` keeps current)"
        )
    return IndexDamaged(where, f"Chroma cannot read it ({type(err).__name__}: {text})")


# chromadb keeps one client per path per process (SharedSystemClient); this notes which
# chroma.sqlite3 (by inode) each was opened on, to tell when the files under it were replaced.
_OPENED: dict[str, int | None] = {}


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def forget_embedded(layout: IndexLayout) -> None:
    """Drop this process's cached Chroma system for `layout` (after its files were removed):
    a PersistentClient opened on the same path afterwards would otherwise reuse the old one,
    with its connections to deleted files. Free when chromadb was never imported."""
    import sys

    _OPENED.pop(str(layout.chroma_dir), None)
    if "chromadb" not in sys.modules:
        return
    from chromadb.api.shared_system_client import SharedSystemClient

    systems = getattr(SharedSystemClient, "_identifier_to_system", None)
    if not isinstance(systems, dict):
        SharedSystemClient.clear_system_cache()
        return
    wanted = {str(layout.chroma_dir), str(layout.chroma_dir.resolve())}
    for identifier in [key for key in systems if key in wanted]:
        systems.pop(identifier)


class VectorStore:
    """One Chroma collection of L2-normalized chunk vectors (cosine space)."""

    def __init__(self, client: Any, name: str, where: str, layout: IndexLayout | None = None):
        self.client = client
        self.layout = layout  # set for an embedded store: `refresh` reopens it
        self.name = name
        self.where = where  # for messages: the data dir or the server URL
        with _backend_errors(where), self._failures():
            self.max_batch_size = int(client.get_max_batch_size())
        self._collection: Any = None
        self._manifest: Manifest | None = None

    @classmethod
    def open(
        cls, layout: IndexLayout, chroma_url: str | None = None, *, existing: bool = False
    ) -> VectorStore:
        """The store of `layout` (or of the server at `chroma_url`). `existing` (readers): an
        embedded store must already be there and look whole, or IndexDamaged, because opening
        creates an empty one where there is none, which would hide the damage and write to
        the data dir on behalf of a reader."""
        if existing and not chroma_url:
            problem = sqlite_damage(layout.chroma_database)
            if problem:
                raise IndexDamaged(str(layout.chroma_database), problem)
        if chroma_url:
            client = _server_client(chroma_url)
            where = chroma_url
        else:
            client = _embedded_client(layout)
            where = str(layout.chroma_dir)
        embedded = None if chroma_url else layout
        return cls(client, collection_name(chroma_url, layout), where, embedded)

    # -- the collection and its model ------------------------------------------------------------

    def collection(self, manifest: Manifest, *, create: bool = True) -> Any:
        """The collection for `manifest`'s model; IndexMismatch if another model built it,
        None when it does not exist and `create` is False."""
        if self._collection is not None:
            return self._collection
        self._manifest = manifest
        metadata = manifest_metadata(manifest)
        if manifest.build:
            metadata[_BUILD_KEY] = manifest.build
        with _backend_errors(self.where), self._failures():
            if create:
                collection = self.client.get_or_create_collection(
                    self.name,
                    metadata=metadata,
                    configuration={"hnsw": {"space": "cosine"}},
                    embedding_function=None,
                )
            else:
                try:
                    collection = self.client.get_collection(self.name, embedding_function=None)
                except Exception as err:  # chromadb raises NotFoundError or ValueError by version
                    if "not" in str(err).lower() and "exist" in str(err).lower():
                        return None
                    raise
        recorded = dict(collection.metadata or {})
        expected = manifest_metadata(manifest)
        if any(recorded.get(key) != value for key, value in expected.items()):
            raise IndexMismatch(
                f"the Chroma collection {self.name!r} at {self.where} was built with model "
                f"{recorded.get('specmem_model')!r} ({recorded.get('specmem_dimension')} "
                f"dimensions), not {manifest.describe()}; run `specmem ingest --full`"
            )
        if manifest.build and recorded.get(_BUILD_KEY) != manifest.build:
            raise IndexDamaged(
                self.where,
                f"its collection {self.name!r} belongs to another build of the index than "
                "manifest.json (replaced or restored from elsewhere)",
            )
        self._collection = collection
        self._manifest = manifest
        return collection

    def drop(self) -> None:
        """Delete the collection (a full rebuild, or a model change)."""
        self._collection = None
        with _backend_errors(self.where), contextlib.suppress(Exception):
            self.client.delete_collection(self.name)

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """An embedded store's own failures as IndexDamaged or BackendUnavailable; a server's
        pass through (to `_backend_errors` and the callers)."""
        try:
            yield
        except SpecmemError:
            raise
        except BaseException as err:
            import httpx

            if (
                not _chroma_failure(err)
                or self.layout is None
                or isinstance(err, httpx.TransportError | ConnectionError | TimeoutError)
            ):
                raise
            raise _embedded_failure(self.where, err) from None

    def _open(self) -> Any:
        if self._collection is None:
            if self._manifest is None:
                raise InvalidInput("VectorStore.collection(manifest) must be called first")
            self.collection(self._manifest, create=False)
            if self._collection is None:
                # The manifest says an ingest completed, so the collection was there.
                raise IndexDamaged(self.where, f"has no collection {self.name!r}")
        return self._collection

    def refresh(self) -> None:
        """Reopen the embedded client so it sees what another process wrote.

        An embedded Chroma caches its segments per process: after a `specmem ingest` in another
        process, a long-lived reader (a server) may fail to find new ids ("Error finding id").
        Ids are content-addressed, so vectors it does find are never wrong, only new ones are
        missing; reopening reads the files again.
        """
        self._collection = None
        if self.layout is None:
            return  # a server client always sees the server's current state
        from chromadb.api.shared_system_client import SharedSystemClient

        systems = getattr(SharedSystemClient, "_identifier_to_system", None)
        identifier = getattr(self.client, "_identifier", None)
        if isinstance(systems, dict) and identifier in systems:
            systems.pop(identifier)  # not stopped: other handles in this process keep working
        else:
            SharedSystemClient.clear_system_cache()
        self.client = _embedded_client(self.layout)

    def _run(self, operation: Callable[..., Any]) -> Any:
        """Run `operation(collection)`, retrying once after re-fetching the collection when
        `ingest --full` replaced it, or reopening the client when its cache is stale."""
        from chromadb.errors import ChromaError, NotFoundError

        with _backend_errors(self.where):
            try:
                return operation(self._open())
            except NotFoundError:
                self._collection = None
            except BaseException as err:
                # InternalError ("Error finding id"), or errors (even panics) of a store another
                # process is replacing ("Failed to pull logs"): reopen and look once more.
                if not (isinstance(err, ChromaError) or _is_panic(err)):
                    raise
                self.refresh()
            try:
                return operation(self._open())
            except BaseException as err:
                if not (isinstance(err, ChromaError) or _is_panic(err)):
                    raise
                if self.layout is not None:
                    raise _embedded_failure(self.where, err) from None
                raise BackendUnavailable(f"Chroma at {self.where} failed: {err}") from None

    # -- writes ----------------------------------------------------------------------------------

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Write in batches no larger than the client allows."""
        if len(ids) != len(vectors):
            raise InvalidInput(f"{len(ids)} ids but {len(vectors)} vectors")
        step = self.max_batch_size
        for start in range(0, len(ids), step):
            batch_ids = list(ids[start : start + step])
            batch_vectors = np.asarray(vectors[start : start + step], dtype=np.float32)
            batch_meta = None
            if metadatas is not None:
                batch_meta = [_clean_metadata(m) for m in metadatas[start : start + step]]
            self._run(
                lambda c, i=batch_ids, v=batch_vectors, m=batch_meta: c.upsert(
                    ids=i, embeddings=v, metadatas=m
                )
            )

    def delete(self, ids: Sequence[str]) -> None:
        ids = list(ids)
        for start in range(0, len(ids), self.max_batch_size):
            batch = ids[start : start + self.max_batch_size]
            self._run(lambda c, b=batch: c.delete(ids=b))

    # -- reads -----------------------------------------------------------------------------------

    def ids(self) -> set[str]:
        result: set[str] = set()
        page = self.max_batch_size
        offset = 0
        while True:
            got = self._run(lambda c, o=offset: c.get(include=[], limit=page, offset=o))["ids"]
            result.update(got)
            if len(got) < page:
                return result
            offset += page

    def count(self) -> int:
        return int(self._run(lambda c: c.count()))

    def _fetch_vectors(self, ids: list[str], found: dict[str, np.ndarray]) -> None:
        for start in range(0, len(ids), self.max_batch_size):
            batch = ids[start : start + self.max_batch_size]
            got = self._run(lambda c, b=batch: c.get(ids=b, include=["embeddings"]))
            for chunk_id, vector in zip(got["ids"], got["embeddings"], strict=True):
                found[chunk_id] = np.asarray(vector, dtype=np.float32)

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors in the order of `ids`; InvalidInput naming the first id that has none."""
        found: dict[str, np.ndarray] = {}
        ids = list(ids)
        self._fetch_vectors(ids, found)
        missing = [chunk_id for chunk_id in ids if chunk_id not in found]
        if missing:
            # A handle on a collection that `ingest --full` dropped and recreated under the same
            # name can answer without error and without the vectors: fetch it by name once more.
            self._collection = None
            self._fetch_vectors(missing, found)
            missing = [chunk_id for chunk_id in ids if chunk_id not in found]
        if missing:
            raise InvalidInput(
                f"{len(missing)} chunk(s) have no vector in {self.where}, e.g. {missing[0]!r}; "
                "run `specmem ingest`"
            )
        if not ids:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([found[chunk_id] for chunk_id in ids])

    def query(
        self, vector: np.ndarray, limit: int = 10, where: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, cosine similarity) best first; `where` is a Chroma filter over spec,
        file and section_kind, e.g. {"spec": "045-x"} or {"section_kind": {"$in": [...]}}."""
        if self.count() == 0:
            return []
        return self.nearest(vector, limit, where)

    def nearest(
        self, vector: np.ndarray, limit: int, where: Mapping[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """As `query`, in one round trip: the caller knows the collection holds `limit` vectors
        (a search, on every request, does not ask the server to count them first)."""
        got = self._run(
            lambda c: c.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32)],
                n_results=int(limit),
                where=dict(where) if where else None,
                include=["distances"],
            )
        )
        return [
            (chunk_id, 1.0 - float(distance))
            for chunk_id, distance in zip(got["ids"][0], got["distances"][0], strict=True)
        ]


def _clean_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Chroma metadata values must be scalars and not None."""
    return {key: metadata[key] for key in _METADATA_FIELDS if metadata.get(key) is not None}


def chunk_metadata(chunk: Any) -> dict[str, Any]:
    """What a vector carries besides its id: only fields fixed by the chunk's content hash, so
    an unchanged id never has stale metadata. Status and priority change without re-embedding
    (spec 032): they live in SQLite, where filters read them."""
    return _clean_metadata(
        {
            "spec": chunk.spec,
            "file": chunk.file,
            "section_kind": chunk.section_kind,
        }
    )


class VectorCache:
    """`search-vectors.npz`: every chunk's vector in index order, with the model and the id list
    that make it valid. Readers load it instead of opening Chroma (a one-shot CLI search skips
    the ~2 s import; a reader on a read-only data dir cannot open an embedded Chroma at all), and
    an unscoped ingest leaves it current. A cache: absent, torn or stale means "ask Chroma"."""

    def __init__(self, layout: IndexLayout):
        self.layout = layout
        self.path = layout.vector_cache_path

    def ids(self, model: str) -> list[str] | None:
        """The ids the cache holds vectors of for `model` (without loading the vectors)."""
        try:
            with np.load(self.path, allow_pickle=False) as data:
                return data["ids"].tolist() if str(data["model"]) == model else None
        except Exception:  # absent, torn, from another version: np.load raises many kinds
            return None

    def read(self, ids: list[str], model: str) -> np.ndarray | None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                # The exact id list and model are enough: a vector is a function of both.
                if str(data["model"]) != model or data["ids"].tolist() != ids:
                    return None
                vectors = np.asarray(data["vectors"], dtype=np.float32)
        except Exception:
            return None
        return vectors if len(vectors) == len(ids) else None

    def write(self, ids: list[str], vectors: np.ndarray, model: str) -> None:
        """Replace the cache atomically; nothing at all where the data dir is not writable (a
        read-only server must not even create a temp file), and a failed write only costs the
        next reader a Chroma read."""
        if not self.layout.writable():
            return
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.npz")
        try:
            np.savez(temp, ids=np.array(ids), vectors=vectors, model=model)
            os.replace(temp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                temp.unlink()
