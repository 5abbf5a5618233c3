// The Identity verification page's tools in real headless Chromium against the real server:
// "Check a signature" with candidate values, "Revoke all sessions", and a viewer token's
// writes, each answered by the server's 403 message instead of failing silently.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ADMIN_TOKEN, launchBrowser, sign, signIn, startServer } from "./harness.mjs";

describe("admin UI: identity page tools and viewer mode", () => {
  let server;
  let browser;
  let page;

  const identify = async (body) => {
    const res = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.publishableKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  /** A widget call with a session: {status, code}. */
  const track = async (session) => {
    const res = await fetch(`${server.url}/v1/track`, {
      method: "POST",
      headers: { Authorization: `Bearer ${session}`, "Content-Type": "application/json" },
      body: JSON.stringify({ event: "opened_widget" }),
    });
    const body = await res.json().catch(() => null);
    return { status: res.status, code: body?.error?.code };
  };
  const verifiedSession = async (id) => {
    const r = await identify({ user_id: id, signature: sign(server.secret, id) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.session_token;
  };

  const identityPage = async (p = page) => {
    const target = `${server.url}/admin#/env/${server.envId}`;
    if (p.url() === target) await p.reload();
    else await p.goto(target);
    await p.locator("tr[data-key-id]").first().waitFor();
    await p.waitForFunction(() => !document.querySelector('[aria-busy="true"], .loading'));
  };

  /** Fills "Check a signature" and resolves to the answer's cause and text. */
  const check = async ({ userId, signature, email = "", candidates = "" }) => {
    await page.fill("#diag-user", userId);
    await page.fill("#diag-sig", signature);
    if (email || candidates) {
      if (!(await page.locator("details.diag-more").evaluate((d) => d.open))) await page.click("details.diag-more summary");
      await page.fill("#diag-email", email);
      await page.fill("#diag-candidates", candidates);
    }
    await page.evaluate(() => document.querySelector(".diag-out").replaceChildren());
    await page.click('button:has-text("Check signature")');
    const out = page.locator(".diag-out > .alert");
    await out.waitFor();
    return { cause: await out.getAttribute("data-cause"), text: await out.textContent() };
  };

  before(async () => {
    server = await startServer({ extraArgs: ["--allow-private-webhooks"] });
    browser = await launchBrowser({ viewport: { width: 1366, height: 900 } });
    page = await browser.newPage();
    await signIn(page, server.url, ADMIN_TOKEN);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("a value typed as a candidate is named as what was signed instead of the id", async () => {
    assert.equal((await identify({ user_id: "ada", attributes: { name: "Ada" }, signature: sign(server.secret, "ada") })).status, 200);
    await identityPage();
    const signature = sign(server.secret, "crm-4411");
    const without = await check({ userId: "ada", signature });
    assert.notEqual(without.cause, "signed_candidate", "without the candidate Vouch cannot know");
    const withIt = await check({ userId: "ada", signature, candidates: "legacy-77\n\n  crm-4411  \n" });
    assert.equal(withIt.cause, "signed_candidate");
    assert.match(withIt.text, /Does not verify — this is the HMAC of "crm-4411", not of the user id/);
    assert.equal((await check({ userId: "ada", signature: sign(server.secret, "ada") })).cause, "valid");
  });

  test("the email field is tried too, for a user Vouch has not seen", async () => {
    await identityPage();
    const r = await check({ userId: "usr_9000", signature: sign(server.secret, "grace@example.com"), email: "grace@example.com" });
    assert.equal(r.cause, "signed_candidate");
    assert.match(r.text, /grace@example\.com/);
  });

  test("more than 20 values are refused in the page, before asking the server", async () => {
    await identityPage();
    let asked = 0;
    const onRequest = (r) => {
      if (r.url().endsWith("/diagnose")) asked++;
    };
    page.on("request", onRequest);
    const lines = Array.from({ length: 20 }, (_, i) => `value-${i}`).join("\n");
    const r = await check({ userId: "ada", signature: sign(server.secret, "x"), email: "ada@example.com", candidates: lines });
    page.off("request", onRequest);
    assert.match(r.text, /at most 20 values to try, the email included \(21 now\)/);
    assert.equal(asked, 0);
    assert.equal(await page.locator("#diag-candidates").getAttribute("aria-invalid"), "true");
  });

  test("revoking every session asks first, warns about offline verifiers, then refuses earlier sessions", async () => {
    const before = await verifiedSession("grace");
    assert.equal((await track(before)).status, 202);
    await identityPage();
    await page.click('[data-action="revoke-sessions"]');
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    const text = await dialog.textContent();
    assert.match(text, /identifies again/);
    assert.match(await dialog.locator("[data-offline-warning]").textContent(), /JWKS.*until its exp.*GET \/v1\/me/);
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), "Cancel", "focus starts on Cancel");
    await dialog.locator("button", { hasText: "Cancel" }).click();
    assert.equal((await track(before)).status, 202, "Cancel revokes nothing");

    await page.click('[data-action="revoke-sessions"]');
    await page.locator("dialog[open] [data-confirm]").click();
    await page.locator(".toast-success", { hasText: "Every session issued before" }).waitFor();
    assert.deepEqual(await track(before), { status: 401, code: "session_expired" });
    const after = await verifiedSession("grace");
    assert.equal((await track(after)).status, 202, "identifying again gives a working session");
    const audit = await server.admin("GET", `/admin/v1/environments/${server.envId}/audit?kind=sessions.revoked`);
    assert.equal(audit.body.data.length, 1);
  });

  describe("signed in with a viewer token", () => {
    let viewerBrowser;
    let viewer;
    let hookId;

    before(async () => {
      const made = await server.admin("POST", "/admin/v1/admin-tokens", { name: "Read-only", role: "viewer" });
      assert.equal(made.status, 201);
      const hook = await server.admin("POST", `/admin/v1/environments/${server.envId}/webhooks`, { url: "http://127.0.0.1:9/hook" });
      assert.equal(hook.status, 201, JSON.stringify(hook.body));
      hookId = hook.body.id;
      viewerBrowser = await launchBrowser({ viewport: { width: 1366, height: 900 } });
      viewer = await viewerBrowser.newPage();
      await signIn(viewer, server.url, made.body.token);
    });

    after(() => viewerBrowser?.close());

    /** Clicks `selector` (and the dialog's confirm button, when one opens) and waits for the 403 toast. */
    const refused = async (selector, { confirm = false } = {}) => {
      await viewer.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));
      await viewer.locator(selector).first().click();
      if (confirm) await viewer.locator("dialog[open] [data-confirm]").click();
      const toast = viewer.locator(".toast-error");
      await toast.waitFor();
      assert.match(await toast.first().textContent(), /viewer role: it may read but not change anything/, selector);
    };
    const env = async () => (await server.admin("GET", `/admin/v1/environments/${server.envId}`)).body;

    test("the identity page's writes show the server's message in a toast and change nothing", async () => {
      const session = await verifiedSession("lin");
      const startedAs = await env();
      await identityPage(viewer);
      await refused("#enforcement-switch", { confirm: true });
      await identityPage(viewer);
      await refused('[data-action="reveal"]');
      await refused('[data-action="copy"]');
      await refused('[data-action="revoke"]', { confirm: true });
      await identityPage(viewer);
      await refused('[data-action="revoke-sessions"]', { confirm: true });
      await identityPage(viewer);
      await refused("#anonymous-switch");
      await identityPage(viewer);
      await viewer.fill("#origin-input", "https://app.example.com");
      await refused('#origin-input ~ button[type="submit"]');

      const now = await env();
      assert.deepEqual(
        [now.enforcement, now.allow_anonymous, now.allowed_origins],
        [startedAs.enforcement, startedAs.allow_anonymous, startedAs.allowed_origins],
        "nothing changed",
      );
      const secrets = await server.admin("GET", `/admin/v1/environments/${server.envId}/secrets`);
      assert.ok(secrets.body.data.every((s) => s.status === "active"), "no secret revoked");
      assert.equal((await track(session)).status, 202, "no session revoked");
    });

    test("a viewer may still check a signature", async () => {
      await identityPage(viewer);
      await viewer.fill("#diag-user", "lin");
      await viewer.fill("#diag-sig", sign(server.secret, "lin"));
      await viewer.click('button:has-text("Check signature")');
      await viewer.locator('.diag-out [data-cause="valid"]').waitFor();
    });

    test("a dialog's write shows the server's message in the dialog", async () => {
      await identityPage(viewer);
      await viewer.click('[data-action="rotate"]');
      await viewer.locator("dialog[open] [data-confirm]").click();
      await viewer.locator("dialog[open] .alert-danger", { hasText: "viewer role" }).waitFor();
      await viewer.locator('dialog[open] [data-action="close-dialog"]').click();
    });

    test("deleting a user and a webhook endpoint show the server's message and delete nothing", async () => {
      await viewer.goto(`${server.url}/admin#/env/${server.envId}/users/lin`);
      await viewer.locator('[data-action="delete-user"]').waitFor();
      await refused('[data-action="delete-user"]', { confirm: true });
      assert.equal((await server.admin("GET", `/admin/v1/environments/${server.envId}/users/lin`)).status, 200);

      await viewer.goto(`${server.url}/admin#/env/${server.envId}/webhooks`);
      await viewer.locator(`[data-webhook-id="${hookId}"]`).waitFor();
      await refused(`[data-webhook-id="${hookId}"] [data-action="delete"]`, { confirm: true });
      await refused(`[data-webhook-id="${hookId}"] [data-action="replay"]`);
      assert.equal((await server.admin("GET", `/admin/v1/environments/${server.envId}/webhooks/${hookId}`)).status, 200);
    });

    test("no refused write threw in the page", () => {
      assert.deepEqual(viewer.consoleMessages.filter((m) => m.type === "pageerror"), []);
    });
  });

  test("no page broke its Content-Security-Policy or threw", () => {
    // A refused call (403, 404) is logged by Chromium as a failed load; nothing else may be.
    const bad = page.consoleMessages.filter((m) => m.type === "pageerror" || /Content Security Policy|Refused to/i.test(m.text));
    assert.deepEqual(bad, []);
  });
});
