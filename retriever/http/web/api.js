// The one way the page talks to the server: the same JSON API every other client uses, with the
// token (when the user gave one) as a bearer header. The token lives in sessionStorage, so it
// goes when the tab closes, and it is never put in a URL.

const TOKEN_KEY = "specmem.token";

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => (value ? sessionStorage.setItem(TOKEN_KEY, value) : sessionStorage.removeItem(TOKEN_KEY)),
};

// On a server of several projects the page's URL names the one it shows (`?project=web`); every
// request that names none of its own is asked in that project. No project: across all of them.
export function currentProject() {
  return new URLSearchParams(location.search).get("project") || "";
}

function inProject(path, project) {
  if (!project || /[?&]project=/.test(path)) return path;
  return `${path}${path.includes("?") ? "&" : "?"}project=${encodeURIComponent(project)}`;
}

export async function api(path, { method = "GET", body, headers = {}, signal, project = currentProject() } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const bearer = token.get();
  if (bearer) sent.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(inProject(path, project), { method, headers: sent, body: payload, signal, cache: "no-store" });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.message || text || response.statusText, data);
  }
  return data;
}

// A query string for a page or API URL; it keeps the page's project unless it names its own.
export function query(params) {
  const search = new URLSearchParams();
  const all = "project" in params ? params : { ...params, project: currentProject() };
  for (const [key, value] of Object.entries(all)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") search.append(key, item);
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
