// The audit log: failed verifications with their diagnosis, secret changes,
// reveals, exposures, settings changes.

import { Api } from "./api.js";
import { h, mount, time, icon, richText } from "./dom.js";
import { badge, button, card, pageHeader, table, idText } from "./widgets.js";
import { go, links } from "./router.js";

const KINDS = {
  "identity.rejected": ["Rejected identify", "danger"],
  "secret.exposed": ["Secret exposed", "danger"],
  "secret.revoked": ["Secret revoked", "danger"],
  "secret.revealed": ["Secret revealed", "info"],
  "secret.created": ["Secret created", "success"],
  "secret.rotated": ["Secret rotated", "success"],
  "secret.imported": ["Secret imported", "success"],
  "environment.updated": ["Settings changed", "neutral"],
};

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

export async function renderAudit(ctx) {
  const { env, query, container, stillCurrent } = ctx;
  const cursor = query.get("cursor") || "";
  const trail = (query.get("trail") || "").split(",").filter(Boolean);
  const page = await Api.audit(env.id, cursor);
  if (!stillCurrent()) return;
  const rejected = page.data.filter((a) => a.kind === "identity.rejected").length;
  const href = (c, t) => {
    const q = new URLSearchParams();
    if (c) q.set("cursor", c);
    if (t.length) q.set("trail", t.join(","));
    const s = q.toString();
    return `${links.audit(env.id)}${s ? `?${s}` : ""}`;
  };
  const rows = table([
    { label: "When", render: (a) => time(a.created_at) },
    { label: "Event", render: (a) => kindBadge(a.kind) },
    { label: "User / key", render: (a) => subject(env, a) },
    { label: "Details", cls: "wide", render: details },
  ], page.data, { label: "Audit log", empty: "Nothing recorded yet.", rowAttrs: (a) => ({ "data-audit-kind": a.kind }) });
  mount(container,
    pageHeader("Audit log", "Failed verifications with a diagnosis of the likely mistake, and every change to keys and settings.", null, env.name),
    rejected ? h("div", { class: "alert alert-warning" }, icon("alert"),
      h("div", {}, `${rejected} rejected identif${rejected === 1 ? "y" : "ies"} on this page. `,
        "Each one lists the likely mistake, e.g. a secret from another environment, or the email signed instead of the id.")) : null,
    card(null, { cls: "card-flush" }, rows,
      h("div", { class: "pager" },
        button("Newer", { size: "sm", disabled: !cursor, onclick: () => go(href(trail[trail.length - 1] || "", trail.slice(0, -1))) }, "chevronLeft"),
        button("Older", { size: "sm", disabled: !page.next_cursor, onclick: () => go(href(page.next_cursor, cursor ? [...trail, cursor] : trail)) }, "chevronRight"))));
}
