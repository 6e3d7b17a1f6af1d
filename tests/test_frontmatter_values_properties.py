"""Property tests: a frontmatter value of any YAML type, at any depth, in any key (transitions
too), embedded into a README beside a good spec. Either the spec is a load problem naming its
file and line, or it loads and every path that renders it (JSON of `to_dict`, the wire shape, a
markdown context bundle, chunk headers, token counts, validate, history) and every YAML edit
(status change, tag add) works on plain safe values. The good spec always loads. Spec 025."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import tempfile
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ingest import atomic
from ingest.authoring.spec_changes import SpecChange
from ingest.authoring.writes import SpecWriter
from ingest.errors import InvalidInput
from ingest.index.chunking import chunk_spec
from ingest.index.tokens import section_tokens
from ingest.specs.frontmatter import (
    MAX_VALUE_DEPTH,
    Frontmatter,
    normalize_frontmatter,
    parse_yaml,
    safe_values,
)
from ingest.specs.graph import SpecGraph
from ingest.specs.store import SpecStore
from ingest.specs.validate import validate_catalog
from retriever.bundles.context import build_context
from retriever.history import merge_history
from retriever.wire import jsonable
from tests.conftest import write_spec

GOOD = """
---
status: planned
created: 2025-10-24
tags: [good]
---
# Good spec

## Overview
Always loads.
"""

TEXT = st.text(
    st.characters(
        blacklist_categories=("Cs", "Cc", "Cn", "Co", "Zl", "Zp"),
        blacklist_characters="\x85\ufeff",
    ),
    max_size=12,
)
KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
# Plain scalars YAML reads as something other than the text they look like.
TRICKY_PLAIN = st.sampled_from(
    [
        "yes", "No", "on", "~", "null", "true", "2025-13-45", "2025-02-30", "1_000", "0o17",
        "0x1F", "017", "0b101", "1:20:30", "12e3", "1.5e+400", "-1.0e+400", ".NaN", ".nan",
        "-.Inf", "+.inf", ".INF", "-0", "+12", "190:20:30.15", "2025-10-24", "1e400",
        "2025-10-24t10:00:00z", "0001-01-01 00:00:00+01:00", "9999-12-31T23:59:59-05:00",
        "9999-12-31 23:59:59.999999 -00:01", "0001-01-01T00:00:00+23:59", "2025-01-01 10:00 +01",
    ]
)  # fmt: skip
EDGE_DAY = st.sampled_from([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)])


def _quoted(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # JSON strings are YAML double-quoted scalars


def _offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@st.composite
def timestamps(draw: Any) -> str:
    moment = draw(st.one_of(st.datetimes(), EDGE_DAY))
    sep = draw(st.sampled_from(["T", " ", "t"]))
    zone = draw(
        st.one_of(st.just(""), st.just("Z"), st.integers(-23 * 60 - 59, 23 * 60 + 59).map(_offset))
    )
    return moment.isoformat(sep=sep) + zone


SCALARS = st.one_of(
    TEXT.map(_quoted),
    TRICKY_PLAIN,
    st.integers(-(10**30), 10**30).map(str),
    st.integers(600, 5000).map(lambda n: "1" + "7" * n),  # past 640 digits, and past 4300
    st.integers(500, 2000).map(lambda n: "0x" + "f" * n),
    st.integers(300, 1000).map(lambda n: ":".join(["59"] * n)),  # YAML 1.1 base 60
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from([".nan", ".inf", "-.inf", "true", "false", "null", "~"]),
    st.dates().map(dt.date.isoformat),
    timestamps(),
    st.binary(max_size=24).map(lambda b: "!!binary " + _quoted(base64.b64encode(b).decode())),
)


def _containers(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    lists = st.lists(children, max_size=4).map(lambda items: "[" + ", ".join(items) + "]")
    maps = st.dictionaries(KEYS, children, max_size=4).map(
        lambda pairs: "{" + ", ".join(f"{_quoted(k)}: {v}" for k, v in pairs.items()) + "}"
    )
    sets = st.lists(KEYS, max_size=4, unique=True).map(
        lambda keys: "!!set {" + ", ".join(_quoted(k) for k in keys) + "}"
    )
    omaps = st.dictionaries(KEYS, children, max_size=3).map(
        lambda pairs: (
            "!!omap [" + ", ".join(f"{{{_quoted(k)}: {v}}}" for k, v in pairs.items()) + "]"
        )
    )
    return st.one_of(lists, maps, sets, omaps)


VALUES = st.recursive(SCALARS, _containers, max_leaves=12)
DEEP = st.integers(MAX_VALUE_DEPTH - 2, 400).map(lambda n: "[" * n + "1" + "]" * n)
KNOWN = ["created", "created_at", "updated_at", "completed_at", "tags", "depends_on", "related"]
KNOWN += ["parent", "assignee", "priority", "status", "transitions"]


@st.composite
def readmes(draw: Any) -> str:
    """A README whose frontmatter holds one generated value, in a known or unknown key, and
    (maybe) a transitions list holding generated values too."""
    key = draw(st.one_of(st.sampled_from(KNOWN), KEYS.filter(lambda k: k not in KNOWN)))
    value = draw(st.one_of(VALUES, DEEP)) if draw(st.integers(0, 9)) else draw(DEEP)
    lines = [] if key == "status" else ["status: planned"]
    lines.append(f"{key}: {value}")
    if key != "transitions" and draw(st.booleans()):
        lines.append("transitions:")
        for _ in range(draw(st.integers(1, 3))):
            status = draw(st.one_of(st.just("planned"), VALUES))
            lines += [f"  - status: {status}", f"    at: {draw(st.one_of(timestamps(), VALUES))}"]
    return "---\n" + "\n".join(lines) + "\n---\n# Odd spec\n\n## Overview\nOdd values.\n"


ALLOWED = (str, int, float, bool, type(None))


def assert_plain(value: Any, depth: int = 0) -> None:
    """Only JSON data, within the depth and integer bounds downstream recursion relies on."""
    assert depth <= MAX_VALUE_DEPTH + 1
    if isinstance(value, dict):
        for key, child in value.items():
            assert isinstance(key, str)
            assert_plain(child, depth + 1)
    elif isinstance(value, list):
        for child in value:
            assert_plain(child, depth + 1)
    else:
        assert isinstance(value, ALLOWED), type(value)
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, int) and not isinstance(value, bool):
            str(value)  # printable under Python's int->str limit


def assert_frontmatter_plain(meta: Frontmatter) -> None:
    for name in ("status", "priority", "parent", "assignee", "created", "updated_at"):
        assert isinstance(getattr(meta, name), str | None)
    assert all(isinstance(t, str) for t in meta.tags + meta.depends_on + meta.related)
    assert all(set(t) == {"status", "at"} for t in meta.transitions)
    assert all(isinstance(v, str) for t in meta.transitions for v in t.values())
    assert_plain(meta.extra)


@pytest.fixture(autouse=True)
def _fast_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "DURABLE", False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_normalize_gives_only_plain_values(value: str) -> None:
    try:
        raw = parse_yaml(f"x: {value}\n", "README.md")
    except Exception as err:  # only a load problem with a line may come out of the parser
        assert type(err).__name__ == "SpecParseError" and err.line  # type: ignore[attr-defined]
        return
    meta = normalize_frontmatter(raw)
    assert_frontmatter_plain(meta)
    assert safe_values(raw)["x"] == meta.extra["x"]
    json.dumps(safe_values(raw), allow_nan=False)
    assert normalize_frontmatter(safe_values(raw)).extra == meta.extra  # normalizing is idempotent


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(readmes())
def test_one_odd_value_never_stops_the_others_and_renders_safely(readme: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "specs"
        write_spec(root, "001-good", GOOD)
        (root / "002-odd").mkdir()
        (root / "002-odd" / "README.md").write_text(readme, encoding="utf-8")
        store = SpecStore(root)
        catalog = store.scan()
        good = catalog.get("001")
        assert good.meta.tags == ["good"]
        json.dumps(good.to_dict(), allow_nan=False)
        report = validate_catalog(catalog, SpecGraph.from_catalog(catalog))
        json.dumps(report.to_dict(), allow_nan=False)
        event("load problem" if "002-odd" in catalog.broken else "loads")
        if "002-odd" in catalog.broken:
            problem = catalog.broken["002-odd"]
            assert problem.path.endswith("002-odd/README.md") and problem.line and problem.reason
            assert any(p.spec == "002-odd" and p.severity == "error" for p in report.problems)
            return
        spec = catalog.get("002")
        assert_frontmatter_plain(spec.meta)
        json.dumps(spec.to_dict(with_files=True), allow_nan=False)
        json.dumps(jsonable(spec), allow_nan=False)
        bundle = build_context(catalog, specs=["002"], budget=1500)
        assert bundle.rendered.startswith("# Context")
        json.dumps(jsonable(bundle), allow_nan=False)
        merge_history(spec.meta.transitions, [], 20)
        assert chunk_spec(spec, lambda text: len(text.split()))
        section_tokens(spec.readme.text)
        _edits_work(store, catalog, spec.meta, Path(scratch) / "data")


def _edits_work(store: SpecStore, catalog: Any, meta: Frontmatter, data_dir: Path) -> None:
    """A status change and a tag add either land and read back, or are refused as invalid input
    (a `tags` that is a mapping, a `transitions` that is no list) leaving the file untouched."""
    readme = store.root / "002-odd" / "README.md"
    before = readme.read_bytes()
    writer = SpecWriter(store, data_dir, clock=lambda: "2026-01-02T03:04:05.000006Z")
    status = "complete" if meta.status != "complete" else "planned"
    for edit in ({"status": status}, {"add_tags": ["prop-tag"]}):
        try:
            written = writer.update(catalog, "002", SpecChange(**edit))  # type: ignore[arg-type]
        except InvalidInput as err:
            assert "cannot" in str(err) or "refused" in str(err)
            assert readme.read_bytes() == before
            continue
        catalog = store.scan()
        assert "002-odd" not in catalog.broken
        after = catalog.get("002").meta
        assert after.extra == meta.extra  # the keys no edit touched read back the same
        if "status" in edit:
            assert written.meta.status == status == after.status
            assert after.transitions[-1] == {"status": status, "at": "2026-01-02T03:04:05.000006Z"}
        else:
            assert "prop-tag" in after.tags
        before = readme.read_bytes()


def test_the_strategy_reaches_every_kind_of_value() -> None:
    """A fixed sample of what the strategies generate, each of which must load (not be a load
    problem): the property above must not pass only by refusing everything."""
    text = textwrap.dedent(
        """\
        status: planned
        created: 0001-01-01 00:00:00+01:00
        x: [.nan, -.Inf, 1.0e+400, !!binary aGk=, !!set {a, b}, !!omap [{k: 1}], 2025-13-45]
        y: {a: {b: [9999-12-31T23:59:59-05:00, ~, yes, 0x1F, 1:20]}}
        transitions:
          - status: planned
            at: '0001-01-01T00:00:00+01:00'
        """
    )
    meta = normalize_frontmatter(parse_yaml(text, "README.md"))
    assert_frontmatter_plain(meta)
    assert meta.extra["x"] == [
        ".nan",
        "-.inf",
        ".inf",
        "aGk=",
        ["a", "b"],
        [["k", 1]],
        "2025-13-45",
    ]
    assert meta.extra["y"] == {"a": {"b": ["9999-12-31T23:59:59.999999Z", None, True, 31, 80]}}
    assert meta.created == "0001-01-01T00:00:00Z"
    assert meta.transitions == [{"status": "planned", "at": "0001-01-01T00:00:00Z"}]
