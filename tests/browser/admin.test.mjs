// The admin UI at /admin, driven in real headless Chromium against the real server:
// sign-in, cookies and CSRF, the Identity verification page (rotate, reveal, revoke,
// enforcement), the users table and user detail, and the audit log.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { launchBrowser, screenshot as save, sign, startServer } from "./harness.mjs";

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** JCS (RFC 8785) of a flat object of strings: keys sorted, no whitespace. */
function jcs(obj) {
  return `{${Object.keys(obj).sort().map((k) => `${JSON.stringify(k)}:${JSON.stringify(obj[k])}`).join(",")}}`;
}

/** A screenshot without the transient toasts of earlier steps. */
async function screenshot(page, name) {
  await page.evaluate(() => document.querySelectorAll(".toast").forEach((t) => t.remove()));
  return save(page, name);
}

describe("admin UI", () => {
  let server;
  let browser;
  let page;
  /** The secret created by the rotation test (the old one keeps working until its expiry). */
  let rotated;

  const identify = async (body) => {
    const res = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.publishableKey}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };

  /** Waits until the page has shown the result of the change just made. */
  const settled = () => page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));

  const identityPage = async () => {
    const target = `${server.url}/admin#/env/${server.envId}`;
    // Same URL: a fragment navigation would not render again.
    if (page.url() === target) await page.reload();
    else await page.goto(target);
    await page.locator("#enforcement-switch").waitFor({ state: "attached" });
    await page.locator(`tr[data-key-id]`).first().waitFor();
  };

  before(async () => {
    server = await startServer();
    browser = await launchBrowser({ viewport: { width: 1440, height: 900 } });
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("every admin page carries a strict Content-Security-Policy and no inline code", async () => {
    for (const path of ["/admin/login", "/admin", "/admin/assets/app.js", "/admin/assets/admin.css"]) {
      const res = await fetch(server.url + path, { redirect: "manual" });
      assert.equal(res.headers.get("content-security-policy"), CSP, path);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      assert.equal(res.headers.get("referrer-policy"), "no-referrer", path);
    }
    const login = await fetch(`${server.url}/admin/login`);
    assert.equal(login.headers.get("cache-control"), "no-store");
    const html = await login.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "no inline script");
    assert.doesNotMatch(html, /<style|\sstyle=/i, "no inline style");
    const anonymous = await fetch(`${server.url}/admin`, { redirect: "manual" });
    assert.equal(anonymous.status, 303);
    assert.equal(anonymous.headers.get("location"), "/admin/login");
  });

  test("sign-in: a wrong token shows an error, the right one lands on environments", async () => {
    const violations = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(`${server.url}/admin`);
    assert.match(page.url(), /\/admin\/login$/);
    await screenshot(page, "admin-sign-in");

    await page.fill("#token", "vat_this_is_not_the_right_token_at_all_0000");
    await page.click("#login-submit");
    const error = page.locator("#login-error");
    await error.waitFor({ state: "visible" });
    assert.match(await error.textContent(), /not valid/);
    assert.match(page.url(), /\/admin\/login$/, "still on the sign-in page");

    await page.fill("#token", server.adminToken);
    await page.click("#login-submit");
    await page.waitForURL(/\/admin#\/environments$/);
    await page.locator(`tr[data-env="${server.envId}"]`).waitFor();
    assert.equal(await page.locator(".page-head h1").textContent(), "Environments");
    assert.deepEqual(violations, [], "no CSP violation on the pages");
  });

  test("the session cookie is HttpOnly and SameSite=Strict; the CSRF cookie is readable by the page", async () => {
    const cookies = await browser.context.cookies(server.url);
    const admin = cookies.find((c) => c.name === "vouch_admin");
    const csrf = cookies.find((c) => c.name === "vouch_csrf");
    assert.ok(admin, "vouch_admin cookie set");
    assert.equal(admin.value, server.adminToken);
    assert.equal(admin.httpOnly, true);
    assert.equal(admin.sameSite, "Strict");
    assert.equal(admin.path, "/");
    assert.equal(admin.secure, false, "Secure only over https");
    assert.ok(csrf, "vouch_csrf cookie set");
    assert.equal(csrf.httpOnly, false);
    assert.equal(csrf.sameSite, "Strict");
    assert.equal(await page.evaluate(() => document.cookie.includes("vouch_admin")), false, "the token is out of the page's reach");
  });

  test("a cookie-authenticated write without the CSRF header is refused", async () => {
    const attempt = (headers) =>
      page.evaluate(async (h) => {
        const res = await fetch(`/admin/v1/environments/${h.env}`, {
          method: "PATCH",
          headers: { "content-type": "application/json", ...h.headers },
          body: JSON.stringify({ allowed_origins: ["https://csrf.example"] }),
        });
        return { status: res.status, body: await res.json() };
      }, { env: server.envId, headers });

    const missing = await attempt({});
    assert.equal(missing.status, 401);
    assert.equal(missing.body.error.code, "invalid_admin_token");
    assert.match(missing.body.error.message, /CSRF/);
    const wrong = await attempt({ "x-csrf-token": "forged.value" });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error.message, /CSRF/);
    const env = await server.admin("GET", `/admin/v1/environments/${server.envId}`);
    assert.deepEqual(env.body.allowed_origins, [], "nothing was changed");

    // The same write with the header the page's script sends goes through.
    const csrf = await page.evaluate(() => document.cookie.match(/vouch_csrf=([^;]+)/)[1]);
    const ok = await attempt({ "x-csrf-token": csrf });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body.allowed_origins, ["https://csrf.example"]);
    const reset = await server.admin("PATCH", `/admin/v1/environments/${server.envId}`, { allowed_origins: [] });
    assert.equal(reset.status, 200, "bearer-authenticated API calls need no CSRF token");
  });

  test("rotating a secret shows the new value once and gives the old one an expiry", async () => {
    await identityPage();
    const oldRow = page.locator(`tr[data-key-id="${server.keyId}"]`);
    assert.match(await oldRow.locator("[data-secret]").textContent(), /^sk_test_••••.{4}$/, "masked value");
    assert.equal(await oldRow.locator("[data-secret]").textContent(), `sk_test_••••${server.secret.slice(-4)}`);

    await page.click('[data-action="rotate"]');
    await page.selectOption("#grace", "86400");
    await page.click('dialog [data-confirm]');
    const shown = page.locator("dialog [data-secret-value]");
    await shown.waitFor();
    const value = await shown.inputValue();
    const newId = await page.locator("dialog [data-new-secret]").getAttribute("data-new-secret");
    assert.match(value, /^sk_test_/);
    assert.notEqual(value, server.secret);
    rotated = { id: newId, value };
    await page.click('dialog button:has-text("Done")');

    const newRow = page.locator(`tr[data-key-id="${newId}"]`);
    await newRow.waitFor();
    assert.equal(await newRow.getAttribute("data-status"), "active");
    assert.match(await newRow.textContent(), /Active/);
    const expiry = oldRow.locator("[data-expires]");
    await expiry.waitFor();
    assert.match(await expiry.textContent(), /Expires in (24|23) hours/);
    const expiresAt = Date.parse(await expiry.getAttribute("data-expires"));
    assert.ok(Math.abs(expiresAt - (Date.now() + 86_400_000)) < 120_000, "grace period of 24 h");

    // Both secrets verify during the grace period.
    for (const secret of [server.secret, value]) {
      const r = await identify({ user_id: `grace-${secret.slice(-4)}`, signature: sign(secret, `grace-${secret.slice(-4)}`) });
      assert.equal(r.status, 200);
      assert.equal(r.body.user.verified, true);
    }
  });

  test("revealing a secret shows its value and is audited", async () => {
    await identityPage();
    const row = page.locator(`tr[data-key-id="${rotated.id}"]`);
    await row.locator('[data-action="reveal"]').click();
    await page.waitForFunction(
      ([id, v]) => document.querySelector(`tr[data-key-id="${id}"] [data-secret]`)?.textContent === v,
      [rotated.id, rotated.value],
    );
    await page.goto(`${server.url}/admin#/env/${server.envId}/audit`);
    const revealed = page.locator('tr[data-audit-kind="secret.revealed"]');
    await revealed.first().waitFor();
    assert.match(await revealed.first().textContent(), new RegExp(rotated.id));
    const rotatedEntry = page.locator('tr[data-audit-kind="secret.rotated"]');
    assert.equal(await rotatedEntry.count(), 1);
  });

  test("revoking asks for confirmation first", async () => {
    const { body } = await server.admin("POST", `/admin/v1/environments/${server.envId}/secrets`, {});
    await identityPage();
    const row = page.locator(`tr[data-key-id="${body.id}"]`);
    await row.locator('[data-action="revoke"]').click();
    await page.click('dialog button:has-text("Cancel")');
    await page.locator("dialog").waitFor({ state: "detached" });
    let list = await server.admin("GET", `/admin/v1/environments/${server.envId}/secrets`);
    assert.equal(list.body.data.find((s) => s.id === body.id).status, "active", "cancel keeps it");

    await row.locator('[data-action="revoke"]').click();
    assert.match(await page.locator("dialog").textContent(), /stop verifying immediately/);
    await page.click("dialog [data-confirm]");
    await page.waitForFunction((id) => document.querySelector(`tr[data-key-id="${id}"]`)?.dataset.status === "revoked", body.id);
    list = await server.admin("GET", `/admin/v1/environments/${server.envId}/secrets`);
    assert.equal(list.body.data.find((s) => s.id === body.id).status, "revoked");
    const r = await identify({ user_id: "after-revoke", signature: sign(body.value, "after-revoke") });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, "invalid_signature");
  });

  test("the users table marks verified and unverified users; filter, pages and detail", async () => {
    const attributes = { email: "ada@example.com", name: "Ada Lovelace" };
    const verified = await identify({
      user_id: "ada-verified",
      attributes,
      signature: createHmac("sha256", rotated.value).update("ada-verified").digest("hex"),
      attributes_signature: createHmac("sha256", rotated.value).update(jcs(attributes)).digest("hex"),
    });
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.equal(verified.body.user.verified, true);
    // Ada's session joins a (signed) company and tracks events: the detail page shows them.
    const widget = (path, body) =>
      fetch(`${server.url}${path}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${verified.body.session_token}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    const group = await widget("/v1/group", { company_id: "acme-corp", attributes: { name: "Acme Corp" }, signature: sign(rotated.value, "acme-corp") });
    assert.equal(group.status, 200);
    for (const event of ["report_exported", "invoice_viewed"]) {
      assert.equal((await widget("/v1/track", { event, properties: { plan: "pro" } })).status, 202);
    }
    const unverified = await identify({ user_id: "bob-unverified", attributes: { name: "Bob (unsigned)" } });
    assert.equal(unverified.status, 200);
    assert.equal(unverified.body.user.verified, false);
    // A wrong proof: the HMAC of the email instead of the id, so the audit log has a diagnosis.
    const wrong = await identify({
      user_id: "ada-verified",
      attributes: { email: "ada@example.com" },
      signature: sign(rotated.value, "ada@example.com"),
    });
    assert.equal(wrong.status, 401);
    // Data is shown as text, never as markup.
    const hostile = await identify({ user_id: "<img src=x onerror=window.__xss=1>", attributes: { name: "<b>bold</b>" } });
    assert.equal(hostile.status, 200);
    // Enough unverified users for a second page (25 a page).
    for (let i = 0; i < 26; i++) {
      const r = await identify({ user_id: `user-bulk-${String(i).padStart(2, "0")}` });
      assert.equal(r.status, 200);
    }

    await page.goto(`${server.url}/admin#/env/${server.envId}/users`);
    const adaRow = page.locator('tr[data-user="ada-verified"]');
    await adaRow.waitFor();
    assert.equal(await adaRow.locator('[data-mark="verified"]').count(), 1);
    assert.equal(await adaRow.locator('[data-mark="unverified"]').count(), 0);
    const bobRow = page.locator('tr[data-user="bob-unverified"]');
    assert.equal(await bobRow.locator('[data-mark="unverified"]').count(), 1);
    assert.match(await bobRow.textContent(), /Unverified/);
    const hostileRow = page.locator('tr[data-user="<img src=x onerror=window.__xss=1>"]');
    assert.match(await hostileRow.textContent(), /<b>bold<\/b>/);
    assert.equal(await hostileRow.locator("img, b").count(), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    await screenshot(page, "admin-users");

    // Pagination: forward then back.
    assert.equal(await page.locator("tr[data-user]").count(), 25);
    const firstPage = await page.locator("tr[data-user]").first().getAttribute("data-user");
    const lastOfFirst = await page.locator("tr[data-user]").last().getAttribute("data-user");
    await page.click('[data-page="next"]');
    await page.waitForFunction((first) => {
      const row = document.querySelector("tr[data-user]");
      return row && row.dataset.user !== first;
    }, firstPage);
    const secondPage = await page.locator("tr[data-user]").evaluateAll((rows) => rows.map((r) => r.dataset.user));
    assert.ok(secondPage.length >= 1 && secondPage.length <= 25, `second page: ${secondPage}`);
    assert.ok(secondPage.every((id) => id > lastOfFirst), "the second page continues after the first");
    assert.match(await page.locator(".toolbar").textContent(), /Page 2/);
    await page.click('[data-page="prev"]');
    await page.waitForFunction((first) => document.querySelector("tr[data-user]")?.dataset.user === first, firstPage);

    // Filter: only unverified users, then only verified ones.
    await page.click('[data-filter="false"]');
    await page.waitForFunction(() => document.querySelector('.seg.active')?.dataset.filter === "false" && document.querySelector("tr[data-user]"));
    assert.equal(await page.locator('tr[data-user] [data-mark="verified"]').count(), 0);
    assert.ok((await page.locator('tr[data-user] [data-mark="unverified"]').count()) > 0);
    await page.click('[data-filter="true"]');
    await page.waitForFunction(() => document.querySelector('.seg.active')?.dataset.filter === "true" && document.querySelector("tr[data-user]"));
    assert.equal(await page.locator('tr[data-user] [data-mark="unverified"]').count(), 0);
    assert.ok(await page.locator('tr[data-user="ada-verified"]').count());

    // Detail: how and when verified, verified attributes marked.
    await page.click('tr[data-user="ada-verified"] a');
    await page.locator('[data-field="key_id"]').waitFor();
    assert.equal(await page.locator('[data-field="key_id"]').textContent(), rotated.id);
    assert.match(await page.locator(".card").first().textContent(), /Signature/);
    assert.equal(await page.locator("[data-attr-verified]").count(), 2);
    const detail = await page.locator("#view").textContent();
    assert.match(detail, /acme-corp/);
    assert.match(detail, /Acme Corp/);
    assert.match(detail, /report_exported/);
    assert.match(detail, /invoice_viewed/);
    await screenshot(page, "admin-user-detail");
  });

  test("the audit log shows rejected identifies with their diagnosis", async () => {
    await page.goto(`${server.url}/admin#/env/${server.envId}/audit`);
    const rejected = page.locator('tr[data-audit-kind="identity.rejected"]');
    await rejected.first().waitFor();
    const text = await rejected.first().textContent();
    assert.match(text, /invalid_signature/);
    assert.match(text, /ada-verified/);
    const diagnosis = rejected.first().locator("[data-diagnosis]");
    assert.equal(await diagnosis.count(), 1, "a diagnosis is shown");
    assert.match(await diagnosis.textContent(), /email/i, "it names the mistake: the email was signed");
    await screenshot(page, "admin-audit");
  });

  test("allow-anonymous, allowed origins and the unsigned cap are edited from the identity page", async () => {
    const envPath = `/admin/v1/environments/${server.envId}`;
    const waitFor = async (predicate, what) => {
      for (let i = 0; i < 50; i++) {
        const env = (await server.admin("GET", envPath)).body;
        if (predicate(env)) return env;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`the environment never got ${what}`);
    };
    await identityPage();
    await page.click("#anonymous-switch");
    await settled();
    await waitFor((e) => e.allow_anonymous === false, "allow_anonymous false");
    const anon = await fetch(`${server.url}/v1/sessions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.publishableKey}`, "Content-Type": "application/json" },
      body: "{}",
    });
    assert.equal(anon.status, 403);
    assert.equal((await anon.json()).error.code, "anonymous_not_allowed");
    assert.equal(await page.locator("#anonymous-switch").isChecked(), false);
    await page.click("#anonymous-switch");
    await settled();
    await waitFor((e) => e.allow_anonymous === true, "allow_anonymous true");
    assert.equal(await page.locator("#anonymous-switch").isChecked(), true);

    await page.fill("#origin-input", "https://app.example.com/");
    await page.click('#origin-input ~ button[type="submit"]');
    await settled();
    await page.locator('[data-origin="https://app.example.com"]').waitFor();
    await waitFor((e) => e.allowed_origins.join() === "https://app.example.com", "the origin");
    await page.click('[data-origin="https://app.example.com"] button');
    await settled();
    assert.equal(await page.locator("[data-origin]").count(), 0);
    await waitFor((e) => e.allowed_origins.length === 0, "no origins");

    await page.fill("#cap-input", "1000");
    await page.click('#cap-input ~ button[type="submit"]');
    await settled();
    await waitFor((e) => e.unsigned_session_limit === 1000, "a cap of 1000");
    assert.equal(await page.locator("#cap-input").inputValue(), "1000");
    await page.fill("#cap-input", "");
    await page.click('#cap-input ~ button[type="submit"]');
    await settled();
    await waitFor((e) => e.unsigned_session_limit === null, "no cap");
  });

  test("switching enforcement on from the UI rejects the next unsigned identify", async () => {
    await identityPage();
    const sentence = await page.locator("#coverage-sentence").textContent();
    assert.match(sentence, /Turning this on would have rejected \d+ % of identifies in the last 7 days/);
    const stats = await server.admin("GET", `/admin/v1/environments/${server.envId}/stats`);
    assert.ok(sentence.includes(`${Math.round(stats.body.last_week.would_reject_ratio * 100)} %`));
    await screenshot(page, "admin-identity");

    await page.click("#enforcement-switch");
    assert.match(await page.locator("dialog").textContent(), /signature_required/);
    await page.click("dialog [data-confirm]");
    await page.waitForFunction(() => document.querySelector("#coverage-sentence")?.textContent.startsWith("Enforcement is on"));
    assert.equal(await page.locator("#enforcement-switch").isChecked(), true);
    const env = await server.admin("GET", `/admin/v1/environments/${server.envId}`);
    assert.equal(env.body.enforcement, "enforce");

    const unsigned = await identify({ user_id: "user-after-enforcement" });
    assert.equal(unsigned.status, 401);
    assert.equal(unsigned.body.error.code, "signature_required");
    const signed = await identify({ user_id: "user-after-enforcement", signature: sign(rotated.value, "user-after-enforcement") });
    assert.equal(signed.status, 200);
    await screenshot(page, "admin-identity-enforced");
  });

  test("creating an environment from the UI shows its first secret once", async () => {
    await page.goto(`${server.url}/admin#/environments`);
    await page.click('button:has-text("New environment")');
    await page.fill("#env-name", "Acme — production");
    await page.selectOption("#env-mode", "live");
    await page.click('dialog button[type="submit"]');
    const shown = page.locator("dialog [data-secret-value]");
    await shown.waitFor();
    const value = await shown.inputValue();
    assert.match(value, /^sk_live_/);
    await screenshot(page, "admin-new-secret");
    await page.click('dialog button:has-text("Done")');
    await page.waitForURL(/#\/env\/env_/);
    await page.locator("#enforcement-switch").waitFor({ state: "attached" });
    const envId = decodeURIComponent(page.url().split("#/env/")[1]);
    const env = await server.admin("GET", `/admin/v1/environments/${envId}`);
    assert.equal(env.body.name, "Acme — production");
    assert.equal(env.body.mode, "live");
    const keyRow = page.locator("tr[data-key-id]");
    assert.equal(await keyRow.count(), 1);
    assert.equal(await keyRow.locator("[data-secret]").textContent(), `sk_live_••••${value.slice(-4)}`);

    await page.goto(`${server.url}/admin#/environments`);
    await page.locator(`tr[data-env="${envId}"]`).waitFor();
    assert.equal(await page.locator("tr[data-env]").count(), 2);
    await screenshot(page, "admin-environments");
  });

  test("no page broke its Content-Security-Policy or threw", () => {
    const bad = page.consoleMessages.filter((m) => m.type === "pageerror" || /Content Security Policy|Refused to/i.test(m.text));
    assert.deepEqual(bad, []);
  });

  test("signing out clears the session", async () => {
    await page.click("#logout");
    await page.waitForURL(/\/admin\/login$/);
    const cookies = await browser.context.cookies(server.url);
    assert.equal(cookies.find((c) => c.name === "vouch_admin"), undefined);
    await page.goto(`${server.url}/admin`);
    assert.match(page.url(), /\/admin\/login$/);
  });
});
