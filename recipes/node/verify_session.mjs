// In another service of yours: check a Vouch session token (what identify returns) without
// calling Vouch for each request. The token is an EdDSA JWT; the public keys are published
// at /.well-known/jwks.json and cached by jose.
//   VOUCH_URL=https://vouch.example.com VOUCH_ENVIRONMENT=env_… node verify_session.mjs TOKEN
import { createRemoteJWKSet, jwtVerify } from "jose"; // npm install jose

const vouchUrl = process.env.VOUCH_URL;
const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", vouchUrl));

export async function verifySession(token, environmentId) {
  const { payload } = await jwtVerify(token, jwks, {
    algorithms: ["EdDSA"],
    issuer: vouchUrl, // `iss` is the server's public URL (VOUCH_PUBLIC_URL)
    audience: environmentId, // `aud` is the environment the session belongs to
  }); // also checks `exp`
  // `sub` is the user id; trust it as that user only when `verified` is true.
  return { userId: payload.sub, verified: payload.verified === true };
}

if (!vouchUrl || !process.env.VOUCH_ENVIRONMENT || process.argv.length !== 3) {
  console.error("usage: VOUCH_URL=… VOUCH_ENVIRONMENT=env_… node verify_session.mjs TOKEN");
  process.exit(2);
}
try {
  console.log(JSON.stringify(await verifySession(process.argv[2], process.env.VOUCH_ENVIRONMENT)));
} catch (e) {
  console.error(`invalid session token: ${e.code ?? e.message}`);
  process.exit(1);
}
