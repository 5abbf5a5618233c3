// The admin console shell: hash router, sidebar and top bar.

import { Api } from "./api.js";
import { h, mount, icon, badge, spinner, errorBox } from "./dom.js";
import { renderEnvironments } from "./environments.js";
import { renderIdentity } from "./identity.js";
import { renderUsers, renderUser } from "./users.js";
import { renderAudit } from "./audit.js";
import { renderWebhooks } from "./webhooks.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const crumbs = document.getElementById("crumbs");

let renderSeq = 0;

/** Parses `#/env/{id}/users/{uid}?verified=true` into parts and a query. */
function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/environments";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query) };
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

const enc = encodeURIComponent;
export const links = {
  environments: () => "#/environments",
  identity: (env) => `#/env/${enc(env)}`,
  users: (env, q) => `#/env/${enc(env)}/users${q ? `?${q}` : ""}`,
  user: (env, uid) => `#/env/${enc(env)}/users/${enc(uid)}`,
  audit: (env) => `#/env/${enc(env)}/audit`,
  webhooks: (env) => `#/env/${enc(env)}/webhooks`,
};

function navLink(href, label, iconName, active) {
  return h("a", { href, class: `nav-link ${active ? "active" : ""}`, "aria-current": active ? "page" : undefined },
    icon(iconName), h("span", {}, label));
}

function renderNav(section, env) {
  const items = [
    h("div", { class: "nav-section" }, "Workspace"),
    navLink(links.environments(), "Environments", "layers", section === "environments"),
  ];
  if (env) {
    items.push(
      h("div", { class: "nav-section nav-env" },
        h("span", { class: "nav-env-name", title: env.name }, env.name),
        badge(env.mode, env.mode === "live" ? "live" : "test")),
      navLink(links.identity(env.id), "Identity verification", "shield", section === "identity"),
      navLink(links.users(env.id), "Users", "users", section === "users"),
      navLink(links.audit(env.id), "Audit log", "list", section === "audit"),
      navLink(links.webhooks(env.id), "Webhooks", "upload", section === "webhooks"),
    );
  }
  mount(nav, items);
}

function renderCrumbs(items) {
  const out = [];
  items.forEach(([label, href], i) => {
    if (i > 0) out.push(h("span", { class: "crumb-sep", "aria-hidden": "true" }, "/"));
    out.push(href ? h("a", { href }, label) : h("span", { class: "crumb-current" }, label));
  });
  mount(crumbs, out);
}

async function route() {
  const seq = ++renderSeq;
  const { parts, query } = parseHash();
  const container = h("div", { class: "page" });
  mount(view, h("div", { class: "page" }, spinner()));
  const stillCurrent = () => seq === renderSeq;
  try {
    if (parts[0] === "env" && parts[1]) {
      // Always fresh: settings and counts change under our feet.
      const env = await Api.environment(parts[1]);
      const section = ["users", "audit", "webhooks"].includes(parts[2]) ? parts[2] : "identity";
      renderNav(section, env);
      const base = [["Environments", links.environments()], [env.name, links.identity(env.id)]];
      const ctx = { env, query, container, stillCurrent, refreshEnv: async () => {
        const fresh = await Api.environment(env.id);
        Object.assign(env, fresh);
        return env;
      } };
      if (section === "users" && parts[3]) {
        renderCrumbs([...base, ["Users", links.users(env.id)], [parts[3]]]);
        await renderUser(ctx, parts[3]);
      } else if (section === "users") {
        renderCrumbs([...base, ["Users"]]);
        await renderUsers(ctx);
      } else if (section === "audit") {
        renderCrumbs([...base, ["Audit log"]]);
        await renderAudit(ctx);
      } else if (section === "webhooks") {
        renderCrumbs([...base, ["Webhooks"]]);
        await renderWebhooks(ctx);
      } else {
        renderCrumbs([...base, ["Identity verification"]]);
        await renderIdentity(ctx);
      }
    } else {
      renderNav("environments", null);
      renderCrumbs([["Environments"]]);
      await renderEnvironments({ container, stillCurrent, reload: async () => (await Api.environments()).data });
    }
    if (stillCurrent()) mount(view, container);
  } catch (err) {
    if (stillCurrent()) mount(view, h("div", { class: "page" }, errorBox(err)));
  }
  if (stillCurrent()) document.title = `${document.querySelector(".page-head h1")?.textContent || "Admin"} · Vouch`;
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await Api.logout();
  } finally {
    location.assign("/admin/login");
  }
});

window.addEventListener("hashchange", route);
route();
