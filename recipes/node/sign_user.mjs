// Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
// your Vouch identity secret, as 64 lowercase hex characters.
// Run it on your server, never in the browser:
//   VOUCH_SECRET=sk_test_… node sign_user.mjs USER_ID
import { createHmac } from "node:crypto";

export function signUserId(userId, secret) {
  // The key is the secret exactly as shown by Vouch; the message is the user id's UTF-8 bytes.
  return createHmac("sha256", secret).update(userId, "utf8").digest("hex");
}

const secret = process.env.VOUCH_SECRET;
if (!secret || process.argv.length !== 3) {
  console.error("usage: VOUCH_SECRET=sk_… node sign_user.mjs USER_ID");
  process.exit(2);
}
console.log(signUserId(process.argv[2], secret));
