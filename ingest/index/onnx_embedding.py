"""The ONNX path of the sentence-transformers embedder: export once, offline, then run with
onnxruntime and the `tokenizers` library alone.

Export needs sentence-transformers (and so torch) once per model; the exported graph is cached
under a directory keyed by the model's files, and every later process loads only onnxruntime
(~0.3 s) instead of torch + sentence-transformers (~5-9 s here), which is what a cold
`specmem search` pays. Pooling and normalization are the two small steps sentence-transformers
adds after the transformer; they are redone here with numpy and checked against torch by tests.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable

__all__ = ["ModelInfo", "OnnxEncoder", "export_onnx", "onnx_cache_key", "read_model_info"]

log = logging.getLogger(__name__)

# The modules sentence-transformers may stack that this runner reproduces; any other (a Dense
# projection, say) means the lean path would compute different vectors, so it is refused.
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}
_POOLING_MODES = ("mean", "cls", "max")
ONNX_FILE = "onnx/model.onnx"


@dataclass(frozen=True)
class ModelInfo:
    """What specmem needs to know about a local sentence-transformers model, read from its
    config files without importing torch."""

    path: Path
    dimension: int
    max_tokens: int  # the window, special tokens included
    pooling: str  # "mean", "cls" or "max"
    lean_onnx_ok: bool  # only Transformer + Pooling (+ Normalize) modules


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_model_info(path: Path) -> ModelInfo:
    modules_file = path / "modules.json"
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        modules = []
    kinds = {str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules if isinstance(m, dict)}
    pooling_dir = next(
        (m.get("path") for m in modules if str(m.get("type", "")).endswith("Pooling")), "1_Pooling"
    )
    pooling_config = _json(path / str(pooling_dir) / "config.json")
    pooling = "mean"
    if pooling_config.get("pooling_mode_cls_token"):
        pooling = "cls"
    elif pooling_config.get("pooling_mode_max_tokens"):
        pooling = "max"
    dimension = pooling_config.get("word_embedding_dimension") or _json(path / "config.json").get(
        "hidden_size", 0
    )
    max_tokens = _json(path / "sentence_bert_config.json").get("max_seq_length") or _json(
        path / "config.json"
    ).get("max_position_embeddings", 512)
    lean = bool(kinds) and kinds <= _SUPPORTED_MODULES and "Transformer" in kinds
    lean = lean and pooling_config.get("pooling_mode_mean_sqrt_len_tokens") is not True
    return ModelInfo(path, int(dimension), int(max_tokens), pooling, lean)


def onnx_cache_key(path: Path, quantize: str | None) -> str:
    """Names the export after the model's own files, so a changed model is re-exported."""
    digest = hashlib.sha256(str(path.resolve()).encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin", "modules.json"):
        file = path / name
        if file.is_file():
            stat = file.stat()
            digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    suffix = f"-int8-{quantize}" if quantize else ""
    return f"{path.name}-{digest.hexdigest()[:12]}{suffix}"


def _find_onnx_file(target: Path, quantize: str | None) -> Path | None:
    if not quantize:
        onnx_file = target / ONNX_FILE
        return onnx_file if onnx_file.is_file() else None
    # sentence-transformers names it model_qint8_<config>.onnx or model_quint8_<config>.onnx
    # depending on the quantization config.
    return next(iter(sorted((target / "onnx").glob(f"model_*int8_{quantize}.onnx"))), None)


def export_onnx(model_path: Path, cache_root: Path, quantize: str | None = None) -> Path:
    """The cached ONNX file for `model_path`, exporting it (offline, from the local weights) on
    first use. Concurrent processes wait on a file lock instead of exporting twice."""
    from filelock import FileLock

    target = cache_root / onnx_cache_key(model_path, quantize)
    onnx_file = _find_onnx_file(target, quantize)
    if onnx_file is not None:
        return onnx_file
    cache_root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=600):
        onnx_file = _find_onnx_file(target, quantize)
        if onnx_file is not None:
            return onnx_file
        staging = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_root))
        try:
            _export_into(model_path, staging, quantize)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    onnx_file = _find_onnx_file(target, quantize)
    if onnx_file is None:
        raise BackendUnavailable(f"ONNX export of {model_path} left no model file in {target}")
    log.info("exported %s to ONNX at %s", model_path, onnx_file)
    return onnx_file


def _export_into(model_path: Path, staging: Path, quantize: str | None) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # The libraries log advice meant for interactive use ("save the exported model") that this
    # function follows; tracing warns about constants it freezes, expected for a fixed graph.
    loggers = [
        logging.getLogger(name) for name in ("sentence_transformers", "transformers", "optimum")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(
                str(model_path), backend="onnx", device="cpu", local_files_only=True
            )
            model.save(str(staging))
            if quantize:
                from sentence_transformers.backend import export_dynamic_quantized_onnx_model

                export_dynamic_quantized_onnx_model(model, quantize, str(staging))
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class OnnxEncoder:
    """Tokenize, run the transformer graph, pool, normalize: sentence-transformers' `encode`
    for Transformer + Pooling (+ Normalize) models, without torch."""

    def __init__(self, onnx_file: Path, info: ModelInfo, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime picks the physical cores
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: on a shared, oversubscribed machine
        # spinning burned ~17% more CPU for the same batches (measured 8.7-10.4 vs 7.3-8.4 CPU s
        # per 120 chunks), taking cores from the agents specmem serves.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = {i.name for i in self.session.get_inputs()}
        tokenizer_file = info.path / "tokenizer.json"
        if not tokenizer_file.is_file():
            raise BackendUnavailable(f"{info.path} has no tokenizer.json for the ONNX runner")
        self.tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self.tokenizer.enable_truncation(info.max_tokens)
        self.tokenizer.no_padding()
        self.info = info

    def encode(self, texts: Sequence[str], batch_tokens: int = 2048) -> np.ndarray:
        """Vectors in input order. Texts run shortest first in batches of about `batch_tokens`
        padded tokens, so short texts are never padded to a long neighbour's length."""
        if not texts:
            return np.zeros((0, self.info.dimension), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        result = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        start = 0
        while start < len(order):
            longest = len(encodings[order[min(start, len(order) - 1)]].ids)
            end = start + 1
            while end < len(order):
                longest = max(longest, len(encodings[order[end]].ids))
                if longest * (end - start + 1) > batch_tokens:
                    break
                end += 1
            batch = order[start:end]
            result[batch] = self._run([encodings[i] for i in batch])
            start = end
        return result

    def _run(self, encodings: list) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            size = len(encoding.ids)
            ids[row, :size] = encoding.ids
            mask[row, :size] = encoding.attention_mask
            types[row, :size] = encoding.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds = {name: value for name, value in feeds.items() if name in self.input_names}
        hidden = self.session.run(None, feeds)[0].astype(np.float32)
        pooled = _pool(hidden, mask, self.info.pooling)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[:, :, None].astype(np.float32)
    if mode == "max":
        return np.where(weights > 0, hidden, -1e9).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
