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

export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const sent = { Accept: "application/json", ...headers };
  const bearer = token.get();
  if (bearer) sent.Authorization = `Bearer ${bearer}`;
  let payload;
  if (body !== undefined) {
    sent["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers: sent, body: payload, signal, cache: "no-store" });
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

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      if (item !== undefined && item !== null && item !== "") search.append(key, item);
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
