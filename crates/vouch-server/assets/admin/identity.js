// The Identity verification page of one environment: enforcement with its
// coverage numbers, identity secrets, browser access settings with "revoke all
// sessions", and a signature checker.

import { Api } from "./api.js";
import { coverage, percent } from "./coverage.js";
import { h, mount, icon, time, fmtDate, fmtRelative, richText } from "./dom.js";
import {
  badge, button, card, pageHeader, table, switchControl, confirmDialog, openDialog, toast, errorBox, copyText, kv,
} from "./widgets.js";
import { keyChip, modeBadge, showNewSecret } from "./environments.js";
import { dropQuery } from "./router.js";

const GRACE = [
  [0, "Immediately (no grace period)"],
  [3600, "After 1 hour"],
  [86400, "After 24 hours"],
  [604800, "After 7 days"],
];

const count = (n) => new Intl.NumberFormat().format(n);

export async function renderIdentity(ctx) {
  const { env, container, stillCurrent, query } = ctx;
  const [secrets, hints, stats] = await Promise.all([
    Api.secrets(env.id),
    Api.secretHints(env.id).catch(() => ({ data: [] })),
    Api.stats(env.id),
  ]);
  if (!stillCurrent()) return;
  ctx.showSecrets?.(secrets.data);
  // aria-busy from the moment a change is sent until the page shows its result.
  ctx.busy = () => container.setAttribute("aria-busy", "true");
  const rerender = async () => {
    ctx.busy();
    // The page is built anew: keep the keyboard where it was.
    const focused = document.activeElement?.id;
    try {
      await ctx.refreshEnv();
      // Fetches first, then replaces the page's children in one go.
      await renderIdentity(ctx);
    } finally {
      container.removeAttribute("aria-busy");
      if (focused) document.getElementById(focused)?.focus();
    }
  };
  const active = secrets.data.filter((s) => s.status === "active");
  mount(container,
    pageHeader("Identity verification",
      "Prove who each end user is: the customer's backend signs the user id with an identity secret, and Vouch checks it on every identify.",
      h("div", { class: "head-meta" }, modeBadge(env), keyChip(env.publishable_key)),
      env.name),
    enforcementCard(ctx, stats, rerender),
    secretsCard(ctx, secrets.data, hints.data, rerender),
    h("div", { class: "grid-2" }, accessCard(ctx, rerender), diagnoseCard(ctx)));
  // The banner's "create a new identity secret" link lands here.
  if (query?.get("new-secret")) {
    query.delete("new-secret");
    dropQuery();
    setTimeout(() => rotateDialog(env, active, rerender));
  }
}

// ---- enforcement --------------------------------------------------------

const KINDS = [
  ["verified", "Verified", "success"],
  ["unverified", "Unverified", "warning"],
  ["rejected", "Rejected", "danger"],
];

function statColumn(label, w) {
  const c = coverage(w);
  const bar = h("div", {
    class: "bar",
    role: "img",
    "aria-label": c.total
      ? `${percent(c.parts.verified)} verified, ${percent(c.parts.unverified)} unverified, ${percent(c.parts.rejected)} rejected`
      : "No identifies",
  });
  for (const [kind] of KINDS) {
    if (!c.parts[kind]) continue;
    const seg = h("span", { class: `bar-seg bar-${kind}`, "data-kind": kind });
    seg.style.width = `${(c.parts[kind] * 100).toFixed(2)}%`;
    bar.append(seg);
  }
  const headline = c.total
    ? h("div", { class: "stat-share" }, h("strong", {}, percent(c.share)), " would fail with enforcement on")
    : h("div", { class: "stat-share" }, "No identifies");
  return h("div", { class: "stat", "data-window": label, "data-tone": c.tone, "data-share": c.share.toFixed(4) },
    h("div", { class: "stat-label" }, label),
    headline,
    bar,
    h("dl", { class: "stat-counts" },
      KINDS.map(([kind, name, tone]) => h("div", {},
        h("dt", {}, h("span", { class: `dot dot-${tone}` }), name), h("dd", {}, count(w[kind] ?? 0))))));
}

function enforcementCard(ctx, stats, rerender) {
  const { env } = ctx;
  const on = env.enforcement === "enforce";
  const week = stats.last_week;
  const weekTotal = week.verified + week.unverified;
  const rejectedNote = week.rejected
    ? [" ", h("strong", {}, count(week.rejected)), ` more ${week.rejected === 1 ? "was" : "were"} rejected for a wrong or missing proof.`]
    : null;
  const sentence = on
    ? h("p", { class: "coverage-sentence", id: "coverage-sentence" },
      "Enforcement is on: identifies without a valid proof are rejected. ",
      h("strong", {}, count(week.rejected)), " rejected in the last 7 days.")
    : h("p", { class: "coverage-sentence", id: "coverage-sentence" },
      "Turning this on would have rejected ",
      h("strong", { class: week.would_reject_ratio > 0 ? "text-warning" : "text-success" }, percent(week.would_reject_ratio)),
      " of identifies in the last 7 days",
      weekTotal ? ` (${count(week.unverified)} of ${count(weekTotal)}).` : " (no identifies yet).",
      rejectedNote);

  const toggle = switchControl({
    id: "enforcement-switch",
    label: "Require a valid proof on every identify",
    checked: on,
    // The switch moves only once the dialog is confirmed.
    confirm: (next) => confirmDialog({
      title: next ? "Turn enforcement on?" : "Turn enforcement off?",
      message: next
        ? `Every identify without a valid signature or token will be rejected with signature_required. In the last 7 days that would have been ${percent(week.would_reject_ratio)} of identifies.`
        : "Identifies without a proof will be accepted again and shown as unverified. A wrong signature is still rejected.",
      confirmLabel: next ? "Turn on enforcement" : "Turn off enforcement",
      danger: !next,
    }),
    onchange: async (checked) => {
      ctx.busy();
      try {
        await Api.updateEnvironment(env.id, { enforcement: checked ? "enforce" : "off" });
        toast(checked ? "Enforcement is on" : "Enforcement is off");
      } catch (e) {
        toast(e.message, "error");
      }
      await rerender();
    },
  });

  return card("Enforcement", { cls: "card-enforcement", subtitle: "Reject every identify that carries no valid proof of the user id." },
    h("div", { class: "enforce-row" },
      h("div", { class: "enforce-main" },
        h("div", { class: "setting" },
          h("div", {},
            h("div", { class: "setting-title", id: "enforcement-title" }, "Require identity verification ",
              on ? badge("On", "success", "lock") : badge("Off", "neutral")),
            h("p", { class: "setting-desc" },
              "Once a user id has been verified it always needs a proof, whatever this setting. ",
              "Turn this on when your coverage is complete.")),
          toggle),
        sentence),
      h("div", { class: "stats" },
        statColumn("Last hour", stats.last_hour),
        statColumn("Last 24 hours", stats.last_day),
        statColumn("Last 7 days", stats.last_week))));
}

// ---- secrets ------------------------------------------------------------

function statusBadge(s) {
  if (s.status === "revoked") return badge("Revoked", "danger");
  if (s.status === "expired") return badge("Expired", "neutral");
  if (s.expires_at) return h("span", { class: "badge badge-warning", "data-expires": s.expires_at }, icon("alert", "icon icon-xs"), `Expires ${fmtRelative(s.expires_at)}`);
  return badge("Active", "success");
}

function secretsCard(ctx, secrets, hints, rerender) {
  const { env } = ctx;
  const hintOf = new Map(hints.map((x) => [x.id, x.hint]));
  const active = secrets.filter((s) => s.status === "active");
  const revealed = new Map();

  const reveal = async (s) => {
    if (!revealed.has(s.id)) {
      const out = await Api.revealSecret(env.id, s.id);
      revealed.set(s.id, out.value);
    }
    return revealed.get(s.id);
  };

  const valueCell = (s) => {
    const code = h("code", { class: "mono secret-value", "data-secret": s.id }, hintOf.get(s.id) || "••••••••••••");
    const toggleBtn = button("Reveal", { size: "sm", variant: "ghost", "data-action": "reveal", disabled: s.status === "revoked" }, "eye");
    toggleBtn.addEventListener("click", async () => {
      try {
        if (code.dataset.shown === "1") {
          code.textContent = hintOf.get(s.id) || "••••••••••••";
          code.dataset.shown = "0";
          mount(toggleBtn, icon("eye"), "Reveal");
          return;
        }
        code.textContent = await reveal(s);
        code.dataset.shown = "1";
        mount(toggleBtn, icon("eyeOff"), "Hide");
        toast("Secret revealed — recorded in the audit log");
      } catch (e) {
        toast(e.message, "error");
      }
    });
    const copyBtn = button("Copy", { size: "sm", variant: "ghost", "data-action": "copy", disabled: s.status === "revoked" }, "copy");
    copyBtn.addEventListener("click", async () => {
      try {
        if (await copyText(await reveal(s))) toast("Secret copied — recorded in the audit log");
      } catch (e) {
        toast(e.message, "error");
      }
    });
    return h("div", { class: "secret-cell" }, code, s.imported ? badge("Imported", "neutral") : null,
      h("span", { class: "secret-actions" }, toggleBtn, copyBtn));
  };

  const revokeBtn = (s) => {
    if (s.status === "revoked") return h("span", { class: "muted small" }, "Revoked ", time(s.revoked_at));
    return button("Revoke", { size: "sm", variant: "danger-ghost", "data-action": "revoke", onclick: async () => {
      const last = active.length === 1 && s.status === "active";
      const ok = await confirmDialog({
        title: "Revoke this secret?",
        message: "Signatures and tokens made with it stop verifying immediately. This cannot be undone.",
        detail: h("div", {},
          kv([["Key", h("code", {}, s.id)], ["Secret", h("code", {}, hintOf.get(s.id) || "—")], ["Created", time(s.created_at)]]),
          last ? h("div", { class: "alert alert-danger" }, icon("alert"),
            h("div", {}, "This is the only active secret: every signed identify will fail until you create or import another.")) : null),
        confirmLabel: "Revoke secret",
        danger: true,
      });
      if (!ok) return;
      ctx.busy();
      try {
        await Api.revokeSecret(env.id, s.id);
        toast("Secret revoked");
      } catch (e) {
        toast(e.message, "error");
      }
      await rerender();
    } }, "trash");
  };

  const rows = table([
    { label: "Secret", render: valueCell },
    { label: "Key id", render: (s) => h("code", { class: "mono small" }, s.id) },
    { label: "Status", render: statusBadge },
    { label: "Created", render: (s) => time(s.created_at) },
    { label: "", cls: "actions", render: revokeBtn },
  ], secrets, { label: "Identity secrets", empty: "No identity secrets: create or import one.", rowAttrs: (s) => ({ "data-key-id": s.id, "data-status": s.status }) });

  const actions = [
    button("Import", { onclick: () => importDialog(env, rerender), "data-action": "import" }, "upload"),
    button(active.length ? "Rotate secret" : "Create secret", { variant: "primary", onclick: () => rotateDialog(env, active, rerender), "data-action": "rotate" },
      active.length ? "rotate" : "plus"),
  ];
  return card("Identity secrets", {
    actions,
    subtitle: "Your backend signs user ids with one of these (HMAC-SHA256). A signature is valid under any active secret, so you can rotate without downtime.",
  }, rows);
}

/** What happens to the current secrets when a new one is created, for 0, 1 or n of them. */
export function rotationSentence(activeCount) {
  if (activeCount === 0) {
    return "There is no active secret, so every signed identify fails now. The new secret verifies as soon as it is created: put it in your backend's configuration.";
  }
  const who = activeCount === 1 ? "The current secret keeps" : `The ${activeCount} active secrets keep`;
  return `A new secret is created. ${who} verifying until the grace period ends, so you can deploy the new one first.`;
}

function rotateDialog(env, active, rerender) {
  const none = active.length === 0;
  openDialog({
    title: none ? "Create an identity secret" : "Rotate the identity secret",
    build: (close) => {
      const select = h("select", { class: "input", id: "grace" }, GRACE.map(([v, l]) => h("option", { value: v }, l)));
      select.value = "86400";
      const err = h("div", {});
      const go = button(none ? "Create secret" : "Create new secret", { variant: "primary", "data-confirm": "" }, none ? "plus" : "rotate");
      go.addEventListener("click", async () => {
        go.disabled = true;
        try {
          const body = none ? {} : { rotate: true, grace_seconds: Number(select.value) };
          const s = await Api.createSecret(env.id, body);
          close(true);
          await showNewSecret(s.value, s.id);
          await rerender();
        } catch (e) {
          go.disabled = false;
          mount(err, errorBox(e));
        }
      });
      return h("div", {},
        h("div", { class: "dialog-body" },
          h("p", { "data-rotation-sentence": "" }, rotationSentence(active.length)),
          none ? null : [h("label", { class: "label", for: "grace" }, "Old secrets stop working"), select],
          err),
        h("footer", { class: "dialog-foot" }, button("Cancel", { onclick: () => close(false) }), go));
    },
  });
}

function importDialog(env, rerender) {
  openDialog({
    title: "Import a secret",
    build: (close) => {
      const value = h("input", { class: "input mono", id: "import-value", type: "password", autocomplete: "off", spellcheck: "false",
        placeholder: "The secret your backend already signs with" });
      const err = h("div", {});
      const form = h("form", { class: "form", onsubmit: async (ev) => {
        ev.preventDefault();
        try {
          const s = await Api.createSecret(env.id, { value: value.value });
          close(true);
          toast(`Secret imported as ${s.id}`);
          await rerender();
        } catch (e) {
          mount(err, errorBox(e));
        }
      } },
      h("div", { class: "dialog-body" },
        h("p", {}, "Moving from another vendor? Import the secret your backend already uses, so existing signatures keep verifying."),
        h("label", { class: "label", for: "import-value" }, "Secret value (16–256 bytes)"), value, err),
      h("footer", { class: "dialog-foot" }, button("Cancel", { onclick: () => close(false) }),
        h("button", { type: "submit", class: "btn btn-primary" }, "Import secret")));
      queueMicrotask(() => value.focus());
      return form;
    },
  });
}

// ---- access settings ----------------------------------------------------

function accessCard(ctx, rerender) {
  const { env } = ctx;
  const patch = async (body, message) => {
    ctx.busy();
    try {
      await Api.updateEnvironment(env.id, body);
      toast(message);
      await rerender();
    } catch (e) {
      toast(e.message, "error");
      await rerender();
    }
  };

  const anon = switchControl({
    id: "anonymous-switch",
    label: "Allow anonymous visitors",
    checked: env.allow_anonymous,
    onchange: (checked) => patch({ allow_anonymous: checked }, checked ? "Anonymous sessions allowed" : "Anonymous sessions refused"),
  });

  const origins = [...env.allowed_origins];
  const originInput = h("input", { class: "input", id: "origin-input", placeholder: "https://app.example.com" });
  const chips = h("div", { class: "chips", id: "origins" },
    origins.length === 0 ? h("span", { class: "muted small" }, "Any origin may call this environment.") : null,
    origins.map((o) => h("span", { class: "chip", "data-origin": o }, o,
      h("button", { type: "button", class: "chip-x", "aria-label": `Remove ${o}`,
        onclick: () => patch({ allowed_origins: origins.filter((x) => x !== o) }, `Removed ${o}`) }, icon("x")))));
  const addOrigin = h("form", { class: "inline-form", onsubmit: (ev) => {
    ev.preventDefault();
    const v = originInput.value.trim().replace(/\/+$/, "");
    if (!v) return;
    patch({ allowed_origins: [...origins, v] }, `Added ${v}`);
  } }, originInput, h("button", { type: "submit", class: "btn btn-secondary" }, "Add"));

  const cap = h("input", { class: "input", id: "cap-input", type: "number", min: 0, step: 1, placeholder: "No limit" });
  if (env.unsigned_session_limit !== null && env.unsigned_session_limit !== undefined) cap.value = env.unsigned_session_limit;
  const capForm = h("form", { class: "inline-form", onsubmit: (ev) => {
    ev.preventDefault();
    const v = cap.value.trim();
    patch({ unsigned_session_limit: v === "" ? null : Number(v) }, v === "" ? "Unsigned cap removed" : `Unsigned cap set to ${v}`);
  } }, cap, h("button", { type: "submit", class: "btn btn-secondary" }, "Save"));

  const revoke = button("Revoke all sessions", { variant: "danger-ghost", "data-action": "revoke-sessions",
    onclick: () => revokeSessions(ctx, revoke) }, "logout");

  return card("Access", { subtitle: "Who may open sessions from the browser." },
    h("div", { class: "setting" },
      h("div", {}, h("div", { class: "setting-title" }, "Anonymous visitors"),
        h("p", { class: "setting-desc" }, "Let marketing pages open a visitor session without a user id. Turn off for a verified-only widget.")),
      anon),
    h("div", { class: "setting setting-col" },
      h("div", { class: "setting-title" }, "Allowed origins"),
      h("p", { class: "setting-desc" }, "Browser calls from other origins are rejected with origin_not_allowed. Empty means any origin."),
      chips, addOrigin),
    h("div", { class: "setting setting-col" },
      h("div", { class: "setting-title" }, "Unsigned cap"),
      h("p", { class: "setting-desc" },
        "With enforcement off, reject unverified identifies once this many distinct unverified users have been seen. ",
        h("strong", {}, count(env.unsigned_session_count)), " so far."),
      capForm),
    h("div", { class: "setting" },
      h("div", {}, h("div", { class: "setting-title" }, "Sessions"),
        h("p", { class: "setting-desc" },
          `Sign every widget out: each session issued until now is refused and the widget identifies again. Sessions last ${duration(env.session_ttl_seconds)}.`)),
      revoke));
}

/** A session lifetime in words: "1 hour", "90 minutes", "2 days". */
export function duration(seconds) {
  const units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  const [size, unit] = units.find(([u]) => seconds >= u && seconds % u === 0) || [1, "second"];
  const n = seconds / size;
  return `${count(n)} ${unit}${n === 1 ? "" : "s"}`;
}

async function revokeSessions(ctx, btn) {
  const { env } = ctx;
  const ok = await confirmDialog({
    title: "Revoke every session?",
    message: h("span", {}, `Every session of “${env.name}” issued until now is refused with `, h("code", {}, "session_expired"),
      ". Each widget identifies again on its next call, so a verified user needs a fresh signature or token from your backend."),
    note: h("div", { class: "alert alert-warning", "data-offline-warning": "" }, icon("alert"),
      h("div", {}, h("strong", {}, "Offline verifiers cannot see this. "),
        "A service that checks session tokens itself with the JWKS keeps accepting a token until its ",
        h("code", {}, "exp"), ` (at most ${duration(env.session_ttl_seconds)} from now). For an online check, call `,
        h("code", {}, "GET /v1/me"), ".")),
    confirmLabel: "Revoke all sessions",
    danger: true,
  });
  if (!ok) return;
  btn.disabled = true;
  ctx.busy();
  try {
    const r = await Api.revokeSessions(env.id);
    toast(`Every session issued before ${fmtDate(r.revoked_before)} is refused; widgets identify again.`);
  } catch (e) {
    toast(e.message, "error");
  } finally {
    btn.disabled = false;
    ctx.container.removeAttribute("aria-busy");
  }
}

// ---- diagnose -------------------------------------------------------------

/** At most this many values in `email` and `candidates` together (the API's limit). */
const MAX_CANDIDATES = 20;

function diagnoseCard(ctx) {
  const { env } = ctx;
  const uid = h("input", { class: "input", id: "diag-user", placeholder: "User id, exactly as signed" });
  const sig = h("input", { class: "input mono", id: "diag-sig", placeholder: "Signature (hex or base64)", spellcheck: "false" });
  const email = h("input", { class: "input", id: "diag-email", type: "email", autocomplete: "off", placeholder: "ada@example.com" });
  const others = h("textarea", { class: "input mono", id: "diag-candidates", rows: 3, spellcheck: "false",
    "aria-describedby": "diag-candidates-hint", placeholder: "One value a line, e.g. an id from another system" });
  const out = h("div", { class: "diag-out", "aria-live": "polite" });
  const form = h("form", { class: "form", onsubmit: async (ev) => {
    ev.preventDefault();
    const body = { user_id: uid.value, signature: sig.value.trim() };
    const mail = email.value.trim();
    const candidates = others.value.split("\n").map((l) => l.trim()).filter(Boolean);
    if (mail) body.email = mail;
    if (candidates.length) body.candidates = candidates;
    const given = candidates.length + (mail ? 1 : 0);
    if (given > MAX_CANDIDATES) {
      others.setAttribute("aria-invalid", "true");
      mount(out, errorBox({ code: "Too many values", message: `Give at most ${MAX_CANDIDATES} values to try, the email included (${given} now).` }));
      return;
    }
    others.removeAttribute("aria-invalid");
    try {
      const r = await Api.diagnose(env.id, body);
      mount(out, h("div", { class: `alert ${r.valid ? "alert-success" : "alert-warning"}`, "data-cause": r.cause || "valid" },
        icon(r.valid ? "check" : "alert"),
        h("div", {}, h("strong", {}, r.valid ? "Valid" : "Does not verify"), " — ", richText(r.message))));
    } catch (e) {
      mount(out, errorBox(e));
    }
  } },
  h("label", { class: "label", for: "diag-user" }, "User id"), uid,
  h("label", { class: "label", for: "diag-sig" }, "Signature"), sig,
  h("details", { class: "diag-more" },
    h("summary", {}, "Values you may have signed instead of the id (optional)"),
    h("div", { class: "form" },
      h("label", { class: "label", for: "diag-email" }, "The user's email"), email,
      h("label", { class: "label", for: "diag-candidates" }, "Other values you may have signed"), others,
      h("p", { class: "hint", id: "diag-candidates-hint" },
        `One a line, at most ${MAX_CANDIDATES} with the email. Vouch already tries the user's stored attributes.`))),
  h("div", {}, h("button", { type: "submit", class: "btn btn-secondary" }, icon("search"), "Check signature")), out);
  return card("Check a signature", { subtitle: "Paste what your backend produced; Vouch says whether it verifies and, if not, the likely mistake." }, form);
}
