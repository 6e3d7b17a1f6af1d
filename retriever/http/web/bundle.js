// The context bundle an agent would get: `/bundle?q=QUERY&spec=ID&budget=N&depth=D`.
// Each item with its reason, tokens and source; the rendered text as the agent receives it,
// with a copy button.

import { api, query } from "./api.js";
import { formatNumber, h, lines, notice, setTitle, specHref, specLink, statusBadge } from "./dom.js";

const BUDGET_MIN = 100;
const BUDGET_MAX = 100000;
const DEPTH_MAX = 5;

export async function render(main, url, ctx) {
  const params = url.searchParams;
  const asked = {
    q: params.get("q") || "",
    spec: params.getAll("spec").join(", "),
    budget: Number(params.get("budget")) || 4000,
    depth: params.has("depth") ? Number(params.get("depth")) : 2,
  };
  setTitle("Context bundle");
  const budget = h("input", { id: "budget", name: "budget", type: "number", min: BUDGET_MIN, max: BUDGET_MAX, step: 100, value: asked.budget, required: true });
  const slider = h("input", { id: "budget-range", type: "range", min: 500, max: 20000, step: 500, value: Math.min(20000, asked.budget), "aria-label": "Budget slider" });
  slider.addEventListener("input", () => (budget.value = slider.value));
  budget.addEventListener("input", () => (slider.value = budget.value));
  const form = h(
    "form",
    { class: "bundle-form", onsubmit: (e) => (e.preventDefault(), submit()) },
    h("h1", {}, "Context bundle"),
    h("label", { for: "bundle-q" }, "Question"),
    h("textarea", { id: "bundle-q", name: "q", rows: 2, placeholder: "What does the agent need to know?" }, asked.q),
    h("div", { class: "form-row" },
      h("div", {}, h("label", { for: "bundle-specs" }, "Specs (ids, comma separated)"), h("input", { id: "bundle-specs", name: "spec", value: asked.spec, placeholder: "045, 072-x" })),
      h("div", {}, h("label", { for: "budget" }, "Budget (tokens)"), h("div", { class: "budget" }, budget, slider)),
      h("div", {}, h("label", { for: "depth" }, "Depth"), h("input", { id: "depth", name: "depth", type: "number", min: 0, max: DEPTH_MAX, value: asked.depth })),
    ),
    h("button", { type: "submit" }, "Build bundle"),
  );
  const out = h("div", { id: "bundle-out", "aria-live": "polite" });
  main.append(form, out);

  async function submit() {
    const data = new FormData(form);
    const q = String(data.get("q") || "").trim();
    const specs = String(data.get("spec") || "").split(/[\s,]+/).filter(Boolean);
    const chosen = Number(data.get("budget"));
    const depth = Number(data.get("depth"));
    // The URL names the bundle on screen; building it is this view's job, not a new render's.
    history.replaceState(null, "", `/bundle${query({ q, spec: specs, budget: chosen, depth: depth === 2 ? "" : depth })}`);
    await build(q, specs, chosen, depth);
  }

  async function build(q, specs, chosen, depth) {
    if (!q && !specs.length) {
      out.replaceChildren(h("p", { class: "muted" }, "Ask a question or name specs, choose a budget, and build."));
      return;
    }
    out.replaceChildren(h("p", { class: "muted" }, "Building…"));
    const body = { specs, budget: chosen, depth };
    if (q) body.query = q;
    try {
      const bundle = await api("/context", { method: "POST", body });
      if (ctx.isCurrent()) out.replaceChildren(...show(bundle));
    } catch (error) {
      out.replaceChildren(notice("error", h("strong", {}, "No bundle: "), error.message));
    }
  }

  await build(asked.q, asked.spec.split(/[\s,]+/).filter(Boolean), asked.budget, asked.depth);
}

function show(bundle) {
  const copied = h("span", { class: "muted small", role: "status" });
  const text = h("pre", { id: "bundle-text", class: "rendered", tabindex: "0" }, bundle.rendered);
  const copy = h(
    "button",
    {
      type: "button",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(bundle.rendered);
          copied.textContent = "Copied.";
        } catch {
          // Without clipboard permission (plain http on another host): select it for Ctrl-C.
          const range = document.createRange();
          range.selectNodeContents(text);
          const selection = getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          copied.textContent = "Selected: press Ctrl-C to copy.";
        }
      },
    },
    "Copy text",
  );
  return [
    h(
      "p",
      { class: "bundle-summary" },
      h("strong", { id: "bundle-tokens", dataset: { tokens: bundle.tokens, budget: bundle.budget } }, `${formatNumber(bundle.tokens)} tokens`),
      ` of a ${formatNumber(bundle.budget)}-token budget · ${bundle.items.length} items · depth ${bundle.depth}`,
    ),
    (bundle.notes || []).length ? notice("info", bundle.notes.join(" ")) : null,
    h(
      "table",
      { class: "items" },
      h("caption", { class: "sr-only" }, "What the bundle holds"),
      h("thead", {}, h("tr", {}, ["Spec", "Part", "Reason", "Tokens", "Source"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        bundle.items.map((item) =>
          h(
            "tr",
            {},
            h("td", {}, specLink(item.spec, undefined, item.project), " ", statusBadge(item.status)),
            h("td", {}, item.resolution || item.kind || ""),
            h("td", {}, item.reason || ""),
            h("td", { class: "n" }, formatNumber(item.tokens)),
            h("td", { class: "small" }, sourceLink(item)),
          ),
        ),
      ),
    ),
    h("div", { class: "rendered-head" }, h("h2", {}, "What the agent gets"), copy, copied),
    text,
  ].filter(Boolean);
}

function sourceLink(item) {
  const source = item.source;
  if (!source || !source.path) return "";
  const file = source.path.split("/").slice(1).join("/") || "README.md";
  const at = (source.lines || [1])[0];
  return h("a", { href: `${specHref(item.spec, item.project)}${query({ file })}#L${at}` }, lines(source));
}
