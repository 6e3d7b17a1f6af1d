"""One server over several spec folders (spec 096): the projects file, which project a request
means, reads across projects, and every door taking `project`."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import anyio
import click
import pytest
from fastapi.testclient import TestClient
from mcp import Client

from ingest.errors import AmbiguousSpecRef, InvalidInput, ProjectNotFound, ProjectRequired
from retriever import SpecMemory
from retriever.cli.serve_commands import open_projects
from retriever.http import create_app
from retriever.mcp_server import build_mcp_server
from retriever.projects import Projects, ProjectSources, parse_option, read_table
from retriever.projects.across import merge
from tests.conftest import write_spec
from tests.index_damage import damage

TOKEN = "projects-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def spec_text(title: str, body: str, status: str = "planned", deps: str = "[]") -> str:
    return f"---\nstatus: {status}\ndepends_on: {deps}\n---\n# {title}\n\n{body}\n"


def make_folders(root: Path) -> tuple[Path, Path]:
    web = root / "web" / "specs"
    api = root / "api" / "specs"
    write_spec(web, "001-login-page", spec_text("Login page", "The login form posts credentials."))
    write_spec(
        web,
        "002-dark-mode",
        spec_text("Dark mode", "A colour theme toggle for the dashboard.", deps="[001]"),
    )
    write_spec(api, "001-rate-limits", spec_text("Rate limits", "Token buckets per API key."))
    write_spec(api, "007-webhooks", spec_text("Webhooks", "Signed webhook deliveries retry."))
    return web, api


def projects_file(root: Path, body: str) -> Path:
    path = root / "specmem-projects.toml"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setenv("SPECMEM_MODEL", "fake")
    return make_folders(tmp_path)


@pytest.fixture
def projects(tmp_path: Path, folders) -> Projects:
    path = projects_file(
        tmp_path,
        """
        [projects.web]
        specs = "web/specs"
        [projects.api]
        specs = "api/specs"
        data = "api-index"
        """,
    )
    served = Projects.from_file(path)
    for project in served.all():
        project.memory.ingest()
    return served


# -- the projects file -------------------------------------------------------------------------


def test_the_file_names_projects_relative_to_itself_and_a_wrong_entry_leaves_the_others(
    tmp_path, folders
):
    path = projects_file(
        tmp_path,
        """
        default = "web"
        [projects.web]
        specs = "web/specs"
        [projects.gone]
        specs = "nowhere/specs"
        [projects."bad:name"]
        specs = "api/specs"
        """,
    )
    table = read_table(path)
    assert [e.name for e in table.entries] == ["web"]
    assert table.entries[0].specs_dir == (tmp_path / "web" / "specs").absolute()
    assert table.default == "web"
    assert len(table.problems) == 2
    assert any("[projects.gone]" in p and "no such directory" in p for p in table.problems)
    assert any("bad:name" in p and "no ':'" in p for p in table.problems)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[projects.web\nspecs = 1", "not valid TOML"),
        ('colour = "red"', "unknown key 'colour'"),
        ('[projects.web]\nspecs = "web/specs"\ncolour = "red"', "unknown key 'colour'"),
        ('default = "api"\n[projects.web]\nspecs = "web/specs"', "default project 'api'"),
        ("[projects.web]\nspecs = 3", "specs must be a non-empty string"),
    ],
)
def test_a_bad_file_is_refused_naming_the_file_and_what_is_wrong(tmp_path, folders, body, expected):
    path = projects_file(tmp_path, body)
    # What is wrong with the whole file is raised; what is wrong with one entry is a problem.
    try:
        complaint = "; ".join(read_table(path).problems)
    except InvalidInput as err:
        complaint = str(err)
    assert expected in complaint
    assert str(path) in complaint


def test_project_options_are_name_equals_dir(folders):
    web, _ = folders
    assert parse_option(f"web={web}").specs_dir == web.absolute()
    for bad in ("web", f"a:b={web}", "web=/no/such/dir"):
        with pytest.raises(InvalidInput):
            parse_option(bad)
    with pytest.raises(InvalidInput, match="twice"):
        ProjectSources(entries=(parse_option(f"web={web}"), parse_option(f"web={web}")))


# -- which project a request means -------------------------------------------------------------


def test_a_reference_is_qualified_unique_or_ambiguous(projects):
    found, ref = projects.spec(None, "web:002")
    assert (found.name, ref) == ("web", "002")
    assert projects.spec(None, "007")[0].name == "api"
    assert projects.spec("web", "001")[0].name == "web"
    with pytest.raises(AmbiguousSpecRef) as caught:
        projects.spec(None, "001")
    assert caught.value.candidates == ["api:001-rate-limits", "web:001-login-page"]
    with pytest.raises(InvalidInput, match="is in project 'web', not 'api'"):
        projects.spec("api", "web:001")
    with pytest.raises(ProjectNotFound, match=r"projects: api, web"):
        projects.spec(None, "mobile:001")


def test_a_write_names_its_project_unless_there_is_one_or_a_default(projects, tmp_path):
    with pytest.raises(ProjectRequired, match=r"several projects \(api, web\)"):
        projects.one(None)
    assert projects.one("api").name == "api"
    single = Projects.single(projects.get("web").memory)
    assert single.one(None).name is None
    with pytest.raises(ProjectNotFound, match="leave `project` out"):
        single.get("web")


def test_editing_the_file_adds_and_removes_projects_and_keeps_the_others_open(projects, tmp_path):
    web = projects.get("web").memory
    path = tmp_path / "specmem-projects.toml"
    mobile = tmp_path / "mobile" / "specs"
    write_spec(mobile, "001-push", spec_text("Push notifications", "APNs and FCM."))
    path.write_text(
        '[projects.web]\nspecs = "web/specs"\n[projects.mobile]\nspecs = "mobile/specs"\n'
    )
    assert projects.names() == ["mobile", "web"]
    assert projects.get("web").memory is web  # untouched: its index and caches stay warm
    path.write_text("[projects.web\n")  # a broken edit keeps the last good set
    assert projects.names() == ["mobile", "web"]
    assert "not valid TOML" in projects.problems[0]


def test_an_edit_refuses_the_newcomer_that_shares_a_served_projects_data_dir(projects, tmp_path):
    api = projects.get("api").memory
    mobile = tmp_path / "mobile" / "specs"
    write_spec(mobile, "001-push", spec_text("Push notifications", "APNs and FCM."))
    # Listed first, the newcomer would be opened first: it is still the one refused.
    (tmp_path / "specmem-projects.toml").write_text(
        '[projects.mobile]\nspecs = "mobile/specs"\ndata = "api-index"\n'
        '[projects.web]\nspecs = "web/specs"\n[projects.api]\nspecs = "api/specs"\n'
        'data = "api-index"\n'
    )
    assert projects.names() == ["api", "web"]
    assert projects.get("api").memory is api
    assert any("project mobile: shares its data dir" in p for p in projects.problems)


def test_an_edit_that_opens_no_project_keeps_the_last_good_set(projects, tmp_path):
    (tmp_path / "specmem-projects.toml").write_text('[projects.web]\nspecs = "wbe/specs"\n')
    assert projects.names() == ["api", "web"]
    assert "opens no project; still serving the last good set" in projects.problems[0]
    assert any("[projects.web]" in p and "no such directory" in p for p in projects.problems)


def test_a_wrong_data_dir_or_event_log_url_is_a_problem_naming_the_entry(tmp_path, folders):
    (tmp_path / "a-file").write_text("not a dir")
    path = projects_file(
        tmp_path,
        """
        [projects.web]
        specs = "web/specs"
        data = "a-file"
        [projects.api]
        specs = "api/specs"
        events_url = "mysql://db/events"
        """,
    )
    problems = read_table(path).problems
    assert any("[projects.web]: data = 'a-file': not a directory" in p for p in problems)
    assert any(
        "[projects.api]: events_url=mysql://…: expected a PostgreSQL URL" in p for p in problems
    )


def test_project_options_that_would_not_all_be_served_are_refused(folders):
    web, _ = folders
    sources = ProjectSources(entries=(parse_option(f"a={web}"), parse_option(f"b={web}")))
    with pytest.raises(click.UsageError, match="project b: shares its data dir"):
        open_projects(sources)


def test_two_projects_on_one_event_log_are_refused(tmp_path, folders, monkeypatch):
    monkeypatch.setenv("SPECMEM_EVENTS_DIR", str(tmp_path / "one-log"))
    web, api = folders
    served = Projects.open(
        ProjectSources(entries=(parse_option(f"web={web}"), parse_option(f"api={api}")))
    )
    assert served.names() == ["web"]
    assert "would share its event log with project web" in served.problems[0]


def test_merging_keeps_each_projects_order_and_takes_the_closest_head():
    @dataclass(frozen=True)
    class Hit:
        spec: str
        score: float
        components: dict
        rank: int = 0

    def hit(name: str, score: float, dense: float | None, lexical: float = 0.0) -> Hit:
        return Hit(name, score, {"dense": dense, "lexical": lexical})

    # a2 is closer than a1 by cosine, but its project ranked it second: the order stands.
    first = [hit("a1", 9.0, 0.50), hit("a2", 8.0, 0.70)]
    second = [hit("b1", 0.5, 0.60), hit("b2", 0.4, 0.20)]
    merged = merge([first, second], 3)
    assert [(h.spec, h.rank) for h in merged] == [("b1", 1), ("a1", 2), ("a2", 3)]
    lexical = merge([[hit("a1", 1, None, 3.0)], [hit("b1", 1, None, 7.0)]], 2)
    assert [h.spec for h in lexical] == ["b1", "a1"]
    assert [h.spec for h in merge([first, second], 3, "rrf")] == ["a1", "b1", "a2"]
    assert [h.spec for h in merge([first, second], 4, "score")] == ["a1", "a2", "b1", "b2"]
    with pytest.raises(InvalidInput, match="expected one of cosine, rrf, score"):
        merge([first], 1, "mean")


# -- HTTP ----------------------------------------------------------------------------------------


@pytest.fixture
def client(projects):
    with TestClient(create_app(projects, token=TOKEN, mount_mcp=False)) as test:
        yield test


def test_search_reads_across_projects_and_each_hit_names_its_project(client):
    both = client.get("/search", params={"q": "webhook login", "mode": "lexical"}).json()
    assert {hit["project"] for hit in both["results"]} == {"web", "api"}
    assert [hit["rank"] for hit in both["results"]] == list(range(1, len(both["results"]) + 1))
    one = client.get("/search", params={"q": "webhook login", "project": "api"}).json()
    assert {hit["project"] for hit in one["results"]} == {"api"}
    missing = client.get("/search", params={"q": "x", "project": "mobile"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "project_not_found"


def test_specs_are_read_by_qualified_reference_and_ambiguity_is_a_409(client):
    assert client.get("/specs/web:002").json()["title"] == "Dark mode"
    assert client.get("/specs/002", params={"project": "web"}).json()["title"] == "Dark mode"
    ambiguous = client.get("/specs/001")
    assert ambiguous.status_code == 409
    assert "api:001-rate-limits, web:001-login-page" in ambiguous.json()["error"]["message"]
    listed = client.get("/specs").json()
    assert listed["total"] == 4
    assert {(s["project"], s["spec"]) for s in listed["specs"]} >= {("api", "007-webhooks")}


def test_a_project_with_a_damaged_index_is_skipped_by_reads_across_projects(client, projects):
    damage(projects.get("api").memory.settings.data_dir, "manifest-garbage")
    found = client.get("/search", params={"q": "login webhook", "mode": "lexical"}).json()
    assert {hit["project"] for hit in found["results"]} == {"web"}
    assert [(s["project"], s["code"]) for s in found["projects_skipped"]] == [
        ("api", "index_damaged")
    ]
    assert client.post("/context", json={"query": "login form"}).status_code == 200
    alone = client.get("/search", params={"q": "webhook", "project": "api"})
    assert alone.status_code == 409 and alone.json()["error"]["code"] == "index_damaged"


def test_per_spec_reads_take_qualified_and_bare_references(client):
    assert client.get("/specs/web:001/tokens").status_code == 200
    assert client.get("/specs/007/tokens").json()["spec"].startswith("007")
    checked = client.get("/validate", params={"spec": "api:007"})
    assert checked.status_code == 200, checked.text
    assert client.get("/validate", params={"spec": "001"}).status_code == 409


def test_validate_with_no_project_checks_every_project(client, projects):
    broken = projects.get("api").memory.settings.specs_dir / "009-broken" / "README.md"
    broken.parent.mkdir()
    broken.write_text("---\nstatus: [unclosed\n---\n# Broken\n", encoding="utf-8")
    both = client.get("/validate").json()
    assert both["ok"] is False and both["checked"] == 5
    assert both["projects"]["web"]["ok"] and not both["projects"]["api"]["ok"]
    assert {p["project"] for p in both["problems"]} == {"api"}
    one = client.get("/validate", params={"project": "web"}).json()
    assert one["project"] == "web" and one["ok"] and one["checked"] == 2


def test_writes_land_in_their_own_project_and_keys_are_per_project(client, projects):
    created = client.post("/specs", json={"title": "Audit log"}, headers=AUTH)
    assert created.status_code == 422
    assert created.json()["error"]["code"] == "project_required"
    created = client.post(
        "/specs", params={"project": "api"}, json={"title": "Audit log"}, headers=AUTH
    )
    assert created.status_code == 201
    assert created.headers["Location"] == "/specs/api:008-audit-log"
    assert (projects.get("api").memory.settings.specs_dir / "008-audit-log").is_dir()

    spec = client.get("/specs/web:001").json()
    patched = client.patch(
        "/specs/web:001",
        json={"status": "in-progress"},
        headers={**AUTH, "If-Match": spec["hash"], "Idempotency-Key": "k-1"},
    )
    assert patched.status_code == 200
    assert projects.get("web").memory.get_spec("001").meta.status == "in-progress"
    assert projects.get("api").memory.get_spec("001").meta.status == "planned"

    event = {"spec": "api:007", "type": "commit", "summary": "sign deliveries"}
    logged = client.post("/events", json=event, headers={**AUTH, "Idempotency-Key": "k-1"})
    assert logged.status_code == 201  # the same key as web's PATCH: another project's keys
    again = client.post("/events", json=event, headers={**AUTH, "Idempotency-Key": "k-1"})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert [e["summary"] for e in projects.get("api").memory.events("007")] == ["sign deliveries"]
    assert projects.get("web").memory.search_events() == []


def test_events_are_searched_across_projects_newest_first(client):
    for spec, at in (("web:002", "2026-01-01T10:00:00Z"), ("api:007", "2026-01-02T10:00:00Z")):
        event = {"spec": spec, "type": "note", "summary": f"deploy {spec}", "at": at}
        assert client.post("/events", json=event, headers=AUTH).status_code == 201
    both = client.get("/events", params={"q": "deploy"}).json()["events"]
    assert [(e["project"], e["spec"]) for e in both] == [
        ("api", "007-webhooks"),
        ("web", "002-dark-mode"),
    ]
    paged = client.get("/events", params={"q": "deploy", "limit": 1, "offset": 1}).json()
    assert [e["project"] for e in paged["events"]] == ["web"]
    one = client.get("/events", params={"spec": "web:002"}).json()["events"]
    assert [e["project"] for e in one] == ["web"]


def test_context_is_built_in_the_best_project_and_names_the_others(client):
    bundle = client.post("/context", json={"query": "webhook deliveries", "budget": 800}).json()
    assert bundle["project"] == "api"
    assert all(item["project"] == "api" for item in bundle["items"])
    assert bundle["tokens"] <= 800
    mixed = client.post("/context", json={"specs": ["web:001", "api:007"]})
    assert mixed.status_code == 422
    assert "several projects" in mixed.json()["error"]["message"]
    named = client.post("/context", json={"specs": ["web:002"], "budget": 800}).json()
    assert named["project"] == "web" and named["seeds"] == ["002-dark-mode"]


def test_health_counts_each_project(client):
    health = client.get("/health").json()
    assert health["specs"] == 4
    assert health["projects"] == {
        "api": {"specs": 2, "problems": 0},
        "web": {"specs": 2, "problems": 0},
    }


def test_a_single_folder_server_answers_as_before(tmp_path, folders):
    web, _ = folders
    memory = SpecMemory(web, tmp_path / "web-data")
    memory.ingest()
    with TestClient(create_app(memory, token=TOKEN, mount_mcp=False)) as single:
        hits = single.get("/search", params={"q": "login"}).json()["results"]
        assert hits and "project" not in hits[0]
        assert single.get("/search", params={"q": "x", "project": "web"}).status_code == 404


# -- MCP -------------------------------------------------------------------------------------------


def test_every_tool_takes_project_in_a_real_client_session(projects):
    async def scenario():
        async with Client(build_mcp_server(projects)) as client:
            tools = await client.list_tools()
            found = await client.call_tool(
                "search_specs", {"query": "rate limits", "mode": "lexical"}
            )
            read = await client.call_tool("get_spec", {"spec": "001", "project": "api"})
            ambiguous = await client.call_tool("get_spec", {"spec": 1})
            logged = await client.call_tool(
                "log_event", {"spec": "web:002", "type": "note", "summary": "theme tokens"}
            )
            resource = await client.read_resource("spec://api:007")
            counted = await client.call_tool("count_tokens", {"target": "007"})
            return tools, found, read, ambiguous, logged, resource, counted

    tools, found, read, ambiguous, logged, resource, counted = anyio.run(scenario)
    assert not counted.is_error, counted.content[0].text
    lacking = [t.name for t in tools.tools if "project" not in t.input_schema["properties"]]
    assert lacking == []
    assert found.structured_content["results"][0]["project"] == "api"
    assert read.structured_content["project"] == "api"
    assert ambiguous.is_error and "api:001-rate-limits, web:001" in ambiguous.content[0].text
    assert not logged.is_error
    assert projects.get("web").memory.events("002")[0]["summary"] == "theme tokens"
    assert "Webhooks" in resource.contents[0].text


def test_the_projects_eval_asks_every_query_of_every_corpus(tmp_path, folders, capsys):
    from tests.bench.eval_projects import main

    corpora = tmp_path / "corpora"
    for name, query, relevant in (
        ("web", "the login form", "001"),
        ("api", "signed webhook deliveries", "007"),
    ):
        (corpora / name).mkdir(parents=True)
        (tmp_path / name / "specs").rename(corpora / name / "specs")
        line = f'{{"qid": "{name}-1", "query": "{query}", "relevant": ["{relevant}"]}}\n'
        (corpora / name / "queries-dev.jsonl").write_text(line)
    assert main(["--corpora", str(corpora), "--data-root", str(tmp_path / "data")]) == 0
    printed = capsys.readouterr().out
    assert "across, cosine     pooled                2" in printed
    assert "rrf minus across, cosine, pooled mrr@10" in printed


def test_on_postgresql_each_project_has_its_own_database_and_so_its_own_write_lock(
    tmp_path, folders, postgres
):
    """The event log's write lock is an advisory lock, which PostgreSQL scopes to one database:
    a project writing never waits on another's writer (spec 095 asked for a lock per project)."""
    import threading

    from retriever.events import PostgresDatabase

    urls = {name: postgres.create_database(postgres.fresh_name()) for name in ("web", "api")}
    path = projects_file(
        tmp_path,
        f"""
        [projects.web]
        specs = "web/specs"
        events_url = "{urls["web"]}"
        [projects.api]
        specs = "api/specs"
        events_url = "{urls["api"]}"
        """,
    )
    served = Projects.from_file(path)
    web, api = served.get("web").memory, served.get("api").memory
    web.log_event("001", "note", summary="before")  # both logs set up before the lock is held
    api.log_event("007", "note", summary="before")
    held, release = threading.Event(), threading.Event()

    def hold_webs_lock() -> None:
        with PostgresDatabase(urls["web"]).transaction():
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_webs_lock)
    holder.start()
    assert held.wait(30)
    try:
        blocked = threading.Thread(target=lambda: web.log_event("001", "note", summary="waits"))
        blocked.start()
        api.log_event("007", "note", summary="not blocked")  # returns while web's lock is held
        blocked.join(0.5)
        assert blocked.is_alive()  # web's own writer does wait
    finally:
        release.set()
        holder.join(30)
    blocked.join(30)
    assert [e["summary"] for e in web.events("001")] == ["waits", "before"]
    assert [e["summary"] for e in api.events("007")] == ["not blocked", "before"]


def test_devlog_sends_each_repository_to_its_project_under_a_base_url(client, projects):
    # Devlog's collector appends /api/... to a base URL, so the project is a path prefix.
    event = {
        "id": "devlog-web-1",
        "timestamp": "2026-11-30T10:15:02.123456789Z",
        "eventType": "file_write",
        "agentId": "claude-code",
        "agentVersion": "1.0.0",
        "sessionId": "session-webhooks",
        "projectId": 3,
        "data": {"filePath": "api/specs/007-webhooks/README.md", "summary": "signed webhook retry"},
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/projects/api/api/health").json() == {"status": "healthy"}
    assert client.get("/projects/mobile/api/health").json()["error"]["code"] == "project_not_found"
    bare = client.post("/api/events/batch", json=[event], headers=headers)
    assert bare.status_code == 422 and bare.json()["error"]["code"] == "project_required"
    stored = client.post("/projects/api/api/events/batch", json=[event], headers=headers)
    assert stored.status_code == 201, stored.text
    assert stored.json()["stored"] == 1
    assert stored.json()["sessions"][0]["spec"] == "007-webhooks"
    again = client.post("/projects/api/api/events", json=event, headers=headers).json()
    assert again["duplicates"] == 1  # the event id is the key within its project
    found = client.get("/events", params={"project": "api", "q": "webhook"}).json()["events"]
    assert [e["spec"] for e in found] == ["007-webhooks"]
    assert client.get("/events", params={"project": "web", "q": "webhook"}).json()["events"] == []
