// The browser SDK as a package: one hand-written source (the ES module in the server
// crate), the classic script generated from it and current, the npm package's file list,
// and the crate package carrying the SDK files.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { describe, test } from "node:test";

import { ROOT } from "./harness.mjs";
import { DIST, GLOBAL, SOURCE, TYPES, classicScript } from "../../sdk/js/build.mjs";

const run = promisify(execFile);
const PACKAGE_DIR = path.join(ROOT, "sdk", "js");

describe("browser SDK package", () => {
  test("the committed classic script is exactly what build.mjs makes of vouch.js", async () => {
    const fresh = classicScript(await readFile(SOURCE, "utf8"));
    assert.equal(await readFile(GLOBAL, "utf8"), fresh, "run `node sdk/js/build.mjs` and commit assets/sdk/vouch.global.js");
    await run(process.execPath, [path.join(PACKAGE_DIR, "build.mjs"), "--check"]);
  });

  test("the build refuses module syntax it cannot turn into a classic script", () => {
    const ok = 'const SCRIPT_URL = import.meta.url;\nexport class A {}\nexport const B = { A };\nexport default B;\n';
    const out = classicScript(ok);
    assert.match(out, /^class A \{\}$/m);
    assert.match(out, /^const B = \{ A \};$/m);
    assert.doesNotMatch(out, /\bexport\b|import\.meta/);
    assert.match(out, /globalThis\.Vouch = Vouch;/);
    assert.throws(() => classicScript(`${ok}export { A as C };\n`), /cannot rewrite/);
    assert.throws(() => classicScript(`import x from "y";\n${ok}`), /must not import/);
    assert.throws(() => classicScript(`${ok}const u = import.meta.url;\n`), /import\.meta outside/);
    assert.throws(() => classicScript("export const B = 1;\n"), /exactly one line/);
  });

  test("package.json is ready for npm: not private, exports with import, script and default, types", async () => {
    const pkg = JSON.parse(await readFile(path.join(PACKAGE_DIR, "package.json"), "utf8"));
    assert.equal(pkg.private, undefined);
    assert.match(pkg.name, /^@vouch\//);
    assert.match(pkg.version, /^\d+\.\d+\.\d+$/);
    const root = pkg.exports["."];
    assert.equal(root.import, "./dist/vouch.js");
    assert.equal(root.default, "./dist/vouch.js");
    assert.equal(root.script, "./dist/vouch.global.js");
    assert.equal(root.types, "./dist/vouch.d.ts");
    assert.equal(pkg.exports["./global"].default, "./dist/vouch.global.js");
    assert.equal(pkg.types, "./dist/vouch.d.ts");
    assert.ok(Array.isArray(pkg.files) && pkg.files.length > 0);
  });

  test("npm pack ships exactly the three SDK files, the README and package.json", async () => {
    const { stdout } = await run("npm", ["pack", "--dry-run", "--json", "--ignore-scripts=false"], {
      cwd: PACKAGE_DIR,
      env: { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false" },
    });
    const [report] = JSON.parse(stdout.slice(stdout.indexOf("[")));
    const files = report.files.map((f) => f.path).sort();
    assert.deepEqual(files, ["README.md", "dist/vouch.d.ts", "dist/vouch.global.js", "dist/vouch.js", "package.json"]);
    // prepack copied the crate's files, unchanged.
    for (const source of [SOURCE, GLOBAL, TYPES]) {
      assert.equal(await readFile(path.join(DIST, path.basename(source)), "utf8"), await readFile(source, "utf8"));
    }
  });

  test("the packed tarball installs and resolves: import, the global script and the types", async () => {
    const work = await mkdtemp(path.join(os.tmpdir(), "vouch-sdk-pack-"));
    const npmEnv = { ...process.env, npm_config_update_notifier: "false", npm_config_fund: "false", npm_config_audit: "false" };
    try {
      const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", work], { cwd: PACKAGE_DIR, env: npmEnv });
      const [report] = JSON.parse(stdout.slice(stdout.indexOf("[")));
      const tarball = path.join(work, report.filename);
      const app = path.join(work, "app");
      await run("mkdir", ["-p", app]);
      await writeFile(path.join(app, "package.json"), JSON.stringify({ name: "customer-app", private: true, type: "module" }));
      // A local tarball without dependencies installs with no registry at all.
      await run("npm", ["install", "--offline", "--no-save", tarball], { cwd: app, env: npmEnv });
      const probe = `
        import { createRequire } from "node:module";
        import { readFileSync } from "node:fs";
        const require = createRequire(import.meta.url);
        const mod = await import("@vouch/browser");
        const global = require.resolve("@vouch/browser/global");
        const pkg = JSON.parse(readFileSync(require.resolve("@vouch/browser/package.json"), "utf8"));
        console.log(JSON.stringify({
          init: typeof mod.Vouch.init, error: typeof mod.VouchError,
          global, types: pkg.types, version: pkg.version,
        }));`;
      const out = await run(process.execPath, ["--input-type=module", "-e", probe], { cwd: app });
      const seen = JSON.parse(out.stdout);
      assert.equal(seen.init, "function");
      assert.equal(seen.error, "function");
      const installed = path.join(app, "node_modules", "@vouch", "browser");
      assert.equal(seen.global, path.join(installed, "dist", "vouch.global.js"));
      // What npm users get is byte for byte what the server serves under /sdk/ (tested in Chromium).
      for (const source of [SOURCE, GLOBAL, TYPES]) {
        assert.equal(await readFile(path.join(installed, "dist", path.basename(source)), "utf8"), await readFile(source, "utf8"));
      }
      assert.equal(seen.types, "./dist/vouch.d.ts");
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  test("cargo package of the server crate carries the SDK files", async () => {
    const { stdout } = await run("cargo", ["package", "-p", "vouch-server", "--list", "--allow-dirty", "--offline"], {
      cwd: ROOT,
      maxBuffer: 8 << 20,
    });
    const listed = stdout.split("\n");
    for (const file of ["assets/sdk/vouch.js", "assets/sdk/vouch.global.js", "assets/sdk/vouch.d.ts"]) {
      assert.ok(listed.includes(file), `${file} not in \`cargo package --list\`:\n${stdout}`);
    }
  });
});
