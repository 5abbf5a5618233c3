// In your webhook receiver: check that a delivery really comes from Vouch (Standard
// Webhooks). Use the raw request body, byte for byte, before any JSON parsing.
//   VOUCH_WEBHOOK_SECRET=whsec_… node verify_webhook.mjs WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";

export function verifyWebhook(secret, headers, rawBody, toleranceSeconds = 300) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) return false;
  // Refuse old deliveries, so that a captured one cannot be replayed later.
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  // The key is the base64 part of the secret, decoded; the message is "id.timestamp.body".
  const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(rawBody)
    .digest();
  // The header may hold several space-separated "v1,<base64>" (during a secret rotation).
  return signatures.split(" ").some((entry) => {
    const [version, value] = entry.split(",", 2);
    const given = Buffer.from(value ?? "", "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

const secret = process.env.VOUCH_WEBHOOK_SECRET;
if (!secret || process.argv.length !== 5) {
  console.error("usage: VOUCH_WEBHOOK_SECRET=whsec_… node verify_webhook.mjs ID TIMESTAMP SIGNATURE < body");
  process.exit(2);
}
const [id, timestamp, signature] = process.argv.slice(2);
const headers = { "webhook-id": id, "webhook-timestamp": timestamp, "webhook-signature": signature };
if (verifyWebhook(secret, headers, readFileSync(0))) {
  console.log("valid");
} else {
  console.log("invalid");
  process.exit(1);
}
