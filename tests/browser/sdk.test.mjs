// The browser SDK (crates/vouch-server/assets/sdk/vouch.js): unit tests in Node with an injected fetch, then one
// suite against the real server with Node's global fetch.
import assert from "node:assert/strict";
import { after, afterEach, before, beforeEach, describe, mock, test } from "node:test";

import { Vouch, VouchError } from "../../crates/vouch-server/assets/sdk/vouch.js";
import { sign, startServer } from "./harness.mjs";

const API = "https://vouch.test";
const PK = "pk_test_unit0000000000000000000000";

function b64url(obj) {
  return Buffer.from(JSON.stringify(obj)).toString("base64url");
}

/** A JWT-shaped session token whose claims the SDK can decode. */
function sessionToken(claims) {
  return `${b64url({ alg: "EdDSA", typ: "JWT" })}.${b64url({ iss: API, aud: "env_unit", iat: 1, exp: 2, ...claims })}.c2ln`;
}

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

function apiError(status, code, message, headers) {
  return json(status, { error: { code, message } }, headers);
}

function identified(userId, token = sessionToken({ sub: userId, verified: true, verified_by: "signature" })) {
  return json(200, {
    session_token: token,
    expires_at: "2030-01-01T00:00:00Z",
    user: { id: userId, verified: true, verified_by: "signature", attributes: {}, verified_attributes: {} },
  });
}

/**
 * A scripted fetch: each call takes the next step (a Response, an Error to throw, or a
 * function of the request). Records every request with its time.
 */
function scriptedFetch(steps) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    const call = {
      url,
      method: init.method ?? "GET",
      auth: init.headers?.Authorization ?? null,
      body: init.body === undefined ? undefined : JSON.parse(init.body),
      at: performance.now(),
    };
    calls.push(call);
    if (steps.length === 0) throw new Error(`unexpected request ${call.method} ${url}`);
    const step = steps.shift();
    const out = typeof step === "function" ? step(call) : step;
    if (out instanceof Error) throw out;
    return out;
  };
  return { fetch, calls };
}

const path = (call) => new URL(call.url).pathname;
const gaps = (calls) => calls.slice(1).map((c, i) => c.at - calls[i].at);

describe("Vouch SDK (unit, fake fetch)", () => {
  let consoleError;
  beforeEach(() => {
    consoleError = mock.method(console, "error", () => {});
  });
  afterEach(() => {
    mock.restoreAll();
  });

  test("network failures are retried with exponential backoff, then succeed", async () => {
    const { fetch, calls } = scriptedFetch([
      new TypeError("fetch failed"),
      new TypeError("fetch failed"),
      new TypeError("fetch failed"),
      identified("u1"),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch, retries: 3, retryBaseMs: 40 });
    const out = await vouch.identify("u1", {}, { signature: "ab".repeat(32) });
    assert.equal(out.user.id, "u1");
    assert.equal(calls.length, 4);
    const [g0, g1, g2] = gaps(calls);
    // base × 2^n, with jitter in [½, 1]: ≥ 20, ≥ 40, ≥ 80 ms (timers may fire ~1 ms early).
    assert.ok(g0 >= 19, `first retry after ${g0} ms`);
    assert.ok(g1 >= 39, `second retry after ${g1} ms`);
    assert.ok(g2 >= 79, `third retry after ${g2} ms`);
    assert.equal(consoleError.mock.callCount(), 0, "a call that finally succeeded logs no error");
  });

  test("503 answers are retried; after the last retry the call rejects with the server's code", async () => {
    const unavailable = () => apiError(503, "unavailable", "The database is unavailable; retry shortly.");
    const { fetch, calls } = scriptedFetch([unavailable, unavailable, unavailable]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch, retries: 2, retryBaseMs: 5 });
    const err = await vouch.track("opened").catch((e) => e);
    // The anonymous session call is the one that fails: 1 try + 2 retries.
    assert.equal(calls.length, 3);
    assert.ok(calls.every((c) => path(c) === "/v1/sessions"));
    assert.ok(err instanceof VouchError);
    assert.equal(err.code, "unavailable");
    assert.equal(err.status, 503);
    assert.deepEqual(consoleError.mock.calls.map((c) => c.arguments[0]), ["Vouch: The database is unavailable; retry shortly. (unavailable)"]);
  });

  test("a 503 followed by success resolves", async () => {
    const { fetch, calls } = scriptedFetch([apiError(503, "unavailable", "later"), identified("u2")]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch, retryBaseMs: 5 });
    const out = await vouch.identify("u2", undefined, { signature: "cd".repeat(32) });
    assert.equal(out.user.verified, true);
    assert.equal(calls.length, 2);
  });

  test("429 waits for Retry-After before retrying", async () => {
    const { fetch, calls } = scriptedFetch([
      apiError(429, "rate_limited", "Too many failed verifications; retry after 1 seconds.", { "retry-after": "1" }),
      identified("u3"),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch, retryBaseMs: 1 });
    await vouch.identify("u3", {}, { signature: "ef".repeat(32) });
    assert.equal(calls.length, 2);
    assert.ok(gaps(calls)[0] >= 990, `retried after ${gaps(calls)[0]} ms, Retry-After was 1 s`);
  });

  test("401 invalid_signature is not retried; it rejects with a VouchError and a console message", async () => {
    const { fetch, calls } = scriptedFetch([
      apiError(401, "invalid_signature", "Incorrect user identity verification signature", { "x-request-id": "req_1" }),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch, retries: 5, retryBaseMs: 1 });
    const err = await vouch.identify("u4", { name: "A" }, { signature: "00".repeat(32) }).catch((e) => e);
    assert.equal(calls.length, 1);
    assert.ok(err instanceof VouchError);
    assert.ok(err instanceof Error);
    assert.equal(err.name, "VouchError");
    assert.equal(err.code, "invalid_signature");
    assert.equal(err.status, 401);
    assert.equal(err.message, "Incorrect user identity verification signature");
    assert.equal(err.requestId, "req_1");
    assert.equal(consoleError.mock.callCount(), 1);
    assert.equal(consoleError.mock.calls[0].arguments[0], "Vouch: Incorrect user identity verification signature (invalid_signature)");
    assert.equal(vouch.session, null);
  });

  test("identify sends the publishable key and every proof under the API's field names", async () => {
    const { fetch, calls } = scriptedFetch([identified("u5")]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: `${API}/`, fetch });
    await vouch.identify("u5", { plan: "pro" }, { signature: "sig", attributesSignature: "asig" });
    assert.equal(calls[0].url, `${API}/v1/identify`);
    assert.equal(calls[0].method, "POST");
    assert.equal(calls[0].auth, `Bearer ${PK}`);
    assert.deepEqual(calls[0].body, { user_id: "u5", attributes: { plan: "pro" }, signature: "sig", attributes_signature: "asig" });
    assert.equal(vouch.session.userId, "u5");
    assert.equal(vouch.session.verified, true);
    assert.equal(vouch.session.claims.verified_by, "signature");
  });

  test("session_expired re-runs the last identify with the same proof, once, and retries the call", async () => {
    const t1 = sessionToken({ sub: "u6", verified: true, sid: "s1" });
    const t2 = sessionToken({ sub: "u6", verified: true, sid: "s2" });
    const { fetch, calls } = scriptedFetch([
      identified("u6", t1),
      apiError(401, "session_expired", "The session has expired; call identify again."),
      identified("u6", t2),
      json(202, { id: "evt_1" }),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    await vouch.identify("u6", { name: "Ada" }, { signature: "aa".repeat(32) });
    const out = await vouch.track("clicked", { n: 1 });
    assert.deepEqual(out, { id: "evt_1" });
    assert.deepEqual(calls.map(path), ["/v1/identify", "/v1/track", "/v1/identify", "/v1/track"]);
    assert.deepEqual(calls[2].body, calls[0].body, "the same identify, same signature");
    assert.equal(calls[2].auth, `Bearer ${PK}`);
    assert.equal(calls[1].auth, `Bearer ${t1}`);
    assert.equal(calls[3].auth, `Bearer ${t2}`);
    assert.equal(vouch.session.token, t2);
    assert.equal(consoleError.mock.callCount(), 0);
  });

  test("a session that expires again right after renewal is not renewed a second time", async () => {
    const expired = () => apiError(401, "session_expired", "The session has expired; call identify again.");
    const { fetch, calls } = scriptedFetch([identified("u7"), expired, identified("u7"), expired]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    await vouch.identify("u7", {}, { signature: "bb".repeat(32) });
    const err = await vouch.me().catch((e) => e);
    assert.equal(err.code, "session_expired");
    assert.equal(err.status, 401);
    assert.equal(calls.length, 4);
  });

  test("reset() forgets the session: the next call opens a new anonymous session", async () => {
    const anon = sessionToken({ sub: "vis_1", verified: false, anonymous: true, vid: "vis_1" });
    const { fetch, calls } = scriptedFetch([
      identified("u8"),
      json(200, { session_token: anon, expires_at: "2030-01-01T00:00:00Z", visitor_id: "vis_1" }),
      json(202, { id: "evt_2" }),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    await vouch.identify("u8", {}, { signature: "cc".repeat(32) });
    assert.equal(vouch.session.userId, "u8");
    vouch.reset();
    assert.equal(vouch.session, null);
    await vouch.track("after_logout");
    assert.deepEqual(calls.map(path), ["/v1/identify", "/v1/sessions", "/v1/track"]);
    assert.equal(calls[2].auth, `Bearer ${anon}`);
    assert.equal(vouch.session.anonymous, true);
    assert.equal(vouch.session.visitorId, "vis_1");
  });

  test("first track without identify opens one anonymous session, shared by concurrent calls", async () => {
    const anon = sessionToken({ sub: "vis_2", verified: false, anonymous: true });
    const { fetch, calls } = scriptedFetch([
      json(200, { session_token: anon, expires_at: "2030-01-01T00:00:00Z", visitor_id: "vis_2" }),
      json(202, { id: "evt_a" }),
      json(202, { id: "evt_b" }),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    assert.equal(vouch.session, null);
    const [a, b] = await Promise.all([vouch.track("a"), vouch.track("b", { x: 1 })]);
    assert.deepEqual([a.id, b.id].sort(), ["evt_a", "evt_b"]);
    assert.deepEqual(calls.map(path), ["/v1/sessions", "/v1/track", "/v1/track"]);
    assert.equal(calls[0].auth, `Bearer ${PK}`);
    assert.deepEqual(calls[0].body, {});
    assert.ok(calls.slice(1).every((c) => c.auth === `Bearer ${anon}`));
    assert.deepEqual(calls.map((c) => c.body?.event).slice(1).sort(), ["a", "b"]);
  });

  test("calls made right after identify (without awaiting it) use the identified session", async () => {
    const token = sessionToken({ sub: "u9", verified: true });
    const { fetch, calls } = scriptedFetch([identified("u9", token), json(202, { id: "evt_3" })]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    const identifying = vouch.identify("u9", {}, { signature: "dd".repeat(32) });
    const tracked = vouch.track("page_view");
    await Promise.all([identifying, tracked]);
    assert.deepEqual(calls.map(path), ["/v1/identify", "/v1/track"]);
    assert.equal(calls[1].auth, `Bearer ${token}`);
  });

  test("an environment without anonymous sessions rejects track before identify", async () => {
    const { fetch } = scriptedFetch([
      apiError(403, "anonymous_not_allowed", "This environment does not allow anonymous sessions: call identify with a signed user id."),
    ]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch, retryBaseMs: 1 });
    const err = await vouch.track("x").catch((e) => e);
    assert.equal(err.code, "anonymous_not_allowed");
    assert.equal(err.status, 403);
    assert.match(consoleError.mock.calls[0].arguments[0], /^Vouch: This environment does not allow anonymous sessions.*\(anonymous_not_allowed\)$/);
  });

  test("a failed identify drops the previous user's session", async () => {
    const { fetch } = scriptedFetch([identified("alice"), apiError(401, "signature_required", "A signature is required.")]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    await vouch.identify("alice", {}, { signature: "ee".repeat(32) });
    await assert.rejects(vouch.identify("mallory"), (e) => e instanceof VouchError && e.code === "signature_required");
    assert.equal(vouch.session, null);
  });

  test("group needs an identified user; init refuses an identity secret", async () => {
    const { fetch, calls } = scriptedFetch([]);
    const vouch = Vouch.init({ publishableKey: PK, apiUrl: API, fetch });
    const err = await vouch.group("acme").catch((e) => e);
    assert.equal(err.code, "invalid_request");
    assert.equal(calls.length, 0);
    assert.throws(
      () => Vouch.init({ publishableKey: "sk_test_abcdef", apiUrl: API, fetch }),
      (e) => e instanceof VouchError && e.code === "invalid_publishable_key" && /identity secret/.test(e.message),
    );
  });
});

describe("Vouch SDK against the real server", () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });

  test("identify with a signature from crypto.createHmac is verified; me and track use the session", async () => {
    const vouch = Vouch.init({ publishableKey: server.publishableKey, apiUrl: server.url });
    const userId = "node-user-1";
    const out = await vouch.identify(userId, { name: "Grace" }, { signature: sign(server.secret, userId) });
    assert.equal(out.user.id, userId);
    assert.equal(out.user.verified, true);
    assert.equal(out.user.verified_by, "signature");
    const s = vouch.session;
    assert.equal(s.userId, userId);
    assert.equal(s.verified, true);
    assert.equal(s.claims.aud, server.envId);
    const me = await vouch.me();
    assert.equal(me.user.id, userId);
    assert.equal(me.user.attributes.name, "Grace");
    const tracked = await vouch.track("checkout", { total: 42 });
    assert.match(tracked.id, /\S/);
  });

  test("a wrong signature is rejected once, with the documented message", async () => {
    const errors = mock.method(console, "error", () => {});
    let requests = 0;
    const counting = (...args) => {
      requests += 1;
      return fetch(...args);
    };
    try {
      const vouch = Vouch.init({ publishableKey: server.publishableKey, apiUrl: server.url, fetch: counting });
      const err = await vouch.identify("node-user-2", {}, { signature: sign(server.secret, "node-user-3") }).catch((e) => e);
      assert.ok(err instanceof VouchError);
      assert.equal(err.status, 401);
      assert.equal(err.code, "invalid_signature");
      assert.equal(requests, 1);
      assert.equal(errors.mock.calls[0].arguments[0], "Vouch: Incorrect user identity verification signature (invalid_signature)");
    } finally {
      mock.restoreAll();
    }
  });

  test("GET /sdk/vouch.js is served to any origin with cache validators", async () => {
    const res = await fetch(`${server.url}/sdk/vouch.js`, { headers: { Origin: "https://customer.example" } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type"), /^text\/javascript/);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("cache-control"), /max-age=\d+/);
    const body = await res.text();
    assert.match(body, /export const Vouch/);
    const etag = res.headers.get("etag");
    assert.ok(etag);
    const again = await fetch(`${server.url}/sdk/vouch.js`, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304);
    const types = await fetch(`${server.url}/sdk/vouch.d.ts`);
    assert.equal(types.status, 200);
    assert.match(await types.text(), /export declare class VouchError/);
  });
});
