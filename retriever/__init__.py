"""The read path of specmem (search, graph expansion, budget packing, bundles) and its front doors."""

from .service import SpecMemory

__all__ = ["SpecMemory"]
