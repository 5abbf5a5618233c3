// The Webhooks page of one environment: endpoints with their status, the
// signing secret (shown once, when created or rotated), re-enabling and
// replaying a disabled endpoint, and every delivery attempt.

import { WebhookApi } from "./api.js";
import { h, mount, icon, time, fmtDate } from "./dom.js";
import {
  button, card, pageHeader, table, confirmDialog, openDialog, toast, errorBox, secretValueBox, kv, wrappedId, idText,
} from "./widgets.js";

/** At most `n` characters, with an ellipsis when cut. */
function truncate(text, n) {
  const chars = [...text];
  return chars.length > n ? `${chars.slice(0, n).join("")}…` : text;
}

export async function renderWebhooks(ctx) {
  const { env, container, stillCurrent } = ctx;
  // The event types come from the server, so a type it adds is offered at once.
  const [list, types] = await Promise.all([WebhookApi.list(env.id), WebhookApi.eventTypes()]);
  if (!stillCurrent()) return;
  ctx.busy = () => container.setAttribute("aria-busy", "true");
  const rerender = async () => {
    ctx.busy();
    try {
      await renderWebhooks(ctx);
    } finally {
      container.removeAttribute("aria-busy");
    }
  };
  const endpoints = list.data;
  // Each endpoint's delivery table loads on its own, after the page is shown.
  const cards = endpoints.map((w) => endpointCard(ctx, w, rerender));
  mount(container,
    pageHeader("Webhooks",
      "Vouch POSTs signed events (Standard Webhooks) to these URLs, retries failures with backoff, and disables an endpoint that keeps failing.",
      button("Add endpoint", { variant: "primary", "data-action": "add-webhook", onclick: () => addDialog(ctx, types.data, rerender) }, "plus"),
      env.name),
    endpoints.length === 0
      ? card(null, {}, h("div", { class: "empty-state", "data-empty": "webhooks" },
        h("p", {}, h("strong", {}, "No endpoints yet.")),
        h("p", { class: "muted" }, "Add one to be told when users are created or updated, identifies are rejected, or identity secrets change.")))
      : cards.map((c) => c.el));
  await Promise.all(cards.map((c) => c.load()));
}

function statusBadge(w) {
  if (!w.disabled) return h("span", { class: "badge badge-success", "data-webhook-status": "active" }, icon("check", "icon icon-xs"), "Active");
  return h("span", { class: "badge badge-danger", "data-webhook-status": "disabled", title: w.disabled_reason || "Disabled" },
    icon("alert", "icon icon-xs"), "Disabled");
}

function eventTypes(w) {
  if (!w.event_types) return h("span", { class: "muted small", "data-event-types": "all" }, "All events");
  return h("div", { class: "props", "data-event-types": w.event_types.join(",") }, w.event_types.map((t) => h("span", { class: "prop" }, t)));
}

function endpointCard(ctx, w, rerender) {
  const { env } = ctx;
  const act = async (fn, message) => {
    ctx.busy();
    try {
      await fn();
      if (message) toast(message);
    } catch (e) {
      toast(e.message, "error");
    }
    await rerender();
  };

  const actions = [
    statusBadge(w),
    w.disabled
      ? button("Enable", { size: "sm", variant: "primary", "data-action": "enable", onclick: () => enableDialog(ctx, w, rerender) }, "check")
      : button("Replay", { size: "sm", "data-action": "replay", title: "Send again every message this endpoint has not received",
        onclick: () => act(async () => {
          const r = await WebhookApi.replay(env.id, w.id);
          toast(`${r.queued} deliver${r.queued === 1 ? "y" : "ies"} queued again`);
        }) }, "rotate"),
    button("Rotate secret", { size: "sm", "data-action": "rotate-secret", onclick: () => rotateDialog(ctx, w, rerender) }, "key"),
    button("Delete", { size: "sm", variant: "danger-ghost", "data-action": "delete", onclick: async () => {
      const ok = await confirmDialog({
        title: "Delete this endpoint?",
        message: "Vouch stops sending events to it and forgets its delivery log. This cannot be undone.",
        detail: kv([["URL", h("code", { class: "mono-ish" }, w.url)], ["Created", time(w.created_at)]]),
        confirmLabel: "Delete endpoint",
        danger: true,
      });
      if (ok) await act(() => WebhookApi.remove(env.id, w.id), "Endpoint deleted");
    } }, "trash"),
  ];

  const log = deliveriesTable(ctx, w);
  const el = h("section", { class: "card webhook", "data-webhook-id": w.id, "data-disabled": w.disabled ? "true" : "false" },
    h("header", { class: "card-head" },
      h("div", { class: "webhook-head" },
        h("h2", { class: "card-title webhook-url mono-ish", title: w.url }, wrappedId(w.url)),
        h("div", { class: "webhook-meta" }, eventTypes(w),
          h("span", { class: "muted small" }, h("code", {}, w.id), " · added ", time(w.created_at)))),
      h("div", { class: "card-actions webhook-actions" }, actions)),
    w.disabled
      ? h("div", { class: "card-body webhook-alert" },
        h("div", { class: "alert alert-danger", "data-disabled-reason": "" }, icon("alert"),
          h("div", {}, h("strong", {}, `Disabled ${fmtDate(w.disabled_at)}. `), w.disabled_reason || "No reason recorded.",
            " Messages are held while it is disabled: enable it, then replay to deliver them.")))
      : null,
    log.el);
  return { el, load: log.load };
}

function resultCell(a) {
  if (a.status_code !== null && a.status_code !== undefined) {
    return h("span", { class: `badge badge-${a.success ? "success" : "danger"}`, "data-status-code": a.status_code,
      title: a.error || "" }, `HTTP ${a.status_code}`);
  }
  return h("span", { class: "badge badge-danger", "data-status-code": "error", title: a.error || "" },
    icon("alert", "icon icon-xs"), truncate(a.error || "Failed", 60));
}

function responseCell(a) {
  const text = a.response || (a.status_code !== null && a.status_code !== undefined ? a.error : null);
  if (!text) return h("span", { class: "muted" }, "—");
  return h("code", { class: "small response-snippet", title: truncate(text, 1000) }, truncate(text, 80));
}

/** The attempt log of one endpoint, newest first, paged with an in-memory trail. */
function deliveriesTable(ctx, w) {
  const { env } = ctx;
  const body = h("div", { class: "deliveries-body" });
  const trail = [];
  let cursor = "";

  const load = async () => {
    body.setAttribute("aria-busy", "true");
    try {
      const page = await WebhookApi.deliveries(env.id, w.id, cursor);
      mount(body,
        table([
          { label: "Time", render: (a) => time(a.created_at) },
          { label: "Message", render: (a) => h("code", { class: "small", "data-message-id": a.message_id }, idText(a.message_id)) },
          { label: "Attempt", cls: "num", render: (a) => `#${a.attempt}` },
          { label: "Result", render: resultCell },
          { label: "Latency", cls: "num", render: (a) => `${a.latency_ms} ms` },
          { label: "Response", cls: "wide", render: responseCell },
          { label: "Next retry", render: (a) => (a.next_retry_at ? time(a.next_retry_at) : h("span", { class: "muted" }, a.success ? "—" : "None")) },
        ], page.data, {
          label: "Delivery attempts",
          empty: "No delivery attempts yet.",
          rowAttrs: (a) => ({ "data-delivery": a.delivery_id, "data-success": a.success ? "true" : "false", "data-attempt": a.attempt }),
        }),
        h("div", { class: "pager" },
          button("Newer", { size: "sm", "data-action": "newer", disabled: !cursor, onclick: () => {
            cursor = trail.pop() || "";
            load();
          } }, "chevronLeft"),
          button("Older", { size: "sm", "data-action": "older", disabled: !page.next_cursor, onclick: () => {
            trail.push(cursor);
            cursor = page.next_cursor;
            load();
          } }, "chevronRight")));
    } catch (e) {
      mount(body, h("div", { class: "card-body" }, errorBox(e)));
    } finally {
      body.removeAttribute("aria-busy");
    }
  };

  const refresh = button("Refresh", { size: "sm", variant: "ghost", "data-action": "refresh-deliveries", onclick: () => {
    cursor = "";
    trail.length = 0;
    load();
  } }, "rotate");
  const el = h("div", { class: "deliveries", "data-deliveries": w.id },
    h("div", { class: "toolbar" },
      h("div", {}, h("h3", { class: "deliveries-title" }, "Delivery attempts"),
        h("p", { class: "muted small" }, "Every attempt, newest first: HTTP status or error, latency, the start of the response, next retry.")),
      refresh),
    body);
  return { el, load };
}

function showWebhookSecret(secret, id, title) {
  return openDialog({
    title,
    wide: true,
    build: (close) => h("div", { "data-new-webhook-secret": id },
      h("div", { class: "dialog-body" },
        h("div", { class: "alert alert-warning" }, icon("key"),
          h("div", {}, "Copy this signing secret into your receiver now: it is shown only once. ",
            "Your receiver checks the webhook-signature header with it (Standard Webhooks).")),
        secretValueBox(secret, "Signing secret"),
        h("p", { class: "hint" }, "Endpoint ", h("code", {}, id))),
      h("footer", { class: "dialog-foot" }, button("Done", { variant: "primary", onclick: () => close(true) }))),
  });
}

function addDialog(ctx, types, rerender) {
  const { env } = ctx;
  openDialog({
    title: "Add a webhook endpoint",
    wide: true,
    build: (close) => {
      const url = h("input", { class: "input mono", id: "webhook-url", type: "url", required: true, autocomplete: "off",
        spellcheck: "false", placeholder: "https://api.example.com/webhooks/vouch" });
      const boxes = types.map(({ type: t, description: desc }) => {
        const input = h("input", { type: "checkbox", name: "event_types", value: t, id: `evt-${t}` });
        return { t, input, el: h("label", { class: "check", for: `evt-${t}` }, input,
          h("span", {}, h("code", {}, t), h("span", { class: "hint" }, desc))) };
      });
      const err = h("div", {});
      const form = h("form", { class: "form", onsubmit: async (ev) => {
        ev.preventDefault();
        const submit = form.querySelector("button[type=submit]");
        submit.disabled = true;
        const picked = boxes.filter((b) => b.input.checked).map((b) => b.t);
        try {
          const body = { url: url.value.trim() };
          if (picked.length) body.event_types = picked;
          const created = await WebhookApi.create(env.id, body);
          close(true);
          await showWebhookSecret(created.secret, created.id, "Endpoint added: its signing secret");
          await rerender();
        } catch (e) {
          submit.disabled = false;
          url.setAttribute("aria-invalid", "true");
          mount(err, errorBox(e));
        }
      } },
      h("div", { class: "dialog-body" },
        h("label", { class: "label", for: "webhook-url" }, "Endpoint URL"), url,
        h("fieldset", { class: "checks" },
          h("legend", { class: "label" }, "Events"),
          boxes.map((b) => b.el),
          h("p", { class: "hint" }, "Leave every box empty to receive all event types, including ones added later.")),
        err),
      h("footer", { class: "dialog-foot" },
        button("Cancel", { onclick: () => close(false) }),
        h("button", { type: "submit", class: "btn btn-primary", "data-confirm": "" }, "Add endpoint")));
      queueMicrotask(() => url.focus());
      return form;
    },
  });
}

function rotateDialog(ctx, w, rerender) {
  const { env } = ctx;
  openDialog({
    title: "Rotate the signing secret",
    build: (close) => {
      const err = h("div", {});
      const go = button("Create new secret", { variant: "primary", "data-confirm": "" }, "rotate");
      go.addEventListener("click", async () => {
        go.disabled = true;
        try {
          const r = await WebhookApi.rotate(env.id, w.id);
          close(true);
          await showWebhookSecret(r.secret, w.id, "New signing secret");
          await rerender();
        } catch (e) {
          go.disabled = false;
          mount(err, errorBox(e));
        }
      });
      return h("div", {},
        h("div", { class: "dialog-body" },
          h("p", {}, "A new secret is created. For 24 hours every delivery carries a signature from both the old and the new secret, ",
            "so you can update your receiver without dropping events."),
          err),
        h("footer", { class: "dialog-foot" }, button("Cancel", { onclick: () => close(false) }), go));
    },
  });
}

function enableDialog(ctx, w, rerender) {
  const { env } = ctx;
  openDialog({
    title: "Enable this endpoint?",
    build: (close) => {
      const replay = h("input", { type: "checkbox", id: "enable-replay" });
      replay.checked = true;
      const err = h("div", {});
      const go = button("Enable", { variant: "primary", "data-confirm": "" }, "check");
      go.addEventListener("click", async () => {
        go.disabled = true;
        try {
          await WebhookApi.enable(env.id, w.id);
          if (replay.checked) {
            const r = await WebhookApi.replay(env.id, w.id);
            toast(`Endpoint enabled; ${r.queued} deliver${r.queued === 1 ? "y" : "ies"} queued again`);
          } else {
            toast("Endpoint enabled");
          }
          close(true);
          await rerender();
        } catch (e) {
          go.disabled = false;
          mount(err, errorBox(e));
        }
      });
      return h("div", {},
        h("div", { class: "dialog-body" },
          h("p", {}, "Vouch starts delivering new events to it again."),
          w.disabled_reason ? h("div", { class: "dialog-detail" }, kv([["Disabled because", w.disabled_reason]])) : null,
          h("label", { class: "check", for: "enable-replay" }, replay,
            h("span", {}, "Replay undelivered messages", h("span", { class: "hint" }, "Send again every message it missed or that failed for good."))),
          err),
        h("footer", { class: "dialog-foot" }, button("Cancel", { onclick: () => close(false) }), go));
    },
  });
}
