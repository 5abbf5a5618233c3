// The admin UI's Admin tokens page in real headless Chromium against the real server: the
// list, creating a scoped viewer token (its value shown once, and it really is a viewer
// limited to that environment), deleting with a confirmation, the 409 for the last full
// admin token, and what a viewer or a scoped token sees instead of the page.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ADMIN_TOKEN, adminAs, launchBrowser, signIn, startServer } from "./harness.mjs";

describe("admin UI: admin tokens", () => {
  let server;
  let browser;
  let page;
  let otherEnv;
  let bootstrapId;
  /** A second browser, for signing in with other tokens; `as(token)` signs it in afresh. */
  let other;
  let otherPage;
  const as = async (token) => {
    await other.context.clearCookies();
    await signIn(otherPage, server.url, token);
    return otherPage;
  };

  const tokensPage = async () => {
    const target = `${server.url}/admin#/admin-tokens`;
    if (page.url() === target) await page.reload();
    else await page.goto(target);
    await page.locator(".page-head h1", { hasText: "Admin tokens" }).waitFor();
    await page.waitForFunction(() => !document.querySelector('[aria-busy="true"], .loading'));
  };
  const row = (id) => page.locator(`tr[data-token-id="${id}"]`);
  const tokens = async () => (await server.admin("GET", "/admin/v1/admin-tokens")).body.data;

  /** Creates a token through the dialog; resolves to {id, value} as the once-only dialog shows them. */
  const createThroughDialog = async ({ name, role, envIds = [] }) => {
    await page.click('[data-action="new-token"]');
    const dialog = page.locator("dialog[open]");
    await dialog.locator("#token-name").fill(name);
    await dialog.locator(`#token-role-${role}`).check();
    for (const id of envIds) await dialog.locator(`#token-env-${id}`).check();
    await dialog.locator("button[type=submit]").click();
    const shown = page.locator("dialog[open] [data-new-token]");
    await shown.waitFor();
    return { id: await shown.getAttribute("data-new-token"), value: await shown.locator("[data-secret-value]").inputValue(), shown };
  };

  before(async () => {
    server = await startServer();
    const created = await server.admin("POST", "/admin/v1/environments", { name: "Staging", mode: "test" });
    assert.equal(created.status, 201);
    otherEnv = created.body.id;
    bootstrapId = (await tokens())[0].id;
    browser = await launchBrowser({ viewport: { width: 1366, height: 900 } });
    page = await browser.newPage();
    await signIn(page, server.url, ADMIN_TOKEN);
    other = await launchBrowser();
    otherPage = await other.newPage();
  });

  after(async () => {
    await other?.close();
    await browser?.close();
    await server?.stop();
  });

  test("the sidebar links the page, which lists each token's name, role, scope, creation date and id", async () => {
    await page.click('#nav a[href="#/admin-tokens"]');
    await page.locator(`tr[data-token-id="${bootstrapId}"]`).waitFor();
    assert.equal(await page.locator('#nav a[href="#/admin-tokens"]').getAttribute("aria-current"), "page");
    const cells = await row(bootstrapId).locator("td").allTextContents();
    assert.equal(cells[0], "bootstrap");
    assert.equal(cells[1], "Admin");
    assert.equal(cells[2], "All environments");
    assert.ok(cells[3].length > 0, "a creation date");
    assert.equal(cells[4], bootstrapId);
    assert.equal(await row(bootstrapId).getAttribute("data-role"), "admin");
  });

  test("a new scoped viewer token is shown once with a warning, and it really reads only that environment", async () => {
    await tokensPage();
    const { id, value, shown } = await createThroughDialog({ name: "Support desk", role: "viewer", envIds: [server.envId] });
    assert.match(id, /^tok_/);
    assert.match(value, /^vat_/);
    assert.match(await shown.textContent(), /you will not see it again/);
    await page.locator("dialog[open] button", { hasText: "Done" }).click();
    await row(id).waitFor();
    assert.equal(await row(id).getAttribute("data-role"), "viewer");
    assert.equal(await row(id).locator("[data-scope]").getAttribute("data-scope"), server.envId);
    assert.match(await row(id).textContent(), /test environment|Support desk/);
    assert.doesNotMatch(await page.locator("#view").textContent(), new RegExp(value), "the value is not on the page any more");

    // The value the dialog showed is a viewer limited to that environment.
    assert.equal((await adminAs(server.url, value, "GET", `/admin/v1/environments/${server.envId}`)).status, 200);
    assert.equal((await adminAs(server.url, value, "GET", `/admin/v1/environments/${otherEnv}`)).status, 404);
    const write = await adminAs(server.url, value, "PATCH", `/admin/v1/environments/${server.envId}`, { allowed_origins: [] });
    assert.equal(write.status, 403);
    assert.equal(write.body.error.code, "forbidden");
    const listed = (await tokens()).find((t) => t.id === id);
    assert.deepEqual([listed.name, listed.role, listed.environment_ids, listed.token], ["Support desk", "viewer", [server.envId], undefined]);
  });

  test("a bad name is refused in the dialog with the server's message", async () => {
    await tokensPage();
    await page.click('[data-action="new-token"]');
    const dialog = page.locator("dialog[open]");
    await dialog.locator("#token-name").fill("   ");
    await dialog.locator("button[type=submit]").click();
    await dialog.locator(".alert-danger", { hasText: "must be 1–100 characters" }).waitFor();
    await dialog.locator('[data-action="close-dialog"]').click();
  });

  test("deleting a token asks first, naming it; then the token is refused", async () => {
    const made = await server.admin("POST", "/admin/v1/admin-tokens", { name: "CI deploys", role: "admin" });
    assert.equal(made.status, 201);
    await tokensPage();
    await row(made.body.id).locator('[data-action="delete-token"]').click();
    const dialog = page.locator("dialog[open]");
    const text = await dialog.textContent();
    assert.match(text, /CI deploys/);
    assert.match(text, new RegExp(made.body.id));
    assert.match(text, /cannot be undone/);
    await dialog.locator("button", { hasText: "Cancel" }).click();
    assert.ok((await tokens()).some((t) => t.id === made.body.id), "Cancel deletes nothing");

    await row(made.body.id).locator('[data-action="delete-token"]').click();
    await page.locator("dialog[open] [data-confirm]").click();
    await page.locator(".toast", { hasText: "“CI deploys” deleted" }).waitFor();
    await row(made.body.id).waitFor({ state: "detached" });
    assert.equal((await adminAs(server.url, made.body.token, "GET", "/admin/v1/environments")).status, 401);
  });

  test("the last full admin token cannot be deleted, and the page says why", async () => {
    await tokensPage();
    const full = (await tokens()).filter((t) => t.role === "admin" && !t.environment_ids);
    assert.deepEqual(full.map((t) => t.id), [bootstrapId], "only the bootstrap token has full access");
    await row(bootstrapId).locator('[data-action="delete-token"]').click();
    await page.locator("dialog[open] [data-confirm]").click();
    const toast = page.locator(".toast-error");
    await toast.waitFor();
    assert.match(await toast.textContent(), /last admin token with access to every environment.*create another one first/);
    await row(bootstrapId).waitFor();
    assert.ok((await tokens()).some((t) => t.id === bootstrapId));
  });

  test("deleting the token this console is signed in with signs it out", async () => {
    const made = await server.admin("POST", "/admin/v1/admin-tokens", { name: "Temporary", role: "admin" });
    const p = await as(made.body.token);
    await p.goto(`${server.url}/admin#/admin-tokens`);
    await p.locator(`tr[data-token-id="${made.body.id}"] [data-action="delete-token"]`).click();
    await p.locator("dialog[open] [data-confirm]").click();
    await p.waitForURL(/\/admin\/login$/);
    assert.ok(!(await tokens()).some((t) => t.id === made.body.id));
  });

  for (const [who, body, reason] of [
    ["a viewer token", { name: "Viewer", role: "viewer" }, /viewer role/],
    ["an admin token limited to one environment", { name: "Scoped", role: "admin", environment_ids: [otherEnv ?? "later"] }, /limited to some environments/],
  ]) {
    test(`${who} sees why instead of the page`, async () => {
      if (body.environment_ids) body.environment_ids = [otherEnv];
      const made = await server.admin("POST", "/admin/v1/admin-tokens", body);
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const p = await as(made.body.token);
      await p.goto(`${server.url}/admin#/admin-tokens`);
      const notice = p.locator("[data-no-access]");
      await notice.waitFor();
      const text = await notice.textContent();
      assert.match(text, /cannot manage admin tokens/);
      assert.match(text, reason, "the server's reason");
      assert.equal(await p.locator("tr[data-token-id]").count(), 0, "no token is listed");
      assert.equal(await p.locator('[data-action="new-token"]').count(), 0, "no create button");
    });
  }

  test("no page broke its Content-Security-Policy or threw", () => {
    // A refused call (403, 404) is logged by Chromium as a failed load; nothing else may be.
    const bad = [...page.consoleMessages, ...otherPage.consoleMessages].filter((m) => m.type === "pageerror" || /Content Security Policy|Refused to/i.test(m.text));
    assert.deepEqual(bad, []);
  });
});
