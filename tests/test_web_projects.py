"""The web page on a server of several projects (issue 15, specs 089 and 096): a real
`specmem serve --project ...` over two spec folders that share spec numbers, a real Chromium.

The page shows a project picker when /health lists projects; "All projects" searches and lists
across them, every hit and card naming its project and linking to `project:spec`; a chosen
project stays in the URL from view to view and scopes every request; the graph, which never
crosses projects, asks for one.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import write_spec
from tests.live_server import stop_process
from tests.web_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    SPECMEM,
    TOKEN,
    chromium_or_skip,
    free_port,
    wait_for_health,
)

pytestmark = [pytest.mark.model, pytest.mark.browser]
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _spec(root: Path, name: str, title: str, body: str, depends_on: str = "[]") -> None:
    write_spec(
        root,
        name,
        f"""
        ---
        status: planned
        created: 2026-11-01
        depends_on: {depends_on}
        ---
        # {title}

        ## Overview

        {body}
        """,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    chromium_or_skip()
    root = tmp_path_factory.mktemp("web-projects")
    web, api = root / "web" / "specs", root / "api" / "specs"
    _spec(web, "001-login-form", "Login form", "The login form posts the password to the auth API.")
    _spec(web, "002-dark-mode", "Dark mode", "A dark theme for the login form.", "[001]")
    _spec(api, "001-auth-tokens", "Auth tokens", "The auth API signs session tokens for a login.")
    _spec(api, "002-rate-limits", "Rate limits", "Rate limits on the auth API.", "[001]")
    env = {**os.environ, "SPECMEM_API_TOKEN": TOKEN}
    for specs in (web, api):  # indexed first, so the first search finds both
        built = subprocess.run(
            [str(SPECMEM), "--specs-dir", str(specs), "ingest"], env=env, capture_output=True
        )
        assert built.returncode == 0, built.stderr.decode()
    port = free_port()
    command = [str(SPECMEM), "serve", "--port", str(port)]
    command += ["--project", f"web={web}", "--project", f"api={api}"]
    log_path = root / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base, server, log_path)
        yield base, web, api
    finally:
        stop_process(server)


@pytest.fixture
def page(served):
    base = served[0]
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_or_skip(), args=CHROMIUM_ARGS
        )
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=base)
        context.set_default_timeout(30_000)
        tab = context.new_page()
        problems: list[str] = []
        tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        tab.on("request", lambda r: r.url.startswith(base) or problems.append(f"fetched {r.url}"))
        yield tab
        chromium.close()
    assert problems == []


def _hits(page) -> list[str]:
    return page.locator("#results .hit").evaluate_all("hits => hits.map(h => h.dataset.spec)")


def test_all_projects_search_names_each_hit_s_project_and_opens_it_qualified(page):
    page.goto("/?q=auth+API+login")
    picker = page.get_by_label("Project")
    picker.wait_for()
    options = picker.locator("option").evaluate_all("os => os.map(o => o.textContent)")
    assert options == ["All projects", "api", "web"]
    page.locator("#results .hit").first.wait_for()
    page.wait_for_function("() => document.querySelectorAll('#results .hit').length >= 2")
    badges = set(page.locator("#results .hit .badge-project").all_inner_texts())
    assert badges == {"web", "api"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "projects-search.png"))

    # Both projects have a 001: the link names the project, and the spec page is api's.
    hit = page.locator("#results .hit", has=page.locator(".badge-project", has_text="api"))
    hit.first.locator("a.hit-title").click()
    page.wait_for_url(re.compile(r"/spec/api(%3A|:)00\d-"))
    page.locator("h1", has_text=re.compile("Auth tokens|Rate limits")).first.wait_for()
    # Its dependency links stay in api, where 001 is Auth tokens, not web's Login form.
    if "Rate limits" in page.locator("h1").first.inner_text():
        page.locator(".spec-aside a", has_text="001-auth-tokens").first.click()
        page.locator("h1", has_text="Auth tokens").first.wait_for()


def test_a_chosen_project_scopes_every_view_and_stays_in_the_url(page):
    page.goto("/?q=auth+API+login")
    page.get_by_label("Project").select_option("web")
    page.wait_for_url(re.compile(r"project=web"))
    page.wait_for_function(
        "() => document.querySelector('#results .hit') && "
        "!document.querySelector('#results .hit .badge-project')"
    )
    assert set(_hits(page)) <= {"001-login-form", "002-dark-mode"}
    assert page.locator("#results .hit .badge-project").count() == 0

    # From view to view the project stays: the graph draws web's two specs.
    page.locator("nav a", has_text="Graph").click()
    page.wait_for_url(re.compile(r"/graph\?project=web"))
    page.locator("ul.columns li").first.wait_for(state="attached")
    listed = page.locator("ul.columns li a").all_text_contents()
    assert sorted(listed) == ["001-login-form", "002-dark-mode"]
    assert page.get_by_label("Project").input_value() == "web"

    # Across all projects there is no one graph: the page says to choose one.
    page.get_by_label("Project").select_option("")
    page.locator(".notice", has_text="Choose a project").wait_for()


def test_the_board_across_projects_writes_to_the_card_s_own_project(page, served):
    _, web, api = served
    page.goto("/board")
    page.get_by_label("API token (for writes)").fill(TOKEN)
    page.get_by_role("button", name="Use token").click()
    card = page.locator('.card[data-spec="api:001-auth-tokens"]')
    card.wait_for()
    assert page.locator('.card[data-spec="web:001-login-form"]').count() == 1
    page.wait_for_function(
        "() => !document.querySelector(`.card[data-spec='api:001-auth-tokens'] select`).disabled"
    )
    card.get_by_label("Status").select_option("in-progress")
    page.locator('.column-in-progress .card[data-spec="api:001-auth-tokens"]').wait_for()
    assert "status: in-progress" in (api / "001-auth-tokens" / "README.md").read_text()
    assert "status: planned" in (web / "001-login-form" / "README.md").read_text()
    answer = httpx.get(f"{page.url.split('/board')[0]}/specs/api:001")
    assert answer.json()["status"] == "in-progress"
