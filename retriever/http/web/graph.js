// The dependency graph: every spec coloured by status, `depends_on` arrows (A → B: A needs B),
// `parent` links dashed, cycles in red, dangling links to a dashed "missing" node. Zoom with the
// wheel or the buttons, pan by dragging, click a spec to open it. `/graph?around=ID&depth=2`
// shows the specs within two links of ID. Drawn by Cytoscape.js (spec 089), loaded only here.

import { api, ApiError, query } from "./api.js";
import { h, notice, setTitle, specHref, specLink, statusBadge, statusColour, STATUSES } from "./dom.js";

const MISSING = "#dc2626";
const CYTOSCAPE_STYLE_ID = "__________cytoscape_stylesheet";

let loading = null;
function loadCytoscape() {
  if (window.cytoscape) return Promise.resolve(window.cytoscape);
  loading ||= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/ui/vendor/cytoscape.min.js";
    script.onload = () => resolve(window.cytoscape);
    script.onerror = () => reject(new Error("the graph library did not load"));
    document.head.append(script);
  });
  return loading;
}

function resolveRef(nodes, ref) {
  if (!ref) return null;
  const exact = nodes.find((n) => n.spec === ref);
  if (exact) return exact.spec;
  const number = /^\d+$/.test(ref) ? Number(ref) : null;
  const matches = nodes.filter((n) => (number !== null && n.number === number) || n.spec.startsWith(`${ref}-`));
  return matches.length === 1 ? matches[0].spec : null;
}

function neighbourhood(graph, centre, depth) {
  const links = new Map();
  const add = (a, b) => (links.get(a) || links.set(a, []).get(a)).push(b);
  for (const edge of graph.edges) add(edge.from, edge.to), add(edge.to, edge.from);
  const seen = new Set([centre]);
  let frontier = [centre];
  for (let step = 0; step < depth; step++) {
    const next = [];
    for (const name of frontier) for (const other of links.get(name) || []) if (!seen.has(other)) seen.add(other), next.push(other);
    frontier = next;
  }
  return seen;
}

export async function render(main, url, ctx) {
  const params = url.searchParams;
  const around = params.get("around") || "";
  const depth = Math.max(1, Math.min(6, Number(params.get("depth")) || 2));
  const hideArchived = params.get("archived") === "0";
  const linkedOnly = params.get("linked") === "1";
  setTitle(around ? `Graph around ${around}` : "Dependency graph");

  const controls = h(
    "form",
    { class: "graph-controls", onsubmit: (e) => (e.preventDefault(), apply()) },
    h("h1", {}, "Dependency graph"),
    h("div", { class: "form-row" },
      h("div", {}, h("label", { for: "around" }, "Around spec"), h("input", { id: "around", name: "around", value: around, placeholder: "all specs", size: 14 })),
      h("div", {}, h("label", { for: "graph-depth" }, "Links away"), h("input", { id: "graph-depth", name: "depth", type: "number", min: 1, max: 6, value: depth })),
      h("div", { class: "checks" },
        h("label", {}, h("input", { type: "checkbox", name: "linked", checked: linkedOnly }), " linked specs only"),
        h("label", {}, h("input", { type: "checkbox", name: "archived", checked: hideArchived }), " hide archived"),
      ),
      h("button", { type: "submit" }, "Show"),
    ),
  );
  const status = h("p", { id: "graph-status", class: "muted", "aria-live": "polite" }, "Loading the graph…");
  const canvas = h("div", { id: "graph", class: "graph-canvas", role: "img", "aria-label": "Dependency graph; the list below has every spec in it as a link" });
  const zoom = h("div", { class: "zoom" });
  const legend = h("ul", { class: "legend", "aria-label": "Colours" }, STATUSES.map((s) => h("li", {}, h("span", { class: `swatch status-${s}` }), s)), h("li", {}, h("span", { class: "swatch swatch-cycle" }), "cycle"), h("li", {}, h("span", { class: "swatch swatch-missing" }), "dangling"));
  const list = h("details", { class: "graph-list" });
  main.append(controls, status, h("div", { class: "graph-wrap" }, canvas, zoom), legend, list);

  function apply() {
    const data = new FormData(controls);
    ctx.navigate(`/graph${query({
      around: String(data.get("around") || "").trim(),
      depth: Number(data.get("depth")) === 2 ? "" : data.get("depth"),
      linked: data.get("linked") ? "1" : "",
      archived: data.get("archived") ? "0" : "",
    })}`);
  }

  let graph;
  let cytoscape;
  try {
    [graph, cytoscape] = await Promise.all([api("/dependency-graph"), loadCytoscape()]);
  } catch (error) {
    // Dependencies never cross projects, so across all of them there is no one graph to draw.
    status.replaceChildren(
      error instanceof ApiError && error.code === "project_required"
        ? notice("info", h("strong", {}, "Choose a project "), "above to see its dependency graph.")
        : notice("error", h("strong", {}, "No graph: "), error.message),
    );
    return;
  }
  if (!ctx.isCurrent()) return;

  let keep = graph.nodes;
  let centre = null;
  if (around) {
    centre = resolveRef(graph.nodes, around);
    if (!centre) {
      status.replaceChildren(notice("warn", `No single spec matches “${around}”; showing all specs.`));
    } else {
      const near = neighbourhood(graph, centre, depth);
      keep = keep.filter((n) => near.has(n.spec));
    }
  }
  if (hideArchived) keep = keep.filter((n) => !n.archived || n.spec === centre);
  const linked = new Set(graph.edges.flatMap((e) => [e.from, e.to]).concat(graph.dangling.map((d) => d.from)));
  if (linkedOnly) keep = keep.filter((n) => linked.has(n.spec) || n.spec === centre);
  const shown = new Set(keep.map((n) => n.spec));
  const edges = graph.edges.filter((e) => shown.has(e.from) && shown.has(e.to));
  const dangling = graph.dangling.filter((d) => shown.has(d.from));

  const elements = [
    ...keep.map((n) => ({
      data: { id: n.spec, label: `${String(n.number).padStart(3, "0")} ${n.title}`, colour: statusColour(n.status) },
      classes: n.spec === centre ? "centre" : "",
    })),
    ...edges.map((e, i) => ({ data: { id: `e${i}`, source: e.from, target: e.to, kind: e.kind }, classes: `${e.kind}${e.in_cycle ? " cycle" : ""}` })),
    ...dangling.map((d, i) => ({ data: { id: `missing:${d.from}:${d.ref}:${i}`, label: `missing: ${d.ref}` }, classes: "missing" })),
    ...dangling.map((d, i) => ({ data: { id: `d${i}`, source: d.from, target: `missing:${d.from}:${d.ref}:${i}` }, classes: "dangling" })),
  ];
  // Cytoscape injects a <style> for its container unless an element with this id exists; the
  // rule it holds (position: relative) is in style.css, so the CSP can refuse inline styles.
  if (!document.getElementById(CYTOSCAPE_STYLE_ID)) document.head.append(h("meta", { id: CYTOSCAPE_STYLE_ID, name: "cytoscape-container-style", content: "/ui/style.css" }));
  const cy = cytoscape({
    container: canvas,
    elements,
    minZoom: 0.05,
    maxZoom: 4,
    style: [
      { selector: "node", style: { "background-color": "data(colour)", label: "data(label)", "font-size": 9, color: "#111827", "text-valign": "bottom", "text-margin-y": 3, "text-max-width": 110, "text-wrap": "ellipsis", width: 14, height: 14, "min-zoomed-font-size": 7 } },
      { selector: "node.centre", style: { width: 26, height: 26, "border-width": 3, "border-color": "#111827", "font-size": 12, "font-weight": "bold" } },
      { selector: "node.missing", style: { "background-color": "#fff", "border-width": 2, "border-style": "dashed", "border-color": MISSING, color: MISSING, shape: "round-rectangle" } },
      { selector: "node.found", style: { "border-width": 4, "border-color": "#f59e0b" } },
      { selector: "edge", style: { width: 1.2, "line-color": "#94a3b8", "target-arrow-color": "#94a3b8", "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.8 } },
      { selector: "edge.parent", style: { "line-style": "dashed", "target-arrow-shape": "diamond" } },
      { selector: "edge.cycle", style: { "line-color": "#dc2626", "target-arrow-color": "#dc2626", width: 2.5 } },
      { selector: "edge.dangling", style: { "line-style": "dashed", "line-color": MISSING, "target-arrow-color": MISSING } },
    ],
    // A neighbourhood reads best as rings around its spec; the whole corpus as a force layout.
    layout: centre && keep.length < 60
      ? { name: "concentric", concentric: (node) => (node.id() === centre ? 2 : 1), levelWidth: () => 1, minNodeSpacing: 60, animate: false, padding: 40 }
      : { name: "cose", animate: false, randomize: true, nodeOverlap: 20, nodeRepulsion: () => 9000, idealEdgeLength: () => 60, numIter: 1500, componentSpacing: 40, padding: 30 },
  });
  // A handful of specs would be fitted at a zoom where labels swamp the picture.
  if (cy.zoom() > 1.4) {
    cy.zoom(1.4);
    cy.center();
  }
  window.specmemGraph = cy; // for the browser tests and for poking at it from the console
  cy.on("tap", "node", (event) => {
    const id = event.target.id();
    if (!id.startsWith("missing:")) ctx.navigate(specHref(id));
  });
  cy.on("mouseover", "node", () => (canvas.style.cursor = "pointer"));
  cy.on("mouseout", "node", () => (canvas.style.cursor = ""));
  if (centre && keep.length >= 40) cy.center(cy.getElementById(centre));

  zoom.append(
    h("button", { type: "button", "aria-label": "Zoom in", onclick: () => cy.zoom({ level: cy.zoom() * 1.3, renderedPosition: { x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 } }) }, "+"),
    h("button", { type: "button", "aria-label": "Zoom out", onclick: () => cy.zoom({ level: cy.zoom() / 1.3, renderedPosition: { x: canvas.clientWidth / 2, y: canvas.clientHeight / 2 } }) }, "−"),
    h("button", { type: "button", "aria-label": "Fit the whole picture", onclick: () => cy.fit(undefined, 20) }, "Fit"),
  );

  const cycles = graph.cycles.filter((c) => c.every((n) => shown.has(n)));
  status.replaceChildren(
    h("span", { id: "graph-counts", dataset: { nodes: keep.length, edges: edges.length } }, `${keep.length} specs, ${edges.length} links`),
    `, ${cycles.length} cycle${cycles.length === 1 ? "" : "s"}, ${dangling.length} dangling link${dangling.length === 1 ? "" : "s"}`,
    ...(centre ? [" around ", specLink(centre)] : []),
    ". Click a spec to open it.",
  );
  list.append(
    h("summary", {}, `Every spec in this picture (${keep.length})`),
    h("ul", { class: "columns" }, keep.map((n) => h("li", {}, specLink(n.spec), " ", statusBadge(n.status)))),
    cycles.length ? [h("h2", {}, "Cycles"), h("ul", {}, cycles.map((c) => h("li", { class: "cycle" }, [...c, c[0]].join(" → "))))] : null,
    dangling.length ? [h("h2", {}, "Dangling links"), h("ul", {}, dangling.map((d) => h("li", {}, specLink(d.from), ` ${d.kind} → ${d.ref} (${d.reason})`)))] : null,
  );
  return () => cy.destroy();
}
