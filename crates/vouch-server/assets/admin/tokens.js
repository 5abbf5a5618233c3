// Admin tokens: who may use the admin API and this console. The list, "New admin token"
// (its value shown once) and deleting one. Managing them needs a token with the admin
// role and access to every environment; any other token sees why instead of the page.

import { Api, TokenApi } from "./api.js";
import { h, mount, icon, time, richText } from "./dom.js";
import {
  badge, button, card, pageHeader, table, openDialog, confirmDialog, toast, errorBox, secretValueBox, kv, idText,
} from "./widgets.js";

const ROLES = [
  ["admin", "Admin", "Reads and changes everything in the environments it can see."],
  ["viewer", "Viewer", "Reads only: every change is refused."],
];

const SUBTITLE = "Who may use the admin API and this console. A token's value is shown once, when it is created: Vouch keeps only its hash.";

function roleBadge(role) {
  return role === "viewer"
    ? h("span", { class: "badge badge-info", "data-role": role }, icon("eye", "icon icon-xs"), "Viewer")
    : h("span", { class: "badge badge-neutral", "data-role": role }, icon("key", "icon icon-xs"), "Admin");
}

/** "All environments", or the names of the environments a token is limited to. */
function scope(t, envNames) {
  if (!t.environment_ids) return h("span", { "data-scope": "all" }, "All environments");
  return h("div", { class: "props", "data-scope": t.environment_ids.join(",") },
    t.environment_ids.map((id) => h("span", { class: envNames.has(id) ? "prop prop-name" : "prop", title: id }, envNames.get(id) || id)));
}

/** The scope as one line of text, for dialogs. */
function scopeText(t, envNames) {
  return t.environment_ids ? t.environment_ids.map((id) => envNames.get(id) || id).join(", ") : "All environments";
}

export async function renderTokens(ctx) {
  const { container, stillCurrent } = ctx;
  const [tokens, envs] = await Promise.all([TokenApi.list().catch((e) => e), Api.environments()]);
  if (!stillCurrent()) return;
  if (tokens instanceof Error) {
    if (tokens.status !== 403) throw tokens;
    mount(container, pageHeader("Admin tokens", SUBTITLE), noAccess(tokens));
    return;
  }
  const envNames = new Map(envs.data.map((e) => [e.id, e.name]));
  const rerender = async () => {
    container.setAttribute("aria-busy", "true");
    try {
      await renderTokens(ctx);
    } catch (e) {
      // E.g. the token this console is signed in with was just deleted (api.js goes to the sign-in page).
      mount(container, errorBox(e));
    } finally {
      container.removeAttribute("aria-busy");
    }
  };

  const rows = table([
    { label: "Name", render: (t) => h("strong", { class: "token-name" }, t.name) },
    { label: "Role", render: (t) => roleBadge(t.role) },
    { label: "Scope", render: (t) => scope(t, envNames) },
    { label: "Created", render: (t) => time(t.created_at) },
    { label: "Id", render: (t) => h("code", { class: "small" }, idText(t.id)) },
    { label: "", cls: "actions", render: (t) => button("Delete", { size: "sm", variant: "danger-ghost", "data-action": "delete-token",
      "aria-label": `Delete admin token ${t.name}`, onclick: () => deleteToken(t, envNames, rerender) }, "trash") },
  ], tokens.data, {
    label: "Admin tokens",
    empty: "No admin tokens.",
    rowAttrs: (t) => ({ "data-token-id": t.id, "data-role": t.role }),
  });

  mount(container,
    pageHeader("Admin tokens", SUBTITLE,
      button("New admin token", { variant: "primary", "data-action": "new-token", onclick: () => createDialog(envs.data, envNames, rerender) }, "plus")),
    card(null, {}, rows));
}

function noAccess(err) {
  return h("div", { class: "alert alert-warning", role: "alert", "data-no-access": "" }, icon("lock"),
    h("div", {},
      h("strong", {}, "Your admin token cannot manage admin tokens. "),
      richText(err.message), " ",
      "Sign in with a token that has the admin role and access to every environment, such as the one Vouch printed when it first started."));
}

async function deleteToken(t, envNames, rerender) {
  const ok = await confirmDialog({
    title: "Delete this admin token?",
    message: "Whatever uses it (a script, a CI job, someone signed in to this console with it) is refused from now on. This cannot be undone.",
    detail: kv([
      ["Name", t.name],
      ["Role", roleBadge(t.role)],
      ["Scope", scopeText(t, envNames)],
      ["Id", h("code", {}, t.id)],
      ["Created", time(t.created_at)],
    ]),
    confirmLabel: "Delete token",
    danger: true,
  });
  if (!ok) return;
  try {
    await TokenApi.remove(t.id);
    toast(`Admin token “${t.name}” deleted`);
  } catch (e) {
    if (e.code === "conflict") {
      toast(`“${t.name}” is the last admin token with access to every environment, so it cannot be deleted: create another one first, so that someone can still manage Vouch.`, "error");
    } else {
      toast(e.message, "error");
    }
  }
  await rerender();
}

function createDialog(envs, envNames, rerender) {
  openDialog({
    title: "New admin token",
    wide: true,
    build: (close) => {
      const name = h("input", { class: "input", id: "token-name", required: true, maxlength: 100, autocomplete: "off",
        placeholder: "CI deploys, support desk…" });
      const roles = ROLES.map(([value, label, desc], i) => {
        const input = h("input", { type: "radio", name: "token-role", value, id: `token-role-${value}` });
        input.checked = i === 0;
        return { input, el: h("label", { class: "check", for: `token-role-${value}` }, input,
          h("span", {}, h("strong", {}, label), h("span", { class: "hint" }, desc))) };
      });
      const boxes = envs.map((e) => {
        const input = h("input", { type: "checkbox", name: "environment_ids", value: e.id, id: `token-env-${e.id}` });
        return { id: e.id, input, el: h("label", { class: "check", for: `token-env-${e.id}` }, input,
          h("span", {}, h("span", {}, e.name, " ", badge(e.mode, e.mode === "live" ? "live" : "test")),
            h("span", { class: "hint mono-ish" }, e.id))) };
      });
      const err = h("div", {});
      const form = h("form", { class: "form", onsubmit: async (ev) => {
        ev.preventDefault();
        const submit = form.querySelector("button[type=submit]");
        submit.disabled = true;
        const body = { name: name.value.trim(), role: roles.find((r) => r.input.checked)?.input.value || "admin" };
        const picked = boxes.filter((b) => b.input.checked).map((b) => b.id);
        if (picked.length) body.environment_ids = picked;
        try {
          const created = await TokenApi.create(body);
          close(true);
          await showNewToken(created, envNames);
          await rerender();
        } catch (e) {
          submit.disabled = false;
          mount(err, errorBox(e));
        }
      } },
      h("div", { class: "dialog-body" },
        h("label", { class: "label", for: "token-name" }, "Name"), name,
        h("p", { class: "hint" }, "Who or what will use it, so you know which one to delete later."),
        h("fieldset", { class: "checks" }, h("legend", { class: "label" }, "Role"), roles.map((r) => r.el)),
        h("fieldset", { class: "checks" },
          h("legend", { class: "label" }, "Environments (optional)"),
          boxes.map((b) => b.el),
          h("p", { class: "hint" }, "Leave every box empty for a token that sees every environment. ",
            "Only an admin token that sees every environment can create environments and manage admin tokens.")),
        err),
      h("footer", { class: "dialog-foot" },
        button("Cancel", { onclick: () => close(false) }),
        h("button", { type: "submit", class: "btn btn-primary", "data-confirm": "" }, "Create token")));
      queueMicrotask(() => name.focus());
      return form;
    },
  });
}

/** Shows a new token's value, the only time it can be seen. */
function showNewToken(t, envNames) {
  return openDialog({
    title: "Admin token created",
    wide: true,
    build: (close) => h("div", { "data-new-token": t.id },
      h("div", { class: "dialog-body" },
        h("div", { class: "alert alert-warning" }, icon("key"),
          h("div", {}, h("strong", {}, "Copy this token now: you will not see it again. "),
            "Vouch keeps only its hash, so a lost token cannot be shown again: delete it and create another.")),
        secretValueBox(t.token, "Admin token value"),
        kv([["Name", t.name], ["Role", roleBadge(t.role)], ["Scope", scopeText(t, envNames)], ["Id", h("code", {}, t.id)]])),
      h("footer", { class: "dialog-foot" }, button("Done", { variant: "primary", onclick: () => close(true) }))),
  });
}
