// The users table (search by id prefix, filter, cursor pagination) and one user's detail,
// where a user can be erased.

import { Api } from "./api.js";
import { h, mount, icon, time } from "./dom.js";
import {
  badge, button, card, pageHeader, table, verifiedBadge, kv, idText, wrappedId, confirmDialog, errorBox, toast,
} from "./widgets.js";
import { go, goWithNotice, links, takeNotice } from "./router.js";

const FILTERS = [["", "All"], ["true", "Verified"], ["false", "Unverified"]];
const PAGE = 25;

function attrText(v) {
  if (v === null || v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** The users list's query string: only the parameters that are set. */
function qs(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

/** How long the search waits after the last key press before it asks the server. */
const SEARCH_DELAY_MS = 250;

export async function renderUsers(ctx) {
  const { env, query, container, stillCurrent } = ctx;
  const verified = query.get("verified") || "";
  const notice = takeNotice();
  const results = h("div", { class: "users-results" });
  const filterSlot = h("div", { class: "filter-slot" });
  const infoSlot = h("span", { class: "muted small toolbar-end", "data-page-info": "" });
  const search = h("input", {
    class: "input", type: "search", id: "user-search", autocomplete: "off", spellcheck: "false",
    placeholder: "User id starts with…", "aria-describedby": "user-search-hint",
  });
  search.value = query.get("search") || "";
  const state = { verified, search: search.value, cursor: query.get("cursor") || "", trail: query.get("trail") || "" };
  // Only the latest search may paint its results.
  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    const current = () => mine === seq && stillCurrent();
    results.setAttribute("aria-busy", "true");
    try {
      const shown = await usersPage(env, state);
      if (current()) {
        mount(filterSlot, filterLinks(env, state));
        mount(infoSlot, shown.info);
        mount(results, shown.body);
      }
    } catch (e) {
      if (current()) {
        mount(filterSlot, filterLinks(env, state));
        mount(infoSlot);
        mount(results, h("div", { class: "card-body" }, errorBox(e)));
      }
    } finally {
      if (mine === seq) results.removeAttribute("aria-busy");
    }
  };

  let timer;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!stillCurrent() || search.value === state.search) return;
      // A new search starts at its first page; the URL keeps it for a reload or a link.
      Object.assign(state, { search: search.value, cursor: "", trail: "" });
      history.replaceState(null, "", links.users(env.id, qs({ verified, search: state.search })));
      load();
    }, SEARCH_DELAY_MS);
  });

  await load();
  if (!stillCurrent()) return;
  mount(container,
    pageHeader("Users", "Everyone who identified in this environment. Unverified users had no proof of identity: treat their attributes as untrusted.", null, env.name),
    notice ? h("div", { class: "alert alert-success", role: "status", "data-notice": "" }, icon("check"), h("div", {}, notice)) : null,
    card(null, { cls: "card-flush" },
      h("div", { class: "toolbar" },
        h("form", { class: "search-field", role: "search", onsubmit: (ev) => ev.preventDefault() },
          icon("search"),
          h("label", { class: "visually-hidden", for: "user-search" }, "Search users by id prefix"),
          search,
          h("span", { class: "visually-hidden", id: "user-search-hint" }, "Lists the users whose id starts with this, exactly: case and spaces count.")),
        filterSlot,
        infoSlot),
      results));
}

/** All / Verified / Unverified, each keeping the search. */
function filterLinks(env, { verified, search }) {
  return h("div", { class: "segmented", role: "group", "aria-label": "Filter users" },
    FILTERS.map(([v, label]) => h("a", {
      href: links.users(env.id, qs({ verified: v, search })),
      class: `seg ${verified === v ? "active" : ""}`,
      "aria-current": verified === v ? "true" : undefined,
      "data-filter": v || "all",
    }, label)));
}

/** One page of users as `{info, body}`: "Page n · m users", and the table with its pager. */
async function usersPage(env, state) {
  const { verified, search, cursor } = state;
  // Earlier cursors, so "Previous" can go back (the API pages forward only).
  const trail = state.trail.split(",").filter(Boolean).map(decodeURIComponent);
  const page = await Api.users(env.id, { verified, search, cursor, limit: PAGE });

  let empty = verified === "false" ? "No unverified users. Every identify carried a valid proof." : "No users yet.";
  if (search) empty = `No ${verified === "true" ? "verified " : verified === "false" ? "unverified " : ""}user id starts with “${search}”.`;
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
    empty,
    rowAttrs: (u) => ({ class: `row-link ${u.verified ? "" : "row-unverified"}`, "data-user": u.id, onclick: (ev) => {
      if (!ev.target.closest("a,button")) go(links.user(env.id, u.id));
    } }),
  });

  const prevTrail = trail.slice(0, -1);
  const prev = button("Previous", {
    size: "sm",
    disabled: !cursor,
    "data-page": "prev",
    onclick: () => go(links.users(env.id, qs({ verified, search, cursor: trail[trail.length - 1] || "", trail: prevTrail.map(encodeURIComponent).join(",") }))),
  }, "chevronLeft");
  const next = button("Next", {
    size: "sm",
    disabled: !page.next_cursor,
    "data-page": "next",
    onclick: () => go(links.users(env.id, qs({ verified, search, cursor: page.next_cursor, trail: (cursor ? [...trail, cursor] : trail).map(encodeURIComponent).join(",") }))),
  }, "chevronRight");
  const pageNo = trail.length + (cursor ? 1 : 0) + 1;

  return {
    info: `Page ${pageNo} · ${page.data.length} user${page.data.length === 1 ? "" : "s"}`,
    body: [rows, h("div", { class: "pager" }, prev, next)],
  };
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

  const remove = button("Delete user", { variant: "danger-ghost", "data-action": "delete-user", onclick: () => deleteUser(ctx, user, events.data.length) }, "trash");
  mount(container,
    pageHeader(wrappedId(user.id), null, [verifiedBadge(user),
      h("a", { class: "btn btn-ghost", href: links.audit(env.id, new URLSearchParams({ user_id: user.id }).toString()), "data-action": "user-audit" }, icon("list"), "Audit log"),
      remove], "User"),
    h("div", { class: "grid-2 grid-user" },
      card("How this identity was verified", {}, verification),
      card("Attributes", { subtitle: `${verifiedKeys.size} verified of ${allKeys.length}` }, attrs)),
    card("Companies", {}, companies),
    card("Recent events", { subtitle: "The 20 most recent" }, evs));
}

/** Erases a user after a confirmation that says what goes; then back to the list. */
async function deleteUser(ctx, user, recentEvents) {
  const { env } = ctx;
  const ok = await confirmDialog({
    title: "Delete this user?",
    message: h("span", {}, "Vouch erases ", h("code", { class: "id-wrap", "data-delete-user": user.id }, user.id),
      ": its attributes, verified attributes, company memberships and tracked events. ",
      "Its widget sessions are refused from the next call, and a ", h("code", {}, "user.deleted"), " webhook is sent. ",
      "The audit log keeps a record that it was deleted, without its attributes. This cannot be undone."),
    detail: kv([
      ["Identity", verifiedBadge(user)],
      ["Companies", String(user.companies.length)],
      ["Recent events", recentEvents >= 20 ? "20 or more" : String(recentEvents)],
      ["First seen", time(user.created_at)],
    ]),
    confirmLabel: "Delete user",
    danger: true,
  });
  if (!ok) return;
  ctx.container.setAttribute("aria-busy", "true");
  try {
    await Api.deleteUser(env.id, user.id);
  } catch (e) {
    toast(e.message, "error");
    return;
  } finally {
    ctx.container.removeAttribute("aria-busy");
  }
  goWithNotice(links.users(env.id),
    ["User ", h("code", { class: "id-wrap" }, user.id), " was deleted, with its attributes, memberships and events."]);
}
