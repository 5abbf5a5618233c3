// Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.
//   VOUCH_SECRET=sk_test_… node sign_company.mjs COMPANY_ID
import { createHmac } from "node:crypto";

export function signCompanyId(companyId, secret) {
  return createHmac("sha256", secret).update(companyId, "utf8").digest("hex");
}

const secret = process.env.VOUCH_SECRET;
if (!secret || process.argv.length !== 3) {
  console.error("usage: VOUCH_SECRET=sk_… node sign_company.mjs COMPANY_ID");
  process.exit(2);
}
console.log(signCompanyId(process.argv[2], secret));
