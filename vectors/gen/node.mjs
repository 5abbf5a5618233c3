// Reference generator for the Vouch test vectors (Node's `crypto`).
//
//   node vectors/gen/node.mjs [inputs.json]
//
// Prints the full vectors document: every input echoed next to what was
// computed from it. `vectors/check.sh --write` stores this output as
// vectors/vectors.json; the other runtimes must reproduce its computed fields.
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";

const inputsPath = process.argv[2] ?? new URL("../inputs.json", import.meta.url);
const inputs = JSON.parse(readFileSync(inputsPath, "utf8"));

const hmac = (key, message) =>
  createHmac("sha256", Buffer.from(key, "utf8")).update(Buffer.from(message, "utf8")).digest();

const encodings = (digest) => ({
  hex: digest.toString("hex"),
  base64: digest.toString("base64"),
  base64url: digest.toString("base64url"),
});

// RFC 8785 (JCS). Keys are sorted by UTF-16 code units, which is what
// Array.prototype.sort does with no comparator; primitives are serialised
// by JSON.stringify, whose number and string forms are the ones JCS adopts.
// Objects are written by hand: rebuilding a sorted object and stringifying
// it would put integer-like keys ("1", "2", "10") first, in numeric order.
function canonicalize(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalize).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const members = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalize(value[key])}`);
    return `{${members.join(",")}}`;
  }
  if (typeof value === "number" && !Number.isFinite(value)) {
    throw new Error(`JCS cannot represent ${value}`);
  }
  return JSON.stringify(value);
}

const b64url = (text) => Buffer.from(text, "utf8").toString("base64url");

const secretValue = new Map(inputs.secrets.map((s) => [s.name, s.value]));

const signatures = [];
for (const secret of inputs.secrets) {
  for (const message of inputs.messages) {
    signatures.push({
      id: `${secret.name}/${message.name}`,
      secret_name: secret.name,
      secret: secret.value,
      message_name: message.name,
      message: message.value,
      ...encodings(hmac(secret.value, message.value)),
    });
  }
}

const attributes = [];
for (const secret of inputs.secrets) {
  for (const set of inputs.attributes) {
    const canonical = canonicalize(JSON.parse(set.json));
    attributes.push({
      id: `${secret.name}/${set.name}`,
      secret_name: secret.name,
      secret: secret.value,
      name: set.name,
      json: set.json,
      canonical,
      ...encodings(hmac(secret.value, canonical)),
    });
  }
}

const tokens = inputs.tokens.map((t) => {
  const header = { alg: "HS256", typ: "JWT" };
  if (t.kid) header.kid = t.kid;
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(t.claims))}`;
  const signature = hmac(secretValue.get(t.secret), signingInput).toString("base64url");
  return {
    id: t.name,
    secret_name: t.secret,
    secret: secretValue.get(t.secret),
    kid: t.kid ?? null,
    valid_at: t.valid_at,
    header,
    claims: t.claims,
    token: `${signingInput}.${signature}`,
  };
});

const out = {
  about:
    "Vouch test vectors: HMAC-SHA256 signatures (hex, base64, base64url), RFC 8785 attribute signatures and HS256 identity tokens. Generated from vectors/inputs.json by vectors/gen/node.mjs; vectors/check.sh re-computes them with Node, Python, Ruby, PHP and Go. Do not edit by hand.",
  runtime: `node ${process.version}`,
  signatures,
  attributes,
  tokens,
};
process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
