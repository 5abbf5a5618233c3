// Both ways a customer loads the browser SDK, in Chromium, from a customer site on another
// origin against the real server: the classic script (a plain <script src> that defines
// window.Vouch, the snippet customers paste) and the ES module.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";

import { ROOT, launchBrowser, serveSite, sign, startServer } from "./harness.mjs";

const ASSETS = path.join(ROOT, "crates", "vouch-server", "assets", "sdk");

/** The page a customer's backend renders: the user, its signature, and the snippet. */
function classicPage(vouchUrl, { publishableKey, userId, signature }) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Customer app</title>
<script src="${vouchUrl}/sdk/vouch.global.js"></script>
</head><body><h1>Customer app</h1>
<script>
  window.outcome = (async () => {
    const vouch = Vouch.init({ publishableKey: ${JSON.stringify(publishableKey)} });
    try {
      const out = await vouch.identify(${JSON.stringify(userId)}, { name: "Ada" }, { signature: ${JSON.stringify(signature)} });
      return { ok: true, user: out.user, claims: vouch.session.claims };
    } catch (e) {
      return { ok: false, code: e.code, status: e.status, message: e.message, isVouchError: e instanceof Vouch.VouchError };
    }
  })();
</script></body></html>`;
}

function modulePage(vouchUrl, { publishableKey, userId, signature }) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>Customer app (module)</title></head>
<body><h1>Customer app</h1>
<script type="module">
  import { Vouch, VouchError } from "${vouchUrl}/sdk/vouch.js";
  window.outcome = (async () => {
    const vouch = Vouch.init({ publishableKey: ${JSON.stringify(publishableKey)} });
    try {
      const out = await vouch.identify(${JSON.stringify(userId)}, {}, { signature: ${JSON.stringify(signature)} });
      return { ok: true, user: out.user, claims: vouch.session.claims, sameError: Vouch.VouchError === VouchError };
    } catch (e) {
      return { ok: false, code: e.code, message: e.message };
    }
  })();
</script></body></html>`;
}

describe("loading the browser SDK on a customer's page", () => {
  let server;
  let browser;
  let site;

  before(async () => {
    server = await startServer();
    browser = await launchBrowser();
    const pk = server.publishableKey;
    site = await serveSite({
      "/classic.html": classicPage(server.url, { publishableKey: pk, userId: "classic-1", signature: sign(server.secret, "classic-1") }),
      "/classic-wrong.html": classicPage(server.url, { publishableKey: pk, userId: "classic-2", signature: sign(server.secret, "classic-3") }),
      // `echo "classic-4" | openssl dgst …` signs the id with its trailing newline.
      "/classic-newline.html": classicPage(server.url, { publishableKey: pk, userId: "classic-4", signature: sign(server.secret, "classic-4\n") }),
      "/module.html": modulePage(server.url, { publishableKey: pk, userId: "module-1", signature: sign(server.secret, "module-1") }),
    });
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    await server?.stop();
  });

  async function outcome(pagePath) {
    const page = await browser.newPage();
    const identifyAnswers = [];
    page.on("response", async (res) => {
      if (new URL(res.url()).pathname === "/v1/identify" && res.request().method() === "POST") {
        identifyAnswers.push(res.json().catch(() => null));
      }
    });
    await page.goto(site.url + pagePath);
    await page.waitForFunction(() => window.outcome !== undefined, null, { timeout: 10_000 });
    const result = await page.evaluate(() => window.outcome);
    return { page, result, answers: await Promise.all(identifyAnswers) };
  }

  test("a plain <script src> defines window.Vouch, and Vouch.init(...).identify(...) verifies", async () => {
    const { page, result } = await outcome("/classic.html");
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.user.id, "classic-1");
    assert.equal(result.user.verified, true);
    assert.equal(result.user.verified_by, "signature");
    // apiUrl defaulted to the server the script came from, not the customer's origin.
    assert.equal(result.claims.aud, server.envId);
    assert.equal(new URL(result.claims.iss).port, new URL(server.url).port);
    // Only window.Vouch is defined; the SDK's internals stay inside the script.
    const globals = await page.evaluate(() => ({
      vouch: typeof window.Vouch,
      init: typeof window.Vouch.init,
      client: typeof window.VouchClient,
      error: typeof window.VouchError,
    }));
    assert.deepEqual(globals, { vouch: "object", init: "function", client: "undefined", error: "undefined" });
    assert.deepEqual(page.consoleMessages.filter((m) => m.type === "error"), []);
    const stored = await server.admin("GET", `/admin/v1/environments/${server.envId}/users/classic-1`);
    assert.equal(stored.body.verified, true);
    await page.close();
  });

  test("an invalid_signature answer rejects, and the console shows the server's message verbatim", async () => {
    const { page, result, answers } = await outcome("/classic-wrong.html");
    assert.equal(result.ok, false);
    assert.equal(result.code, "invalid_signature");
    assert.equal(result.status, 401);
    assert.equal(result.isVouchError, true);
    assert.equal(answers.length, 1, "a wrong signature is sent once, not retried");
    const serverMessage = answers[0].error.message;
    assert.equal(answers[0].error.code, "invalid_signature");
    assert.equal(result.message, serverMessage);
    const errors = page.consoleMessages.filter((m) => m.type === "error").map((m) => m.text);
    assert.ok(
      errors.includes(`Vouch: ${serverMessage} (invalid_signature)`),
      `the console shows the server's message; got ${JSON.stringify(page.consoleMessages)}`,
    );
    await page.close();
  });

  test("in a test environment the console names the likely mistake behind a wrong signature", async () => {
    const { page, result, answers } = await outcome("/classic-newline.html");
    assert.equal(result.ok, false);
    assert.equal(result.code, "invalid_signature");
    const serverMessage = answers[0].error.message;
    assert.match(serverMessage, /^Incorrect user identity verification signature: .*trailing newline/);
    assert.equal(result.message, serverMessage);
    const errors = page.consoleMessages.filter((m) => m.type === "error").map((m) => m.text);
    assert.ok(
      errors.includes(`Vouch: ${serverMessage} (invalid_signature)`),
      `the console shows the diagnosis; got ${JSON.stringify(page.consoleMessages)}`,
    );
    await page.close();
  });

  test("the ES module imported from another origin identifies the same way", async () => {
    const { page, result } = await outcome("/module.html");
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.equal(result.user.id, "module-1");
    assert.equal(result.user.verified, true);
    assert.equal(result.claims.aud, server.envId);
    assert.equal(result.sameError, true);
    assert.deepEqual(page.consoleMessages.filter((m) => m.type === "error" || m.type === "pageerror"), []);
    await page.close();
  });

  test("both forms and the types are served with the same caching, CORS and ETag treatment", async () => {
    for (const [name, pattern] of [["vouch.js", /^text\/javascript/], ["vouch.global.js", /^text\/javascript/], ["vouch.d.ts", /^application\/typescript/]]) {
      const res = await fetch(`${server.url}/sdk/${name}`, { headers: { Origin: "https://customer.example" } });
      assert.equal(res.status, 200, name);
      assert.match(res.headers.get("content-type"), pattern, name);
      assert.equal(res.headers.get("access-control-allow-origin"), "*", name);
      assert.equal(res.headers.get("cross-origin-resource-policy"), "cross-origin", name);
      assert.equal(res.headers.get("cache-control"), "public, max-age=300, stale-while-revalidate=86400", name);
      assert.equal(await res.text(), await readFile(path.join(ASSETS, name), "utf8"), `${name} is the file in the crate`);
      const etag = res.headers.get("etag");
      assert.match(etag, /^"[0-9a-f]{24}"$/, name);
      const again = await fetch(`${server.url}/sdk/${name}`, { headers: { "If-None-Match": etag } });
      assert.equal(again.status, 304, name);
    }
  });
});
