// The admin UI's first hour, in Chromium against the real server: what an operator meets
// when an environment loses its last secret, reads the coverage bars, flips enforcement,
// rotates, reads server messages, or opens the console on a phone.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { launchBrowser, screenshot, sign, startServer } from "./harness.mjs";

const GREEN = "rgb(23, 178, 106)";
const AMBER = "rgb(247, 144, 9)";
const RED = "rgb(240, 68, 56)";

describe("admin UI: the first hour", () => {
  let server;
  let browser;
  let page;

  const envPath = (id) => `/admin/v1/environments/${id}`;
  const newEnv = async (name) => {
    const r = await server.admin("POST", "/admin/v1/environments", { name, mode: "test" });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return { id: r.body.id, pk: r.body.publishable_key, secret: r.body.secret.value, keyId: r.body.secret.id };
  };
  const identify = async (env, body) => {
    const res = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { Authorization: `Bearer ${env.pk}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
  /** Opens an admin page and waits until it has rendered (a reload when it is the same URL). */
  const open = async (hash, ready) => {
    const target = `${server.url}/admin${hash}`;
    if (page.url() === target) await page.reload();
    else await page.goto(target);
    await page.locator(ready).first().waitFor();
  };
  const settled = () => page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'));

  before(async () => {
    server = await startServer();
    browser = await launchBrowser({ viewport: { width: 1366, height: 900 } });
    page = await browser.newPage();
    await page.goto(`${server.url}/admin/login`);
    await page.fill("#token", server.adminToken);
    await page.click("#login-submit");
    await page.waitForURL(/#\/environments$/);
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test("without an active secret, every page of the environment shows a red banner that leads to creating one", async () => {
    const env = await newEnv("No secret left");
    assert.equal((await identify(env, { user_id: "early-bird" })).status, 200);
    // A healthy environment has no banner.
    await open(`#/env/${env.id}`, "tr[data-key-id]");
    assert.equal(await page.locator('[data-banner="no-active-secret"]').count(), 0);

    const revoked = await server.admin("DELETE", `${envPath(env.id)}/secrets/${env.keyId}`);
    assert.ok([200, 204].includes(revoked.status), JSON.stringify(revoked.body));
    const pages = [
      [`#/env/${env.id}`, "tr[data-key-id]"],
      [`#/env/${env.id}/users`, "tr[data-user]"],
      [`#/env/${env.id}/users/early-bird`, '[data-field="key_id"], .alert-warning'],
      [`#/env/${env.id}/audit`, "tr[data-audit-kind]"],
      [`#/env/${env.id}/webhooks`, "[data-empty='webhooks']"],
    ];
    for (const [hash, ready] of pages) {
      await open(hash, ready);
      const banner = page.locator('[data-banner="no-active-secret"]');
      assert.equal(await banner.count(), 1, `banner on ${hash}`);
      assert.ok(await banner.isVisible(), `banner visible on ${hash}`);
      assert.match(await banner.textContent(), /no active identity secret/);
      assert.equal(await banner.getAttribute("role"), "alert");
      const bg = await banner.evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(bg, "rgb(254, 243, 242)", "the danger tone");
      assert.equal(await banner.locator("a").getAttribute("href"), `#/env/${env.id}?new-secret=1`);
    }
    await screenshot(page, "admin-no-active-secret-banner");

    // The link opens the create dialog; creating a secret clears the banner.
    await page.locator('[data-banner="no-active-secret"] a').click();
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    assert.equal(await dialog.locator("h2").textContent(), "Create an identity secret");
    assert.match(await dialog.locator(".dialog-body p").first().textContent(), /^There is no active secret/);
    assert.equal(await dialog.locator("#grace").count(), 0, "no grace period without an old secret");
    await dialog.locator("[data-confirm]").click();
    await page.locator("dialog [data-secret-value]").waitFor();
    await page.click('dialog button:has-text("Done")');
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    await settled();
    assert.equal(await page.locator('[data-banner="no-active-secret"]').count(), 0);
    assert.doesNotMatch(page.url(), /new-secret/, "the one-shot query is gone");
    const list = await server.admin("GET", `${envPath(env.id)}/secrets`);
    assert.equal(list.body.data.filter((s) => s.status === "active").length, 1);
  });

  test("coverage bars are coloured by what share would be rejected, for several ratios", async () => {
    const cases = [
      // [name, verified, unverified, rejected, tone, headline, colour of the headline]
      ["17 rejected, 3 verified", 3, 0, 17, "bad", "85 %", "rgb(180, 35, 24)"],
      ["all verified", 20, 0, 0, "good", "0 %", "rgb(6, 118, 71)"],
      ["1 unverified in 20", 19, 1, 0, "warn", "5 %", "rgb(181, 71, 8)"],
      ["half unverified", 5, 5, 0, "bad", "50 %", "rgb(180, 35, 24)"],
    ];
    for (const [name, verified, unverified, rejected, tone, headline, colour] of cases) {
      const env = await newEnv(name);
      for (let i = 0; i < verified; i++) assert.equal((await identify(env, { user_id: `v${i}`, signature: sign(env.secret, `v${i}`) })).status, 200);
      for (let i = 0; i < unverified; i++) assert.equal((await identify(env, { user_id: `u${i}` })).status, 200);
      for (let i = 0; i < rejected; i++) assert.equal((await identify(env, { user_id: `r${i}`, signature: sign(env.secret, `not-r${i}`) })).status, 401);
      await open(`#/env/${env.id}`, '.stat[data-window="Last hour"]');
      const stat = page.locator('.stat[data-window="Last hour"]');
      assert.equal(await stat.getAttribute("data-tone"), tone, name);
      assert.equal(await stat.locator(".stat-share strong").textContent(), headline, name);
      assert.equal(await stat.locator(".stat-share strong").evaluate((el) => getComputedStyle(el).color), colour, name);
      // One segment per kind present, as wide as its share, in its kind's colour.
      const segments = await stat.locator(".bar-seg").evaluateAll((els) => els.map((el) => ({
        kind: el.dataset.kind,
        share: el.getBoundingClientRect().width / el.parentElement.getBoundingClientRect().width,
        colour: getComputedStyle(el).backgroundColor,
      })));
      const total = verified + unverified + rejected;
      const expected = [["verified", verified, GREEN], ["unverified", unverified, AMBER], ["rejected", rejected, RED]].filter(([, n]) => n > 0);
      assert.deepEqual(segments.map((s) => [s.kind, s.colour]), expected.map(([k, , c]) => [k, c]), name);
      segments.forEach((s, i) => assert.ok(Math.abs(s.share - expected[i][1] / total) < 0.02, `${name}: ${s.kind} is ${s.share}`));
      if (name.startsWith("17")) {
        assert.match(await page.locator("#coverage-sentence").textContent(), /17 more were rejected/);
        await screenshot(page, "admin-coverage-17-rejected-3-verified");
      }
    }
    // No identifies at all: neutral, not green.
    const quiet = await newEnv("quiet");
    await open(`#/env/${quiet.id}`, '.stat[data-window="Last hour"]');
    assert.equal(await page.locator('.stat[data-window="Last hour"]').getAttribute("data-tone"), "none");
    assert.equal(await page.locator('.stat[data-window="Last hour"] .bar-seg').count(), 0);
  });

  test("the enforcement switch stays off while asking and after a cancel, and flips only once confirmed", async () => {
    const env = await newEnv("Switch");
    await open(`#/env/${env.id}`, "#enforcement-switch");
    const sw = page.locator("#enforcement-switch");
    const enforcement = async () => (await server.admin("GET", envPath(env.id))).body.enforcement;

    await sw.click();
    await page.locator("dialog[open]").waitFor();
    assert.equal(await sw.isChecked(), false, "off while the dialog asks");
    assert.equal(await sw.evaluate((el) => getComputedStyle(el.nextElementSibling).backgroundColor), "rgb(208, 213, 221)", "and drawn off");
    await page.click('dialog button:has-text("Cancel")');
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    assert.equal(await sw.isChecked(), false, "off after Cancel");
    assert.equal(await enforcement(), "off");

    await sw.click();
    await page.locator("dialog[open]").waitFor();
    await page.keyboard.press("Escape");
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    assert.equal(await sw.isChecked(), false, "off after Escape");

    await sw.click();
    await page.locator("dialog[open]").waitFor();
    await page.locator('dialog button[aria-label="Close dialog"]').click();
    await page.locator("dialog[open]").waitFor({ state: "detached" });
    assert.equal(await sw.isChecked(), false, "off after ×");
    assert.equal(await enforcement(), "off");

    await sw.click();
    await page.click("dialog [data-confirm]");
    await page.waitForFunction(() => document.querySelector("#coverage-sentence")?.textContent.startsWith("Enforcement is on"));
    assert.equal(await page.locator("#enforcement-switch").isChecked(), true);
    assert.equal(await enforcement(), "enforce");
  });

  test("the rotate dialog's wording fits 1 and several active secrets", async () => {
    const env = await newEnv("Rotation wording");
    const sentence = async () => {
      await open(`#/env/${env.id}`, "tr[data-key-id]");
      await page.click('[data-action="rotate"]');
      const text = await page.locator("dialog[open] .dialog-body p").first().textContent();
      await page.click('dialog button:has-text("Cancel")');
      return text;
    };
    assert.equal(await sentence(), "A new secret is created. The current secret keeps verifying until the grace period ends, so you can deploy the new one first.");
    for (let i = 0; i < 2; i++) assert.equal((await server.admin("POST", `${envPath(env.id)}/secrets`, {})).status, 201);
    assert.equal(await sentence(), "A new secret is created. The 3 active secrets keep verifying until the grace period ends, so you can deploy the new one first.");
  });

  test("every button of a dialog has an accessible name, the × included", async () => {
    await open(`#/env/${server.envId}`, "tr[data-key-id]");
    for (const action of ["rotate", "import"]) {
      await page.click(`[data-action="${action}"]`);
      const dialog = page.locator("dialog[open]");
      await dialog.waitFor();
      assert.equal(await page.getByRole("dialog").getByRole("button", { name: "Close dialog" }).count(), 1, action);
      const unnamed = await dialog.locator("button").evaluateAll((buttons) =>
        buttons.filter((b) => !(b.getAttribute("aria-label") || b.textContent).trim()).map((b) => b.outerHTML));
      assert.deepEqual(unnamed, [], action);
      // The dialog is named by its heading.
      assert.equal(await page.getByRole("dialog", { name: await dialog.locator("h2").textContent() }).count(), 1);
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "detached" });
    }
  });

  test("server messages show `backticked` names as code, never raw backticks or markup", async () => {
    await open(`#/env/${server.envId}/webhooks`, '[data-action="add-webhook"]');
    await page.click('[data-action="add-webhook"]');
    // A loopback URL is refused (no --allow-private-webhooks): "`url` points at …".
    await page.fill("#webhook-url", "http://127.0.0.1:9/<b>hook</b>");
    await page.click("dialog [data-confirm]");
    const alert = page.locator("dialog .alert-danger");
    await alert.waitFor();
    const text = await alert.textContent();
    assert.doesNotMatch(text, /`/, text);
    assert.deepEqual(await alert.locator("code").allTextContents(), ["url"]);
    assert.equal(await alert.locator("b").count(), 0);
    await page.keyboard.press("Escape");
  });

  test("at 390 px: a top bar with a menu, ids cut with an ellipsis in tables and wrapped at separators in headings", async () => {
    const env = await newEnv("Phone");
    const longId = "customer-account_2026-11-01_ada.lovelace-longname@example-company.com";
    assert.equal((await identify(env, { user_id: longId, signature: sign(env.secret, longId) })).status, 200);
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await open(`#/env/${env.id}/users`, "tr[data-user]");
      const bar = await page.locator(".sidebar").boundingBox();
      assert.ok(bar.height <= 64, `the top bar is ${bar.height} px tall`);
      assert.equal(await page.locator("#nav").isVisible(), false, "the menu starts closed");
      assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390, "no sideways scrolling");

      const id = page.locator(`tr[data-user="${longId}"] a .id-text`);
      assert.equal(await id.getAttribute("title"), longId);
      const style = await id.evaluate((el) => ({
        overflow: getComputedStyle(el).textOverflow,
        wrap: getComputedStyle(el).whiteSpace,
        cut: el.scrollWidth > el.clientWidth,
        lines: Math.round(el.getBoundingClientRect().height / parseFloat(getComputedStyle(el).lineHeight)),
      }));
      assert.deepEqual(style, { overflow: "ellipsis", wrap: "nowrap", cut: true, lines: 1 });

      await page.click("#menu-toggle");
      assert.equal(await page.locator("#menu-toggle").getAttribute("aria-expanded"), "true");
      assert.ok(await page.locator("#nav").isVisible());
      await page.click('#nav a:has-text("Audit log")');
      await page.waitForURL(/\/audit$/);
      await page.locator("tr[data-audit-kind], td.empty").first().waitFor();
      assert.equal(await page.locator("#nav").isVisible(), false, "navigating closes the menu");

      await open(`#/env/${env.id}/users/${encodeURIComponent(longId)}`, '[data-field="key_id"]');
      // Every line of the heading but the last ends just after a separator.
      const lineEnds = await page.locator(".page-head h1").evaluate((h1) => {
        const chars = [];
        const walker = document.createTreeWalker(h1, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          for (let i = 0; i < n.data.length; i++) {
            const r = document.createRange();
            r.setStart(n, i);
            r.setEnd(n, i + 1);
            chars.push({ ch: n.data[i], top: Math.round(r.getBoundingClientRect().top) });
          }
        }
        return chars.filter((c, i) => i + 1 < chars.length && chars[i + 1].top > c.top).map((c) => c.ch);
      });
      assert.ok(lineEnds.length >= 1, "the id needs more than one line at 390 px");
      for (const ch of lineEnds) assert.match(ch, /[_\-.@/:|]/, `a line ends with ${JSON.stringify(ch)}: ${lineEnds}`);
      await screenshot(page, "admin-long-user-id-390");
    } finally {
      await page.setViewportSize({ width: 1366, height: 900 });
    }
  });
});
