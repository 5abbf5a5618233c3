// Shared by every browser test file: starts the real `vouch serve` (built beforehand, never
// built here) on a free port with a temporary data dir, and drives Debian's Chromium
// through playwright-core.
//
//   const server = await startServer();        // {url, envId, publishableKey, secret, admin(), stop()}
//   const browser = await launchBrowser();     // {context, newPage(), close()}
//   await screenshot(page, "demo-verified");   // ci-output/screenshots/demo-verified.png

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SCREENSHOT_DIR = path.join(ROOT, "ci-output", "screenshots");
/** The bootstrap admin token every test server starts with (`VOUCH_ADMIN_TOKEN`). */
export const ADMIN_TOKEN = "vat_browser_tests_0123456789abcdefghijklmnopqrstuvwxyz";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** `HMAC-SHA256(secret, message)` in hex, as a customer's Node backend computes it. */
export function sign(secret, message) {
  return createHmac("sha256", secret).update(message, "utf8").digest("hex");
}

/**
 * Starts `vouch serve` (`VOUCH_BIN`, default target/debug/vouch) on 127.0.0.1 port 0 with a
 * fresh data dir, and resolves once its banner has been printed and /healthz answers.
 * `extraArgs` are appended to the `serve` command line (e.g. `["--allow-private-webhooks"]`).
 */
export async function startServer({ env = {}, timeoutMs = 30_000, extraArgs = [] } = {}) {
  const bin = path.resolve(ROOT, process.env.VOUCH_BIN ?? "target/debug/vouch");
  const dataDir = await mkdtemp(path.join(tmpdir(), "vouch-browser-"));
  const child = spawn(bin, ["serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", ...extraArgs], {
    cwd: ROOT,
    env: { ...process.env, VOUCH_ADMIN_TOKEN: ADMIN_TOKEN, VOUCH_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vouch serve printed no banner within ${timeoutMs} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`)), timeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${bin}: ${e.message} (build it with \`cargo build -p vouch\` or set VOUCH_BIN)`));
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`vouch serve exited (${code ?? signal}) before it was ready.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    });
    child.stdout.on("data", (d) => {
      stdout += d;
      if (/API reference:.*\n?/.test(stdout) && /listening on \S+/.test(stdout)) {
        clearTimeout(timer);
        resolve(stdout);
      }
    });
  });

  const field = (re, what) => {
    const m = re.exec(banner);
    if (!m) throw new Error(`the banner has no ${what}:\n${banner}`);
    return m;
  };
  const url = field(/listening on (http:\/\/\S+)/, "address")[1];
  const info = {
    url,
    banner,
    dataDir,
    adminToken: ADMIN_TOKEN,
    envId: field(/Environment:\s+(env_\S+)/, "environment")[1],
    publishableKey: field(/Publishable key:\s+(pk_\S+)/, "publishable key")[1],
    secret: field(/Identity secret:\s+(sk_\S+)\s+\((key_\S+)\)/, "identity secret")[1],
    keyId: field(/Identity secret:\s+(sk_\S+)\s+\((key_\S+)\)/, "identity secret")[2],
    logs: () => stderr,
    /** An admin API call; resolves to {status, body}. */
    async admin(method, apiPath, body) {
      const res = await fetch(url + apiPath, {
        method,
        headers: {
          Authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(killer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) break;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) {
      await info.stop();
      throw new Error(`${url}/healthz did not answer 200 within ${timeoutMs} ms.\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return info;
}

/**
 * Launches Chromium with a fresh profile (in time zone `timezoneId`, when given, instead of the
 * machine's). `newPage()` records the page's console messages
 * in `page.consoleMessages` (`{type, text}`), so a test can assert what DevTools shows.
 */
export async function launchBrowser({ viewport = { width: 1280, height: 900 }, timezoneId } = {}) {
  const { chromium } = await import("playwright-core");
  const profile = await mkdtemp(path.join(tmpdir(), "vouch-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport,
    deviceScaleFactor: 1,
    ...(timezoneId ? { timezoneId } : {}),
  });
  return {
    context,
    async newPage() {
      const page = await context.newPage();
      page.consoleMessages = [];
      page.on("console", (m) => page.consoleMessages.push({ type: m.type(), text: m.text() }));
      page.on("pageerror", (e) => page.consoleMessages.push({ type: "pageerror", text: String(e) }));
      return page;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page PNG under ci-output/screenshots/ and returns its path. */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * A customer's site on its own origin (127.0.0.1, another port): serves `pages`, a map of
 * path → HTML, and 404 for anything else. Resolves to {url, close()}.
 */
export async function serveSite(pages) {
  const { createServer } = await import("node:http");
  const server = createServer((req, res) => {
    const body = pages[new URL(req.url, "http://site").pathname];
    if (body === undefined) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(body);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * Runs axe-core (WCAG 2.x A/AA rules and best practices) on the page as it is now and
 * returns its serious and critical violations as `{id, impact, help, nodes: [selector…]}`.
 * axe is evaluated through the DevTools protocol, which the pages' CSP does not govern.
 */
export async function axeViolations(page, { exclude = [] } = {}) {
  const { createRequire } = await import("node:module");
  const { readFile } = await import("node:fs/promises");
  const source = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(source);
  const results = await page.evaluate(
    (ex) => window.axe.run({ include: [document], exclude: ex.map((s) => [s]) }, { resultTypes: ["violations"] }),
    exclude,
  );
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
}

/** An admin API call to the server at `url` as `token`; resolves to {status, body}. */
export async function adminAs(url, token, method, apiPath, body) {
  const res = await fetch(url + apiPath, {
    method,
    headers: {
      Authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** Signs `page` in to the admin UI at `url` with `token`; resolves on the environments page. */
export async function signIn(page, url, token) {
  await page.goto(`${url}/admin/login`);
  await page.fill("#token", token);
  await page.click("#login-submit");
  await page.waitForURL(/\/admin#\/environments$/);
  await page.locator(".page-head h1", { hasText: "Environments" }).waitFor();
}
