// Search as you type: `/?q=QUERY&status=&tag=&priority=&mode=`. Each keystroke (after a short
// pause) replaces the URL and asks /search; an answer to an older query is dropped, so results
// never flash back to what was typed before.

import { api, ApiError, query } from "./api.js";
import { debounce, formatNumber, h, notice, projectBadge, specHref, statusBadge, setTitle, STATUSES } from "./dom.js";

const PRIORITIES = ["low", "medium", "high", "critical"];
const MODES = [
  ["hybrid", "Hybrid (lexical + dense)"],
  ["lexical", "Lexical"],
  ["dense", "Dense"],
];

function select(id, label, options, value) {
  return [
    h("label", { for: id }, label),
    h(
      "select",
      { id, name: id },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
    ),
  ];
}

export async function render(main, url, ctx) {
  const params = url.searchParams;
  const state = {
    q: params.get("q") || "",
    status: params.get("status") || "",
    tag: params.get("tag") || "",
    priority: params.get("priority") || "",
    mode: params.get("mode") || "hybrid",
  };
  setTitle(state.q ? `Search: ${state.q}` : "Search");
  const input = h("input", {
    id: "q", type: "search", name: "q", value: state.q, autocomplete: "off", spellcheck: "false",
    placeholder: "What was decided about…", "aria-describedby": "search-help", "aria-controls": "results",
  });
  const tags = h("datalist", { id: "tag-options" });
  const form = h(
    "form",
    { role: "search", class: "search-form", onsubmit: (e) => (e.preventDefault(), run()) },
    h("label", { for: "q", class: "big-label" }, "Search specs"),
    h("div", { class: "search-row" }, input, h("button", { type: "submit" }, "Search")),
    h(
      "div",
      { class: "filters" },
      select("mode", "Mode", MODES, state.mode),
      select("status", "Status", [["", "any"], ...STATUSES.map((s) => [s, s])], state.status),
      select("priority", "Priority", [["", "any"], ...PRIORITIES.map((p) => [p, p])], state.priority),
      h("label", { for: "tag" }, "Tag"),
      h("input", { id: "tag", name: "tag", list: "tag-options", value: state.tag, size: 12, autocomplete: "off" }),
      tags,
    ),
    h("p", { id: "search-help", class: "muted small" }, "Results update as you type. Each result shows its score, the parts it is made of and its best section."),
  );
  const summary = h("div", { id: "search-summary", "aria-live": "polite" });
  const results = h("ol", { id: "results", class: "results" });
  main.append(form, summary, results);

  let controller = null;
  let asked = 0;

  // The URL is replaced, not pushed: it always names what is on screen, and Back leaves the
  // search instead of stepping through every keystroke.
  async function run() {
    const form_ = new FormData(form);
    for (const key of ["q", "status", "tag", "priority", "mode"]) state[key] = String(form_.get(key) || "").trim();
    const target = `/${query({ q: state.q, status: state.status, tag: state.tag, priority: state.priority, mode: state.mode === "hybrid" ? "" : state.mode })}`;
    history.replaceState(null, "", target);
    setTitle(state.q ? `Search: ${state.q}` : "Search");
    if (controller) controller.abort();
    const mine = ++asked;
    if (!state.q) {
      results.replaceChildren();
      summary.replaceChildren(await intro());
      return;
    }
    controller = new AbortController();
    summary.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try {
      const answer = await api(
        `/search${query({ q: state.q, status: state.status, tag: state.tag, priority: state.priority, mode: state.mode, limit: 20 })}`,
        { signal: controller.signal },
      );
      if (mine !== asked) return;
      show(answer);
    } catch (error) {
      if (error.name === "AbortError" || mine !== asked) return;
      results.replaceChildren();
      summary.replaceChildren(explain(error));
    }
  }

  async function intro() {
    try {
      const health = await api("/health");
      if (typeof health.specs === "number") {
        return h("p", { class: "muted" }, `Type to search ${formatNumber(health.specs)} specs.`);
      }
    } catch (error) {
      return explain(error);
    }
    return h("p", { class: "muted" }, "Type to search.");
  }

  function explain(error) {
    if (error instanceof ApiError && error.code === "no_index") {
      return notice("warn", h("strong", {}, "No index yet. "), "Build it with ", h("code", {}, "specmem ingest"), ", then search again. (", error.message, ")");
    }
    if (error instanceof ApiError && error.status === 401) {
      return notice("warn", h("strong", {}, "This server needs the API token for reads. "), "Enter it above.");
    }
    return notice("error", h("strong", {}, "Search failed: "), error.message || String(error));
  }

  function show(answer) {
    const hits = answer.results || [];
    if (!hits.length) {
      const filters = ["status", "tag", "priority"].filter((k) => state[k]).map((k) => `${k} ${state[k]}`);
      summary.replaceChildren(
        notice(
          "info",
          h("strong", {}, `Nothing matched “${state.q}”`),
          filters.length ? ` with ${filters.join(", ")}. Try without the filters.` : ` in ${answer.mode} mode. Try other words, or another mode.`,
        ),
      );
      results.replaceChildren();
      return;
    }
    summary.replaceChildren(
      h("p", { class: "muted" }, `${hits.length} spec${hits.length === 1 ? "" : "s"} for “${answer.query}”, ${answer.mode}. `, h("a", { href: `/bundle${query({ q: answer.query })}` }, "Build a context bundle for this query")),
    );
    results.replaceChildren(...hits.map(hitItem));
  }

  const live = debounce(() => run(), 160);
  input.addEventListener("input", live);
  for (const id of ["mode", "status", "priority"]) form.querySelector(`#${id}`).addEventListener("change", () => run());
  form.querySelector("#tag").addEventListener("input", live);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") {
      const first = results.querySelector("a.hit-title");
      if (first) (event.preventDefault(), first.focus());
    }
  });
  results.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
    const links = [...results.querySelectorAll("a.hit-title")];
    const at = links.indexOf(document.activeElement);
    if (at < 0) return;
    event.preventDefault();
    const next = at + (event.key === "ArrowDown" ? 1 : -1);
    if (next < 0) input.focus();
    else if (links[next]) links[next].focus();
  });

  api("/specs?limit=500&archived=true")
    .then((page) => {
      const all = new Set((page.items || page.specs || []).flatMap((s) => s.tags || []));
      tags.replaceChildren(...[...all].sort().map((t) => h("option", { value: t })));
    })
    .catch(() => {});
  if (!state.q) input.focus();
  await run();
  return () => controller && controller.abort();
}

function hitItem(hit) {
  const snippet = hit.snippet;
  const parts = Object.entries(hit.components || {})
    .filter(([name]) => name !== "fused")
    .map(([name, value]) => h("span", { class: "component" }, `${name} ${Number(value).toFixed(2)}`));
  return h(
    "li",
    { class: "hit", dataset: { spec: hit.spec } },
    h(
      "div",
      { class: "hit-head" },
      h("a", { class: "hit-title", href: specHref(hit.spec, hit.project) }, h("span", { class: "num" }, String(hit.spec).split("-")[0]), " ", hit.title || hit.spec),
      projectBadge(hit.project),
      statusBadge(hit.status),
      hit.priority ? h("span", { class: "badge" }, hit.priority) : null,
      hit.superseded_by && hit.superseded_by.length ? h("span", { class: "badge badge-warn" }, `superseded by ${hit.superseded_by.join(", ")}`) : null,
    ),
    h(
      "div",
      { class: "hit-meta" },
      h("span", { class: "score", title: "The fused score ranks the results" }, `score ${Number(hit.score).toFixed(3)}`),
      parts,
      (hit.tags || []).map((t) => h("span", { class: "tag" }, t)),
    ),
    snippet
      ? h(
          "div",
          { class: "snippet" },
          h(
            "div",
            { class: "where" },
            h("a", { href: `${specHref(hit.spec, hit.project)}${query({ file: snippet.file })}#L${(snippet.lines || [1])[0]}` }, `${snippet.file}:${(snippet.lines || []).join("–")}`),
            snippet.heading_path && snippet.heading_path.length ? ` · ${snippet.heading_path.join(" › ")}` : "",
          ),
          h("pre", {}, snippet.text),
        )
      : null,
    h("div", { class: "hit-links" }, h("a", { href: `/bundle${query({ spec: hit.spec, project: hit.project })}` }, "Bundle"), h("a", { href: `/graph${query({ around: hit.spec, project: hit.project })}` }, "Graph")),
  );
}
