"""The Chroma store against a real embedded Chroma under tmp_path."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

from ingest.errors import BackendUnavailable, IndexMismatch, InvalidInput
from ingest.index.layout import COLLECTION_NAME, IndexLayout, Manifest
from ingest.index.vectors import VectorStore, collection_name

MANIFEST = Manifest(model="test-model", dimension=4)


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    opened = VectorStore.open(IndexLayout(tmp_path / "data"))
    opened.collection(MANIFEST)
    return opened


def test_upsert_query_get_delete(store: VectorStore) -> None:
    ids = ["a/README.md#1", "a/README.md#2", "b/README.md#1"]
    vectors = np.stack([unit(1, 0, 0, 0), unit(1, 1, 0, 0), unit(0, 0, 1, 0)])
    metadata = [
        {"spec": "a", "file": "README.md", "section_kind": "design", "status": None},
        {"spec": "a", "file": "README.md", "section_kind": "plan", "status": "planned"},
        {"spec": "b", "file": "README.md", "section_kind": "design", "status": "complete"},
    ]
    store.upsert(ids, vectors, metadata)
    assert store.ids() == set(ids) and store.count() == 3
    hits = store.query(unit(1, 0, 0, 0), limit=2)
    assert [h[0] for h in hits] == ids[:2]
    assert hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [h[0] for h in store.query(unit(1, 0, 0, 0), 5, {"spec": "b"})] == [ids[2]]
    np.testing.assert_allclose(store.get_vectors([ids[2], ids[0]]), vectors[[2, 0]], atol=1e-6)
    store.delete([ids[0]])
    assert store.ids() == set(ids[1:])
    with pytest.raises(InvalidInput, match="no vector"):
        store.get_vectors([ids[0]])


def test_writes_and_reads_in_client_sized_batches(store: VectorStore) -> None:
    store.max_batch_size = 3  # the real limit is thousands; small here to cross batch edges
    ids = [f"s/README.md#{i}" for i in range(10)]
    vectors = np.stack([unit(1, i, 0, 1) for i in range(10)])
    store.upsert(ids, vectors, [{"spec": "s"}] * 10)
    assert store.ids() == set(ids)
    np.testing.assert_allclose(store.get_vectors(ids), vectors, atol=1e-6)
    store.delete(ids[:7])
    assert store.ids() == set(ids[7:])


def test_collection_records_its_model_and_refuses_another(tmp_path: Path) -> None:
    layout = IndexLayout(tmp_path / "data")
    first = VectorStore.open(layout)
    first.collection(MANIFEST)
    other = VectorStore.open(layout)
    with pytest.raises(IndexMismatch, match="test-model"):
        other.collection(Manifest(model="other-model", dimension=4))
    other.drop()
    assert other.collection(Manifest(model="other-model", dimension=4)) is not None


def test_collection_name_separates_data_dirs_on_a_shared_server(tmp_path: Path) -> None:
    one, two = IndexLayout(tmp_path / "one"), IndexLayout(tmp_path / "two")
    assert collection_name(None, one) == COLLECTION_NAME
    assert collection_name("http://h:8000", one) != collection_name("http://h:8000", two)


def test_a_server_that_is_down_fails_fast(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(BackendUnavailable, match="not answering"):
        VectorStore.open(IndexLayout(tmp_path / "data"), f"http://127.0.0.1:{port}")
    with pytest.raises(InvalidInput):
        VectorStore.open(IndexLayout(tmp_path / "data"), "http://")


WRITER = """
import sys
import numpy as np
from pathlib import Path
from ingest.index.layout import IndexLayout, Manifest
from ingest.index.vectors import VectorStore
store = VectorStore.open(IndexLayout(Path(sys.argv[1])))
store.collection(Manifest(model="test-model", dimension=4))
store.upsert(["new/README.md#1"], np.array([[0, 0, 0, 1]], dtype=np.float32), [{"spec": "new"}])
"""


def test_a_long_lived_reader_sees_what_another_process_wrote(tmp_path: Path) -> None:
    import subprocess
    import sys

    reader = VectorStore.open(IndexLayout(tmp_path / "data"))
    reader.collection(MANIFEST)
    reader.upsert(["old/README.md#1"], np.stack([unit(1, 0, 0, 0)]), [{"spec": "old"}])
    subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "data")], check=True)
    # The embedded client caches segments per process; the store reopens when it is stale.
    vectors = reader.get_vectors(["old/README.md#1", "new/README.md#1"])
    np.testing.assert_allclose(vectors[1], [0, 0, 0, 1], atol=1e-6)
