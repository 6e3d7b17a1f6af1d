"""The web page's server side without a browser (spec 089): its URLs, its assets as shipped,
the rendered markdown that must never run a spec's HTML, and the whole-graph read."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from retriever.http import create_app
from retriever.http.routes_web import ASSETS
from tests.conftest import write_spec

TOKEN = "web-routes-test-token-0123456789"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def memory(unindexed_memory):
    return unindexed_memory


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=token+refresh&status=planned&tag=ui&priority=low&mode=lexical",
        "/spec/003-search-ui?file=DESIGN.md",
        "/bundle?q=x&spec=001&budget=900&depth=1",
        "/graph?around=002&depth=3&linked=1",
        "/board?archived=1",
    ],
)
def test_every_view_url_answers_the_page_whatever_its_query(client, path):
    # The API refuses unknown query parameters; the page's own URLs carry the view's state.
    answer = client.get(path)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/app.js">' in answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy


def test_the_page_refers_only_to_its_own_files(client):
    """Offline: no URL in the page or its modules points anywhere but this server."""
    texts = [client.get("/").text] + [
        client.get(f"/ui/{path.name}").text for path in sorted(ASSETS.glob("*.js"))
    ]
    for text in texts:
        assert "http://" not in text.replace("http://127.0.0.1", "")
        assert "https://" not in text
    assert client.get("/ui/vendor/cytoscape.min.js").status_code == 200
    assert client.get("/ui/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/nothing.js").status_code == 404


def test_every_asset_is_package_data():
    """A wheel carries what the page loads: each file under web/ matches a package-data glob."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["retriever"]
    files = [p.relative_to(REPO / "retriever").as_posix() for p in ASSETS.rglob("*") if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), files


def test_a_spec_renders_as_html_with_its_sub_files_and_heading_lines(client):
    answer = client.get("/specs/003/html").json()
    assert [f["file"] for f in answer["files"]] == ["README.md", "DESIGN.md"]
    readme, design = answer["files"]
    assert '<h1 id="L8">Search UI</h1>' in readme["html"]
    assert '<h2 id="L3">Layout</h2>' in design["html"]
    assert client.get("/specs/999/html").status_code == 404


def test_html_in_a_spec_is_shown_as_text_never_run(client, memory):
    write_spec(
        memory.settings.specs_dir,
        "004-hostile",
        """
        ---
        status: planned
        ---
        # Hostile <script>alert(1)</script>

        <img src=x onerror="alert(2)">

        [click](javascript:alert(3)) and [data](data:text/html;base64,PHNjcmlwdD4=)
        """,
    )
    html = client.get("/specs/004/html").json()["files"][0]["html"]
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img" in html
    assert 'href="javascript:' not in html and 'href="data:' not in html


def test_the_dependency_graph_has_every_spec_its_links_and_its_dangling_ones(client, memory):
    write_spec(
        memory.settings.specs_dir,
        "004-cycle-a",
        "---\nstatus: planned\ndepends_on: [005, 404-gone]\n---\n# A\n",
    )
    write_spec(
        memory.settings.specs_dir,
        "005-cycle-b",
        "---\nstatus: planned\ndepends_on: [004]\nparent: 003\n---\n# B\n",
    )
    graph = client.get("/dependency-graph").json()
    assert [n["spec"] for n in graph["nodes"]] == [
        "001-auth-design",
        "002-token-refresh",
        "003-search-ui",
        "004-cycle-a",
        "005-cycle-b",
    ]
    edges = {(e["from"], e["to"], e["kind"], e["in_cycle"]) for e in graph["edges"]}
    assert ("002-token-refresh", "001-auth-design", "depends_on", False) in edges
    assert ("004-cycle-a", "005-cycle-b", "depends_on", True) in edges
    assert ("005-cycle-b", "004-cycle-a", "depends_on", True) in edges
    assert ("005-cycle-b", "003-search-ui", "parent", False) in edges
    assert graph["cycles"] == [["004-cycle-a", "005-cycle-b"]]
    assert graph["dangling"] == [
        {"from": "004-cycle-a", "kind": "depends_on", "ref": "404-gone", "reason": "no such spec"}
    ]


def test_protected_reads_keep_the_page_open_and_its_data_closed(memory):
    with TestClient(create_app(memory, token=TOKEN, protect_reads=True, mount_mcp=False)) as c:
        assert c.get("/graph").status_code == 200  # the page holds no data
        assert c.get("/ui/app.js").status_code == 200
        assert c.get("/dependency-graph").status_code == 401
        assert c.get("/specs/001/html").status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert c.get("/dependency-graph", headers=auth).status_code == 200
