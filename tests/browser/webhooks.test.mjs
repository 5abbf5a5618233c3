// The admin UI's Webhooks page in real headless Chromium against the real server (started
// with --allow-private-webhooks so a loopback receiver is allowed): add an endpoint, see its
// whsec_ secret once, get a real signed delivery, read the attempt in the deliveries table,
// see a failing endpoint's HTTP 500 with its next retry, rotate the secret, delete. The
// dialog's event types come from the server's list.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { ADMIN_TOKEN, launchBrowser, screenshot as save, sign, startServer } from "./harness.mjs";

/** A screenshot without the transient toasts of earlier steps. */
async function screenshot(page, name) {
  await page.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));
  return save(page, name);
}

/** Standard Webhooks: base64 HMAC-SHA256 over `id.timestamp.body` with the decoded secret. */
function webhookSignature(secret, id, timestamp, body) {
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  return createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64");
}

/** Polls `fn` until it returns a truthy value. */
async function eventually(fn, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("admin UI: webhooks", () => {
  let server;
  let browser;
  let page;
  let receiver;
  let receiverUrl;
  /** Every request the receiver got: {path, headers, body}. */
  const received = [];
  let endpointId;
  let firstSecret;

  const identify = async (userId) => {
    const res = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.publishableKey}`, "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: userId, signature: sign(server.secret, userId), attributes: { name: userId } }),
    });
    assert.equal(res.status, 200, await res.text());
  };

  const webhooksPage = async () => {
    const target = `${server.url}/admin#/env/${server.envId}/webhooks`;
    if (page.url() === target) await page.reload();
    else await page.goto(target);
    await page.locator(".page-head h1", { hasText: "Webhooks" }).waitFor();
    await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
  };

  const card = (id) => page.locator(`section[data-webhook-id="${id}"]`);

  /** Adds an endpoint through the dialog; resolves to {id, secret}. */
  const addEndpoint = async (url, types) => {
    await page.click('[data-action="add-webhook"]');
    const dialog = page.locator("dialog[open]");
    await dialog.locator("#webhook-url").fill(url);
    for (const t of types) await dialog.locator(`input[value="${t}"]`).check();
    await dialog.locator("button[type=submit]").click();
    const shown = page.locator("dialog[open] [data-new-webhook-secret]");
    await shown.waitFor();
    const id = await shown.getAttribute("data-new-webhook-secret");
    const secret = await shown.locator("[data-secret-value]").inputValue();
    return { id, secret };
  };

  before(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        received.push({ path: req.url, headers: req.headers, body });
        if (req.url.startsWith("/fail")) {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end("receiver exploded: database unavailable");
        } else {
          res.writeHead(200, { "content-type": "application/json" });
          res.end('{"received":true}');
        }
      });
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${receiver.address().port}`;
    server = await startServer({ extraArgs: ["--allow-private-webhooks"] });
    browser = await launchBrowser({ viewport: { width: 1440, height: 900 } });
    page = await browser.newPage();
    await page.goto(`${server.url}/admin`);
    await page.fill("#token", ADMIN_TOKEN);
    await page.click("#login-submit");
    await page.waitForURL(/\/admin#\/environments$/);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await new Promise((resolve) => (receiver ? receiver.close(resolve) : resolve()));
  });

  test("the environment's sidebar links to an empty Webhooks page", async () => {
    await page.goto(`${server.url}/admin#/env/${server.envId}`);
    const link = page.locator("#nav a.nav-link", { hasText: "Webhooks" });
    await link.click();
    await page.waitForURL(new RegExp(`#/env/${server.envId}/webhooks$`));
    await page.locator(".page-head h1", { hasText: "Webhooks" }).waitFor();
    assert.equal(await link.getAttribute("aria-current"), "page");
    await page.locator('[data-empty="webhooks"]').waitFor();
    assert.equal(await page.locator("section[data-webhook-id]").count(), 0);
  });

  test("the add dialog offers exactly the server's event types, with their descriptions", async () => {
    const types = (await server.admin("GET", "/admin/v1/webhook-event-types")).body.data;
    assert.ok(types.some((t) => t.type === "user.deleted"), "the server lists user.deleted");
    await webhooksPage();
    await page.click('[data-action="add-webhook"]');
    const dialog = page.locator("dialog[open]");
    const offered = await dialog.locator('input[name="event_types"]').evaluateAll((boxes) =>
      boxes.map((b) => ({ type: b.value, description: b.closest("label").querySelector(".hint").textContent })));
    assert.deepEqual(offered, types.map(({ type, description }) => ({ type, description })));
    await dialog.locator("button", { hasText: "Cancel" }).click();
    await page.waitForFunction(() => !document.querySelector("dialog[open]"));
  });

  test("adding an endpoint shows its whsec_ secret once and lists it as active", async () => {
    const { id, secret } = await addEndpoint(`${receiverUrl}/hooks`, ["user.created", "user.updated"]);
    assert.match(id, /^wh_/);
    assert.match(secret, /^whsec_[A-Za-z0-9+/=]+$/);
    endpointId = id;
    firstSecret = secret;
    await page.locator("dialog[open] .dialog-foot button", { hasText: "Done" }).click();
    await card(id).waitFor();

    const c = card(id);
    assert.equal(await c.locator(".webhook-url").textContent(), `${receiverUrl}/hooks`);
    assert.equal(await c.locator("[data-event-types]").getAttribute("data-event-types"), "user.created,user.updated");
    assert.equal(await c.locator("[data-webhook-status]").getAttribute("data-webhook-status"), "active");
    assert.match(await c.locator("[data-webhook-status]").textContent(), /Active/);
    assert.match(await c.locator("tbody").textContent(), /No delivery attempts yet/);
    // The secret is nowhere on the page once the dialog is closed, nor in the API's listing.
    assert.doesNotMatch(await page.locator("body").textContent(), /whsec_/);
    const list = await server.admin("GET", `/admin/v1/environments/${server.envId}/webhooks`);
    assert.equal(list.status, 200);
    assert.equal(list.body.data.length, 1);
    assert.equal(list.body.data[0].secret, undefined);
    assert.deepEqual(list.body.data[0].event_types, ["user.created", "user.updated"]);
  });

  test("an invalid URL is refused inside the dialog", async () => {
    await page.click('[data-action="add-webhook"]');
    const dialog = page.locator("dialog[open]");
    await dialog.locator("#webhook-url").fill("ftp://example.com/hook");
    await dialog.locator("button[type=submit]").click();
    await dialog.locator(".alert-danger").waitFor();
    assert.match(await dialog.locator(".alert-danger").textContent(), /invalid_request/);
    await dialog.locator(".dialog-foot button", { hasText: "Cancel" }).click();
    assert.equal(await page.locator("section[data-webhook-id]").count(), 1);
  });

  test("an identify is delivered, signed with the shown secret, and its 200 appears in the deliveries table", async () => {
    await identify("hook-user-1");
    const hit = await eventually(() => received.find((r) => r.path === "/hooks"), "the receiver to get the webhook");
    const payload = JSON.parse(hit.body);
    assert.equal(payload.type, "user.created");
    const id = hit.headers["webhook-id"];
    const ts = hit.headers["webhook-timestamp"];
    const sigs = hit.headers["webhook-signature"].split(" ").map((s) => s.replace(/^v1,/, ""));
    assert.ok(sigs.includes(webhookSignature(firstSecret, id, ts, hit.body)), "signed with the secret the UI showed");

    // The attempt is recorded just after the answer: refresh until the row is there.
    const c = card(endpointId);
    const row = c.locator('tr[data-delivery][data-success="true"]').first();
    await eventually(async () => {
      await c.locator('[data-action="refresh-deliveries"]').click();
      await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
      return (await row.count()) > 0;
    }, "the delivery row");
    const cells = await row.locator("td").allTextContents();
    assert.equal(await row.locator("[data-message-id]").textContent(), id);
    assert.equal(cells[2], "#1");
    assert.equal(cells[3], "HTTP 200");
    assert.match(cells[4], /^\d+ ms$/);
    assert.equal(cells[5], '{"received":true}');
    assert.equal(cells[6], "—", "no retry after a success");

    // The page after a reload shows the same.
    await webhooksPage();
    assert.equal(await card(endpointId).locator('tr[data-delivery][data-success="true"]').count(), 1);
  });

  test("a failing endpoint shows HTTP 500, the response snippet and the next retry", async () => {
    const { id } = await addEndpoint(`${receiverUrl}/fail`, []);
    await page.locator("dialog[open] .dialog-foot button", { hasText: "Done" }).click();
    const c = card(id);
    await c.waitFor();
    assert.equal(await c.locator("[data-event-types]").getAttribute("data-event-types"), "all");
    assert.equal(await c.locator("[data-event-types]").textContent(), "All events");

    await identify("hook-user-2");
    const row = c.locator('tr[data-delivery][data-success="false"]').first();
    await eventually(async () => {
      await c.locator('[data-action="refresh-deliveries"]').click();
      await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));
      return (await row.count()) > 0;
    }, "the failed delivery row");
    const cells = await row.locator("td").allTextContents();
    assert.equal(cells[3], "HTTP 500");
    assert.match(cells[5], /receiver exploded/);
    assert.ok(await row.locator("td").nth(6).locator("time").count(), "a next retry time is shown");
    assert.equal(await row.locator(".badge-danger").count(), 1);

    // Everything from the server is text, never markup.
    assert.equal(await page.locator(".response-snippet *").count(), 0);

    await webhooksPage();
    await screenshot(page, "admin-webhooks");
  });

  test("rotating the secret shows a new one once", async () => {
    await card(endpointId).locator('[data-action="rotate-secret"]').click();
    await page.locator("dialog[open] [data-confirm]").click();
    const shown = page.locator(`dialog[open] [data-new-webhook-secret="${endpointId}"]`);
    await shown.waitFor();
    const fresh = await shown.locator("[data-secret-value]").inputValue();
    assert.match(fresh, /^whsec_/);
    assert.notEqual(fresh, firstSecret);
    await page.locator("dialog[open] .dialog-foot button", { hasText: "Done" }).click();
    await page.waitForFunction(() => !document.querySelector("dialog[open]"));

    // The next delivery carries signatures from both secrets (24 h grace).
    const before = received.length;
    await identify("hook-user-3");
    const hit = await eventually(() => received.slice(before).find((r) => r.path === "/hooks"), "a delivery after rotation");
    const sigs = hit.headers["webhook-signature"].split(" ").map((s) => s.replace(/^v1,/, ""));
    const [id, ts] = [hit.headers["webhook-id"], hit.headers["webhook-timestamp"]];
    assert.ok(sigs.includes(webhookSignature(fresh, id, ts, hit.body)), "signed with the new secret");
    assert.ok(sigs.includes(webhookSignature(firstSecret, id, ts, hit.body)), "and the old one during the grace period");
  });

  test("deleting an endpoint asks first, then removes it", async () => {
    const c = card(endpointId);
    await c.locator('[data-action="delete"]').click();
    await page.locator("dialog[open] .dialog-foot button", { hasText: "Cancel" }).click();
    assert.equal(await c.count(), 1, "cancel keeps it");

    await c.locator('[data-action="delete"]').click();
    await page.locator("dialog[open] [data-confirm]").click();
    await c.waitFor({ state: "detached" });
    const list = await server.admin("GET", `/admin/v1/environments/${server.envId}/webhooks`);
    assert.deepEqual(list.body.data.map((w) => w.id).includes(endpointId), false);
    assert.equal(list.body.data.length, 1);
    // The refused URL's 400 is logged by Chromium as a failed load; nothing else may be.
    const errors = page.consoleMessages.filter((m) => (m.type === "error" || m.type === "pageerror") && !/Failed to load resource/.test(m.text));
    assert.deepEqual(errors, []);
  });
});
