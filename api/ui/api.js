// The query API client: the key (sessionStorage), path encoding, errors by status.

const KEY_STORAGE = "lineagehouse.apiKey";

export const auth = {
  mode: "unknown", // "off" (the API needs no key), "on", or "unknown" until probed
  get key() {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  },
};

export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.status = status;
    this.path = path;
  }
}

// Listeners told when the API answers 401 (the key is missing, wrong or revoked).
const unauthorizedListeners = [];
export function onUnauthorized(fn) {
  unauthorizedListeners.push(fn);
}

// Build "/api/v2/<segments...>?query": every segment percent-encoded on its own, as
// namespaces and names hold "/" and ":".
export function path(segments, query) {
  const encoded = segments.map((seg) => encodeURIComponent(seg)).join("/");
  let url = "/api/v2/" + encoded;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      if (Array.isArray(v)) v.forEach((item) => params.append(k, item));
      else params.set(k, String(v));
    }
    const text = params.toString();
    if (text) url += "?" + text;
  }
  return url;
}

export async function request(url, opts) {
  const options = opts || {};
  const headers = { Accept: "application/json" };
  const key = options.key !== undefined ? options.key : auth.key;
  if (key) headers.Authorization = "Bearer " + key;
  let response;
  try {
    response = await fetch(url, { method: options.method || "GET", headers });
  } catch (err) {
    throw new ApiError(0, "The API did not answer: " + err.message, url);
  }
  let body = null;
  const text = await response.text();
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: text };
  }
  if (!response.ok) {
    const detail = (body && (body.error || body.message || body.detail)) || response.statusText;
    const error = new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail), url);
    if (response.status === 401 && !options.probe) unauthorizedListeners.forEach((fn) => fn(error));
    throw error;
  }
  return body;
}

export function get(segments, query, opts) {
  return request(path(segments, query), opts);
}

// Is auth off? Ask a read route without a key: 200 means no key is needed.
export async function probeAuth() {
  try {
    await request(path(["namespaces"], { limit: 1 }), { key: "", probe: true });
    auth.mode = "off";
  } catch (err) {
    if (err.status === 401 || err.status === 403) auth.mode = "on";
    else throw err;
  }
  return auth.mode;
}

// Check a key: resolves, or rejects with a message a person can act on.
export async function checkKey(key) {
  try {
    await request(path(["namespaces"], { limit: 1 }), { key, probe: true });
  } catch (err) {
    if (err.status === 401) throw new Error("This key was not accepted (wrong, revoked or expired): " + err.message);
    if (err.status === 403) throw new Error("This key may not read lineage (it needs the read role): " + err.message);
    throw err;
  }
}

// Every page of a list route (up to `max` items).
export async function getAll(segments, query, max) {
  const limitTotal = max || 5000;
  const items = [];
  let offset = 0;
  for (;;) {
    const page = await get(segments, { ...(query || {}), limit: 1000, offset });
    items.push(...page.items);
    offset += page.items.length;
    if (!page.items.length || offset >= page.total || items.length >= limitTotal) return items;
  }
}

// A human sentence for an error a page could not recover from.
export function explain(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 404) return "Not found, or not readable with this key: " + err.message;
  if (err.status === 403) return "This key may not read this: " + err.message;
  if (err.status === 401) return "Log in again: " + err.message;
  if (err.status === 503) return "The API is starting or ClickHouse is unavailable: " + err.message;
  if (err.status === 0) return err.message;
  return `Error ${err.status}: ${err.message}`;
}
