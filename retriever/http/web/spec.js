// One spec: its files as tabs (rendered on the server), its frontmatter, dependencies up and
// down, its history (transitions, events, commits) and its tokens per section.
// `/spec/ID?file=DESIGN.md#L40` opens a tab at the section holding line 40.

import { api, ApiError, query } from "./api.js";
import { formatNumber, h, notice, setTitle, specHref, specLink, statusBadge } from "./dom.js";

export async function render(main, url, ctx) {
  const ref = ctx.params.ref;
  // A spec named project:spec keeps its links to other specs in that project.
  const project = ref.includes(":") ? ref.slice(0, ref.indexOf(":")) : "";
  const base = `/specs/${encodeURIComponent(ref)}`;
  setTitle(ref);
  main.append(h("p", { class: "muted" }, `Loading ${ref}…`));
  let spec;
  let rendered;
  try {
    [spec, rendered] = await Promise.all([api(base), api(`${base}/html`)]);
  } catch (error) {
    main.replaceChildren(
      error instanceof ApiError && error.status === 404
        ? notice("warn", h("strong", {}, `No spec “${ref}”. `), error.message, " ", h("a", { href: `/${query({ q: ref })}` }, "Search for it"))
        : notice("error", h("strong", {}, "Could not read the spec: "), error.message),
    );
    return;
  }
  if (!ctx.isCurrent()) return;
  setTitle(`${spec.number ?? ""} ${spec.title}`.trim());
  const content = h("div", { class: "spec-content" });
  const aside = h("aside", { class: "spec-aside", "aria-label": "About this spec" });
  main.replaceChildren(
    h(
      "div",
      { class: "spec-head" },
      h("h1", {}, h("span", { class: "num" }, String(spec.number).padStart(3, "0")), " ", spec.title),
      h("p", { class: "muted small dir-name" }, spec.spec, spec.archived ? " (archived)" : ""),
      h(
        "div",
        { class: "hit-meta" },
        statusBadge(spec.status),
        spec.priority ? h("span", { class: "badge" }, spec.priority) : null,
        (spec.tags || []).map((t) => h("a", { class: "tag", href: `/${query({ q: t, tag: t })}` }, t)),
        h("a", { href: `/bundle${query({ spec: spec.spec })}` }, "Context bundle"),
        h("a", { href: `/graph${query({ around: spec.spec })}` }, "Graph around it"),
        h("span", { class: "muted small" }, `hash ${spec.hash}`),
      ),
      (spec.warnings || []).length ? notice("warn", h("strong", {}, "Warnings: "), spec.warnings.join("; ")) : null,
    ),
    h("div", { class: "spec-layout" }, content, aside),
  );

  const tabs = h("div", { role: "tablist", "aria-label": "Files of this spec", class: "tabs" });
  const panel = h("div", { role: "tabpanel", id: "spec-panel", class: "markdown", tabindex: "0" });
  content.append(tabs, panel);
  const files = rendered.files;
  const wanted = url.searchParams.get("file");
  let current = Math.max(0, files.findIndex((f) => f.file === wanted));

  function select(index, { focus = false, line = null } = {}) {
    current = index;
    for (const [i, tab] of [...tabs.children].entries()) {
      tab.setAttribute("aria-selected", String(i === index));
      tab.tabIndex = i === index ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", `tab-${index}`);
    panel.innerHTML = files[index].html; // rendered by the server with raw HTML off (spec 089)
    relink(panel, project, files, select);
    if (focus) tabs.children[index].focus();
    if (line) jumpTo(panel, line);
  }

  files.forEach((file, index) => {
    tabs.append(
      h("button", { role: "tab", id: `tab-${index}`, type: "button", "aria-controls": "spec-panel", onclick: () => select(index) }, file.file),
    );
  });
  tabs.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step === undefined && event.key !== "Home" && event.key !== "End") return;
    event.preventDefault();
    const count = files.length;
    const next = event.key === "Home" ? 0 : event.key === "End" ? count - 1 : (current + step + count) % count;
    select(next, { focus: true });
  });
  const lineAsked = /^#L(\d+)$/.exec(url.hash || "");
  select(current, { line: lineAsked ? Number(lineAsked[1]) : null });

  aside.append(frontmatterPanel(spec));
  const slots = {
    deps: section(aside, "Dependencies"),
    tokens: section(aside, "Tokens per section"),
    history: section(aside, "History"),
  };
  const fill = async (slot, path, build) => {
    try {
      const data = await api(path);
      if (ctx.isCurrent()) slot.replaceChildren(build(data));
    } catch (error) {
      slot.replaceChildren(notice("error", error.message));
    }
  };
  await Promise.all([
    fill(slots.deps, `${base}/dependencies`, (report) => dependencyPanel(report, project)),
    fill(slots.tokens, `${base}/tokens`, (data) => tokenPanel(data, files, select)),
    fill(slots.history, `${base}/history`, historyPanel),
  ]);
}

function section(parent, title) {
  const body = h("div", {}, h("p", { class: "muted small" }, "Loading…"));
  parent.append(h("section", { class: "panel" }, h("h2", {}, title), body));
  return body;
}

function frontmatterPanel(spec) {
  // Transitions show in the history panel; here, what the author wrote.
  const rows = Object.entries(spec.frontmatter || {}).filter(
    ([k, v]) => k !== "transitions" && v !== null && !(Array.isArray(v) && !v.length) && v !== "" && !(typeof v === "object" && !Array.isArray(v) && !Object.keys(v).length),
  );
  return h(
    "section",
    { class: "panel" },
    h("h2", {}, "Frontmatter"),
    h(
      "dl",
      { class: "frontmatter" },
      rows.flatMap(([key, value]) => [
        h("dt", {}, key),
        h("dd", {}, Array.isArray(value) && value.every((v) => typeof v !== "object") ? value.join(", ") : typeof value === "object" ? JSON.stringify(value) : String(value)),
      ]),
    ),
  );
}

function tree(nodes, project, depth = 0) {
  if (!nodes || !nodes.length || depth > 8) return null;
  return h(
    "ul",
    { class: "tree" },
    nodes.map((node) =>
      h(
        "li",
        {},
        node.dangling || node.missing
          ? h("span", { class: "dangling" }, `${node.spec || node.ref} (missing: ${node.reason || "no such spec"})`)
          : specLink(node.spec, `${node.spec}`, project),
        node.status ? [" ", statusBadge(node.status)] : null,
        node.cycle ? h("span", { class: "badge badge-warn" }, "cycle") : null,
        node.repeated ? h("span", { class: "muted small" }, " (see above)") : null,
        tree(node.children, project, depth + 1),
      ),
    ),
  );
}

function dependencyPanel(report, project) {
  const empty = (text) => h("p", { class: "muted small" }, text);
  return h(
    "div",
    {},
    h("h3", {}, "Depends on (upstream)"),
    tree(report.upstream, project) || empty("nothing"),
    h("h3", {}, "Needed by (downstream)"),
    tree(report.downstream, project) || empty("nothing"),
    report.parent ? [h("h3", {}, "Parent"), h("p", {}, specLink(report.parent))] : null,
    (report.children || []).length ? [h("h3", {}, "Children"), h("ul", { class: "tree" }, report.children.map((c) => h("li", {}, specLink(c))))] : null,
    (report.related || []).length ? [h("h3", {}, "Related"), h("ul", { class: "tree" }, report.related.map((c) => h("li", {}, specLink(c))))] : null,
    (report.dangling || []).length
      ? [h("h3", {}, "Dangling links"), h("ul", { class: "tree" }, report.dangling.map((d) => h("li", { class: "dangling" }, `${d.kind} → ${d.ref} (${d.reason})`)))]
      : null,
    (report.cycles || []).length
      ? [h("h3", {}, "Cycles"), h("ul", { class: "tree" }, report.cycles.map((c) => h("li", { class: "cycle" }, [...c, c[0]].join(" → "))))]
      : null,
  );
}

function tokenPanel(report, files, select) {
  return h(
    "div",
    {},
    h("p", {}, h("strong", { class: "token-total" }, formatNumber(report.total)), ` tokens in all (${report.encoding})`),
    (report.files || []).map((file) =>
      h(
        "table",
        { class: "tokens" },
        h("caption", {}, `${file.file}: ${formatNumber(file.tokens)}${file.over_threshold ? " (over the split threshold)" : ""}`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Section"), h("th", { scope: "col", class: "n" }, "Tokens"))),
        h(
          "tbody",
          {},
          (file.sections || []).map((s) =>
            h(
              "tr",
              {},
              h(
                "td",
                {},
                h(
                  "a",
                  {
                    href: `#L${s.line}`,
                    onclick: (event) => {
                      event.preventDefault();
                      const index = files.findIndex((f) => f.file === file.file);
                      if (index >= 0) select(index, { line: s.line });
                    },
                  },
                  s.heading,
                ),
              ),
              h("td", { class: "n" }, formatNumber(s.tokens)),
            ),
          ),
        ),
      ),
    ),
  );
}

function historyPanel(report) {
  const entries = report.history || [];
  if (!entries.length) return h("p", { class: "muted small" }, "No transitions, events or commits yet.");
  return h(
    "ol",
    { class: "history" },
    entries.slice(0, 200).map((entry) =>
      h(
        "li",
        { class: `history-${entry.kind}` },
        h("time", { datetime: entry.at }, (entry.at || "").replace("T", " ").slice(0, 16)),
        " ",
        h("span", { class: "badge" }, entry.kind),
        " ",
        describe(entry),
      ),
    ),
  );
}

function describe(entry) {
  if (entry.kind === "transition") return [statusBadge(entry.status), entry.note ? ` ${entry.note}` : ""];
  if (entry.kind === "commit") {
    const changes = entry.changes || {};
    const said = [
      ...Object.entries(changes.fields || {}).map(([k, v]) => `${k}: ${v}`),
      ...(changes.sections_added || []).map((s) => `+ ${s}`),
      ...(changes.sections_removed || []).map((s) => `− ${s}`),
    ];
    return [
      h("code", {}, String(entry.sha || "").slice(0, 8)),
      " ",
      entry.subject || "",
      entry.author ? h("span", { class: "muted small" }, ` (${entry.author})`) : null,
      said.length ? h("div", { class: "muted small" }, said.join(" · ")) : null,
    ];
  }
  return [h("code", {}, entry.type || "event"), entry.agent ? ` ${entry.agent}:` : "", " ", entry.summary || ""];
}

// Links inside a spec: to another spec (`../045-x/README.md`) open it here; to a sibling
// file of this spec (`./DESIGN.md`) switch the tab.
function relink(panel, project, files, select) {
  for (const link of panel.querySelectorAll("a[href]")) {
    const href = link.getAttribute("href");
    if (/^[a-z]+:/i.test(href) || href.startsWith("#")) {
      if (/^https?:/i.test(href)) link.rel = "noopener noreferrer";
      continue;
    }
    const clean = href.replace(/^\.\//, "").split("#")[0];
    const index = files.findIndex((f) => f.file === clean);
    if (index >= 0) {
      link.addEventListener("click", (event) => (event.preventDefault(), select(index)));
      continue;
    }
    const other = /(?:^|\/)(\d{2,4}-[^/]+)\/?(?:README\.md)?$/.exec(clean);
    if (other) link.setAttribute("href", specHref(other[1], project));
  }
}

function jumpTo(panel, line) {
  let best = null;
  for (const heading of panel.querySelectorAll("[id^=L]")) {
    const at = Number(heading.id.slice(1));
    if (at <= line && (!best || at > Number(best.id.slice(1)))) best = heading;
  }
  if (best) {
    best.classList.add("target");
    best.scrollIntoView({ block: "start" });
  }
}
