// Every admin page and the demo, at 1366 px and 390 px wide, with realistic data: a
// screenshot of each into ci-output/screenshots/<page>-<width>.png, and axe-core finds no
// serious or critical accessibility violation on any of them.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, test } from "node:test";

import { axeViolations, launchBrowser, screenshot, sign, signIn, startServer } from "./harness.mjs";

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
  let viewerToken;
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
    // Admin tokens of every kind, and admin actions in the audit log.
    const viewer = await server.admin("POST", "/admin/v1/admin-tokens", { name: "Support desk (read-only)", role: "viewer" });
    assert.equal(viewer.status, 201);
    viewerToken = viewer.body.token;
    assert.equal((await server.admin("POST", "/admin/v1/admin-tokens", { name: "CI deploys", role: "admin", environment_ids: [env()] })).status, 201);
    assert.equal((await server.admin("POST", `/admin/v1/environments/${env()}/sessions/revoke`)).status, 200);
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
      // A full-page screenshot of a scrolled page paints the sticky bars where the view was.
      await page.evaluate(() => {
        document.querySelectorAll(".toast").forEach((t) => t.remove());
        window.scrollTo(0, 0);
      });
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

  test("admin tokens", () => atBothWidths("admin-tokens", adminPage("#/admin-tokens", "tr[data-token-id]")));

  const tokensDialog = (open) => async () => {
    await adminPage("#/admin-tokens", "tr[data-token-id]")();
    await open();
    await page.locator("dialog[open]").waitFor();
  };

  test("admin tokens: the new token dialog", () =>
    atBothWidths("admin-tokens-new-dialog", tokensDialog(() => page.click('[data-action="new-token"]'))));

  test("admin tokens: a new token, shown once", () =>
    atBothWidths("admin-tokens-created-dialog", tokensDialog(async () => {
      await page.click('[data-action="new-token"]');
      await page.fill("#token-name", "Screenshot");
      await page.check("#token-role-viewer");
      await page.click("dialog[open] button[type=submit]");
      await page.locator("dialog[open] [data-new-token]").waitFor();
    })));

  test("admin tokens: deleting one asks first", () =>
    atBothWidths("admin-tokens-delete-dialog", tokensDialog(() => page.locator('tr[data-role="viewer"] [data-action="delete-token"]').first().click())));

  test("admin tokens, as a viewer: why the page is not shown", async () => {
    await browser.context.clearCookies();
    await signIn(page, server.url, viewerToken);
    try {
      await atBothWidths("admin-tokens-no-access", adminPage("#/admin-tokens", "[data-no-access]"));
    } finally {
      await browser.context.clearCookies();
      await signIn(page, server.url, server.adminToken);
    }
  });

  test("identity verification: revoke all sessions", () =>
    atBothWidths("admin-identity-revoke-sessions-dialog", async () => {
      await adminPage(`#/env/${env()}`, "tr[data-key-id]")();
      await page.click('[data-action="revoke-sessions"]');
      await page.locator("dialog[open]").waitFor();
    }));

  test("identity verification: check a signature with candidates", () =>
    atBothWidths("admin-identity-check-signature", async () => {
      await adminPage(`#/env/${env()}`, "tr[data-key-id]")();
      await page.fill("#diag-user", "ada");
      await page.fill("#diag-sig", sign(server.secret, "crm-4411"));
      await page.click("details.diag-more summary");
      await page.fill("#diag-email", "ada@example.com");
      await page.fill("#diag-candidates", "crm-4411\nlegacy-77");
      await page.click('button:has-text("Check signature")');
      await page.locator('.diag-out [data-cause="signed_candidate"]').waitFor();
    }));

  test("users, searched", () => atBothWidths("admin-users-search", adminPage(`#/env/${env()}/users?search=visitor-`, "tr[data-user]")));

  test("a user: deleting asks first", () =>
    atBothWidths("admin-user-delete-dialog", async () => {
      await adminPage(`#/env/${env()}/users/${encodeURIComponent(LONG_ID)}`, '[data-field="key_id"]')();
      await page.click('[data-action="delete-user"]');
      await page.locator("dialog[open]").waitFor();
    }));

  test("audit log, filtered", () =>
    atBothWidths("admin-audit-filtered", adminPage(`#/env/${env()}/audit?kind=identity.rejected&user_id=ada&since=2026-01-01T00:00:00Z`, 'tr[data-audit-kind="identity.rejected"]')));

  test("webhooks: the add dialog", () =>
    atBothWidths("admin-webhooks-add-dialog", async () => {
      await adminPage(`#/env/${env()}/webhooks`, "[data-webhook-id]")();
      await page.click('[data-action="add-webhook"]');
      await page.locator("dialog[open]").waitFor();
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
