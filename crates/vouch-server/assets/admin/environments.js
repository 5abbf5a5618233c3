// Environments: the list and "New environment".

import { Api } from "./api.js";
import { h, mount, time, icon } from "./dom.js";
import { badge, button, card, pageHeader, table, openDialog, secretValueBox, toast, errorBox, copyText } from "./widgets.js";
import { go, links } from "./router.js";

export function enforcementBadge(env) {
  return env.enforcement === "enforce"
    ? badge("Enforced", "success", "lock")
    : badge("Not enforced", "warning", "alert");
}

export function modeBadge(env) {
  return badge(env.mode === "live" ? "Live" : "Test", env.mode === "live" ? "live" : "test");
}

export function keyChip(value, label = "Copy publishable key") {
  return h("span", { class: "key-chip" },
    h("code", { class: "mono" }, value),
    h("button", { type: "button", class: "icon-btn", "aria-label": label, title: label, onclick: async (ev) => {
      ev.stopPropagation();
      if (await copyText(value)) toast("Publishable key copied");
    } }, icon("copy")));
}

export async function renderEnvironments({ container, stillCurrent, reload }) {
  const envs = await reload();
  if (!stillCurrent()) return;
  const create = button("New environment", { variant: "primary", onclick: () => createDialog() }, "plus");
  const rows = table([
    { label: "Name", render: (e) => h("a", { href: links.identity(e.id), class: "strong-link" }, e.name) },
    { label: "Mode", render: modeBadge },
    { label: "Identity verification", render: enforcementBadge },
    { label: "Publishable key", render: (e) => keyChip(e.publishable_key) },
    { label: "Unverified users", cls: "num", render: (e) => String(e.unsigned_session_count) },
    { label: "Created", render: (e) => time(e.created_at) },
  ], envs, {
    label: "Environments",
    empty: "No environments yet. Create one to get a publishable key and an identity secret.",
    rowAttrs: (e) => ({ class: "row-link", "data-env": e.id, onclick: (ev) => {
      if (!ev.target.closest("a,button")) go(links.identity(e.id));
    } }),
  });
  mount(container,
    pageHeader("Environments", "Each environment has its own keys, so a staging secret never verifies production users.", create),
    card(null, {}, rows));
}

function createDialog() {
  openDialog({
    title: "New environment",
    build: (close) => {
      const name = h("input", { class: "input", id: "env-name", required: true, maxlength: 100, placeholder: "Acme — production" });
      const mode = h("select", { class: "input", id: "env-mode" },
        h("option", { value: "test" }, "Test — keys start with pk_test_ / sk_test_"),
        h("option", { value: "live" }, "Live — keys start with pk_live_ / sk_live_"));
      const err = h("div", {});
      const form = h("form", { class: "form", onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const created = await Api.createEnvironment({ name: name.value, mode: mode.value });
          close(true);
          toast(`Environment “${created.name}” created`);
          await showNewSecret(created.secret.value, created.secret.id, "The environment's first identity secret");
          go(links.identity(created.id));
        } catch (e) {
          mount(err, errorBox(e));
        }
      } },
      h("div", { class: "dialog-body" },
        h("label", { class: "label", for: "env-name" }, "Name"), name,
        h("label", { class: "label", for: "env-mode" }, "Mode"), mode,
        h("p", { class: "hint" }, "The mode is fixed once created: it is part of every key."), err),
      h("footer", { class: "dialog-foot" },
        button("Cancel", { onclick: () => close(false) }),
        h("button", { type: "submit", class: "btn btn-primary" }, "Create environment")));
      queueMicrotask(() => name.focus());
      return form;
    },
  });
}

/** Shows a freshly created secret's value, once. */
export function showNewSecret(value, id, title = "New identity secret") {
  return openDialog({
    title,
    wide: true,
    build: (close) => h("div", { "data-new-secret": id },
      h("div", { class: "dialog-body" },
        h("div", { class: "alert alert-info" }, icon("key"),
          h("div", {}, "Copy this secret into your backend's configuration now (for example as VOUCH_SECRET). ",
            "You can reveal it again later; every reveal is written to the audit log.")),
        secretValueBox(value, "Identity secret value"),
        h("p", { class: "hint" }, "Key id ", h("code", {}, id))),
      h("footer", { class: "dialog-foot" }, button("Done", { variant: "primary", onclick: () => close(true) }))),
  });
}
