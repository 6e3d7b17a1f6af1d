"""The read path of specmem (search, graph expansion, budget packing, bundles) and its front doors."""

from ingest.authoring.spec_changes import NewSpec, SpecChange

from .service import SpecMemory

__all__ = ["NewSpec", "SpecChange", "SpecMemory"]
