"""Schemathesis against the service's own OpenAPI schema, in process over ASGI.

Every operation gets generated requests (valid and edge-case parameters, with the write token) on
a tiny FakeEmbedder index: no answer may be a 5xx, and every answer must match the schema the app
publishes (status codes, content types, bodies). A bounded number of examples per operation here;
tests/stress/test_openapi_stress.py runs many more.
"""

from __future__ import annotations

import os
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.http import create_app
from tests.conftest import write_spec
from tests.test_http_query import SPECS

TOKEN = "schema-token"
EXAMPLES = int(os.environ.get("SPECMEM_OPENAPI_EXAMPLES", "8"))
CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)


def _app(root: Path):
    for name, text in SPECS.items():
        write_spec(root / "specs", name, text)
    memory = SpecMemory(root / "specs", root / "data", embedder=FakeEmbedder())
    memory.ingest()
    return create_app(memory, token=TOKEN, mount_mcp=False)


@pytest.fixture(scope="module")
def app_schema(tmp_path_factory):
    app = _app(tmp_path_factory.mktemp("openapi"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operation_labels() -> list[str]:
    """Every operation's label, read from a throwaway app (the schema does not depend on data)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="specmem-openapi-") as scratch:
        app = create_app(
            SpecMemory(Path(scratch) / "specs", Path(scratch) / "data"),
            token=TOKEN,
            mount_mcp=False,
        )
        document = app.openapi()
    return [
        f"{method.upper()} {path}"
        for path, methods in document["paths"].items()
        for method in methods
    ]


@pytest.mark.parametrize("label", _operation_labels())
def test_every_operation_answers_within_its_schema_and_never_5xx(app_schema, label):
    operation = app_schema.find_operation_by_label(label)

    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=CHECKS)

    exercise()
