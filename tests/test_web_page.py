"""The web page as a person uses it (issue 14, spec 089): a real `specmem serve` over the whole
LeanSpec corpus, a real headless Chromium, clicks and keystrokes. Screenshots of every view go to
test-artifacts/web/.

Skipped, saying so, when Chromium is not installed; `make test` installs it when it can.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.index.tokens import count_tokens
from tests.live_server import stop_process
from tests.web_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    SPECMEM,
    TOKEN,
    chromium_or_skip,
    commit_change,
    free_port,
    served_corpus,
    wait_for_health,
)

pytestmark = [pytest.mark.model, pytest.mark.browser]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

# A dev commit query of the LeanSpec corpus and the spec it belongs to.
KNOWN_QUERY = "Migrate CLI to Commander.js and remove manual argument parsing"
KNOWN_SPEC = "008-commander-migration"
WITH_SUB_FILES = "018-spec-validation"
IN_A_CYCLE = "184-ui-packages-consolidation"
ON_THE_BOARD = "047-git-backfill-timestamps"  # complete, not archived
CHANGED_ELSEWHERE = "045-unified-dashboard"


@pytest.fixture(scope="module")
def server(
    corpus_specs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    chromium_or_skip()
    with served_corpus(corpus_specs, tmp_path_factory.mktemp("web")) as served:
        yield served


@pytest.fixture(scope="module")
def browser(server):
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_or_skip(), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, request: pytest.FixtureRequest):
    """A fresh tab; after the test, no console error, no failed request and nothing fetched from
    anywhere but the server itself (the page works offline)."""
    base, _ = server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on(
        "request",
        lambda r: (
            r.url.startswith(base)
            or r.url.startswith("data:")
            or problems.append(f"fetched {r.url}")
        ),
    )
    tab.problems = problems  # type: ignore[attr-defined]
    yield tab
    context.close()
    expected = getattr(request.node, "expected_console", ())
    unexpected = [p for p in problems if not any(e in p for e in expected)]
    assert unexpected == []


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def test_search_as_you_type_puts_the_known_spec_first_and_the_url_can_be_shared(page, server):
    page.goto("/")
    box = page.get_by_label("Search specs")
    box.press_sequentially(KNOWN_QUERY, delay=5)
    first = page.locator("#results .hit").first
    first.wait_for()
    page.wait_for_function(
        "want => document.querySelector('#results .hit')?.dataset.spec === want", arg=KNOWN_SPEC
    )
    assert page.locator("#results .hit").count() >= 3
    assert "q=Migrate+CLI" in page.url
    # Score, its parts and the best section with its file and lines.
    assert re.search(r"score \d\.\d{3}", first.inner_text())
    assert "lexical" in first.inner_text() and "dense" in first.inner_text()
    assert re.search(r"README\.md:\d+–\d+", first.locator(".snippet .where").inner_text())
    shot(page, "search")

    # The URL is the search: opened cold, it shows the same first spec.
    shared = page.url
    page.goto(shared)
    page.locator("#results .hit").first.wait_for()
    assert page.locator("#results .hit").first.get_attribute("data-spec") == KNOWN_SPEC
    assert page.get_by_label("Search specs").input_value() == KNOWN_QUERY

    # Keyboard only: down from the box to the first result, Enter opens it.
    page.get_by_label("Search specs").focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/spec/{KNOWN_SPEC}")


def test_a_miss_says_why_and_filters_narrow(page):
    page.goto("/?q=zqxwvy+plorp&mode=lexical")
    page.locator(".notice", has_text="Nothing matched").wait_for()
    assert page.locator("#results .hit").count() == 0
    page.goto("/?q=mcp+server&status=archived")
    page.locator("#results .hit").first.wait_for()
    badges = page.locator("#results .hit .badge.status-archived").count()
    assert badges == page.locator("#results .hit").count() > 0
    assert page.get_by_label("Status").input_value() == "archived"
    page.goto("/?q=mcp+server&tag=mcp")
    page.locator("#results .hit").first.wait_for()
    tags = page.locator("#results .hit").evaluate_all("hits => hits.map(h => h.textContent)")
    assert tags and all("mcp" in text for text in tags)


def test_the_spec_view_renders_files_as_tabs_with_frontmatter_dependencies_and_tokens(page, server):
    base, _ = server
    page.goto(f"/spec/{WITH_SUB_FILES}")
    tabs = page.get_by_role("tab")
    tabs.first.wait_for()
    files = httpx.get(f"{base}/specs/{WITH_SUB_FILES}").json()["sub_files"]
    assert tabs.count() == 1 + len(files) and len(files) > 1
    assert page.locator(".spec-head h1").inner_text().startswith("018")
    total = httpx.get(f"{base}/specs/{WITH_SUB_FILES}/tokens").json()["total"]
    page.locator(".token-total").wait_for()
    assert page.locator(".token-total").inner_text().replace(",", "") == str(total)
    assert page.locator(".frontmatter dt", has_text="status").count() == 1
    shot(page, "spec")

    # Arrow keys move between tabs; the panel shows that file.
    tabs.first.focus()
    page.keyboard.press("ArrowRight")
    second = tabs.nth(1)
    assert second.get_attribute("aria-selected") == "true"
    assert second.inner_text() == files[0]
    assert page.locator("#spec-panel h1, #spec-panel h2").count() > 0

    # Its history: a commit that changed it (with the section it added) and a logged event.
    base, specs = server
    commit_change(
        specs,
        KNOWN_SPEC,
        "\n## Follow-up\n\nDocument the new flags.\n",
        f"spec {KNOWN_SPEC[:3]}: follow-up",
    )
    logged = httpx.post(
        f"{base}/events",
        json={
            "spec": KNOWN_SPEC,
            "type": "session",
            "agent": "claude",
            "summary": "flags documented",
        },
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert logged.status_code == 201, logged.text
    page.goto(f"/spec/{KNOWN_SPEC}")
    history = page.locator(".history")
    history.wait_for()
    assert history.locator(".history-commit", has_text="follow-up").count() == 1
    assert "+ Follow-up" in history.locator(".history-commit").first.inner_text()
    assert history.locator(".history-event", has_text="flags documented").count() == 1
    shot(page, "spec-history")

    # A spec in a cycle lists it, and its dependencies link to other specs.
    page.goto(f"/spec/{IN_A_CYCLE}")
    page.locator(".panel .cycle").first.wait_for()
    page.locator(".tree a", has_text="185-ui-components-extraction").first.click()
    page.wait_for_url("**/spec/185-ui-components-extraction")
    page.locator(".spec-head h1", has_text="UI Components Extraction").wait_for()


def test_the_bundle_preview_stays_under_its_budget_and_shows_what_the_agent_gets(page, server):
    base, _ = server
    page.goto("/bundle?q=how+are+mcp+tools+registered&budget=1500")
    tokens = page.locator("#bundle-tokens")
    tokens.wait_for()
    shown = int(tokens.get_attribute("data-tokens"))
    assert 0 < shown <= 1500
    assert tokens.inner_text() == f"{shown:,} tokens"
    rendered = page.locator("#bundle-text").inner_text()
    # The count shown is the count of the text an agent would get, by the same tokenizer.
    assert count_tokens(rendered) == shown
    rows = page.locator("table.items tbody tr")
    assert rows.count() > 0
    first_row = rows.first.inner_text()
    assert "matches the query" in first_row and "README.md:" in first_row
    shot(page, "bundle")

    # A smaller budget from the form: a smaller bundle, and the URL says so.
    built: list[str] = []
    page.on(
        "request",
        lambda r: r.method == "POST" and r.url.endswith("/context") and built.append(r.url),
    )
    page.get_by_label("Budget (tokens)").fill("600")
    page.get_by_role("button", name="Build bundle").click()
    page.wait_for_url("**budget=600**")
    page.wait_for_function(
        "() => Number(document.querySelector('#bundle-tokens')?.dataset.budget) === 600"
    )
    assert int(page.locator("#bundle-tokens").get_attribute("data-tokens")) <= 600
    assert len(built) == 1  # one click, one bundle built

    # The same bundle as the API answers, for a named spec.
    page.goto(f"/bundle?spec={KNOWN_SPEC}&budget=800")
    page.locator("#bundle-tokens").wait_for()
    api = httpx.post(f"{base}/context", json={"specs": [KNOWN_SPEC], "budget": 800}).json()
    assert page.locator("#bundle-text").inner_text().strip() == api["rendered"].strip()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy text").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()").strip() == api["rendered"].strip()


def test_the_graph_draws_every_spec_marks_cycles_and_opens_a_spec_on_click(page, server):
    base, _ = server
    graph = httpx.get(f"{base}/dependency-graph").json()
    page.goto("/graph")
    counts = page.locator("#graph-counts")
    counts.wait_for()
    drawn = page.evaluate("window.specmemGraph.nodes().not('.missing').length")
    assert drawn == int(counts.get_attribute("data-nodes")) == len(graph["nodes"]) == 304
    assert page.evaluate("window.specmemGraph.edges('.cycle').length") > 0
    assert page.evaluate("window.specmemGraph.nodes('.missing').length") == len(graph["dangling"])
    shot(page, "graph")

    # Around one spec: only its neighbourhood, and a click on a node opens that spec.
    page.goto(f"/graph?around={IN_A_CYCLE}&depth=1")
    page.locator("#graph-counts").wait_for()
    near = page.evaluate("window.specmemGraph.nodes().not('.missing').map(n => n.id())")
    assert IN_A_CYCLE in near and "185-ui-components-extraction" in near and len(near) < 30
    zoom_before = page.evaluate("window.specmemGraph.zoom()")
    page.get_by_role("button", name="Zoom in").click()
    assert page.evaluate("window.specmemGraph.zoom()") > zoom_before
    shot(page, "graph-around")
    box = page.locator("#graph").bounding_box()
    point = page.evaluate(
        "id => window.specmemGraph.getElementById(id).renderedPosition()",
        "185-ui-components-extraction",
    )
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    page.wait_for_url("**/spec/185-ui-components-extraction")


def test_the_board_writes_through_if_match_and_shows_a_stale_hash_as_a_conflict(
    page, server, request
):
    # Chromium logs the refused write's status; the page itself shows the conflict.
    request.node.expected_console = ("status of 412",)
    base, specs = server
    page.goto("/board")
    card = page.locator(f'.card[data-spec="{ON_THE_BOARD}"]')
    card.wait_for()
    # Read only until the token is given; then the same page can write.
    assert card.get_by_label("Status").is_disabled()
    page.get_by_label("API token (for writes)").fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    card = page.locator(f'.card[data-spec="{ON_THE_BOARD}"]')
    card.get_by_label("Status").wait_for(state="visible")
    page.wait_for_function(
        "id => !document.querySelector(`.card[data-spec='${id}'] select`).disabled",
        arg=ON_THE_BOARD,
    )
    assert TOKEN not in page.url

    card.get_by_label("Status").select_option("in-progress")
    page.locator(f'.column-in-progress .card[data-spec="{ON_THE_BOARD}"]').wait_for()
    readme = specs / ON_THE_BOARD / "README.md"
    assert re.search(r"^status: in-progress$", readme.read_text(encoding="utf-8"), re.M)
    assert httpx.get(f"{base}/specs/{ON_THE_BOARD}").json()["status"] == "in-progress"
    shot(page, "board")

    # Someone else edits another spec after the board read it: its stale hash is refused.
    other = CHANGED_ELSEWHERE
    other_readme = specs / other / "README.md"
    other_readme.write_text(
        other_readme.read_text(encoding="utf-8") + "\nEdited elsewhere.\n", encoding="utf-8"
    )
    before = other_readme.read_text(encoding="utf-8")
    other_card = page.locator(f'.card[data-spec="{other}"]')
    other_card.get_by_label("Status").select_option("planned")
    other_card.locator(".notice-error", has_text="Conflict").wait_for()
    assert other_readme.read_text(encoding="utf-8") == before
    assert other_card.get_by_label("Status").input_value() == "complete"
    shot(page, "board-conflict")


def test_every_view_fits_a_narrow_window(browser, server):
    base, _ = server
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=base)
    tab = context.new_page()
    for name, path, ready in [
        ("narrow-search", f"/?q={KNOWN_QUERY}", "#results .hit"),
        ("narrow-spec", f"/spec/{KNOWN_SPEC}", ".token-total"),
        ("narrow-board", "/board", ".card"),
    ]:
        tab.goto(path)
        tab.locator(ready).first.wait_for(timeout=30_000)
        overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (name, overflow)
        shot(tab, name)
    context.close()


def test_a_server_without_an_index_says_so_on_the_page(browser, tmp_path, tiny_specs):
    """No index yet: the search explains it instead of showing an empty page."""
    port = free_port()
    log = tmp_path / "serve.log"
    command = [str(SPECMEM), "--specs-dir", str(tiny_specs), "--data-dir", str(tmp_path / "data")]
    with log.open("w") as out:
        server = subprocess.Popen([*command, "serve", "--port", str(port)], stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, server, log)
        context = browser.new_context(base_url=base)
        tab = context.new_page()
        tab.goto("/?q=anything")
        tab.locator(".notice", has_text="No index yet").wait_for()
        shot(tab, "no-index")
        context.close()
    finally:
        stop_process(server)
