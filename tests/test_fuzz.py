"""Property tests for what the existing ones leave out (see test_store, test_chunking,
test_packing, test_context_*): structured YAML of any shape and nesting through the whole
frontmatter path and the store; chunking of arbitrary Unicode, including over-long unbroken
lines, under a character-level tokenizer; and SpecMemory.context with any query, any spec
reference and any integer budget. Each may refuse with an `ingest.errors` type, never anything
else, and whatever it returns keeps its invariants.
"""

from __future__ import annotations

import contextlib
import datetime
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.errors import SpecmemError, SpecParseError
from ingest.index.chunking import chunk_spec
from ingest.index.tokens import count_tokens
from ingest.specs.frontmatter import normalize_frontmatter, parse_yaml, split_document
from ingest.specs.model import Frontmatter
from ingest.specs.store import SpecStore
from retriever import SpecMemory
from retriever.bundles.context import MAX_BUDGET
from tests.conftest import write_spec
from tests.test_chunking import assert_exact_lines
from tests.test_http_query import SPECS

FAST = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))

KEYS = st.sampled_from(
    ["status", "priority", "tags", "depends_on", "related", "parent", "created", "updated",
     "created_at", "transitions", "title", "x-custom"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.dates(),
    st.datetimes(timezones=st.just(datetime.UTC)),
    st.sampled_from(["planned", "in-progress", "complete", "high", "001", "../x", "/etc/passwd"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
FRONTMATTER = st.dictionaries(st.one_of(KEYS, st.text(max_size=12)), VALUES, max_size=8)


def _document(data: dict, flow: bool, crlf: bool, bom: bool, body: str) -> str:
    text = "---\n" + yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    text += "---\n# Title\n\n" + body + "\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    return ("\ufeff" if bom else "") + text


@FAST
@given(FRONTMATTER, st.booleans(), st.booleans(), st.booleans(), st.text(max_size=200))
def test_any_yaml_frontmatter_parses_or_is_a_spec_parse_error(data, flow, crlf, bom, body):
    text = _document(data, flow, crlf, bom, body)
    try:
        split = split_document(text)
        raw = parse_yaml(split.yaml_text or "", "README.md") if split.yaml_text else {}
    except SpecParseError:
        return
    meta = normalize_frontmatter(raw)
    assert isinstance(meta, Frontmatter)
    assert all(isinstance(tag, str) for tag in meta.tags)


@FAST
@given(FRONTMATTER, st.booleans(), st.booleans(), st.text(max_size=300))
def test_the_store_loads_or_reports_any_frontmatter_and_never_raises(data, flow, crlf, body):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "specs"
        directory = root / "001-fuzz"
        directory.mkdir(parents=True)
        (directory / "README.md").write_bytes(_document(data, flow, crlf, False, body).encode())
        catalog = SpecStore(root).scan()
        loaded = [spec.dir_name for spec in catalog]
        assert loaded == ["001-fuzz"] or (not loaded and catalog.problems)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3000), st.sampled_from(["[", "{a: ", "- ", "{? ", "[{"]))
def test_deep_nesting_is_refused_cleanly_not_a_recursion_error(depth, opener):
    closer = {"[": "]", "{a: ": "}", "- ": "", "{? ": "}", "[{": "}]"}[opener]
    text = "a: " + opener * depth + "x" + closer * depth
    with contextlib.suppress(SpecParseError):
        parse_yaml(text, "README.md")


# -- chunking -----------------------------------------------------------------------------------

UNICODE_LINE = st.one_of(
    st.text(
        st.characters(codec="utf-8", exclude_categories=["Cs", "Zl", "Zp", "Cc"]), max_size=300
    ),
    st.text(st.sampled_from("漢字かなカナ한국어😀🧪\u200b\u0301é"), min_size=50, max_size=400),
    st.sampled_from(["## Design", "### Détails 设计", "```", "| a | b |", "- [ ] todo", ""]),
)


def chars(text: str) -> int:
    """A stand-in tokenizer with one token per character: unbroken lines must be split."""
    return len(text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(UNICODE_LINE, min_size=1, max_size=30))
def test_chunking_any_unicode_stays_in_the_window_and_on_its_lines(tmp_path, lines):
    root = tmp_path / "specs"
    (root / "020-uni").mkdir(parents=True, exist_ok=True)
    (root / "020-uni" / "README.md").write_text(
        "# Uni\n\n" + "\n".join(lines) + "\nend\n", encoding="utf-8"
    )
    spec = SpecStore(root).scan().get("020-uni")
    chunks = chunk_spec(spec, chars, max_model_tokens=256, target_model_tokens=120)
    assert chunks
    assert all(chunk.model_tokens <= 256 - 2 for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == len(chunks)
    assert_exact_lines(spec, chunks)


# -- context through the service ----------------------------------------------------------------


@pytest.fixture(scope="module")
def lexical_memory(tmp_path_factory) -> SpecMemory:
    """No index: context ranks seeds lexically, which is the path a fresh checkout takes."""
    root = tmp_path_factory.mktemp("fuzz-context")
    for name, text in SPECS.items():
        write_spec(root / "specs", name, text)
    return SpecMemory(root / "specs", root / "data")


REFS = st.one_of(
    st.sampled_from(["1", "001", "002-token-refresh", "3", "999", "../001", "/etc", "", " "]),
    st.text(max_size=20),
)


@FAST
@given(
    st.one_of(st.none(), st.text(max_size=300)),
    st.lists(REFS, max_size=3),
    st.one_of(st.integers(-(10**12), 10**12), st.sampled_from([0, 1, 2, 50, MAX_BUDGET])),
    st.integers(-3, 12),
)
def test_context_fits_its_budget_or_refuses_with_a_service_error(
    lexical_memory, query, refs, budget, depth
):
    try:
        bundle = lexical_memory.context(query, specs=refs, budget=budget, depth=depth)
    except SpecmemError:
        return
    assert budget >= 1
    cap = min(budget, MAX_BUDGET)
    assert bundle.tokens <= cap
    assert sum(count_tokens(item.text) for item in bundle.items) <= cap
