// The admin UI's users search, user erasure and audit filters in real headless Chromium
// against the real server. The browser runs in New York time, so that the audit page's
// conversion of its datetime-local fields to RFC 3339 UTC is seen to happen.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ADMIN_TOKEN, launchBrowser, sign, signIn, startServer } from "./harness.mjs";

describe("admin UI: users search, erasure and audit filters", () => {
  let server;
  let browser;
  let page;
  let bootstrapId;

  const identify = async (body) => {
    const res = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.publishableKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  const verifiedIdentify = (id, attributes = {}) => identify({ user_id: id, signature: sign(server.secret, id), attributes });

  /** Opens `hash` (same URL: reloads) and waits until the page has settled. */
  const open = async (hash) => {
    const target = `${server.url}/admin${hash}`;
    if (page.url() === target) await page.reload();
    else await page.goto(target);
    await page.locator(".page-head h1").waitFor();
    await settled();
  };
  const settled = () => page.waitForFunction(() => !document.querySelector('[aria-busy="true"], .loading'));
  const userIds = () => page.locator("tr[data-user]").evaluateAll((rows) => rows.map((r) => r.dataset.user));
  const hashQuery = () => new URLSearchParams(new URL(page.url()).hash.split("?")[1] || "");
  const env = () => server.envId;

  before(async () => {
    server = await startServer();
    bootstrapId = (await server.admin("GET", "/admin/v1/admin-tokens")).body.data[0].id;
    // 28 unverified acme-… users (two pages of 25), 3 verified ones, and a few others.
    for (let i = 0; i < 28; i++) assert.equal((await identify({ user_id: `acme-${String(i).padStart(2, "0")}` })).status, 200);
    for (const id of ["acme-v1", "acme-v2", "acme-v3", "Acme-upper", "zed"]) assert.equal((await verifiedIdentify(id)).status, 200);
    browser = await launchBrowser({ viewport: { width: 1366, height: 900 }, timezoneId: "America/New_York" });
    page = await browser.newPage();
    await signIn(page, server.url, ADMIN_TOKEN);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("the users search narrows by id prefix as one types, asking the server once per pause", async () => {
    await open(`#/env/${env()}/users`);
    const searches = [];
    const onRequest = (r) => {
      if (r.url().includes("/users?") && r.url().includes("search=")) searches.push(new URL(r.url()).searchParams.get("search"));
    };
    page.on("request", onRequest);
    await page.locator("#user-search").pressSequentially("acme-v", { delay: 30 });
    await page.waitForFunction(() => [...document.querySelectorAll("tr[data-user]")].every((r) => r.dataset.user.startsWith("acme-v")));
    await settled();
    page.off("request", onRequest);
    assert.deepEqual(await userIds(), ["acme-v1", "acme-v2", "acme-v3"]);
    assert.deepEqual(searches, ["acme-v"], "one request, after the typing paused");
    assert.equal(hashQuery().get("search"), "acme-v", "the URL keeps the search");
    assert.equal(await page.evaluate(() => document.activeElement.id), "user-search", "the focus stays in the box");
  });

  test("the search is byte for byte: case counts, and no match says so", async () => {
    await open(`#/env/${env()}/users?search=Acme`);
    assert.equal(await page.locator("#user-search").inputValue(), "Acme", "a reload or a link keeps the search");
    assert.deepEqual(await userIds(), ["Acme-upper"]);
    await page.locator("#user-search").fill("nobody");
    await page.locator("td.empty", { hasText: "No user id starts with “nobody”." }).waitFor();
  });

  test("the search keeps the verified filter and the paging", async () => {
    await open(`#/env/${env()}/users?search=acme-`);
    assert.equal((await userIds()).length, 25, "a full first page");
    assert.ok((await userIds()).every((id) => id.startsWith("acme-")));
    await page.click('[data-page="next"]');
    await page.waitForFunction(() => document.querySelector("[data-page-info]")?.textContent.startsWith("Page 2"));
    await settled();
    assert.equal(hashQuery().get("search"), "acme-");
    assert.deepEqual(await userIds(), ["acme-25", "acme-26", "acme-27", "acme-v1", "acme-v2", "acme-v3"], "the rest, in id order");
    assert.equal(await page.locator("#user-search").inputValue(), "acme-");

    await page.click('[data-filter="true"]');
    await page.waitForFunction(() => new URLSearchParams(location.hash.split("?")[1]).get("verified") === "true");
    await settled();
    assert.equal(hashQuery().get("search"), "acme-", "the filter keeps the search");
    assert.deepEqual(await userIds(), ["acme-v1", "acme-v2", "acme-v3"]);
    assert.match(await page.locator("[data-page-info]").textContent(), /^Page 1/, "a new filter starts at page 1");

    // Typing keeps the filter.
    await page.locator("#user-search").fill("acme-v2");
    await page.waitForFunction(() => document.querySelectorAll("tr[data-user]").length === 1);
    assert.equal(hashQuery().get("verified"), "true");
    assert.equal(hashQuery().get("search"), "acme-v2");
  });

  test("a bad search is answered with the server's message, not a broken page", async () => {
    await open(`#/env/${env()}/users`);
    await page.locator("#user-search").fill("x".repeat(256));
    await page.locator(".users-results .alert-danger", { hasText: "1–255 bytes" }).waitFor();
    assert.equal(await page.locator("#user-search").count(), 1, "the search box stays");
  });

  test("deleting a user asks first, naming it and what is erased; then the list shows a notice and the user is gone", async () => {
    const id = "erase-me@example.com";
    const r = await verifiedIdentify(id, { name: "Erase Me", email: id });
    assert.equal(r.status, 200);
    const session = r.body.session_token;
    const track = () => fetch(`${server.url}/v1/track`, {
      method: "POST",
      headers: { Authorization: `Bearer ${session}`, "Content-Type": "application/json" },
      body: JSON.stringify({ event: "viewed_invoice" }),
    });
    assert.equal((await track()).status, 202);

    await open(`#/env/${env()}/users/${encodeURIComponent(id)}`);
    await page.click('[data-action="delete-user"]');
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    assert.equal(await dialog.locator("[data-delete-user]").textContent(), id, "the dialog names the user id");
    const text = await dialog.textContent();
    for (const what of [/attributes/, /company memberships/, /tracked events/, /sessions are refused/, /cannot be undone/]) assert.match(text, what);
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), "Cancel", "focus starts on Cancel");
    await dialog.locator("button", { hasText: "Cancel" }).click();
    assert.equal((await server.admin("GET", `/admin/v1/environments/${env()}/users/${encodeURIComponent(id)}`)).status, 200, "Cancel erases nothing");

    await page.click('[data-action="delete-user"]');
    await page.locator("dialog[open] [data-confirm]").click();
    await page.waitForURL((u) => u.hash === `#/env/${env()}/users`);
    const notice = page.locator("[data-notice]");
    await notice.waitFor();
    assert.match(await notice.textContent(), new RegExp(`User ${id.replace(/[.]/g, "\\.")} was deleted`));
    assert.ok(!(await userIds()).includes(id), "not listed any more");
    assert.equal((await server.admin("GET", `/admin/v1/environments/${env()}/users/${encodeURIComponent(id)}`)).status, 404);
    assert.equal((await track()).status, 401, "its session is refused");
    const audit = await server.admin("GET", `/admin/v1/environments/${env()}/audit?kind=user.deleted`);
    assert.equal(audit.body.data[0].user_id, id);
    assert.equal(audit.body.data[0].actor, bootstrapId);

    // The notice is shown once: coming back to the list shows none.
    await open(`#/env/${env()}/users?verified=true`);
    assert.equal(await page.locator("[data-notice]").count(), 0);
  });

  describe("the audit log", () => {
    before(async () => {
      // Two rejected identifies (an unsigned call for a verified user, and a wrong proof),
      // 55 settings changes by the bootstrap token, and a revocation of every session.
      assert.equal((await identify({ user_id: "zed" })).status, 401);
      assert.equal((await identify({ user_id: "acme-v1", signature: sign(server.secret, "acme-v1@example.com") })).status, 401);
      for (let i = 0; i < 55; i++) {
        const r = await server.admin("PATCH", `/admin/v1/environments/${env()}`, { unsigned_session_limit: 1000 + i });
        assert.equal(r.status, 200);
      }
      assert.equal((await server.admin("POST", `/admin/v1/environments/${env()}/sessions/revoke`)).status, 200);
    });

    const kinds = () => page.locator("tr[data-audit-kind]").evaluateAll((rows) => rows.map((r) => r.dataset.auditKind));

    test("the actor column names the admin token that acted, and Vouch for the widget API", async () => {
      await open(`#/env/${env()}/audit`);
      const revoked = page.locator('tr[data-audit-kind="sessions.revoked"] [data-actor]');
      assert.equal(await revoked.getAttribute("data-actor"), bootstrapId);
      assert.match(await revoked.textContent(), new RegExp(`^bootstrap${bootstrapId}$`));
      // Older than the 50 settings changes: on the first page only when filtered.
      await open(`#/env/${env()}/audit?kind=identity.rejected`);
      const rejected = page.locator('tr[data-audit-kind="identity.rejected"] [data-actor]').first();
      assert.equal(await rejected.getAttribute("data-actor"), "");
      assert.equal(await rejected.textContent(), "Vouch");
    });

    test("kind and user id filters narrow the log, live in the URL and survive a reload; clear filters undoes them", async () => {
      await open(`#/env/${env()}/audit`);
      await page.selectOption("#audit-kind", "identity.rejected");
      await page.click('[data-action="apply-filters"]');
      await page.waitForFunction(() => location.hash.includes("kind=identity.rejected"));
      await settled();
      assert.deepEqual(await kinds(), ["identity.rejected", "identity.rejected"]);

      await page.fill("#audit-user", "zed");
      await page.click('[data-action="apply-filters"]');
      await page.waitForFunction(() => location.hash.includes("user_id=zed"));
      await settled();
      assert.deepEqual(await kinds(), ["identity.rejected"]);
      assert.equal(hashQuery().get("kind"), "identity.rejected");

      await page.reload();
      await page.locator("tr[data-audit-kind]").first().waitFor();
      assert.equal(await page.locator("#audit-kind").inputValue(), "identity.rejected");
      assert.equal(await page.locator("#audit-user").inputValue(), "zed");
      assert.deepEqual(await kinds(), ["identity.rejected"]);

      await page.click('[data-action="clear-filters"]');
      await page.waitForFunction(() => location.hash.endsWith("/audit"));
      await settled();
      assert.equal(await page.locator("#audit-kind").inputValue(), "");
      assert.ok((await kinds()).length > 2);
      assert.equal(await page.locator('[data-action="clear-filters"]').count(), 0, "nothing to clear");
    });

    test("the time range is sent as RFC 3339 UTC: From included, Until not", async () => {
      await open(`#/env/${env()}/audit`);
      // 09:30 in New York in January is 14:30 UTC.
      await page.fill("#audit-since", "2030-01-15T09:30");
      await page.click('[data-action="apply-filters"]');
      await page.waitForFunction(() => location.hash.includes("since="));
      await settled();
      assert.equal(hashQuery().get("since"), "2030-01-15T14:30:00Z");
      await page.locator("td.empty", { hasText: "No entry matches these filters." }).waitFor();

      await page.fill("#audit-since", "2020-07-01T00:00");
      await page.fill("#audit-until", "2030-01-15T09:30");
      await page.click('[data-action="apply-filters"]');
      await page.waitForFunction(() => location.hash.includes("until="));
      await settled();
      assert.equal(hashQuery().get("since"), "2020-07-01T04:00:00Z", "summer time: UTC-4");
      assert.equal(hashQuery().get("until"), "2030-01-15T14:30:00Z");
      assert.ok((await kinds()).length > 0);

      // A shared link to the second of one entry: From includes it, Until excludes it.
      const entry = (await server.admin("GET", `/admin/v1/environments/${env()}/audit?kind=sessions.revoked`)).body.data[0];
      await open(`#/env/${env()}/audit?kind=sessions.revoked&since=${entry.created_at}`);
      assert.deepEqual(await page.locator("tr[data-audit-kind]").evaluateAll((rows) => rows.map((r) => r.dataset.auditId)), [entry.id]);
      assert.equal(await page.locator("#audit-since").getAttribute("step"), "1", "the field shows the link's seconds");
      await open(`#/env/${env()}/audit?kind=sessions.revoked&until=${entry.created_at}`);
      assert.equal(await page.locator("tr[data-audit-kind]").count(), 0);
    });

    test("From after Until is refused before asking the server", async () => {
      await open(`#/env/${env()}/audit`);
      await page.fill("#audit-since", "2030-01-15T09:30");
      await page.fill("#audit-until", "2030-01-15T09:00");
      await page.click('[data-action="apply-filters"]');
      await page.locator(".filter-error .alert", { hasText: "must be before" }).waitFor();
      assert.ok(!page.url().includes("since="), "not applied");
    });

    test("paging keeps the filters", async () => {
      await open(`#/env/${env()}/audit?kind=environment.updated`);
      assert.equal((await kinds()).length, 50);
      await page.click('[data-page="older"]');
      await page.waitForFunction(() => location.hash.includes("cursor="));
      await settled();
      assert.equal(hashQuery().get("kind"), "environment.updated");
      assert.deepEqual(await kinds(), Array(5).fill("environment.updated"));
      await page.click('[data-page="newer"]');
      await page.waitForFunction(() => !location.hash.includes("cursor="));
      await settled();
      assert.equal((await kinds()).length, 50);
      assert.equal(hashQuery().get("kind"), "environment.updated");
    });

    test("a bad time in a link is answered with the server's message beside the filters", async () => {
      await open(`#/env/${env()}/audit?since=yesterday`);
      await page.locator(".alert-danger", { hasText: "RFC 3339" }).waitFor();
      assert.equal(await page.locator("#audit-kind").count(), 1, "the filters stay, to fix it");
    });

    test("the user page links to that user's audit entries", async () => {
      await open(`#/env/${env()}/users/zed`);
      await page.click('[data-action="user-audit"]');
      await page.waitForFunction(() => location.hash.includes("/audit?user_id=zed"));
      await settled();
      assert.deepEqual(await kinds(), ["identity.rejected"]);
      assert.equal(await page.locator("#audit-user").inputValue(), "zed");
    });
  });

  test("no page broke its Content-Security-Policy or threw", () => {
    // A refused call (403, 404) is logged by Chromium as a failed load; nothing else may be.
    const bad = page.consoleMessages.filter((m) => m.type === "pageerror" || /Content Security Policy|Refused to/i.test(m.text));
    assert.deepEqual(bad, []);
  });
});
