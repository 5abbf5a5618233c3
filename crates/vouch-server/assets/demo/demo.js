// The demo "customer app": its backend (/demo/api/sign) signs the user id, and the
// Vouch SDK identifies the user with that signature.
import { Vouch } from "/sdk/vouch.js";

const $ = (id) => document.getElementById(id);
const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

const envId = meta("vouch-env");

// A new id on every load, so that the steps of the hint work in order: unsigned
// (unverified), signed (verified), unsigned again (refused: once verified, always a proof).
if (!$("user-id").value) $("user-id").value = `user_${10000 + Math.floor(Math.random() * 90000)}`;
const vouch = Vouch.init({ publishableKey: meta("vouch-publishable-key"), apiUrl: location.origin, retries: 1 });

// Mirror console errors into the page's console panel, as DevTools would show them.
const consoleLines = [];
const originalError = console.error.bind(console);
console.error = (...args) => {
  originalError(...args);
  consoleLines.push(args.map(String).join(" "));
  renderConsole();
};

function renderConsole() {
  const box = $("console");
  box.replaceChildren(
    ...consoleLines.slice(-8).map((line) => {
      const row = document.createElement("div");
      row.className = "console-line";
      row.textContent = line;
      return row;
    }),
  );
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Fills `node` with a server message: `backticked` spans as <code>, all as text nodes. */
function setRichText(node, message) {
  const parts = String(message ?? "").split("`");
  if (parts.length % 2 === 0) parts[parts.length - 2] += `\`${parts.pop()}`;
  node.replaceChildren(...parts.map((part, i) => (i % 2 === 1 ? el("code", "inline-code", part) : document.createTextNode(part))));
  return node;
}

function short(value) {
  return value.length > 20 ? `${value.slice(0, 10)}…${value.slice(-6)}` : value;
}

const flow = {
  start() {
    $("flow").replaceChildren();
  },
  /** A step; `detail` is a value shown as code, `message` a server message (rich text). */
  step(state, title, detail, message) {
    const li = el("li", `step ${state}`);
    li.append(el("span", "step-icon", { ok: "✓", fail: "✕", skip: "–" }[state] ?? "→"));
    const text = el("div", "step-text");
    text.append(el("div", "step-title", title));
    if (detail) text.append(el("code", "step-detail", detail));
    if (message) text.append(setRichText(el("div", "step-message"), message));
    li.append(text);
    $("flow").append(li);
  },
};

function attributes() {
  const out = {};
  const name = $("user-name").value.trim();
  const email = $("user-email").value.trim();
  if (name) out.name = name;
  if (email) out.email = email;
  return out;
}

/** The customer's backend: signs the id of the user who just signed in. */
async function backendSign(userId) {
  const res = await fetch("/demo/api/sign", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ env: envId, user_id: userId }),
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    throw new Error(body?.error?.message ?? `The demo backend answered HTTP ${res.status}.`);
  }
  return body;
}

/** An impersonation attempt: the id of "the next user". */
function tamperWith(id) {
  const m = /^(.*?)(\d+)$/.exec(id);
  return m ? `${m[1]}${BigInt(m[2]) + 1n}` : `${id}_2`;
}

function setBusy(busy) {
  for (const id of ["sign-in", "tamper", "unsigned"]) $(id).disabled = busy;
  if (busy) setBadge("working", "Checking…");
}

function setBadge(state, text) {
  const badge = $("badge");
  badge.dataset.state = state;
  badge.textContent = text;
}

function showAccount(user) {
  const name = user ? (user.attributes?.name ?? user.id) : null;
  $("account-name").textContent = name ?? "Not signed in";
  $("avatar").textContent = name ? name.trim().charAt(0).toUpperCase() : "?";
  $("avatar").dataset.verified = user?.verified ? "true" : "false";
  const widget = $("widget-body");
  if (!user) widget.textContent = "Hi there! Sign in so we know it's you.";
  else if (user.verified) widget.textContent = `Hi ${name}, how can we help? Your identity is verified, so we can show your account details.`;
  else widget.textContent = `Hi! We can't confirm who you are yet, so account details stay hidden.`;
}

function showSuccess(out) {
  const user = out.user;
  const session = vouch.session;
  setBadge(user.verified ? "verified" : "unverified", user.verified ? "Verified" : "Unverified");
  $("fact-user").textContent = user.id;
  $("fact-proof").textContent = user.verified_by ? `${user.verified_by}` : "no proof (unverified)";
  $("fact-expires").textContent = session ? new Date(session.expiresAt).toLocaleString() : "—";
  $("error").hidden = true;
  $("claims").textContent = session?.claims ? JSON.stringify(session.claims, null, 2) : "No session.";
  showAccount(user);
}

function showFailure(err) {
  setBadge("rejected", "Rejected");
  $("fact-user").textContent = "—";
  $("fact-proof").textContent = "—";
  $("fact-expires").textContent = "—";
  $("error-code").textContent = err.code ?? "error";
  setRichText($("error-message"), err.message);
  $("error").hidden = false;
  $("claims").textContent = "No session: Vouch rejected the identify call.";
  showAccount(null);
}

async function identify(sentId, proof) {
  const attrs = attributes();
  flow.step("pending", `SDK: vouch.identify("${sentId}")`, proof.signature ? `signature ${short(proof.signature)}` : "no signature");
  try {
    const out = await vouch.identify(sentId, attrs, proof);
    flow.step("ok", `Vouch: 200 — ${out.user.verified ? "verified" : "unverified"} session opened`, `verified_by: ${out.user.verified_by}`);
    showSuccess(out);
    await vouch.track("demo_signed_in", { verified: out.user.verified }).then(
      (t) => flow.step("ok", "SDK: vouch.track(\"demo_signed_in\")", `event ${t.id}`),
      () => {},
    );
  } catch (err) {
    flow.step("fail", `Vouch: ${err.status || "—"} ${err.code}`, null, err.message);
    showFailure(err);
  }
}

async function run(action) {
  const id = $("user-id").value;
  if (!id) {
    $("user-id").focus();
    return;
  }
  setBusy(true);
  vouch.reset();
  flow.start();
  try {
    if (action === "unsigned") {
      flow.step("skip", "Customer backend: not asked to sign");
      await identify(id, {});
      return;
    }
    let signed;
    try {
      signed = await backendSign(id);
    } catch (err) {
      flow.step("fail", "Customer backend could not sign", null, err.message);
      showFailure({ code: "demo_backend", message: err.message });
      return;
    }
    flow.step("ok", `Customer backend signed "${id}" with ${signed.key_id}`, short(signed.signature));
    const sentId = action === "tamper" ? tamperWith(id) : id;
    if (sentId !== id) flow.step("fail", `Attacker swapped the id: "${id}" → "${sentId}"`, "same signature");
    await identify(sentId, { signature: signed.signature });
  } finally {
    setBusy(false);
  }
}

$("signin-form").addEventListener("submit", (e) => {
  e.preventDefault();
  run("sign-in");
});
$("tamper").addEventListener("click", () => run("tamper"));
$("unsigned").addEventListener("click", () => run("unsigned"));
document.body.dataset.ready = "true";
