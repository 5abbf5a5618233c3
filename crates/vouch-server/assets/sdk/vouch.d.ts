// Types for the Vouch browser SDK: the ES module `vouch.js`, and the classic script
// `vouch.global.js`, whose `window.Vouch` is the same object as this module's `Vouch`.

export type Attributes = Record<string, unknown>;

export interface VouchOptions {
  /** The environment's publishable key (`pk_test_…` / `pk_live_…`). Never the identity secret. */
  publishableKey: string;
  /** Where Vouch runs (`https://vouch.example.com`). Defaults to the origin the SDK was loaded from. */
  apiUrl?: string;
  /** A `fetch` implementation (defaults to the global one). */
  fetch?: typeof fetch;
  /** How many times a call is retried after a network failure, 429 or 5xx (default 3). */
  retries?: number;
  /** First retry delay in milliseconds, doubled on each retry, with jitter (default 300). */
  retryBaseMs?: number;
  /** Per-request timeout in milliseconds (default 15000; 0 disables it). */
  timeoutMs?: number;
}

/** What the customer's backend computed for this user. Send one of `signature` or `token`. */
export interface IdentifyProof {
  /** HMAC-SHA256(identity secret, user id), hex or base64. */
  signature?: string;
  /** An HS256 identity token whose `sub` is the user id. */
  token?: string;
  /** HMAC-SHA256(identity secret, JCS(attributes)): makes the attributes verified. */
  attributesSignature?: string;
}

export interface GroupProof {
  /** HMAC-SHA256(identity secret, company id). */
  signature?: string;
}

export interface WidgetUser {
  id: string;
  verified: boolean;
  verified_by: "signature" | "token" | null;
  attributes: Attributes;
  verified_attributes: Attributes;
  [key: string]: unknown;
}

export interface IdentifyResult {
  session_token: string;
  expires_at: string;
  user: WidgetUser;
  /** Unproven attributes that could not overwrite verified ones. */
  ignored_attributes?: string[];
}

export interface GroupResult {
  company: { id: string; verified: boolean; attributes: Attributes; [key: string]: unknown };
}

export interface TrackResult {
  id: string;
}

export interface MeResult {
  user: WidgetUser & { companies?: unknown[] };
}

/** The claims of a Vouch session token (Ed25519 JWT; verify it server-side with the JWKS). */
export interface SessionClaims {
  iss: string;
  aud: string;
  sub: string;
  verified: boolean;
  verified_by?: "signature" | "token" | null;
  anonymous?: boolean;
  iat: number;
  exp: number;
  [key: string]: unknown;
}

export interface VouchSession {
  token: string;
  expiresAt: string;
  userId: string | null;
  verified: boolean;
  anonymous: boolean;
  visitorId: string | null;
  claims: SessionClaims | null;
}

export declare class VouchError extends Error {
  readonly name: "VouchError";
  /** The server's stable error code (`invalid_signature`, `signature_required`, …), or
   * `network_error` / `invalid_request` / `invalid_response` for failures on this side. */
  readonly code: string;
  /** HTTP status; 0 when no answer was received. */
  readonly status: number;
  readonly requestId: string | null;
  /** Seconds the server asked to wait (429), if any. */
  readonly retryAfter: number | null;
  constructor(code: string, message: string, status: number, extra?: { requestId?: string | null; retryAfter?: number | null });
}

export interface VouchClient {
  /** The current session, or null before the first call (and after reset). */
  readonly session: VouchSession | null;
  identify(userId: string, attributes?: Attributes | null, proof?: IdentifyProof): Promise<IdentifyResult>;
  group(companyId: string, attributes?: Attributes | null, proof?: GroupProof): Promise<GroupResult>;
  track(event: string, properties?: Attributes | null): Promise<TrackResult>;
  me(): Promise<MeResult>;
  /** Forgets the session and the last identify (call it on sign-out). */
  reset(): void;
}

export declare const Vouch: {
  init(options: VouchOptions): VouchClient;
  /** The same class as the `VouchError` export (handy with the classic script's `window.Vouch`). */
  VouchError: typeof VouchError;
};

export default Vouch;
