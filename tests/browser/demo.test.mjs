// The /demo page in real Chromium: a customer app whose backend signs the user id and
// whose page identifies the user with the browser SDK.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { launchBrowser, screenshot, startServer } from "./harness.mjs";

const SIGNATURE_MESSAGE = "Incorrect user identity verification signature";

describe("demo page", () => {
  let server;
  let browser;

  before(async () => {
    server = await startServer({ extraArgs: ["--demo"] });
    browser = await launchBrowser({ viewport: { width: 1280, height: 1320 } });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function openDemo(query = "") {
    const page = await browser.newPage();
    const res = await page.goto(`${server.url}/demo${query}`);
    assert.equal(res.status(), 200);
    assert.match(res.headers()["content-security-policy"], /default-src 'self'/);
    await page.waitForSelector("body[data-ready='true']", { timeout: 10_000 });
    return page;
  }

  const text = (page, selector) => page.locator(selector).innerText();
  const cspViolations = (page) => page.consoleMessages.filter((m) => /Content Security Policy/i.test(m.text));

  test("signing in verifies the user: badge and session claims say verified", async () => {
    const page = await openDemo();
    await page.fill("#user-id", "ada_1");
    await page.fill("#user-name", "Ada Lovelace");
    await page.click("#sign-in");
    await page.waitForSelector("#badge[data-state='verified']", { timeout: 10_000 });
    assert.equal(await text(page, "#badge"), "Verified");
    assert.equal(await text(page, "#fact-user"), "ada_1");
    assert.equal(await text(page, "#fact-proof"), "signature");
    const claims = JSON.parse(await text(page, "#claims"));
    assert.equal(claims.verified, true);
    assert.equal(claims.sub, "ada_1");
    assert.equal(claims.aud, server.envId);
    assert.equal(claims.verified_by, "signature");
    assert.match(await text(page, "#widget-body"), /Hi Ada Lovelace/);
    assert.deepEqual(cspViolations(page), []);
    assert.deepEqual(page.consoleMessages.filter((m) => m.type === "error" || m.type === "pageerror"), []);
    await screenshot(page, "demo-verified");

    // The server agrees: the user is stored as verified by signature.
    const user = await server.admin("GET", `/admin/v1/environments/${server.envId}/users/ada_1`);
    assert.equal(user.status, 200);
    assert.equal(user.body.verified, true);
    assert.equal(user.body.verified_by, "signature");
    await page.close();
  });

  test("tampering with the id after signing is rejected, and the console says why", async () => {
    const page = await openDemo();
    await page.fill("#user-id", "user_7");
    await page.click("#tamper");
    await page.waitForSelector("#badge[data-state='rejected']", { timeout: 10_000 });
    assert.equal(await text(page, "#badge"), "Rejected");
    assert.equal(await text(page, "#error-code"), "invalid_signature");
    assert.equal(await text(page, "#error-message"), SIGNATURE_MESSAGE);
    const expected = `Vouch: ${SIGNATURE_MESSAGE} (invalid_signature)`;
    assert.ok(
      page.consoleMessages.some((m) => m.type === "error" && m.text === expected),
      `console shows the SDK's message; got ${JSON.stringify(page.consoleMessages)}`,
    );
    assert.match(await text(page, "#console"), new RegExp(SIGNATURE_MESSAGE));
    assert.match(await text(page, "#flow"), /"user_7" → "user_8"/);
    assert.match(await text(page, "#claims"), /No session/);
    await screenshot(page, "demo-tampered");

    // Nobody was identified as user_8.
    const victim = await server.admin("GET", `/admin/v1/environments/${server.envId}/users/user_8`);
    assert.equal(victim.status, 404);
    await page.close();
  });

  test("unsigned identify is unverified until enforcement is switched on, then rejected with signature_required", async () => {
    let page = await openDemo();
    assert.equal(await text(page, "#enforcement"), "off");
    await page.fill("#user-id", "visitor_1");
    await page.click("#unsigned");
    await page.waitForSelector("#badge[data-state='unverified']", { timeout: 10_000 });
    assert.equal(await text(page, "#badge"), "Unverified");
    assert.equal(JSON.parse(await text(page, "#claims")).verified, false);
    await page.close();

    const patched = await server.admin("PATCH", `/admin/v1/environments/${server.envId}`, { enforcement: "enforce" });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.enforcement, "enforce");

    page = await openDemo();
    assert.equal(await text(page, "#enforcement"), "enforce");
    await page.fill("#user-id", "visitor_2");
    await page.click("#unsigned");
    await page.waitForSelector("#badge[data-state='rejected']", { timeout: 10_000 });
    assert.equal(await text(page, "#error-code"), "signature_required");
    assert.ok(page.consoleMessages.some((m) => m.type === "error" && /^Vouch: .*\(signature_required\)$/.test(m.text)));
    await screenshot(page, "demo-enforced");

    // A signed sign-in still works with enforcement on.
    await page.fill("#user-id", "visitor_2");
    await page.click("#sign-in");
    await page.waitForSelector("#badge[data-state='verified']", { timeout: 10_000 });
    await page.close();

    const reverted = await server.admin("PATCH", `/admin/v1/environments/${server.envId}`, { enforcement: "off" });
    assert.equal(reverted.status, 200);
  });

  test("the demo and its signing backend exist for test environments only", async () => {
    const live = await server.admin("POST", "/admin/v1/environments", { name: "Production", mode: "live" });
    assert.equal(live.status, 201, JSON.stringify(live.body));
    const liveId = live.body.id ?? live.body.environment?.id;
    assert.match(liveId, /^env_/);

    const page = await fetch(`${server.url}/demo?env=${liveId}`);
    assert.equal(page.status, 404);
    assert.equal((await page.json()).error.code, "not_found");

    const signLive = await fetch(`${server.url}/demo/api/sign`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ env: liveId, user_id: "someone" }),
    });
    assert.equal(signLive.status, 404);
    assert.equal((await signLive.json()).error.code, "not_found");

    // The test environment's backend signs exactly as a customer's would.
    const { createHmac } = await import("node:crypto");
    const signTest = await fetch(`${server.url}/demo/api/sign`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ env: server.envId, user_id: "someone" }),
    });
    assert.equal(signTest.status, 200);
    const signed = await signTest.json();
    assert.equal(signed.signature, createHmac("sha256", server.secret).update("someone").digest("hex"));

    const unknown = await fetch(`${server.url}/demo?env=env_doesnotexist`);
    assert.equal(unknown.status, 404);
  });

  test("the hint is true with the page's defaults: unsigned is unverified, then refused once the id was verified", async () => {
    const page = await openDemo();
    const id = await page.inputValue("#user-id");
    assert.match(id, /^user_\d{5}$/, "a fresh id on every load");
    const hints = await text(page, "#hints");
    assert.match(hints, /once an id has been verified, every identify of it needs a proof, whatever the enforcement setting/);
    assert.doesNotMatch(hints, /until enforcement is on/);

    await page.click("#unsigned");
    await page.waitForSelector("#badge[data-state='unverified']", { timeout: 10_000 });
    await page.click("#sign-in");
    await page.waitForSelector("#badge[data-state='verified']", { timeout: 10_000 });
    await page.click("#unsigned");
    await page.waitForSelector("#badge[data-state='rejected']", { timeout: 10_000 });
    assert.equal(await text(page, "#error-code"), "signature_required");
    // The server's `signature` / `token` are shown as code, not as raw backticks.
    const message = await text(page, "#error-message");
    assert.doesNotMatch(message, /`/);
    assert.deepEqual(await page.locator("#error-message code").allTextContents(), ["signature", "token"]);
    assert.deepEqual(await page.locator("#flow .step-message code").allTextContents(), ["signature", "token"]);
    // The console panel shows what DevTools shows: the message verbatim.
    assert.match(await text(page, "#console"), /needs a `signature` or `token`/);
    await page.close();
  });

  test("the support widget covers none of the page, at 1366 and at 390 px", async () => {
    for (const viewport of [{ width: 1366, height: 768 }, { width: 390, height: 844 }]) {
      const page = await browser.newPage();
      await page.setViewportSize(viewport);
      const res = await page.goto(`${server.url}/demo`);
      assert.equal(res.status(), 200);
      await page.waitForSelector("body[data-ready='true']");
      await page.click("#tamper");
      await page.waitForSelector("#badge[data-state='rejected']", { timeout: 10_000 });
      const overlaps = await page.evaluate(() => {
        const widget = document.getElementById("widget");
        const fixed = getComputedStyle(widget).position === "fixed";
        const w = widget.getBoundingClientRect();
        const out = [];
        for (const card of document.querySelectorAll(".card, .intro")) {
          const c = card.getBoundingClientRect();
          // A fixed widget sweeps its column at every scroll position: compare columns only.
          const apart = fixed
            ? c.right <= w.left || c.left >= w.right
            : c.right <= w.left || c.left >= w.right || c.bottom <= w.top || c.top >= w.bottom;
          if (!apart) out.push(card.querySelector("h1, h2")?.textContent);
        }
        return { fixed, out, scrollWidth: document.documentElement.scrollWidth };
      });
      assert.deepEqual(overlaps.out, [], `${viewport.width} px: the widget covers ${overlaps.out}`);
      assert.equal(overlaps.scrollWidth, viewport.width, `${viewport.width} px: no sideways scrolling`);
      assert.equal(overlaps.fixed, viewport.width > 1180, "floating only where it has a column of its own");
      await page.close();
    }
  });
});
