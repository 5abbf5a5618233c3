// Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of the
// attributes object, so that key order and spacing do not matter. Send the same object as
// `attributes` and this value as `attributes_signature`.
//   VOUCH_SECRET=sk_test_… node sign_attributes.mjs '{"plan":"pro","seats":5}'
import { createHmac } from "node:crypto";
import canonicalize from "canonicalize"; // npm install canonicalize

export function signAttributes(attributes, secret) {
  return createHmac("sha256", secret).update(canonicalize(attributes), "utf8").digest("hex");
}

const secret = process.env.VOUCH_SECRET;
if (!secret || process.argv.length !== 3) {
  console.error("usage: VOUCH_SECRET=sk_… node sign_attributes.mjs ATTRIBUTES_JSON");
  process.exit(2);
}
console.log(signAttributes(JSON.parse(process.argv[2]), secret));
