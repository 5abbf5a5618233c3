// A keyboard-only walk through the admin UI, in Chromium against the real server: sign in,
// open the environment, turn enforcement on and confirm, with Tab, Enter and Space only,
// and a visible focus ring wherever the focus lands.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { launchBrowser, startServer } from "./harness.mjs";

describe("admin UI by keyboard only", () => {
  let server;
  let browser;
  let page;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser({ viewport: { width: 1366, height: 900 } });
    page = await browser.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Presses Tab until `matches(activeElement)` holds (evaluated in the page); returns the path. */
  async function tabTo(description, matches, arg, max = 40) {
    const path = [];
    for (let i = 0; i < max; i++) {
      await page.keyboard.press("Tab");
      const here = await page.evaluate(() => {
        const el = document.activeElement;
        return `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${el.dataset?.confirm !== undefined ? "[data-confirm]" : ""} ${(el.getAttribute("aria-label") || el.textContent || "").trim().slice(0, 30)}`;
      });
      path.push(here);
      if (await page.evaluate(matches, arg)) return path;
    }
    assert.fail(`Tab never reached ${description}; it went through:\n${path.join("\n")}`);
  }

  /** The focused element shows a focus ring (on itself or, for the switch, on its slider). */
  const focusRingVisible = () =>
    page.evaluate(() => {
      const el = document.activeElement;
      const target = el.matches("input[role=switch]") ? el.nextElementSibling : el;
      const s = getComputedStyle(target);
      return s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0;
    });

  test("sign in, open the environment, turn enforcement on and confirm", async () => {
    await page.goto(`${server.url}/admin`);
    await page.waitForURL(/\/admin\/login$/);

    await tabTo("the token field", () => document.activeElement.id === "token");
    assert.ok(await focusRingVisible(), "the token field shows its focus");
    await page.keyboard.type(server.adminToken);
    await page.keyboard.press("Enter");
    await page.waitForURL(/#\/environments$/);
    await page.locator(`tr[data-env="${server.envId}"]`).waitFor();

    await tabTo("the environment's link", (env) => document.activeElement.getAttribute("href") === `#/env/${env}`, server.envId);
    assert.ok(await focusRingVisible(), "the link shows its focus");
    await page.keyboard.press("Enter");
    await page.locator("#enforcement-switch").waitFor({ state: "attached" });
    await page.locator("tr[data-key-id]").first().waitFor();

    await tabTo("the enforcement switch", () => document.activeElement.id === "enforcement-switch");
    assert.ok(await focusRingVisible(), "the switch shows its focus");
    await page.keyboard.press("Space");
    const dialog = page.locator("dialog[open]");
    await dialog.waitFor();
    assert.equal(await page.locator("#enforcement-switch").isChecked(), false, "not before confirming");
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), "Cancel", "focus starts on Cancel");
    await tabTo("the confirm button", () => document.activeElement.hasAttribute("data-confirm"));
    assert.ok(await focusRingVisible(), "the confirm button shows its focus");
    await page.keyboard.press("Enter");

    await page.waitForFunction(() => document.querySelector("#coverage-sentence")?.textContent.startsWith("Enforcement is on"));
    assert.equal(await page.locator("#enforcement-switch").isChecked(), true);
    const env = await server.admin("GET", `/admin/v1/environments/${server.envId}`);
    assert.equal(env.body.enforcement, "enforce");
    assert.equal(await page.evaluate(() => document.activeElement.id), "enforcement-switch", "focus comes back to the switch");
  });
});
