#!/usr/bin/env python3
"""Runs every signing recipe against vectors/vectors.json and, when VOUCH_URL is set,
against a running Vouch. Called by recipes/run.sh, which installs the runtimes, builds
what needs building and starts the server; see docs/recipes.md.

Environment:
  RECIPES_BUILD   folder with the compiled Go binaries, Java classes and C# build
  RECIPES_LANGS   comma-separated subset of languages (default: all)
  RECIPES_REQUIRE comma-separated languages whose runtime must be present (a missing
                  runtime then counts as a failure instead of a skip)
  VOUCH_URL, VOUCH_PK, VOUCH_SK, VOUCH_KID, VOUCH_ENV, VOUCH_ADMIN_TOKEN
                  a running Vouch (started with --allow-private-webhooks): base URL,
                  publishable key, identity secret, its key id, environment id, admin token

Prints one line per failed check, a summary table, and "N passed, N failed" last.
Exit status 1 when any check failed.
"""

import base64
import concurrent.futures
import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = os.path.join(ROOT, "recipes")
BUILD = os.environ.get("RECIPES_BUILD", os.path.join(RECIPES, ".build"))
PROOFS = ["sign_user", "sign_company", "sign_attributes", "identity_token"]
JAVA_CLASSES = {
    "sign_user": "SignUser",
    "sign_company": "SignCompany",
    "sign_attributes": "SignAttributes",
    "identity_token": "IdentityToken",
}
JAVA_CP = ":".join(
    [os.path.join(BUILD, "java")]
    + [f"/usr/share/java/jackson-{p}.jar" for p in ("core", "databind", "annotations")]
)


def command(lang, proof):
    """The argv prefix that runs one recipe, or None when the language has no such file."""
    d = os.path.join(RECIPES, lang)
    return {
        "node": ["node", os.path.join(d, f"{proof}.mjs")],
        "python": [sys.executable, os.path.join(d, f"{proof}.py")],
        "ruby": ["ruby", os.path.join(d, f"{proof}.rb")],
        "php": ["php", os.path.join(d, f"{proof}.php")],
        "go": [os.path.join(BUILD, "go", proof)],
        "elixir": ["elixir", os.path.join(d, f"{proof}.exs")],
        "java": ["java", "-cp", JAVA_CP, JAVA_CLASSES[proof]],
        "csharp": ["dotnet", os.path.join(BUILD, "csharp", "VouchRecipes.dll"), proof],
    }[lang]


def unavailable(lang):
    """Why a language cannot run here, or None when it can."""
    tool = {
        "node": "node",
        "python": sys.executable,
        "ruby": "ruby",
        "php": "php",
        "go": "go",
        "elixir": "elixir",
        "java": "java",
        "csharp": "dotnet",
    }[lang]
    if shutil.which(tool) is None:
        return f"`{tool}` not installed"
    built = {
        "go": os.path.join(BUILD, "go", "sign_user"),
        "java": os.path.join(BUILD, "java", "SignUser.class"),
        "csharp": os.path.join(BUILD, "csharp", "VouchRecipes.dll"),
        "node": os.path.join(RECIPES, "node", "node_modules", "canonicalize"),
    }.get(lang)
    if built and not os.path.exists(built):
        return f"not built ({os.path.relpath(built, ROOT)} missing)"
    return None


def run(lang, proof, args, secret, key_id=None):
    env = dict(os.environ, VOUCH_SECRET=secret, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    env.pop("VOUCH_KEY_ID", None)
    if key_id:
        env["VOUCH_KEY_ID"] = key_id
    p = subprocess.run(
        command(lang, proof) + list(args),
        env=env,
        capture_output=True,
        timeout=120,
        cwd=os.path.join(RECIPES, lang),
    )
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(f"exit {p.returncode}: {' | '.join(err[-3:])}")
    out = p.stdout.decode("utf-8")
    if not out.endswith("\n") or out.count("\n") != 1:
        raise RuntimeError(f"expected one line of output, got {out!r}")
    return out[:-1]


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_token(token, secret, sub, attributes, key_id):
    """Checks a recipe's identity token by hand: shape, header, claims and HMAC."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AssertionError(f"not a compact JWT: {token!r}")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if header.get("alg") != "HS256":
        raise AssertionError(f"header alg {header.get('alg')!r}, want HS256")
    if header.get("kid") != key_id:
        raise AssertionError(f"header kid {header.get('kid')!r}, want {key_id!r}")
    if header.get("typ", "JWT") != "JWT":
        raise AssertionError(f"header typ {header.get('typ')!r}")
    want_mac = hmac.new(
        secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(b64url_decode(parts[2]), want_mac) or "=" in parts[2]:
        raise AssertionError("signature is not HMAC-SHA256(secret, header.payload) in base64url")
    if claims.get("sub") != sub:
        raise AssertionError(f"sub {claims.get('sub')!r}, want {sub!r}")
    if claims.get("attributes") != attributes:
        raise AssertionError(f"attributes {claims.get('attributes')!r}, want {attributes!r}")
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or abs(iat - now) > 120:
        raise AssertionError(f"iat {iat!r} is not the current time")
    if not isinstance(exp, int) or exp - iat != 600:
        raise AssertionError(f"exp {exp!r} is not iat + 600")


def vector_checks(lang, vectors):
    """Yields (name, thunk) pairs; each thunk raises on failure."""
    for v in vectors["signatures"]:
        yield (
            f"sign_user {v['id']}",
            lambda v=v: expect(run(lang, "sign_user", [v["message"]], v["secret"]), v["hex"]),
        )
        if v["secret_name"] == "sk_test":
            yield (
                f"sign_company {v['id']}",
                lambda v=v: expect(
                    run(lang, "sign_company", [v["message"]], v["secret"]), v["hex"]
                ),
            )
    for v in vectors["attributes"]:
        yield (
            f"sign_attributes {v['id']}",
            lambda v=v: expect(run(lang, "sign_attributes", [v["json"]], v["secret"]), v["hex"]),
        )
    for v in vectors["tokens"]:
        attrs = v["claims"].get("attributes")

        def thunk(v=v, attrs=attrs):
            args = [v["claims"]["sub"]] + ([json.dumps(attrs)] if attrs is not None else [])
            tok = run(lang, "identity_token", args, v["secret"], v["kid"])
            check_token(tok, v["secret"], v["claims"]["sub"], attrs, v["kid"])

        yield (f"identity_token {v['id']}", thunk)


def expect(got, want):
    if got != want:
        raise AssertionError(f"got {got!r}, want {want!r}")


def api(method, path, body=None, bearer=None):
    url = os.environ["VOUCH_URL"].rstrip("/") + path
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if bearer:
        req.add_header("authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


# Attributes sent to the live server: keys that sort differently in UTF-16 and UTF-8,
# numbers whose JavaScript spelling differs from most languages' default, escapes.
LIVE_ATTRIBUTES = (
    '{"name":"Zoë Ñ","plan":"pro","seats":5,"ratio":0.1,"big":1e21,"tiny":1e-7,'
    '"hundred":1E2,"admin":false,"tags":["b","a"],"\\u00e9":1,"\\ud83d\\ude00":"grin",'
    '"\\ufb33":"dalet","nested":{"z":1,"a":[{"y":2,"x":1}]},"quote":"say \\"hi\\"\\n",'
    '"none":null}'
)


def live_checks(lang):
    pk, sk, kid = os.environ["VOUCH_PK"], os.environ["VOUCH_SK"], os.environ["VOUCH_KID"]
    state = {}

    def identify_signature():
        uid = f"{lang}-user-Zoë-用户 1"
        sig = run(lang, "sign_user", [uid], sk)
        status, body = api("POST", "/v1/identify", {"user_id": uid, "signature": sig}, pk)
        want_user(status, body, uid, "signature")
        state["session"] = body["session_token"]

    def group_signature():
        if "session" not in state:
            raise AssertionError("no session (identify with signature failed)")
        cid = f"{lang}-company-Acme Ünïcode"
        sig = run(lang, "sign_company", [cid], sk)
        status, body = api(
            "POST", "/v1/group", {"company_id": cid, "signature": sig}, state["session"]
        )
        if status != 200 or not (body.get("company") or {}).get("verified"):
            raise AssertionError(f"group answered {status} {json.dumps(body)[:300]}")

    def identify_attributes():
        uid = f"{lang}-attrs-東京"
        attrs = json.loads(LIVE_ATTRIBUTES)
        sig = run(lang, "sign_user", [uid], sk)
        asig = run(lang, "sign_attributes", [LIVE_ATTRIBUTES], sk)
        status, body = api(
            "POST",
            "/v1/identify",
            {"user_id": uid, "signature": sig, "attributes": attrs, "attributes_signature": asig},
            pk,
        )
        want_user(status, body, uid, "signature")
        if body["user"].get("verified_attributes") != attrs:
            raise AssertionError(f"verified_attributes {body['user'].get('verified_attributes')}")

    def identify_token():
        uid = f"{lang}-token-👩‍💻"
        attrs = {"plan": "pro", "seats": 3, "name": "Zoë"}
        tok = run(lang, "identity_token", [uid, json.dumps(attrs)], sk, kid)
        status, body = api("POST", "/v1/identify", {"user_id": uid, "token": tok}, pk)
        want_user(status, body, uid, "token")
        if body["user"].get("verified_attributes") != attrs:
            raise AssertionError(f"verified_attributes {body['user'].get('verified_attributes')}")

    def identify_token_without_kid():
        uid = f"{lang}-token-nokid"
        tok = run(lang, "identity_token", [uid], sk)
        status, body = api("POST", "/v1/identify", {"user_id": uid, "token": tok}, pk)
        want_user(status, body, uid, "token")

    yield "live identify with signature", identify_signature
    yield "live group with company signature", group_signature
    yield "live identify with attributes_signature", identify_attributes
    yield "live identify with token (kid, attributes)", identify_token
    yield "live identify with token (no kid)", identify_token_without_kid


VENDOR_LANGS = ("node", "python")


def run_vendor(lang, name, args, env, stdin=b""):
    """Runs a vendor-side recipe (verify_session, verify_webhook); returns (exit code, stdout)."""
    script = {"node": ["node", f"{name}.mjs"], "python": [sys.executable, f"{name}.py"]}[lang]
    p = subprocess.run(
        script + list(args),
        env=dict(os.environ, LC_ALL="C.UTF-8", **env),
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=os.path.join(RECIPES, lang),
    )
    return p.returncode, p.stdout.decode("utf-8", "replace").strip()


def vendor_checks(lang, hook):
    pk, sk = os.environ["VOUCH_PK"], os.environ["VOUCH_SK"]
    env = {"VOUCH_URL": os.environ["VOUCH_URL"], "VOUCH_ENVIRONMENT": os.environ["VOUCH_ENV"]}

    def session_token_verifies():
        uid = f"{lang}-session-Zoë"
        sig = run(lang, "sign_user", [uid], sk)
        status, body = api("POST", "/v1/identify", {"user_id": uid, "signature": sig}, pk)
        want_user(status, body, uid, "signature")
        token = body["session_token"]
        code, out = run_vendor(lang, "verify_session", [token], env)
        if code != 0 or json.loads(out or "null") != {"userId": uid, "verified": True}:
            raise AssertionError(f"verify_session exit {code}: {out!r}")
        head, payload, sig_part = token.split(".")
        forged = json.loads(b64url_decode(payload))
        forged["sub"] = "someone-else"
        forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        code, out = run_vendor(lang, "verify_session", [f"{head}.{forged_payload}.{sig_part}"], env)
        if code != 1:
            raise AssertionError(f"a token with a changed sub was accepted (exit {code}): {out!r}")
        other = dict(env, VOUCH_ENVIRONMENT="env_someotherenvironment")
        code, out = run_vendor(lang, "verify_session", [token], other)
        if code != 1:
            raise AssertionError(f"a token of another environment was accepted (exit {code})")

    def webhook_verifies():
        if not hook.get("delivery"):
            raise AssertionError(f"no webhook delivery was received: {hook.get('error')}")
        headers, body = hook["delivery"]
        args = [headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"]]
        wenv = {"VOUCH_WEBHOOK_SECRET": hook["secret"]}
        code, out = run_vendor(lang, "verify_webhook", args, wenv, body)
        if code != 0 or out != "valid":
            raise AssertionError(f"a real delivery did not verify (exit {code}): {out!r}")
        code, out = run_vendor(lang, "verify_webhook", args, wenv, body.replace(b"}", b" }", 1))
        if code != 1 or out != "invalid":
            raise AssertionError(f"a changed body verified (exit {code}): {out!r}")

    yield "live session token verified with the JWKS", session_token_verifies
    yield "live webhook delivery verified", webhook_verifies


def webhook_delivery():
    """Registers a webhook endpoint on a local receiver, causes a user.created event and
    returns {"secret", "delivery": (headers, raw body)} or {"error"}."""
    got = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            got.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        admin = os.environ["VOUCH_ADMIN_TOKEN"]
        url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
        status, body = api(
            "POST",
            f"/admin/v1/environments/{os.environ['VOUCH_ENV']}/webhooks",
            {"url": url, "event_types": ["user.created"]},
            admin,
        )
        if status not in (200, 201) or not str((body or {}).get("secret", "")).startswith("whsec_"):
            return {"error": f"creating the endpoint answered {status} {body}"}
        uid = "webhook-trigger"
        sig = hmac.new(os.environ["VOUCH_SK"].encode(), uid.encode(), hashlib.sha256).hexdigest()
        api("POST", "/v1/identify", {"user_id": uid, "signature": sig}, os.environ["VOUCH_PK"])
        for _ in range(150):
            if got:
                return {"secret": body["secret"], "delivery": got[0]}
            time.sleep(0.1)
        return {"error": "nothing arrived within 15 s"}
    finally:
        server.shutdown()


def want_user(status, body, uid, verified_by):
    user = (body or {}).get("user") or {}
    if status != 200 or user.get("id") != uid or user.get("verified") is not True:
        raise AssertionError(f"identify answered {status} {json.dumps(body)[:300]}")
    if user.get("verified_by") != verified_by:
        raise AssertionError(f"verified_by {user.get('verified_by')!r}, want {verified_by!r}")


def live_control():
    """The live checks mean something only if the server rejects a wrong signature."""
    status, body = api(
        "POST", "/v1/identify", {"user_id": "control", "signature": "0" * 64}, os.environ["VOUCH_PK"]
    )
    code = ((body or {}).get("error") or {}).get("code")
    if status != 401 or code != "invalid_signature":
        raise AssertionError(f"a wrong signature answered {status} {code}, want 401 invalid_signature")


FENCE = re.compile(r"^```[a-z]*[ \t]+(recipes/\S+)\n(.*?)^```$", re.M | re.S)


def docs_checks():
    """Every fenced block in docs/*.md whose info string names a recipe file must be that
    file byte for byte, so the docs cannot drift from the tested code."""
    docs = os.path.join(ROOT, "docs")
    for name in sorted(os.listdir(docs)) if os.path.isdir(docs) else []:
        if not name.endswith(".md"):
            continue
        with open(os.path.join(docs, name), encoding="utf-8") as f:
            text = f.read()
        for m in FENCE.finditer(text):
            path, shown = m.group(1), m.group(2)

            def thunk(path=path, shown=shown):
                with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                    actual = f.read()
                if shown != actual:
                    raise AssertionError(f"the block differs from {path}: copy the file again")

            yield f"docs/{name} shows {path}", thunk


def run_checks(checks):
    passed, failures = 0, []
    for name, thunk in checks:
        try:
            thunk()
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported, none hidden
            failures.append(f"{name}: {e}")
    return passed, failures


def main():
    with open(os.path.join(ROOT, "vectors", "vectors.json"), encoding="utf-8") as f:
        vectors = json.load(f)
    langs = [
        lang
        for lang in os.environ.get(
            "RECIPES_LANGS", "node,python,ruby,php,go,elixir,java,csharp"
        ).split(",")
        if lang
    ]
    required = {x for x in os.environ.get("RECIPES_REQUIRE", "").split(",") if x}
    live = bool(os.environ.get("VOUCH_URL"))
    total_pass, total_fail, rows = 0, 0, []

    if live:
        ok, fails = run_checks([("live control: wrong signature rejected", live_control)])
        total_pass += ok
        total_fail += len(fails)
        for line in fails:
            print(f"FAIL live: {line}")

    p, fails = run_checks(docs_checks())
    total_pass += p
    total_fail += len(fails)
    for line in fails:
        print(f"FAIL docs: {line}")
    rows.append(("docs", f"{p}/{p + len(fails)} blocks match", "-", ""))

    hook = webhook_delivery() if live else {}

    def one(lang):
        why = unavailable(lang)
        if why:
            return lang, why, None, None
        checks = list(live_checks(lang))
        if lang in VENDOR_LANGS:
            checks += list(vendor_checks(lang, hook))
        return lang, None, run_checks(vector_checks(lang, vectors)), (
            run_checks(checks) if live else None
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, langs))

    for lang, why, vec, liv in results:
        if why:
            if lang in required:
                total_fail += 1
                print(f"FAIL {lang}: required but {why}")
                rows.append((lang, "FAILED", "FAILED", why))
            else:
                rows.append((lang, "skipped", "skipped", why))
            continue
        cells = []
        for res in (vec, liv):
            if res is None:
                cells.append("not run (no VOUCH_URL)")
                continue
            ok, fails = res
            total_pass += ok
            total_fail += len(fails)
            for line in fails:
                print(f"FAIL {lang}: {line}")
            cells.append(f"{'ok' if not fails else 'FAILED'} {ok}/{ok + len(fails)}")
        rows.append((lang, cells[0], cells[1], ""))

    print()
    header = ("language", "vectors", "live Vouch", "note")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(4)]
    for r in [header, tuple("-" * w for w in widths)] + rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    print()
    print(f"{total_pass} passed, {total_fail} failed")
    return 1 if total_fail else 0


if __name__ == "__main__":
    sys.exit(main())
