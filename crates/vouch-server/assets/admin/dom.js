// DOM helpers. Data only ever reaches the page as text nodes or attribute
// values, never as markup, so nothing an end user typed can run here.

const SVG_NS = "http://www.w3.org/2000/svg";

/** h("a", {class: "x", href: "#", onclick: fn}, "text", child, [more]) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = String(v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "style" || k === "innerHTML") throw new Error(`refusing to set ${k}`);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const ICONS = {
  check: "M20 6 9 17l-5-5",
  alert: "M12 9v4m0 4h.01M10.3 3.9 1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z",
  key: "M21 2l-2 2m-7.6 7.6a5.5 5.5 0 1 1-7.8 7.8 5.5 5.5 0 0 1 7.8-7.8zm0 0L15.5 7.5m0 0 3 3L22 7l-3-3m-3.5 3.5L19 4",
  users: "M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8m14 10v-2a4 4 0 0 0-3-3.9M16 3.1a4 4 0 0 1 0 7.8",
  shield: "M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z",
  list: "M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01",
  layers: "M12 2 2 7l10 5 10-5-10-5zM2 17l10 5 10-5M2 12l10 5 10-5",
  copy: "M20 9h-9a2 2 0 0 0-2 2v9a2 2 0 0 0 2 2h9a2 2 0 0 0 2-2v-9a2 2 0 0 0-2-2zM5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1",
  eye: "M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8zm11 3a3 3 0 1 0 0-6 3 3 0 0 0 0 6z",
  eyeOff: "M17.9 17.9A10 10 0 0 1 12 20C5 20 1 12 1 12a18 18 0 0 1 5.1-5.9M9.9 4.2A9 9 0 0 1 12 4c7 0 11 8 11 8a18 18 0 0 1-2.2 3.2M1 1l22 22",
  rotate: "M23 4v6h-6M1 20v-6h6m14.5-5A9 9 0 0 0 6 5.6L1 10m22 4-5 4.4A9 9 0 0 1 3.5 15",
  trash: "M3 6h18m-2 0-1 14a2 2 0 0 1-2 2H8a2 2 0 0 1-2-2L5 6m5 5v6m4-6v6M9 6V4a1 1 0 0 1 1-1h4a1 1 0 0 1 1 1v2",
  upload: "M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4m14-7-5-5-5 5m5-5v12",
  plus: "M12 5v14M5 12h14",
  x: "M18 6 6 18M6 6l12 12",
  logout: "M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4m7 14 5-5-5-5m5 5H9",
  lock: "M5 11h14a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2zm2 0V7a5 5 0 0 1 10 0v4",
  chevronLeft: "M15 18l-6-6 6-6",
  chevronRight: "M9 18l6-6-6-6",
  search: "M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16zm10 2-4.3-4.3",
};

/** An inline stroke icon (built with DOM calls, not markup). */
export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", ICONS[name] || "");
  svg.append(path);
  return svg;
}

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

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateFmt.format(d);
}

export function fmtRelative(iso) {
  if (!iso) return "—";
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - Date.now()) / 1000);
  const abs = Math.abs(s);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  if (abs < 60) return rtf.format(s, "second");
  if (abs < 3600) return rtf.format(Math.round(s / 60), "minute");
  if (abs < 2 * 86400) return rtf.format(Math.round(s / 3600), "hour");
  return rtf.format(Math.round(s / 86400), "day");
}

/** A time element: absolute date, relative in the tooltip. */
export function time(iso) {
  return h("time", { datetime: iso || "", title: iso ? fmtRelative(iso) : "" }, fmtDate(iso));
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
  const thead = h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls || "" }, c.label))));
  const tbody = h("tbody", {});
  if (rows.length === 0) {
    tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, opts.empty || "Nothing here yet.")));
  }
  for (const r of rows) {
    const tr = h("tr", opts.rowAttrs ? opts.rowAttrs(r) : {}, columns.map((c) => h("td", { class: c.cls || "" }, c.render(r))));
    tbody.append(tr);
  }
  return h("div", { class: "table-wrap" }, h("table", { class: "table" }, thead, tbody));
}

export function switchControl({ checked, label, onchange, id }) {
  const input = h("input", { type: "checkbox", role: "switch", id, "aria-label": label });
  input.checked = !!checked;
  input.addEventListener("change", () => onchange(input.checked, input));
  return h("label", { class: "switch" }, input, h("span", { class: "slider", "aria-hidden": "true" }));
}

export function spinner() {
  return h("div", { class: "loading" }, h("span", { class: "spinner" }), "Loading…");
}

export function errorBox(err) {
  return h("div", { class: "alert alert-danger", role: "alert" },
    icon("alert"), h("div", {}, h("strong", {}, err.code || "Error"), " ", err.message || String(err)));
}

// ---- toasts -------------------------------------------------------------

export function toast(message, kind = "success") {
  let host = document.getElementById("toasts");
  if (!host) {
    host = h("div", { id: "toasts", class: "toasts", "aria-live": "polite" });
    document.body.append(host);
  }
  const t = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" },
    icon(kind === "error" ? "alert" : "check"), h("span", {}, message));
  host.append(t);
  setTimeout(() => t.classList.add("toast-out"), 3800);
  setTimeout(() => t.remove(), 4200);
}

// ---- dialogs ------------------------------------------------------------

/** Opens a modal <dialog>; `build(close)` returns its body; resolves with the close value. */
export function openDialog({ title, build, wide }) {
  return new Promise((resolve) => {
    let result;
    const dlg = h("dialog", { class: `dialog ${wide ? "dialog-wide" : ""}`, "aria-label": title });
    const close = (value) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener("close", () => {
      dlg.remove();
      resolve(result);
    });
    mount(dlg,
      h("header", { class: "dialog-head" }, h("h2", {}, title),
        h("button", { type: "button", class: "icon-btn", "aria-label": "Close", onclick: () => close(undefined) }, icon("x"))),
      build(close));
    document.body.append(dlg);
    dlg.showModal();
  });
}

/** A confirmation; resolves true when confirmed. */
export function confirmDialog({ title, message, detail, confirmLabel = "Confirm", danger = false }) {
  return openDialog({
    title,
    build: (close) => h("div", {},
      h("div", { class: "dialog-body" }, h("p", {}, message), detail ? h("div", { class: "dialog-detail" }, detail) : null),
      h("footer", { class: "dialog-foot" },
        button("Cancel", { onclick: () => close(false) }),
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

/** A read-only secret value with a Copy button, shown once. */
export function secretValueBox(value) {
  const input = h("input", { class: "input mono", readonly: true, "data-secret-value": "" });
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
