// Vouch browser SDK: identify the signed-in user of a widget with a proof computed by
// the customer's backend, then call the widget API with the session token it returns.
//
//   import { Vouch } from "https://vouch.example.com/sdk/vouch.js";
//   const vouch = Vouch.init({ publishableKey: "pk_test_…" });
//   await vouch.identify("USER_ID", { name: "Ada" }, { signature: "…" });
//   await vouch.track("opened_widget");
//
// An ES module with no dependencies and no build step. The session token lives in memory
// only (never in localStorage or a cookie), so a page reload starts a new session.
//
// This file is the one source of the SDK. `node sdk/js/build.mjs` derives the classic
// script (`vouch.global.js`, which defines `window.Vouch`) from it. That build rewrites
// only `export class`, `export const` and `export default` at the start of a line and the
// SCRIPT_URL line below, and refuses anything else a classic script cannot run.

const DEFAULT_RETRIES = 3;
const DEFAULT_RETRY_BASE_MS = 300;
const MAX_RETRY_DELAY_MS = 10_000;
// A server asking us to wait longer than this gets an error instead of a hanging call.
const MAX_RETRY_AFTER_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 15_000;
// Where this file was loaded from; the default apiUrl is its origin.
const SCRIPT_URL = import.meta.url;

/** A failed Vouch call: `code` is the server's stable error code (see the API docs). */
export class VouchError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} status HTTP status, or 0 when no answer was received.
   * @param {{requestId?: string|null, retryAfter?: number|null}} [extra]
   */
  constructor(code, message, status, extra = {}) {
    super(message);
    this.name = "VouchError";
    this.code = code;
    this.status = status;
    this.requestId = extra.requestId ?? null;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `Retry-After` in milliseconds (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value) {
  if (value == null || value === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

function base64UrlDecode(part) {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
  const binary = atob(padded);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The claims of a session token (not verified here: the server verifies it on every call). */
function decodeClaims(token) {
  try {
    return JSON.parse(base64UrlDecode(token.split(".")[1] ?? ""));
  } catch {
    return null;
  }
}

function defaultApiUrl() {
  // Loaded from Vouch itself (`/sdk/vouch.js`): the API lives at the same origin.
  try {
    const url = new URL(SCRIPT_URL);
    if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
  } catch {
    // fall through
  }
  return null;
}

function isRetryableStatus(status) {
  return status === 429 || status >= 500;
}

class VouchClient {
  #key;
  #apiUrl;
  #fetch;
  #retries;
  #retryBaseMs;
  #timeoutMs;
  #session = null; // {token, expiresAt, claims, visitorId}
  #lastIdentify = null; // {userId, attributes, proof}
  #pending = null; // the identify in flight
  #opening = null; // the anonymous session being opened
  #generation = 0; // bumped by reset(): answers to older calls are dropped

  constructor(options) {
    this.#key = options.publishableKey;
    this.#apiUrl = options.apiUrl.replace(/\/+$/, "");
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.#retries = options.retries ?? DEFAULT_RETRIES;
    this.#retryBaseMs = options.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The current session, or null before identify/track (and after reset). */
  get session() {
    const s = this.#session;
    if (!s) return null;
    return {
      token: s.token,
      expiresAt: s.expiresAt,
      userId: s.claims?.sub ?? null,
      verified: s.claims?.verified === true,
      anonymous: s.claims?.anonymous === true,
      visitorId: s.visitorId ?? s.claims?.vid ?? null,
      claims: s.claims ? { ...s.claims } : null,
    };
  }

  /**
   * Identifies the signed-in user. `proof` carries what the customer's backend computed:
   * `signature` (HMAC-SHA256 of the user id), or `token` (identity JWT), and optionally
   * `attributesSignature`.
   */
  identify(userId, attributes, proof = {}) {
    const run = this.#report(() => {
      if (typeof userId !== "string" || userId === "") {
        throw new VouchError("invalid_request", "identify needs a user id (a non-empty string).", 0);
      }
      if (attributes != null && (typeof attributes !== "object" || Array.isArray(attributes))) {
        throw new VouchError("invalid_request", "identify's attributes must be an object.", 0);
      }
      const call = { userId, attributes: attributes ?? undefined, proof: { ...(proof ?? {}) } };
      // The latest identify wins: answers to earlier ones (or to an anonymous session
      // being opened) no longer replace the session.
      this.#generation += 1;
      return this.#identify(call, this.#generation);
    });
    this.#pending = run.catch(() => {});
    return run;
  }

  /** Associates the identified user with a company (`signature` = HMAC of the company id). */
  group(companyId, attributes, proof = {}) {
    return this.#report(async () => {
      if (typeof companyId !== "string" || companyId === "") {
        throw new VouchError("invalid_request", "group needs a company id (a non-empty string).", 0);
      }
      await this.#settled();
      if (!this.#lastIdentify) {
        throw new VouchError("invalid_request", "Call identify before group: a company belongs to an identified user.", 0);
      }
      const body = { company_id: companyId };
      if (attributes != null) body.attributes = attributes;
      if (proof?.signature != null) body.signature = proof.signature;
      return this.#sessionCall("POST", "/v1/group", body);
    });
  }

  /** Records an event for the current user (or an anonymous visitor before identify). */
  track(event, properties) {
    return this.#report(async () => {
      if (typeof event !== "string" || event === "") {
        throw new VouchError("invalid_request", "track needs an event name (a non-empty string).", 0);
      }
      const body = { event };
      if (properties != null) body.properties = properties;
      return this.#sessionCall("POST", "/v1/track", body);
    });
  }

  /** The current user as Vouch stores it: `{user}`. */
  me() {
    return this.#report(() => this.#sessionCall("GET", "/v1/me"));
  }

  /** Forgets the session and the last identify (call it on sign-out). */
  reset() {
    this.#generation += 1;
    this.#session = null;
    this.#lastIdentify = null;
    this.#pending = null;
    this.#opening = null;
  }

  // Every public call: a rejection is always a VouchError and is written to the console.
  async #report(fn) {
    try {
      return await fn();
    } catch (err) {
      const e = err instanceof VouchError ? err : new VouchError("internal", String(err?.message ?? err), 0);
      console.error(`Vouch: ${e.message} (${e.code})`);
      throw e;
    }
  }

  // Waits for the identify in flight, if any (calls made right after identify use its session).
  async #settled() {
    while (this.#pending) {
      const p = this.#pending;
      await p;
      if (this.#pending === p) break;
    }
  }

  async #identify(call, generation) {
    const body = { user_id: call.userId };
    if (call.attributes !== undefined) body.attributes = call.attributes;
    if (call.proof.signature != null) body.signature = call.proof.signature;
    if (call.proof.token != null) body.token = call.proof.token;
    if (call.proof.attributesSignature != null) body.attributes_signature = call.proof.attributesSignature;
    let out;
    try {
      out = await this.#request("POST", "/v1/identify", this.#key, body);
    } catch (err) {
      // Never leave the previous user's session in place after a failed switch.
      if (generation === this.#generation) {
        this.#session = null;
        this.#lastIdentify = null;
      }
      throw err;
    }
    if (generation === this.#generation) {
      this.#session = { token: out.session_token, expiresAt: out.expires_at, claims: decodeClaims(out.session_token) };
      this.#lastIdentify = call;
    }
    return out;
  }

  async #anonymousSession(generation) {
    const out = await this.#request("POST", "/v1/sessions", this.#key, {});
    if (generation === this.#generation && !this.#session) {
      this.#session = {
        token: out.session_token,
        expiresAt: out.expires_at,
        claims: decodeClaims(out.session_token),
        visitorId: out.visitor_id,
      };
    }
  }

  // The session token to use: the identified user's, or a new anonymous visitor session
  // (one, however many calls ask at once).
  async #ensureSession() {
    await this.#settled();
    if (this.#session) return this.#session.token;
    if (!this.#opening) {
      this.#opening = this.#anonymousSession(this.#generation).finally(() => {
        this.#opening = null;
      });
    }
    await this.#opening;
    await this.#settled();
    if (!this.#session) {
      throw new VouchError("invalid_session", "The session was reset while it was being opened; call again.", 0);
    }
    return this.#session.token;
  }

  // A call authenticated by the session. An expired session is renewed once, by repeating
  // the last identify with the same proof (or opening a new anonymous session), and the
  // call is retried with the new token.
  async #sessionCall(method, path, body) {
    const token = await this.#ensureSession();
    try {
      return await this.#request(method, path, token, body);
    } catch (err) {
      if (!(err instanceof VouchError) || err.code !== "session_expired") throw err;
      if (this.#session?.token === token) {
        if (this.#lastIdentify) {
          const renew = this.#identify(this.#lastIdentify, this.#generation);
          this.#pending = renew.catch(() => {});
          await renew;
        } else {
          this.#session = null;
        }
      }
      return this.#request(method, path, await this.#ensureSession(), body);
    }
  }

  // One API call, retried on network failures, 429 and 5xx with exponential backoff and
  // jitter (a Retry-After answer is honoured). Any other 4xx is final: a wrong proof does
  // not become right by sending it again.
  async #request(method, path, bearer, body) {
    for (let attempt = 0; ; attempt += 1) {
      let failure;
      let waitMs = null;
      let res = null;
      try {
        res = await this.#send(method, path, bearer, body);
      } catch (err) {
        const reason = err?.name === "AbortError" ? `no answer within ${this.#timeoutMs} ms` : String(err?.message ?? err);
        failure = new VouchError("network_error", `Could not reach Vouch at ${this.#apiUrl}: ${reason}`, 0);
      }
      if (res) {
        const data = await res.json().catch(() => null);
        if (res.ok) {
          if (data === null || typeof data !== "object") {
            throw new VouchError("invalid_response", `Vouch answered ${res.status} without a JSON body.`, res.status);
          }
          return data;
        }
        waitMs = parseRetryAfter(res.headers?.get?.("retry-after"));
        failure = new VouchError(
          data?.error?.code ?? (res.status >= 500 ? "unavailable" : "invalid_response"),
          data?.error?.message ?? `Vouch answered HTTP ${res.status}.`,
          res.status,
          {
            requestId: res.headers?.get?.("x-request-id") ?? null,
            retryAfter: waitMs === null ? null : Math.ceil(waitMs / 1000),
          },
        );
        if (!isRetryableStatus(res.status)) throw failure;
      }
      if (attempt >= this.#retries || (waitMs !== null && waitMs > MAX_RETRY_AFTER_MS)) throw failure;
      const backoff = Math.min(MAX_RETRY_DELAY_MS, this.#retryBaseMs * 2 ** attempt);
      // Half fixed, half random: spreads the retries of many browsers apart.
      const jittered = backoff / 2 + Math.random() * (backoff / 2);
      await sleep(Math.max(jittered, waitMs ?? 0));
    }
  }

  async #send(method, path, bearer, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${bearer}` };
    const init = { method, headers, credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const controller = typeof AbortController === "function" ? new AbortController() : null;
    let timer = null;
    if (controller && this.#timeoutMs > 0) {
      init.signal = controller.signal;
      timer = setTimeout(() => controller.abort(), this.#timeoutMs);
    }
    try {
      return await this.#fetch(this.#apiUrl + path, init);
    } finally {
      if (timer !== null) clearTimeout(timer);
    }
  }
}

/** Entry point: `Vouch.init({publishableKey, apiUrl?, fetch?, retries?})`. */
export const Vouch = {
  /** The error class every failed call rejects with (also for `instanceof` in classic scripts). */
  VouchError,
  init(options = {}) {
    const { publishableKey } = options;
    if (typeof publishableKey !== "string" || !publishableKey.startsWith("pk_")) {
      const message = typeof publishableKey === "string" && publishableKey.startsWith("sk_")
        ? "Vouch.init was given an identity secret (sk_…). Never put it in a web page: rotate it in the admin UI and pass the publishable key (pk_…)."
        : "Vouch.init needs the environment's publishable key (pk_test_… or pk_live_…).";
      console.error(`Vouch: ${message} (invalid_publishable_key)`);
      throw new VouchError("invalid_publishable_key", message, 0);
    }
    const apiUrl = options.apiUrl ?? defaultApiUrl();
    if (typeof apiUrl !== "string" || !/^https?:\/\//.test(apiUrl)) {
      const message = "Vouch.init needs apiUrl, the address of your Vouch server (https://…).";
      console.error(`Vouch: ${message} (invalid_request)`);
      throw new VouchError("invalid_request", message, 0);
    }
    if (options.fetch == null && typeof globalThis.fetch !== "function") {
      const message = "No fetch() in this environment: pass one as Vouch.init({fetch}).";
      console.error(`Vouch: ${message} (invalid_request)`);
      throw new VouchError("invalid_request", message, 0);
    }
    return new VouchClient({ ...options, apiUrl });
  },
};

export default Vouch;
