// Every admin page and the demo, at 1366 px and 390 px wide, with realistic data: a
// screenshot of each into ci-output/screenshots/<page>-<width>.png, and axe-core finds no
// serious or critical accessibility violation on any of them.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { axeViolations, launchBrowser, screenshot, sign, startServer } from "./harness.mjs";

const WIDTHS = [
  [1366, 768],
  [390, 844],
];
const LONG_ID = "customer-account_2026-11-01_ada.lovelace-longname@example-company.com";

describe("every page at 1366 and 390 px: screenshots and axe", () => {
  let server;
  let browser;
  let page;
  let receiver;
  const env = () => server.envId;

  const identify = async (body) => {
    const res = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.publishableKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };

  before(async () => {
    receiver = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end("ok"));
    });
    await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
    server = await startServer({ extraArgs: ["--demo", "--allow-private-webhooks"] });
    const hook = await server.admin("POST", `/admin/v1/environments/${env()}/webhooks`, {
      url: `http://127.0.0.1:${receiver.address().port}/vouch`,
    });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));


    // Traffic: verified users (one with a long id, a company and events), unverified ones,
    // and rejected identifies, so every page has something to show.
    for (const id of ["ada", LONG_ID]) {
      const r = await identify({ user_id: id, attributes: { name: "Ada Lovelace", email: "ada@example.com" }, signature: sign(server.secret, id) });
      assert.equal(r.status, 200);
      if (id === "ada") {
        const post = (path, body) => fetch(`${server.url}${path}`, {
          method: "POST",
          headers: { Authorization: `Bearer ${r.body.session_token}`, "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
        assert.equal((await post("/v1/group", { company_id: "acme", attributes: { name: "Acme" }, signature: sign(server.secret, "acme") })).status, 200);
        assert.equal((await post("/v1/track", { event: "report_exported", properties: { plan: "pro" } })).status, 202);
      }
    }
    for (let i = 0; i < 6; i++) assert.equal((await identify({ user_id: `visitor-${i}`, attributes: { name: `Visitor ${i}` } })).status, 200);
    assert.equal((await identify({ user_id: "ada", signature: sign(server.secret, "ada@example.com") })).status, 401);
    assert.equal((await identify({ user_id: "ada" })).status, 401);
    browser = await launchBrowser({ viewport: { width: 1366, height: 768 } });
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await new Promise((r) => receiver?.close(r) ?? r());
  });

  /** Screenshots and axe at both widths; `open()` brings the page to its ready state. */
  async function atBothWidths(name, open) {
    const problems = [];
    for (const [width, height] of WIDTHS) {
      await page.setViewportSize({ width, height });
      await open();
      await page.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));
      await screenshot(page, `${name}-${width}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      if (overflow > 0) problems.push(`${width} px: the page scrolls sideways by ${overflow} px`);
      for (const v of await axeViolations(page)) problems.push(`${width} px: ${v.impact} ${v.id} (${v.help}): ${v.nodes.slice(0, 5).join(", ")}`);
    }
    assert.deepEqual(problems, [], `${name}:\n${problems.join("\n")}`);
  }

  const adminPage = (hash, ready) => async () => {
    const target = `${server.url}/admin${hash}`;
    // The same URL again would be a no-op fragment navigation.
    if (page.url() === target) await page.reload();
    else await page.goto(target);
    await page.locator(ready).first().waitFor();
    await page.waitForFunction(() => !document.querySelector('[aria-busy="true"], .loading'));
  };

  test("sign-in page", async () => {
    await atBothWidths("admin-sign-in", async () => {
      await page.goto(`${server.url}/admin/login`);
      await page.locator("#token").waitFor();
    });
    await page.fill("#token", server.adminToken);
    await page.click("#login-submit");
    await page.waitForURL(/#\/environments$/);
  });

  test("environments", () => atBothWidths("admin-environments", adminPage("#/environments", `tr[data-env]`)));

  test("identity verification", () => atBothWidths("admin-identity", adminPage(`#/env/${env()}`, "tr[data-key-id]")));

  test("identity verification with the rotate dialog open", () =>
    atBothWidths("admin-identity-rotate-dialog", async () => {
      await adminPage(`#/env/${env()}`, "tr[data-key-id]")();
      await page.click('[data-action="rotate"]');
      await page.locator("dialog[open]").waitFor();
    }));

  test("users", () => atBothWidths("admin-users", adminPage(`#/env/${env()}/users`, "tr[data-user]")));

  test("a user with a long id", () =>
    atBothWidths("admin-user-detail", adminPage(`#/env/${env()}/users/${encodeURIComponent(LONG_ID)}`, '[data-field="key_id"]')));

  test("audit log", () => atBothWidths("admin-audit", adminPage(`#/env/${env()}/audit`, 'tr[data-audit-kind="identity.rejected"]')));

  test("webhooks", () =>
    atBothWidths("admin-webhooks", async () => {
      await adminPage(`#/env/${env()}/webhooks`, "[data-webhook-id]")();
      await page.locator("tr[data-delivery]").first().waitFor({ timeout: 10_000 });
    }));

  test("the small-screen menu, open", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await adminPage(`#/env/${env()}/users`, "tr[data-user]")();
    await page.click("#menu-toggle");
    await page.locator("#nav").waitFor({ state: "visible" });
    await screenshot(page, "admin-menu-open-390");
    assert.deepEqual(await axeViolations(page), []);
  });

  test("demo, after a sign-in and a refused unsigned call", () =>
    atBothWidths("demo", async () => {
      await page.goto(`${server.url}/demo`);
      await page.waitForSelector("body[data-ready='true']");
      await page.click("#sign-in");
      await page.waitForSelector("#badge[data-state='verified']");
      await page.click("#unsigned");
      await page.waitForSelector("#badge[data-state='rejected']");
    }));
});
