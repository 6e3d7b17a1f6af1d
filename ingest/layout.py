"""What lives in the data dir, and the manifest that says which model built the index.

    <data dir>/                   default `.specmem` beside the specs dir; all of it is a cache
    ├── manifest.json             format, model name, dimension, collection (written atomically)
    ├── lexical.sqlite            chunks, FTS5 over header + text, file/spec hash bookkeeping
    ├── chroma/                   the embedded ChromaDB (absent when SPECMEM_CHROMA_URL is set)
    ├── ingest.lock               one ingest at a time per data dir
    └── events.sqlite             the activity log (not a cache; `ingest --full` keeps it)

The manifest is the cheap answer to "was this index built by my model?": a reader compares it
before touching either store (IndexMismatch otherwise), and an ingest with another model
rebuilds both stores instead of mixing vectors from two models in one collection.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import IndexMismatch, SpecParseError

__all__ = [
    "COLLECTION_NAME",
    "INDEX_FORMAT",
    "IndexLayout",
    "Manifest",
    "check_manifest",
    "manifest_metadata",
]

# Bump when the stored shape or the chunking rules change: an index of another format is
# rebuilt, exactly as one of another model is. 2: the chunk header leaves out the status (spec
# 032); without the bump, specs unchanged since a format-1 ingest would keep status headers.
INDEX_FORMAT = 2
COLLECTION_NAME = "specmem_chunks"


@dataclass(frozen=True)
class Manifest:
    model: str
    dimension: int
    format: int = INDEX_FORMAT
    collection: str = COLLECTION_NAME
    vector_backend: str = "embedded"  # "embedded" or the Chroma server URL

    def compatible_with(self, model: str, dimension: int) -> bool:
        return self.model == model and self.dimension == dimension and self.format == INDEX_FORMAT

    def describe(self) -> str:
        return f"model {self.model!r} ({self.dimension} dimensions, index format {self.format})"


@dataclass(frozen=True)
class IndexLayout:
    data_dir: Path

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.json"

    @property
    def lexical_path(self) -> Path:
        return self.data_dir / "lexical.sqlite"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "ingest.lock"

    def ensure(self) -> IndexLayout:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self

    def read_manifest(self) -> Manifest | None:
        """The manifest, or None when no index was ever completed here."""
        try:
            raw = self.manifest_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw)
            return Manifest(
                model=str(data["model"]),
                dimension=int(data["dimension"]),
                format=int(data.get("format", 0)),
                collection=str(data.get("collection", COLLECTION_NAME)),
                vector_backend=str(data.get("vector_backend", "embedded")),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise SpecParseError(
                str(self.manifest_path),
                f"unreadable index manifest ({err}); run `specmem ingest --full` to rebuild",
            ) from None

    def write_manifest(self, manifest: Manifest) -> None:
        """Atomically: a crash leaves the old manifest or the new one, never half of one."""
        self.ensure()
        text = json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n"
        fd, temp = tempfile.mkstemp(prefix=".manifest-", dir=self.data_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.manifest_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def remove_manifest(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.manifest_path.unlink()


def check_manifest(layout: IndexLayout, model: str, dimension: int) -> Manifest | None:
    """For readers: the manifest if it matches `model`, None when there is no index yet;
    IndexMismatch when another model (or index format) built it."""
    manifest = layout.read_manifest()
    if manifest is not None and not manifest.compatible_with(model, dimension):
        raise IndexMismatch(
            f"the index in {layout.data_dir} was built with {manifest.describe()}, but "
            f"specmem is configured for model {model!r} ({dimension} dimensions, index format "
            f"{INDEX_FORMAT}); run `specmem ingest` to rebuild it with the configured model"
        )
    return manifest


def manifest_metadata(manifest: Manifest) -> dict[str, Any]:
    """The manifest as Chroma collection metadata (scalars only)."""
    return {
        "specmem_model": manifest.model,
        "specmem_dimension": manifest.dimension,
        "specmem_format": manifest.format,
    }
