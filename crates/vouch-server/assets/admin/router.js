// The admin console's routes: every page has a hash URL (`#/env/{id}/users/{uid}`), built
// by `links` and parsed by `parseHash`. Page modules import this, never app.js.

const enc = encodeURIComponent;

/** Hash URLs of every page. */
export const links = {
  environments: () => "#/environments",
  adminTokens: () => "#/admin-tokens",
  identity: (env) => `#/env/${enc(env)}`,
  /** The identity page with the "create a secret" dialog open. */
  createSecret: (env) => `#/env/${enc(env)}?new-secret=1`,
  users: (env, q) => `#/env/${enc(env)}/users${q ? `?${q}` : ""}`,
  user: (env, uid) => `#/env/${enc(env)}/users/${enc(uid)}`,
  audit: (env, q) => `#/env/${enc(env)}/audit${q ? `?${q}` : ""}`,
  webhooks: (env) => `#/env/${enc(env)}/webhooks`,
};

/** `#/env/{id}/users/{uid}?verified=true` as `{parts: ["env", id, "users", uid], query}`. */
export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, "") || "/environments";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

let onRoute = () => {};

/** Registers the function that renders the current hash (app.js does, once). */
export function setRouteHandler(fn) {
  onRoute = fn;
  window.addEventListener("hashchange", () => onRoute());
}

/** Navigates to `hash`; the same hash renders again. */
export function go(hash) {
  if (location.hash === hash) onRoute();
  else location.hash = hash;
}

let notice = null;

/** Navigates to `hash`, where the page shows `message` once (it calls `takeNotice`). */
export function goWithNotice(hash, message) {
  notice = { hash, message };
  go(hash);
}

/** The message `goWithNotice` left for the current page, once; null when there is none. */
export function takeNotice() {
  const n = notice;
  notice = null;
  return n && n.hash === location.hash ? n.message : null;
}

/** Drops the query of the current hash without rendering again (a one-shot action was taken). */
export function dropQuery() {
  const bare = location.hash.split("?")[0];
  if (bare !== location.hash) history.replaceState(null, "", bare || "#/environments");
}
