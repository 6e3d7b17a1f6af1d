"""Several spec folders served as named projects (spec 096): where they come from (config), which
one a request means (registry), and the reads that span them (across)."""

from .config import ProjectEntry, ProjectSources, ProjectTable, parse_option, read_table
from .registry import Project, Projects, split_ref

__all__ = [
    "Project",
    "ProjectEntry",
    "ProjectSources",
    "ProjectTable",
    "Projects",
    "parse_option",
    "read_table",
    "split_ref",
]
