"""The HTTP front door: a FastAPI app over SpecMemory, built by `create_app()`."""

from .app import create_app

__all__ = ["create_app"]
