// The single-node peer of bench/identify.sh: the least an identify can do in Node.js.
// One process, node's own http server: parse the JSON body, check the publishable key,
// HMAC-SHA256 the user id with the secret and compare it in constant time. No store, no
// session, no attributes: what a hand-written check in a Node service costs per request.
//
//   PK=pk_test_… SK=sk_test_… PORT=18799 node bench/node_peer.mjs
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const pk = process.env.PK;
const key = Buffer.from(process.env.SK ?? "", "utf8");
const port = Number(process.env.PORT ?? 18799);
if (!pk || key.length === 0) {
  console.error("node_peer.mjs: set PK and SK");
  process.exit(2);
}

function answer(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/v1/identify") return answer(res, 404, { error: { code: "not_found" } });
  if (req.headers.authorization !== `Bearer ${pk}`) return answer(res, 401, { error: { code: "invalid_publishable_key" } });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      return answer(res, 400, { error: { code: "invalid_request" } });
    }
    const expected = createHmac("sha256", key).update(String(body.user_id ?? ""), "utf8").digest();
    const given = Buffer.from(String(body.signature ?? ""), "hex");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return answer(res, 401, { error: { code: "invalid_signature" } });
    }
    answer(res, 200, { user: { id: body.user_id, verified: true } });
  });
}).listen(port, "127.0.0.1", () => console.log(`listening on 127.0.0.1:${port}`));
