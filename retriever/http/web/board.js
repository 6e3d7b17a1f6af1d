// Specs by status. With the token, a card's status changes through PATCH /specs/{id} with
// If-Match: the hash the board read, the same route as any orchestrator's callback. A spec that
// changed since the board loaded answers 412; the card shows the conflict and nothing is written.

import { api, ApiError, token } from "./api.js";
import { h, notice, projectBadge, qualified, setTitle, specLink, statusBadge, STATUSES } from "./dom.js";

const ALWAYS = ["planned", "in-progress", "complete"];

export async function render(main, url, ctx) {
  setTitle("Board");
  const withArchived = url.searchParams.get("archived") === "1";
  const filter = h("input", { id: "board-filter", type: "search", placeholder: "id, title or tag", autocomplete: "off" });
  const live = h("p", { id: "board-status", class: "muted", "aria-live": "polite" });
  const columns = h("div", { class: "board" });
  main.append(
    h(
      "div",
      { class: "board-head" },
      h("h1", {}, "Board"),
      h("label", { for: "board-filter" }, "Filter"),
      filter,
      h("a", { href: withArchived ? "/board" : "/board?archived=1" }, withArchived ? "Hide archived" : "Show archived"),
    ),
    live,
    columns,
  );

  let specs;
  try {
    specs = (await api(`/specs?limit=500${withArchived ? "&archived=true" : ""}`)).specs;
  } catch (error) {
    live.replaceChildren(notice("error", h("strong", {}, "Could not list specs: "), error.message));
    return;
  }
  if (!ctx.isCurrent()) return;
  const present = new Set(specs.map((s) => s.status || "no status"));
  const statuses = [...STATUSES.filter((s) => ALWAYS.includes(s) || present.has(s) || (s === "archived" && withArchived)), ...[...present].filter((s) => !STATUSES.includes(s)).sort()];
  const choices = [...new Set([...statuses.filter((s) => s !== "no status"), "archived"])];
  const lists = new Map();
  for (const status of statuses) {
    const list = h("ul", { class: "cards", "aria-labelledby": `col-${status}` });
    lists.set(status, list);
    columns.append(h("section", { class: `column column-${status}`, dataset: { status } }, h("h2", { id: `col-${status}` }, statusBadge(status), h("span", { class: "count" }, "")), list));
  }
  for (const spec of specs) lists.get(spec.status || "no status").append(card(spec));
  recount();
  live.textContent = token.get() ? "Change a card's status to write it." : "Read only: enter the API token above to change statuses.";

  function recount() {
    for (const [status, list] of lists) {
      const visible = [...list.children].filter((c) => !c.hidden).length;
      columns.querySelector(`#col-${CSS.escape(status)} .count`).textContent = ` ${visible}`;
    }
  }

  function card(spec) {
    // Across projects two cards may share a dir name: the qualified name tells them apart.
    const name = qualified(spec.spec, spec.project);
    const choice = h(
      "select",
      { id: `status-${name}`, disabled: !token.get(), title: token.get() ? null : "Enter the API token to change the status" },
      choices.map((s) => h("option", { value: s, selected: s === spec.status }, s)),
    );
    const problem = h("div", { class: "card-problem" });
    const item = h(
      "li",
      { class: "card", dataset: { spec: name, hash: spec.hash, search: `${name} ${spec.title} ${(spec.tags || []).join(" ")}`.toLowerCase() } },
      h("div", { class: "card-title" }, specLink(spec.spec, `${String(spec.number).padStart(3, "0")} ${spec.title}`, spec.project), " ", projectBadge(spec.project)),
      h("div", { class: "card-meta" }, spec.priority ? h("span", { class: "badge" }, spec.priority) : null, (spec.tags || []).slice(0, 3).map((t) => h("span", { class: "tag" }, t))),
      h("label", { for: `status-${name}`, class: "small" }, "Status "),
      choice,
      problem,
    );
    choice.addEventListener("change", async () => {
      const wanted = choice.value;
      choice.disabled = true;
      problem.replaceChildren();
      try {
        const written = await api(`/specs/${encodeURIComponent(name)}`, {
          method: "PATCH",
          body: { status: wanted },
          headers: { "If-Match": item.dataset.hash, "Idempotency-Key": crypto.randomUUID() },
        });
        item.dataset.hash = written.hash;
        spec.status = written.status;
        const list = lists.get(written.status);
        if (list) list.prepend(item);
        live.textContent = `${name} is now ${written.status}.`;
        recount();
      } catch (error) {
        choice.value = spec.status;
        if (error instanceof ApiError && error.status === 412) {
          item.classList.add("conflict");
          problem.replaceChildren(
            notice(
              "error",
              h("strong", {}, "Conflict: "),
              `${name} changed since this board was loaded (now ${error.body?.error?.current_hash || "another version"}). Nothing was written. `,
              h("button", { type: "button", class: "link", onclick: () => ctx.navigate(location.pathname + location.search, { replace: true }) }, "Reload the board"),
            ),
          );
          live.textContent = `Conflict on ${name}: not written.`;
        } else {
          problem.replaceChildren(notice("error", error.message));
        }
      } finally {
        choice.disabled = !token.get();
      }
    });
    return item;
  }

  filter.addEventListener("input", () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const item of columns.querySelectorAll(".card")) item.hidden = !words.every((w) => item.dataset.search.includes(w));
    recount();
  });
  const onToken = () => ctx.navigate(location.pathname + location.search, { replace: true });
  window.addEventListener("specmem:token", onToken);
  return () => window.removeEventListener("specmem:token", onToken);
}
