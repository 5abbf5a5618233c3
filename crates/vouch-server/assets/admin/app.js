// The admin console shell: renders the page of the current hash (see router.js) with the
// sidebar, the breadcrumbs and, on every page of an environment, its warning banners.

import { Api } from "./api.js";
import { h, mount, icon } from "./dom.js";
import { badge, spinner, errorBox, noActiveSecretBanner } from "./widgets.js";
import { links, parseHash, setRouteHandler } from "./router.js";
import { renderEnvironments } from "./environments.js";
import { renderIdentity } from "./identity.js";
import { renderUsers, renderUser } from "./users.js";
import { renderAudit } from "./audit.js";
import { renderWebhooks } from "./webhooks.js";
import { renderTokens } from "./tokens.js";

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const crumbs = document.getElementById("crumbs");
const sidebar = document.getElementById("sidebar");
const menuToggle = document.getElementById("menu-toggle");

let renderSeq = 0;

function navLink(href, label, iconName, active) {
  return h("a", { href, class: `nav-link ${active ? "active" : ""}`, "aria-current": active ? "page" : undefined },
    icon(iconName), h("span", {}, label));
}

function renderNav(section, env) {
  const items = [
    h("div", { class: "nav-section" }, "Workspace"),
    navLink(links.environments(), "Environments", "layers", section === "environments"),
    navLink(links.adminTokens(), "Admin tokens", "key", section === "admin-tokens"),
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
    out.push(href ? h("a", { href }, label) : h("span", { class: "crumb-current", "aria-current": "page", title: label }, label));
  });
  mount(crumbs, out);
}

// ---- the small-screen menu ------------------------------------------------

function setMenu(open) {
  sidebar.dataset.open = open ? "true" : "false";
  menuToggle.setAttribute("aria-expanded", open ? "true" : "false");
}
menuToggle.addEventListener("click", () => setMenu(sidebar.dataset.open !== "true"));
document.addEventListener("keydown", (ev) => {
  if (ev.key === "Escape" && sidebar.dataset.open === "true") {
    setMenu(false);
    menuToggle.focus();
  }
});

// ---- pages ----------------------------------------------------------------

async function renderEnvPage(parts, query, container, stillCurrent) {
  // Always fresh: settings and counts change under our feet.
  const [env, secrets] = await Promise.all([Api.environment(parts[1]), Api.secrets(parts[1])]);
  const section = ["users", "audit", "webhooks"].includes(parts[2]) ? parts[2] : "identity";
  renderNav(section, env);
  const banners = h("div", { class: "env-banners", "data-env-banners": env.id });
  const ctx = {
    env,
    query,
    container,
    stillCurrent,
    secrets: secrets.data,
    /** Shows the banners that follow from the secrets list (pages that change it call this). */
    showSecrets: (list) => {
      ctx.secrets = list;
      mount(banners, noActiveSecretBanner(list, links.createSecret(env.id)));
    },
    refreshEnv: async () => {
      Object.assign(env, await Api.environment(env.id));
      return env;
    },
  };
  ctx.showSecrets(secrets.data);
  const base = [["Environments", links.environments()], [env.name, links.identity(env.id)]];
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
  return [banners, container];
}

async function route() {
  const seq = ++renderSeq;
  const { parts, query } = parseHash();
  const container = h("div", { class: "page" });
  setMenu(false);
  // A dialog belongs to the page it was opened on (Back must not leave it over another).
  for (const dlg of document.querySelectorAll("dialog[open]")) dlg.close();
  mount(view, h("div", { class: "page" }, spinner()));
  const stillCurrent = () => seq === renderSeq;
  try {
    let shown = [container];
    if (parts[0] === "env" && parts[1]) {
      shown = await renderEnvPage(parts, query, container, stillCurrent);
    } else if (parts[0] === "admin-tokens") {
      renderNav("admin-tokens", null);
      renderCrumbs([["Admin tokens"]]);
      await renderTokens({ container, stillCurrent });
    } else {
      renderNav("environments", null);
      renderCrumbs([["Environments"]]);
      await renderEnvironments({ container, stillCurrent, reload: async () => (await Api.environments()).data });
    }
    if (stillCurrent()) mount(view, shown);
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

setRouteHandler(route);
route();
