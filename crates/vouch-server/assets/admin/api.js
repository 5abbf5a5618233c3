// The admin API client, and every endpoint the console calls: the session cookie
// authenticates, and every write echoes the CSRF cookie in the X-CSRF-Token header.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Set once the page is on its way to the sign-in page. */
let leaving = false;

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === "vouch_csrf") return v.join("=");
  }
  return "";
}

export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["x-csrf-token"] = csrfToken();
  if (body !== undefined) headers["content-type"] = "application/json";
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network_error", `Vouch could not be reached (${e.message}).`);
  }
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    /* a non-JSON answer is reported below */
  }
  if (!resp.ok) {
    const err = data?.error || { code: `http_${resp.status}`, message: resp.statusText };
    // The sign-in expired or was revoked: back to the sign-in page, once (a page's
    // parallel calls all fail; a second navigation would abort the first).
    if (resp.status === 401 && err.code === "invalid_admin_token" && !/CSRF/i.test(err.message) && !leaving) {
      leaving = true;
      location.assign("/admin/login");
    }
    throw new ApiError(resp.status, err.code, err.message);
  }
  return data;
}

const enc = encodeURIComponent;

export const envPath = (env) => `/admin/v1/environments/${enc(env)}`;

/** `?a=1&b=2` of the parameters that are set (empty strings, null and undefined are left out). */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const Api = {
  environments: () => api("GET", "/admin/v1/environments"),
  createEnvironment: (body) => api("POST", "/admin/v1/environments", body),
  environment: (env) => api("GET", envPath(env)),
  updateEnvironment: (env, patch) => api("PATCH", envPath(env), patch),
  secrets: (env) => api("GET", `${envPath(env)}/secrets`),
  secretHints: (env) => api("GET", `/admin/ui/environments/${enc(env)}/secret-hints`),
  revealSecret: (env, id) => api("GET", `${envPath(env)}/secrets/${enc(id)}?reveal=true`),
  createSecret: (env, body) => api("POST", `${envPath(env)}/secrets`, body),
  revokeSecret: (env, id) => api("DELETE", `${envPath(env)}/secrets/${enc(id)}`),
  stats: (env) => api("GET", `${envPath(env)}/stats`),
  users: (env, { verified, search, cursor, limit } = {}) =>
    api("GET", `${envPath(env)}/users${query({ verified, search, cursor, limit })}`),
  user: (env, id) => api("GET", `${envPath(env)}/users/${enc(id)}`),
  deleteUser: (env, id) => api("DELETE", `${envPath(env)}/users/${enc(id)}`),
  events: (env, userId, limit = 20) => api("GET", `${envPath(env)}/events?user_id=${enc(userId)}&limit=${limit}`),
  /** `filters`: `{kind, user_id, since, until}` (RFC 3339), any of them empty for "any". */
  audit: (env, { cursor, ...filters } = {}) => api("GET", `${envPath(env)}/audit${query({ ...filters, cursor })}`),
  revokeSessions: (env) => api("POST", `${envPath(env)}/sessions/revoke`),
  diagnose: (env, body) => api("POST", `${envPath(env)}/diagnose`, body),
  logout: () => api("POST", "/admin/logout"),
};

/** Admin tokens: these need a token with the admin role and every environment. */
export const TokenApi = {
  list: () => api("GET", "/admin/v1/admin-tokens"),
  create: (body) => api("POST", "/admin/v1/admin-tokens", body),
  remove: (id) => api("DELETE", `/admin/v1/admin-tokens/${enc(id)}`),
};

const hooks = (env) => `${envPath(env)}/webhooks`;
const hook = (env, id) => `${hooks(env)}/${enc(id)}`;

/** Webhook endpoints of an environment and their delivery log. */
export const WebhookApi = {
  list: (env) => api("GET", hooks(env)),
  create: (env, body) => api("POST", hooks(env), body),
  remove: (env, id) => api("DELETE", hook(env, id)),
  deliveries: (env, id, cursor) => api("GET", `${hook(env, id)}/deliveries?limit=20${cursor ? `&cursor=${enc(cursor)}` : ""}`),
  enable: (env, id) => api("POST", `${hook(env, id)}/enable`),
  replay: (env, id) => api("POST", `${hook(env, id)}/replay`),
  rotate: (env, id) => api("POST", `${hook(env, id)}/rotate-secret`, {}),
  /** The event types an endpoint can subscribe to: `{data: [{type, description}]}`. */
  eventTypes: () => api("GET", "/admin/v1/webhook-event-types"),
};
