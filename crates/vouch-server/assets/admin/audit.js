// The audit log: failed verifications with their diagnosis, secret changes, reveals,
// exposures, settings changes, erased users and revoked sessions, with the admin token
// that acted; filtered by kind, user id and time range, the filters kept in the URL.

import { Api, TokenApi } from "./api.js";
import { h, mount, time, icon, richText } from "./dom.js";
import { button, card, pageHeader, table, idText, errorBox } from "./widgets.js";
import { go, links } from "./router.js";

/** Every kind an environment's log can hold, in the order the filter lists them. */
const KINDS = {
  "identity.rejected": ["Rejected identify", "danger"],
  "client.throttled": ["Client throttled", "warning"],
  "secret.created": ["Secret created", "success"],
  "secret.rotated": ["Secret rotated", "success"],
  "secret.imported": ["Secret imported", "success"],
  "secret.revealed": ["Secret revealed", "info"],
  "secret.revoked": ["Secret revoked", "danger"],
  "secret.exposed": ["Secret exposed", "danger"],
  "environment.updated": ["Settings changed", "neutral"],
  "sessions.revoked": ["Sessions revoked", "warning"],
  "user.deleted": ["User deleted", "warning"],
  "webhook.enabled": ["Webhook enabled", "success"],
  "webhook.disabled": ["Webhook disabled", "danger"],
  "webhook.deleted": ["Webhook deleted", "neutral"],
};

const FILTERS = ["kind", "user_id", "since", "until"];

const pad = (n) => String(n).padStart(2, "0");

/** A datetime-local value (the browser's time zone) as RFC 3339 UTC; "" when empty or invalid. */
export function localToUtc(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** An RFC 3339 time as a datetime-local value in the browser's time zone; "" when invalid. */
export function utcToLocal(iso) {
  const d = new Date(iso || "");
  if (Number.isNaN(d.getTime())) return "";
  const base = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return d.getSeconds() ? `${base}:${pad(d.getSeconds())}` : base;
}

function kindBadge(kind) {
  const [label, tone] = KINDS[kind] || [kind, "neutral"];
  return h("span", { class: `badge badge-${tone}`, "data-kind": kind, title: kind }, label);
}

function settingsSummary(d) {
  const parts = [];
  if (d.enforcement) parts.push(`enforcement ${d.enforcement === "enforce" ? "on" : "off"}`);
  if (d.allow_anonymous !== undefined) parts.push(`anonymous ${d.allow_anonymous ? "allowed" : "refused"}`);
  if (Array.isArray(d.allowed_origins)) parts.push(d.allowed_origins.length ? `origins ${d.allowed_origins.join(", ")}` : "any origin");
  if (d.unsigned_session_limit !== undefined) parts.push(d.unsigned_session_limit === null ? "no unsigned cap" : `unsigned cap ${d.unsigned_session_limit}`);
  return parts.join(" · ");
}

function details(a) {
  const d = a.detail || {};
  if (a.kind === "identity.rejected") {
    return h("div", { class: "audit-detail" },
      h("div", {}, d.code ? h("code", { class: "code-tag" }, d.code) : null, " ", richText(d.message || "")),
      d.diagnosis ? h("div", { class: "diagnosis", "data-diagnosis": "" }, icon("search", "icon icon-xs"), h("span", {}, "Likely cause: "), h("strong", {}, richText(d.diagnosis))) : null);
  }
  if (a.kind === "environment.updated") return h("span", {}, settingsSummary(d));
  if (a.kind === "secret.rotated" && d.others_expire_at) {
    return h("span", {}, "New secret; the others expire ", time(d.others_expire_at));
  }
  if (a.kind === "secret.created" && !d.message) return h("span", {}, "New identity secret created by an admin.");
  if (a.kind === "secret.imported" && !d.message) return h("span", {}, "Secret imported from another system by an admin.");
  if (d.diagnosis) return h("span", {}, richText(d.diagnosis));
  if (d.message) return h("span", {}, richText(d.message));
  const keys = Object.keys(d);
  return keys.length ? h("code", { class: "small" }, JSON.stringify(d)) : h("span", { class: "muted" }, "—");
}

function subject(env, a) {
  return h("div", { class: "subject" },
    a.user_id ? h("a", { href: links.user(env.id, a.user_id), class: "mono-ish" }, idText(a.user_id)) : null,
    a.key_id ? h("code", { class: "small" }, a.key_id) : null,
    !a.user_id && !a.key_id ? h("span", { class: "muted" }, "—") : null);
}

/** The acting admin token: its name when this token may list them, its id always. */
function actorCell(a, tokenNames) {
  if (!a.actor) {
    return h("span", { class: "muted", "data-actor": "", title: "No admin token: a widget call or Vouch itself" }, "Vouch");
  }
  const name = tokenNames?.get(a.actor);
  return h("span", { class: "subject", "data-actor": a.actor },
    name ? h("span", { class: "actor-name" }, name) : null,
    h("code", { class: "small" }, idText(a.actor)));
}

function filterForm(env, filters) {
  const kind = h("select", { class: "input", id: "audit-kind", name: "kind" },
    h("option", { value: "" }, "Any kind"),
    Object.entries(KINDS).map(([k, [label]]) => h("option", { value: k }, `${label} (${k})`)),
    // A shared link may name a kind this page does not know yet.
    filters.kind && !KINDS[filters.kind] ? h("option", { value: filters.kind }, filters.kind) : null);
  kind.value = filters.kind;
  const user = h("input", { class: "input", id: "audit-user", name: "user_id", autocomplete: "off", spellcheck: "false", placeholder: "Exactly as identified" });
  user.value = filters.user_id;
  const timeInput = (id, iso) => {
    const input = h("input", { class: "input", id, type: "datetime-local" });
    input.value = utcToLocal(iso);
    // A shared link may carry seconds; let the field show them.
    if (input.value.length > 16) input.step = "1";
    return input;
  };
  const since = timeInput("audit-since", filters.since);
  const until = timeInput("audit-until", filters.until);
  const err = h("div", { class: "filter-error", "aria-live": "polite" });
  const active = FILTERS.some((f) => filters[f]);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const field = (label, input, hint) => h("div", { class: "filter" },
    h("label", { class: "label", for: input.id }, label), input, hint ? h("span", { class: "hint" }, hint) : null);
  return h("form", { class: "filters", "aria-label": "Filter the audit log", onsubmit: (ev) => {
    ev.preventDefault();
    const next = { kind: kind.value, user_id: user.value, since: localToUtc(since.value), until: localToUtc(until.value) };
    if (next.since && next.until && next.since >= next.until) {
      mount(err, h("p", { class: "alert alert-warning" }, icon("alert"), "“From” must be before “Until”: no entry can match this range."));
      since.setAttribute("aria-invalid", "true");
      return;
    }
    go(auditHref(env, next));
  } },
  h("div", { class: "filter-fields" },
    field("Kind", kind),
    field("User id", user),
    field("From", since, `Included · ${zone}`),
    field("Until", until, `Not included · ${zone}`)),
  h("div", { class: "filter-actions" },
    h("button", { type: "submit", class: "btn btn-secondary", "data-action": "apply-filters" }, icon("search"), "Apply filters"),
    active ? h("a", { class: "btn btn-ghost", href: links.audit(env.id), "data-action": "clear-filters" }, icon("x"), "Clear filters") : null),
  err);
}

/** The audit page's URL for `filters`, at the page `cursor` with its `trail` of newer cursors. */
function auditHref(env, filters, cursor = "", trail = []) {
  const q = new URLSearchParams();
  for (const f of FILTERS) if (filters[f]) q.set(f, filters[f]);
  if (cursor) q.set("cursor", cursor);
  if (trail.length) q.set("trail", trail.join(","));
  return links.audit(env.id, q.toString());
}

export async function renderAudit(ctx) {
  const { env, query, container, stillCurrent } = ctx;
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || ""]));
  const cursor = query.get("cursor") || "";
  const trail = (query.get("trail") || "").split(",").filter(Boolean);
  const [page, tokens] = await Promise.all([
    Api.audit(env.id, { ...filters, cursor }).catch((e) => e),
    // Names for the actor column; a token that may not list admin tokens sees ids only.
    TokenApi.list().catch(() => null),
  ]);
  if (!stillCurrent()) return;
  const tokenNames = tokens ? new Map(tokens.data.map((t) => [t.id, t.name])) : null;
  const filtered = FILTERS.some((f) => filters[f]);
  const head = pageHeader("Audit log", "Failed verifications with a diagnosis of the likely mistake, every change to keys and settings, and who made it.", null, env.name);
  if (page instanceof Error) {
    mount(container, head, card(null, {}, filterForm(env, filters), h("div", { class: "card-body" }, errorBox(page))));
    return;
  }
  const rejected = page.data.filter((a) => a.kind === "identity.rejected").length;
  const rows = table([
    { label: "When", render: (a) => time(a.created_at) },
    { label: "Event", render: (a) => kindBadge(a.kind) },
    { label: "User / key", render: (a) => subject(env, a) },
    { label: "Actor", render: (a) => actorCell(a, tokenNames) },
    { label: "Details", cls: "wide", render: details },
  ], page.data, {
    label: "Audit log",
    empty: filtered ? "No entry matches these filters." : "Nothing recorded yet.",
    rowAttrs: (a) => ({ "data-audit-kind": a.kind, "data-audit-id": a.id }),
  });
  mount(container,
    head,
    rejected ? h("div", { class: "alert alert-warning" }, icon("alert"),
      h("div", {}, `${rejected} rejected identif${rejected === 1 ? "y" : "ies"} on this page. `,
        "Each one lists the likely mistake, e.g. a secret from another environment, or the email signed instead of the id.")) : null,
    card(null, { cls: "card-flush" }, filterForm(env, filters), rows,
      h("div", { class: "pager" },
        button("Newer", { size: "sm", "data-page": "newer", disabled: !cursor, onclick: () => go(auditHref(env, filters, trail[trail.length - 1] || "", trail.slice(0, -1))) }, "chevronLeft"),
        button("Older", { size: "sm", "data-page": "older", disabled: !page.next_cursor, onclick: () => go(auditHref(env, filters, page.next_cursor, cursor ? [...trail, cursor] : trail)) }, "chevronRight"))));
}
