"""Embedders: laziness, the token counter, model info, and the real model on both backends.

The real-model tests share one session-scoped ONNX embedder using the machine's model cache
(exported there once, then reused: export costs seconds to minutes on a loaded machine) and one
torch embedder to compare against. Exporting into an empty cache is a slow test.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.config import Settings
from ingest.errors import BackendUnavailable, InvalidInput
from ingest.index.chunking import chunk_spec
from ingest.index.embedding import (
    Embedder,
    FakeEmbedder,
    SentenceTransformerEmbedder,
    default_model_cache,
    load_embedder,
    model_token_counter,
    resolve_model_path,
)
from ingest.index.onnx_embedding import read_model_info
from ingest.specs.store import SpecStore

REPO = Path(__file__).resolve().parents[1]


def test_importing_and_counting_tokens_loads_no_model_runtime() -> None:
    code = (
        "import sys, ingest.index.embedding as e\n"
        "count = e.model_token_counter()\n"
        "assert count('hello world') == 2\n"
        "e.SentenceTransformerEmbedder()\n"
        "heavy = {'torch', 'onnxruntime', 'sentence_transformers', 'transformers'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_token_counter_excludes_special_tokens_and_does_not_truncate() -> None:
    count = model_token_counter()
    assert count("hello world") == 2
    assert count("word " * 1000) == 1000  # the tokenizer.json truncates at 128 unless told not to


def test_bundled_model_info() -> None:
    info = read_model_info(resolve_model_path("all-MiniLM-L6-v2"))
    assert (info.dimension, info.max_tokens, info.pooling, info.lean_onnx_ok) == (
        384,
        256,
        "mean",
        True,
    )


def test_unknown_model_and_backend_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailable, match="never downloads"):
        SentenceTransformerEmbedder("no-such-org/no-such-model-xyz")
    with pytest.raises(InvalidInput, match="backend"):
        SentenceTransformerEmbedder(backend="tpu")


def test_load_embedder_fake_and_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.load(tmp_path / "specs", model="fake")
    assert isinstance(load_embedder(settings), FakeEmbedder)
    monkeypatch.setenv("SPECMEM_EMBED_BACKEND", "torch")
    real = load_embedder(Settings.load(tmp_path / "specs"), cache_dir=tmp_path / "models")
    assert isinstance(real, Embedder)
    assert (real.name, real.dimension, real.requested_backend) == ("all-MiniLM-L6-v2", 384, "torch")
    int8 = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=tmp_path / "models")
    assert int8.name == "all-MiniLM-L6-v2@int8"  # different vectors, so a different index name


def test_fake_embedder_satisfies_the_protocol() -> None:
    fake = FakeEmbedder()
    assert isinstance(fake, Embedder)
    assert fake.embed_documents([]).shape == (0, 64)


def test_corpus_chunks_fit_the_real_model_window(corpus_specs: Path) -> None:
    count = model_token_counter()
    tokenizer_path = resolve_model_path("all-MiniLM-L6-v2") / "tokenizer.json"
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.no_truncation()
    catalog = SpecStore(corpus_specs).scan()
    specs = sorted(catalog, key=lambda s: s.dir_name)[::16]  # a slice: every 16th spec
    chunks = [chunk for spec in specs for chunk in chunk_spec(spec, count)]
    assert len(chunks) > 150
    worst = max(len(tokenizer.encode(c.embed_text).ids) for c in chunks)  # specials included
    assert worst <= 256


@pytest.fixture(scope="session")
def onnx_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend="onnx", cache_dir=default_model_cache()).load()


@pytest.fixture(scope="session")
def torch_embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(backend="torch").load()


TEXTS = [
    "Agents authenticate with bearer tokens.",
    "Authentication of agents uses bearer tokens.",
    "The dashboard renders a kanban board of specs.",
]


@pytest.mark.model
def test_onnx_vectors_are_normalized_float32_and_meaningful(
    onnx_embedder: SentenceTransformerEmbedder,
) -> None:
    assert onnx_embedder.backend == "onnx", onnx_embedder.fallback_reason
    vectors = onnx_embedder.embed_documents(TEXTS)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    query = onnx_embedder.embed_query("how do agents log in")
    assert query.shape == (384,) and query @ vectors[0] > query @ vectors[2]
    assert onnx_embedder.embed_documents([]).shape == (0, 384)


@pytest.mark.model
def test_onnx_matches_torch_in_any_order(
    onnx_embedder: SentenceTransformerEmbedder, torch_embedder: SentenceTransformerEmbedder
) -> None:
    texts = [*TEXTS, "short", "a much longer text " * 40, "word " * 400]  # last one truncates
    onnx = onnx_embedder.embed_documents(texts)
    torch = torch_embedder.embed_documents(texts)
    assert np.abs(onnx - torch).max() < 1e-4
    reversed_onnx = onnx_embedder.embed_documents(texts[::-1])[::-1]
    assert np.abs(reversed_onnx - onnx).max() < 1e-5


@pytest.mark.model
def test_export_is_cached_and_reused(
    onnx_embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.index.onnx_embedding as onnx_module

    def no_export(*args: object) -> None:
        raise AssertionError("exported again instead of reusing the cache")

    monkeypatch.setattr(onnx_module, "_export_into", no_export)
    again = SentenceTransformerEmbedder(backend="onnx", cache_dir=onnx_embedder.cache_dir).load()
    assert again.backend == "onnx"


@pytest.mark.model
def test_failed_onnx_falls_back_to_torch_with_a_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_embedder: SentenceTransformerEmbedder
) -> None:
    import ingest.index.onnx_embedding as onnx_module

    def broken(*args: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_module, "_export_into", broken)
    embedder = SentenceTransformerEmbedder(backend="onnx", cache_dir=tmp_path).load()
    assert embedder.backend == "torch"
    assert "exporter exploded" in (embedder.fallback_reason or "")
    assert embedder.embed_documents(TEXTS[:1]).shape == (1, 384)


@pytest.mark.slow
@pytest.mark.model
def test_export_into_an_empty_cache_works_offline(
    tmp_path: Path, torch_embedder: SentenceTransformerEmbedder
) -> None:
    embedder = SentenceTransformerEmbedder(backend="onnx", cache_dir=tmp_path).load()
    assert embedder.backend == "onnx", embedder.fallback_reason
    assert list(tmp_path.glob("*/onnx/model.onnx"))
    difference = embedder.embed_documents(TEXTS) - torch_embedder.embed_documents(TEXTS)
    assert np.abs(difference).max() < 1e-4


def test_concurrent_first_calls_load_the_model_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    loads = []

    def slow_load(self: SentenceTransformerEmbedder, quantize: str | None):
        loads.append(quantize)
        time.sleep(0.2)
        return lambda texts: np.ones((len(texts), 384), dtype=np.float32)

    monkeypatch.setattr(SentenceTransformerEmbedder, "_load_onnx", slow_load)
    embedder = SentenceTransformerEmbedder(backend="onnx")
    threads = [threading.Thread(target=embedder.embed_query, args=("q",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads == [None]
