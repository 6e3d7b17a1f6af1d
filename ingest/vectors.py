"""The Chroma half of the index: one collection of chunk vectors, keyed by chunk id.

Embedded by default (a PersistentClient under `<data dir>/chroma`, telemetry off); a Chroma
server when Settings.chroma_url / SPECMEM_CHROMA_URL is set. The collection's metadata records
the model and dimension, like the manifest, so a collection built by another model is refused
(IndexMismatch) instead of silently answering with incomparable vectors.

chromadb is imported only here and only when a store is opened: its import alone costs ~2 s,
which a no-op ingest must not pay.

Read API (for retriever/): `query(vector, limit, where)`, `get_vectors(ids)`, `ids()`.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np

from .errors import BackendUnavailable, IndexMismatch, InvalidInput
from .layout import COLLECTION_NAME, IndexLayout, Manifest, manifest_metadata

__all__ = ["HEARTBEAT_TIMEOUT_SECONDS", "VectorStore", "chunk_metadata", "collection_name"]

# A Chroma server that is down must fail fast: a CLI call or an agent's tool call should not hang.
HEARTBEAT_TIMEOUT_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 30.0
_METADATA_FIELDS = ("spec", "file", "section_kind")


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

    layout.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(
        path=str(layout.chroma_dir),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=True),
    )


class VectorStore:
    """One Chroma collection of L2-normalized chunk vectors (cosine space)."""

    def __init__(self, client: Any, name: str, where: str, layout: IndexLayout | None = None):
        self.client = client
        self.layout = layout  # set for an embedded store: `refresh` reopens it
        self.name = name
        self.where = where  # for messages: the data dir or the server URL
        with _backend_errors(where):
            self.max_batch_size = int(client.get_max_batch_size())
        self._collection: Any = None
        self._manifest: Manifest | None = None

    @classmethod
    def open(cls, layout: IndexLayout, chroma_url: str | None = None) -> VectorStore:
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
        with _backend_errors(self.where):
            if create:
                collection = self.client.get_or_create_collection(
                    self.name,
                    metadata=manifest_metadata(manifest),
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
        self._collection = collection
        self._manifest = manifest
        return collection

    def drop(self) -> None:
        """Delete the collection (a full rebuild, or a model change)."""
        self._collection = None
        with _backend_errors(self.where), contextlib.suppress(Exception):
            self.client.delete_collection(self.name)

    def _open(self) -> Any:
        if self._collection is None:
            if self._manifest is None:
                raise InvalidInput("VectorStore.collection(manifest) must be called first")
            self.collection(self._manifest, create=False)
            if self._collection is None:
                raise InvalidInput(
                    f"no vector collection {self.name!r} at {self.where}; run `specmem ingest`"
                )
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
        from chromadb.errors import ChromaError, InternalError, NotFoundError

        with _backend_errors(self.where):
            try:
                return operation(self._open())
            except NotFoundError:
                self._collection = None
            except InternalError:
                self.refresh()
            try:
                return operation(self._open())
            except ChromaError as err:
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

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Vectors in the order of `ids`; InvalidInput naming the first id that has none."""
        found: dict[str, np.ndarray] = {}
        ids = list(ids)
        for start in range(0, len(ids), self.max_batch_size):
            batch = ids[start : start + self.max_batch_size]
            got = self._run(lambda c, b=batch: c.get(ids=b, include=["embeddings"]))
            for chunk_id, vector in zip(got["ids"], got["embeddings"], strict=True):
                found[chunk_id] = np.asarray(vector, dtype=np.float32)
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
