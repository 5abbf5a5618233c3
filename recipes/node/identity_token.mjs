// An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
// identity secret. Unlike a signature it expires, and it can carry verified attributes.
//   VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] node identity_token.mjs USER_ID ['{"plan":"pro"}']
import jwt from "jsonwebtoken"; // npm install jsonwebtoken

export function identityToken(userId, secret, { attributes, keyId } = {}) {
  const claims = { sub: userId };
  if (attributes !== undefined) claims.attributes = attributes;
  return jwt.sign(claims, secret, {
    algorithm: "HS256",
    expiresIn: "10m", // sets `exp`; `iat` is added automatically
    ...(keyId ? { keyid: keyId } : {}), // optional `kid` header: the id of the secret (key_…)
  });
}

const secret = process.env.VOUCH_SECRET;
if (!secret || process.argv.length < 3 || process.argv.length > 4) {
  console.error("usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] node identity_token.mjs USER_ID [ATTRIBUTES_JSON]");
  process.exit(2);
}
const attributes = process.argv[3] === undefined ? undefined : JSON.parse(process.argv[3]);
console.log(identityToken(process.argv[2], secret, { attributes, keyId: process.env.VOUCH_KEY_ID }));
