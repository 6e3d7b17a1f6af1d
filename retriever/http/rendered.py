"""A spec's markdown as HTML for the web page: every file of the spec, rendered on the server.

markdown-it-py (CommonMark, with GitHub's tables and strikethrough) renders with raw HTML off, so
what a spec's author wrote can never run as script in a reader's browser: `<script>` in a spec
shows as text, and markdown-it's link check already refuses `javascript:` and `data:` links.
Each heading carries `id="L<n>"`, its line in the file, so the page can jump from a section's
token count to the section itself.
"""

from __future__ import annotations

from typing import Any

from markdown_it import MarkdownIt

from ingest.specs.frontmatter import split_document
from ingest.specs.model import Spec

__all__ = ["MarkdownRenderer"]


class MarkdownRenderer:
    """Owns one configured markdown-it parser (building one costs more than rendering a spec)."""

    def __init__(self) -> None:
        self._md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])

    def html(self, body: str, first_line: int = 1) -> str:
        tokens = self._md.parse(body)
        for token in tokens:
            if token.type == "heading_open" and token.map:
                token.attrSet("id", f"L{token.map[0] + first_line}")
        return self._md.renderer.render(tokens, self._md.options, {})

    def spec_files(self, spec: Spec) -> dict[str, Any]:
        """The README (frontmatter off) and each sub-spec file, in the order `files` lists them."""
        files = [
            {"file": "README.md", "html": self.html(spec.body, spec.body_start_line)},
        ]
        for sub in spec.sub_files:
            part = split_document(sub.text)
            files.append({"file": sub.name, "html": self.html(part.body, part.body_start_line)})
        return {"spec": spec.dir_name, "files": files}
