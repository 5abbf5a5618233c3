// The users table (filter, cursor pagination) and one user's detail.

import { Api } from "./api.js";
import { h, mount, icon, time } from "./dom.js";
import { badge, button, card, pageHeader, table, verifiedBadge, kv, idText, wrappedId } from "./widgets.js";
import { go, links } from "./router.js";

const FILTERS = [["", "All"], ["true", "Verified"], ["false", "Unverified"]];
const PAGE = 25;

function attrText(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export async function renderUsers(ctx) {
  const { env, query, container, stillCurrent } = ctx;
  const verified = query.get("verified") || "";
  const cursor = query.get("cursor") || "";
  // Earlier cursors, so "Previous" can go back (the API pages forward only).
  const trail = (query.get("trail") || "").split(",").filter(Boolean).map(decodeURIComponent);
  const page = await Api.users(env.id, { verified, cursor, limit: PAGE });
  if (!stillCurrent()) return;

  const qs = (params) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
    return q.toString();
  };

  const filter = h("div", { class: "segmented", role: "group", "aria-label": "Filter users" },
    FILTERS.map(([v, label]) => h("a", {
      href: links.users(env.id, qs({ verified: v })),
      class: `seg ${verified === v ? "active" : ""}`,
      "aria-current": verified === v ? "true" : undefined,
      "data-filter": v || "all",
    }, label)));

  const rows = table([
    { label: "User", render: (u) => h("a", { href: links.user(env.id, u.id), class: "strong-link mono-ish" }, idText(u.id)) },
    { label: "Identity", render: verifiedBadge },
    { label: "Name", render: (u) => attrText(u.attributes.name) },
    { label: "Email", render: (u) => idText(attrText(u.attributes.email), { class: "cell-email" }) },
    { label: "Companies", cls: "num optional", render: (u) => String(u.companies.length) },
    { label: "Verified", cls: "optional", render: (u) => (u.verified_at ? time(u.verified_at, { short: true }) : h("span", { class: "muted" }, "never")) },
    { label: "Last seen", render: (u) => time(u.updated_at, { short: true }) },
  ], page.data, {
    label: "Users",
    empty: verified === "false" ? "No unverified users. Every identify carried a valid proof." : "No users yet.",
    rowAttrs: (u) => ({ class: `row-link ${u.verified ? "" : "row-unverified"}`, "data-user": u.id, onclick: (ev) => {
      if (!ev.target.closest("a,button")) go(links.user(env.id, u.id));
    } }),
  });

  const prevTrail = trail.slice(0, -1);
  const prev = button("Previous", {
    size: "sm",
    disabled: !cursor,
    "data-page": "prev",
    onclick: () => go(links.users(env.id, qs({ verified, cursor: trail[trail.length - 1] || "", trail: prevTrail.map(encodeURIComponent).join(",") }))),
  }, "chevronLeft");
  const next = button("Next", {
    size: "sm",
    disabled: !page.next_cursor,
    "data-page": "next",
    onclick: () => go(links.users(env.id, qs({ verified, cursor: page.next_cursor, trail: (cursor ? [...trail, cursor] : trail).map(encodeURIComponent).join(",") }))),
  }, "chevronRight");
  const pageNo = trail.length + (cursor ? 1 : 0) + 1;

  mount(container,
    pageHeader("Users", "Everyone who identified in this environment. Unverified users had no proof of identity: treat their attributes as untrusted.", null, env.name),
    card(null, { cls: "card-flush" },
      h("div", { class: "toolbar" }, filter,
        h("span", { class: "muted small" }, `Page ${pageNo} · ${page.data.length} user${page.data.length === 1 ? "" : "s"}`)),
      rows,
      h("div", { class: "pager" }, prev, next)));
}

export async function renderUser(ctx, userId) {
  const { env, container, stillCurrent } = ctx;
  const [user, events] = await Promise.all([Api.user(env.id, userId), Api.events(env.id, userId, 20)]);
  if (!stillCurrent()) return;

  const verifiedKeys = new Set(Object.keys(user.verified_attributes || {}));
  const allKeys = [...new Set([...Object.keys(user.attributes || {}), ...verifiedKeys])].sort();
  const attrs = table([
    { label: "Attribute", render: (k) => h("code", {}, k) },
    { label: "Value", render: (k) => attrText(k in user.verified_attributes ? user.verified_attributes[k] : user.attributes[k]) },
    { label: "", cls: "actions", render: (k) => (verifiedKeys.has(k)
      ? h("span", { class: "badge badge-success", "data-attr-verified": k, title: "Proven by an attributes signature or identity token; locked against unproven updates" }, icon("lock", "icon icon-xs"), "Verified")
      : badge("Unverified", "neutral")) },
  ], allKeys, { empty: "No attributes.", label: "Attributes" });

  const companies = table([
    { label: "Company", render: (c) => h("code", {}, idText(c.id)) },
    { label: "Name", render: (c) => attrText(c.attributes.name) },
    { label: "Identity", render: (c) => (c.verified ? badge("Verified", "success", "check") : badge("Unverified", "warning", "alert")) },
    { label: "Since", render: (c) => time(c.created_at) },
  ], user.companies, { empty: "Not in any company.", label: "Companies" });

  const evs = table([
    { label: "Event", render: (e) => h("code", {}, e.event) },
    { label: "Properties", render: (e) => {
      const keys = Object.keys(e.properties || {});
      return keys.length ? h("span", { class: "props" }, keys.slice(0, 4).map((k) => h("span", { class: "prop" }, `${k}: ${attrText(e.properties[k])}`))) : h("span", { class: "muted" }, "—");
    } },
    { label: "When", render: (e) => time(e.created_at) },
  ], events.data, { empty: "No events tracked for this user.", label: "Recent events" });

  const verification = user.verified
    ? kv([
      ["Status", verifiedBadge(user)],
      ["Proven by", user.verified_by === "token" ? "Identity token (JWT signed with the identity secret)" : "Signature (HMAC-SHA256 of the user id)"],
      ["Key", h("code", { "data-field": "key_id" }, user.key_id || "—")],
      ["Verified at", time(user.verified_at)],
      ["First seen", time(user.created_at)],
      ["Last updated", time(user.updated_at)],
    ])
    : h("div", {},
      h("div", { class: "alert alert-warning" }, icon("alert"),
        h("div", {}, h("strong", {}, "Unverified. "),
          "This user identified without a proof, so anyone who knows the id could have sent these calls. Sign the user id on your backend and pass the signature to identify.")),
      kv([["First seen", time(user.created_at)], ["Last updated", time(user.updated_at)]]));

  mount(container,
    pageHeader(wrappedId(user.id), null, verifiedBadge(user), "User"),
    h("div", { class: "grid-2 grid-user" },
      card("How this identity was verified", {}, verification),
      card("Attributes", { subtitle: `${verifiedKeys.size} verified of ${allKeys.length}` }, attrs)),
    card("Companies", {}, companies),
    card("Recent events", { subtitle: "The 20 most recent" }, evs));
}
