// Shared widgets of the admin console: badges, buttons, cards, tables, switches,
// alerts, toasts and dialogs. Page modules compose these; none of them calls the API.

import { h, mount, icon, richText, breakable } from "./dom.js";

export function badge(text, kind = "neutral", iconName) {
  return h("span", { class: `badge badge-${kind}` }, iconName ? icon(iconName, "icon icon-xs") : null, text);
}

export function verifiedBadge(user) {
  if (user.verified) {
    const how = user.verified_by ? ` · ${user.verified_by}` : "";
    return h("span", { class: "badge badge-success", "data-mark": "verified", title: "Identity proven by the customer's backend" },
      icon("check", "icon icon-xs"), `Verified${how}`);
  }
  return h("span", { class: "badge badge-warning", "data-mark": "unverified", title: "No proof of identity: anyone who knows this id could have sent it" },
    icon("alert", "icon icon-xs"), "Unverified");
}

export function button(label, attrs = {}, iconName) {
  const { variant = "secondary", size, ...rest } = attrs;
  const cls = ["btn", `btn-${variant}`, size ? `btn-${size}` : "", rest.class || ""].filter(Boolean).join(" ");
  return h("button", { type: "button", ...rest, class: cls }, iconName ? icon(iconName) : null, label);
}

export function card(title, opts = {}, ...body) {
  const { actions, subtitle, cls } = opts;
  return h("section", { class: `card ${cls || ""}` },
    title ? h("header", { class: "card-head" },
      h("div", {}, h("h2", { class: "card-title" }, title), subtitle ? h("p", { class: "card-sub" }, subtitle) : null),
      actions ? h("div", { class: "card-actions" }, actions) : null) : null,
    h("div", { class: "card-body" }, body));
}

export function pageHeader(title, subtitle, actions, eyebrow) {
  return h("div", { class: "page-head" },
    h("div", {}, eyebrow ? h("div", { class: "eyebrow" }, eyebrow) : null,
      h("h1", {}, title), subtitle ? h("p", { class: "page-sub" }, subtitle) : null),
    actions ? h("div", { class: "page-actions" }, actions) : null);
}

export function table(columns, rows, opts = {}) {
  const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls || "", scope: "col" }, c.label))));
  const tbody = h("tbody", {});
  if (rows.length === 0) {
    tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, opts.empty || "Nothing here yet.")));
  }
  for (const r of rows) {
    // data-label: the column's name, shown beside each value when rows stack on small screens.
    const tr = h("tr", opts.rowAttrs ? opts.rowAttrs(r) : {},
      columns.map((c) => h("td", { class: c.cls || "", "data-label": c.label || undefined }, c.render(r))));
    tbody.append(tr);
  }
  const wrap = h("div", { class: "table-wrap" }, h("table", { class: "table" }, thead, tbody));
  scrollableByKeyboard(wrap, opts.label || "Table");
  return wrap;
}

/**
 * A region that scrolls sideways (a wide table on a small screen) gets a tab stop and a
 * name while it does, so that keyboard users can scroll it too.
 */
function scrollableByKeyboard(el, label) {
  if (typeof ResizeObserver !== "function") return;
  new ResizeObserver(() => {
    if (el.scrollWidth > el.clientWidth + 1) {
      el.setAttribute("tabindex", "0");
      el.setAttribute("role", "region");
      el.setAttribute("aria-label", `${label} (scrolls sideways)`);
    } else {
      el.removeAttribute("tabindex");
      el.removeAttribute("role");
      el.removeAttribute("aria-label");
    }
  }).observe(el);
}

/**
 * An on/off switch. With `confirm(next)` (resolving true or false), a click or Space
 * does not move the switch: it asks first, and the switch moves only when confirmed.
 */
export function switchControl({ checked, label, onchange, id, confirm }) {
  const input = h("input", { type: "checkbox", role: "switch", id, "aria-label": label });
  input.checked = !!checked;
  if (confirm) {
    let asking = false;
    input.addEventListener("click", async (ev) => {
      // The browser has already toggled it; cancelling the click puts it back unpainted.
      ev.preventDefault();
      const next = input.checked;
      if (asking) return;
      asking = true;
      try {
        if (!(await confirm(next))) return;
        input.checked = next;
        onchange(next, input);
      } finally {
        asking = false;
      }
    });
  } else {
    input.addEventListener("change", () => onchange(input.checked, input));
  }
  return h("label", { class: "switch" }, input, h("span", { class: "slider", "aria-hidden": "true" }));
}

export function spinner() {
  return h("div", { class: "loading" }, h("span", { class: "spinner" }), "Loading…");
}

export function errorBox(err) {
  return h("div", { class: "alert alert-danger", role: "alert" },
    icon("alert"), h("div", {}, h("strong", {}, err.code || "Error"), " ", richText(err.message || String(err))));
}

/** An id in a table cell: one line, cut with an ellipsis, the whole id in the tooltip. */
export function idText(text, attrs = {}) {
  return h("span", { ...attrs, class: `id-text ${attrs.class || ""}`.trim(), title: text }, text);
}

/** A long id as a heading or value: wraps only after its separators. */
export function wrappedId(text) {
  return h("span", { class: "id-wrap" }, breakable(text));
}

/**
 * The red banner of an environment that has no active identity secret: every signed
 * identify fails until one is created. `secrets` is the environment's secrets list.
 */
export function noActiveSecretBanner(secrets, createHref) {
  if (secrets.some((s) => s.status === "active")) return null;
  const why = secrets.length === 0
    ? "This environment has no identity secret."
    : `This environment has no active identity secret: ${secrets.length === 1 ? "its only one is" : `all ${secrets.length} are`} revoked or expired.`;
  return h("div", { class: "alert alert-danger env-banner", role: "alert", "data-banner": "no-active-secret" },
    icon("alert"),
    h("div", {},
      h("strong", {}, `${why} `),
      "Every identify that carries a signature or token is rejected, and a verified user cannot sign in, until you ",
      h("a", { href: createHref, "data-action": "create-secret-link" }, "create a new identity secret"),
      "."));
}

// ---- toasts -------------------------------------------------------------

export function toast(message, kind = "success") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = h("div", { id: "toasts", class: "toasts", "aria-live": "polite" });
    document.body.append(host);
  }
  const t = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    icon(kind === "error" ? "alert" : "check"), h("span", {}, richText(message)));
  host.append(t);
  setTimeout(() => t.classList.add("toast-out"), 3800);
  setTimeout(() => t.remove(), 4200);
}

// ---- dialogs ------------------------------------------------------------

let dialogCount = 0;

/** Opens a modal <dialog>; `build(close)` returns its body; resolves with the close value. */
export function openDialog({ title, build, wide }) {
  return new Promise((resolve) => {
    let result;
    const titleId = `dialog-title-${++dialogCount}`;
    const dlg = h("dialog", { class: `dialog ${wide ? "dialog-wide" : ""}`, "aria-labelledby": titleId });
    const close = (value) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    mount(dlg,
      h("header", { class: "dialog-head" }, h("h2", { id: titleId }, title),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Close dialog", title: "Close", "data-action": "close-dialog",
          onclick: () => close(undefined) }, icon("x"))),
      build(close));
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** A confirmation; resolves true when confirmed. `note` (an alert, say) follows the message unboxed. */
export function confirmDialog({ title, message, detail, note, confirmLabel = "Confirm", danger = false }) {
  return openDialog({
    title,
    build: (close) => h("div", {},
      h("div", { class: "dialog-body" }, h("p", {}, message), note || null, detail ? h("div", { class: "dialog-detail" }, detail) : null),
      h("footer", { class: "dialog-foot" },
        // Focus starts on the harmless choice: Enter right away changes nothing.
        button("Cancel", { onclick: () => close(false), autofocus: true }),
        button(confirmLabel, { variant: danger ? "danger" : "primary", "data-confirm": "", onclick: () => close(true) }))),
  }).then((v) => v === true);
}

/** Copies text; falls back to a hidden textarea where the Clipboard API is unavailable. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h("textarea", { class: "offscreen", readonly: true });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

/** A read-only secret value with a Copy button, shown once; `label` names the field. */
export function secretValueBox(value, label = "Secret value") {
  const input = h("input", { class: "input mono", readonly: true, "data-secret-value": "", "aria-label": label });
  input.value = value;
  return h("div", { class: "secret-box" }, input,
    button("Copy", {
      onclick: async () => {
        if (await copyText(value)) toast("Copied to the clipboard");
      },
    }, "copy"));
}

export function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}
