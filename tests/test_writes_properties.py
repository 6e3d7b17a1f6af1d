"""Property tests of the line editor: whatever the list style, edits read back as intended and
adding then removing an item restores the file byte for byte."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.authoring.frontmatter_edit import EditableDocument
from ingest.specs.frontmatter import normalize_frontmatter, parse_yaml

NAMES = st.sampled_from(
    ["api", "ui", "v0.2.0", "185", "007", "yes", "null", "a-b", "x_y", "Café", "two words", "x:y"]
)
NEWLINES = st.sampled_from(["\n", "\r\n"])


@st.composite
def documents(draw) -> tuple[bytes, list[str]]:
    tags = draw(st.lists(NAMES, max_size=4, unique=True))
    newline = draw(NEWLINES)
    style = draw(st.sampled_from(["block0", "block2", "flow", "flow-padded", "absent"]))
    quote = draw(st.sampled_from(["", "'"]))

    def item(tag: str) -> str:
        needs = not tag.isalpha() or tag in ("yes", "null")
        return f"'{tag}'" if quote or needs else tag

    lines = ["---", "status: planned  # kept", "created: '2025-11-04'"]
    if style.startswith("block") and tags:
        indent = "" if style == "block0" else "  "
        lines += ["tags:"] + [f"{indent}- {item(t)}" for t in tags]
    elif style.startswith("flow"):
        pad = " " if style == "flow-padded" else ""
        lines.append(f"tags: [{pad}{', '.join(item(t) for t in tags)}{pad}]")
    else:
        tags = []
    lines += ["# trailing comment", "priority: high", "---", "# Title", "", "Body."]
    bom = draw(st.booleans())
    data = (b"\xef\xbb\xbf" if bom else b"") + (newline.join(lines) + newline).encode("utf-8")
    return data, tags


def _tags(doc: EditableDocument) -> list[str]:
    return normalize_frontmatter(parse_yaml(doc.yaml_text(), "x")).tags


@settings(max_examples=100, deadline=None)
@given(documents(), st.lists(NAMES, min_size=1, max_size=3, unique=True))
def test_add_then_remove_restores_bytes(document, new_tags):
    data, tags = document
    fresh = [t for t in new_tags if t not in tags]
    doc = EditableDocument.parse(data, "x")
    doc.add_to_list("tags", fresh)
    assert _tags(doc) == tags + fresh
    assert doc.render().endswith(data[data.index(b"# Title") :])
    doc.remove_from_list("tags", set(fresh))
    if tags or not fresh:
        assert doc.render() == data
    else:
        assert _tags(doc) == []


@settings(max_examples=100, deadline=None)
@given(documents(), st.lists(NAMES, max_size=3, unique=True))
def test_remove_reads_back_and_keeps_other_keys(document, gone):
    data, tags = document
    doc = EditableDocument.parse(data, "x")
    before = parse_yaml(doc.yaml_text(), "x")
    doc.remove_from_list("tags", set(gone))
    after = parse_yaml(doc.yaml_text(), "x")
    assert _tags(doc) == [t for t in tags if t not in gone]
    assert {k: v for k, v in after.items() if k != "tags"} == {
        k: v for k, v in before.items() if k != "tags"
    }
    doc.set_scalar("status", "in-progress")
    assert b"status: in-progress  # kept" in doc.render()
