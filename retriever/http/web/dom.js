// Building DOM from data without innerHTML: text from specs and queries is always text here.
// The one exception is a spec's body, which the server renders with raw HTML off (spec 089).

import { currentProject } from "./api.js";

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// Every status specmem reads, in the order of a board's lanes; their colours are `--status-*`
// in style.css, the one place badges, swatches and the graph take them from.
export const STATUSES = ["draft", "planned", "in-progress", "blocked", "complete", "cancelled", "archived"];

export function statusColour(status) {
  const css = getComputedStyle(document.documentElement);
  return css.getPropertyValue(`--status-${cssName(status)}`).trim() || css.getPropertyValue("--status-none").trim();
}

export function cssName(text) {
  return String(text || "none").toLowerCase().replace(/[^a-z0-9]+/g, "-");
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${cssName(status)}` }, status || "no status");
}

export function qualified(spec, project) {
  return project && !String(spec).includes(":") ? `${project}:${spec}` : String(spec);
}

export function specHref(spec, project) {
  return `/spec/${encodeURIComponent(qualified(spec, project))}`;
}

export function specLink(spec, text, project) {
  return h("a", { href: specHref(spec, project) }, text ?? spec);
}

// Only across projects does a hit need to say whose it is.
export function projectBadge(project) {
  return project && !currentProject() ? h("span", { class: "badge badge-project", title: "Project" }, project) : null;
}

export function notice(kind, ...children) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, ...children);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function setTitle(text) {
  document.title = text ? `${text} · specmem` : "specmem";
}

export function formatNumber(n) {
  return typeof n === "number" ? n.toLocaleString("en-US") : String(n ?? "");
}

export function lines(source) {
  if (!source) return "";
  const [a, b] = source.lines || [];
  return a ? `${source.path || source.file}:${a}${b && b !== a ? `–${b}` : ""}` : source.path || source.file || "";
}
