// The page's shell: the router that turns a URL into a view, and the token box.
// Every view is a module with `render(main, url, ctx)`; it may return a cleanup function,
// called before the next view replaces it.

import { api, currentProject, token } from "./api.js";
import { h } from "./dom.js";

const VIEWS = {
  search: () => import("./search.js"),
  spec: () => import("./spec.js"),
  bundle: () => import("./bundle.js"),
  graph: () => import("./graph.js"),
  board: () => import("./board.js"),
};

let cleanup = null;
let generation = 0;

function viewOf(url) {
  const path = url.pathname.replace(/\/+$/, "") || "/";
  if (path === "/") return ["search", {}];
  if (path.startsWith("/spec/")) return ["spec", { ref: decodeURIComponent(path.slice(6)) }];
  const name = path.slice(1);
  return [VIEWS[name] ? name : "search", {}];
}

// The project the page shows stays with it from view to view: a link that names none keeps it.
function keepProject(url) {
  const project = currentProject();
  if (project && url.origin === location.origin && !url.searchParams.has("project")) url.searchParams.set("project", project);
  return url;
}

export function navigate(href, { replace = false } = {}) {
  const url = keepProject(new URL(href, location.href));
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  show(url, { focus: !replace });
}

async function show(url, { focus = false } = {}) {
  const mine = ++generation;
  const [name, params] = viewOf(url);
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const picker = document.getElementById("project");
  if (picker) picker.value = currentProject();
  const module = await VIEWS[name]();
  if (mine !== generation) return;
  if (cleanup) cleanup();
  cleanup = null;
  const main = document.getElementById("main");
  main.replaceChildren();
  main.dataset.view = name;
  const ctx = { navigate, params, isCurrent: () => mine === generation };
  cleanup = (await module.render(main, url, ctx)) || null;
  if (focus && mine === generation) main.focus({ preventScroll: true });
}

function renderTokenBox() {
  const box = document.getElementById("token-box");
  box.replaceChildren();
  if (token.get()) {
    box.append(
      h("span", { class: "token-state", role: "status" }, "Writes enabled"),
      h("button", { type: "button", class: "link", onclick: () => setToken("") }, "Forget token"),
    );
    return;
  }
  const input = h("input", { id: "token", type: "password", autocomplete: "off", placeholder: "API token", size: 14 });
  box.append(
    h(
      "form",
      { class: "token-form", onsubmit: (e) => (e.preventDefault(), setToken(input.value.trim())) },
      h("label", { for: "token", class: "sr-only" }, "API token (for writes)"),
      input,
      h("button", { type: "submit" }, "Use token"),
    ),
  );
}

// Shown only on a server of several projects (its /health lists them). "All projects" searches
// and lists across them; a spec page is left for search, where the spec may not exist.
async function renderProjectPicker() {
  let health;
  try {
    health = await api("/health", { project: "" });
  } catch {
    return;
  }
  const names = Object.keys((health && health.projects) || {});
  if (names.length < 2) return;
  const picker = h(
    "select",
    { id: "project" },
    h("option", { value: "" }, "All projects"),
    names.map((name) => h("option", { value: name }, name)),
  );
  picker.value = currentProject();
  picker.addEventListener("change", () => {
    const url = new URL(location.href);
    if (url.pathname.startsWith("/spec/")) url.pathname = "/";
    if (picker.value) url.searchParams.set("project", picker.value);
    else url.searchParams.delete("project");
    history.pushState(null, "", url);
    show(url);
  });
  document.getElementById("project-box").replaceChildren(h("label", { for: "project" }, "Project "), picker);
}

function setToken(value) {
  token.set(value);
  renderTokenBox();
  window.dispatchEvent(new CustomEvent("specmem:token"));
}

// Same-origin links inside the page are routed here, so views change without a reload; a link
// opened in a new tab or with a modifier key still goes to the server, which answers the page.
document.addEventListener("click", (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a[href]");
  if (!link || link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/ui/") || url.pathname === "/docs") return;
  if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
  event.preventDefault();
  navigate(url);
});

window.addEventListener("popstate", () => show(new URL(location.href)));
renderTokenBox();
renderProjectPicker();
// A server that protects reads lists its projects only once the token is given.
window.addEventListener("specmem:token", renderProjectPicker);
show(new URL(location.href));
