#!/usr/bin/env python3
"""Secrets scan over everything a hardening run left in its output directory.

Known secrets are every value issued during the run: the lines of OUT/secrets.txt (the
scripts' admin tokens and the secrets the admin API gave them), the identity secrets the
servers printed in their start-up banner, and every `value` / `secret` in the answers to
the calls whose contract is to return one (environment and secret creation, reveal,
webhook creation and secret rotation, admin-token creation) recorded in the schemathesis cassettes.

None of them, and nothing shaped like a secret, may appear in:
  - any other HTTP answer recorded in the cassettes,
  - the server logs (stderr, and stdout beyond the start-up banner's own lines),
  - the database files of every data directory (secrets are stored encrypted, the
    admin token only as a hash).

Usage: scan_secrets.py OUT_DIR
"""
import base64
import glob
import os
import re
import sys

import yaml

# Where the contract returns a secret value.
ALLOWED = [
    ("POST", re.compile(r"^/admin/v1/environments/?$")),
    ("POST", re.compile(r"^/admin/v1/environments/[^/]+/secrets/?$")),
    ("GET", re.compile(r"^/admin/v1/environments/[^/]+/secrets/[^/]+\?(.*&)?reveal=(true|1)")),
    ("POST", re.compile(r"^/admin/v1/environments/[^/]+/webhooks/?$")),
    ("POST", re.compile(r"^/admin/v1/environments/[^/]+/webhooks/[^/]+/rotate-secret/?$")),
    ("POST", re.compile(r"^/admin/v1/admin-tokens/?$")),
]
SHAPES = re.compile(
    rb"sk_(?:test|live)_[0-9A-Za-z]{40,}|whsec_[A-Za-z0-9+/=]{24,}|vat_[0-9A-Za-z_]{24,}")
BANNER = re.compile(r"^\s+(Identity secret|Admin token):\s+(\S+)")


def body_bytes(body):
    if body is None:
        return b""
    if isinstance(body, dict):
        if "base64_string" in body:
            return base64.b64decode(body["base64_string"])
        body = body.get("string", "")
    return body.encode() if isinstance(body, str) else bytes(body)


def path_of(uri):
    m = re.match(r"^[a-z]+://[^/]+(/.*)$", uri)
    return m.group(1) if m else uri


def issued_in(obj, out):
    """Every `value` / `secret` string in a JSON answer."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("value", "secret", "token") and isinstance(v, str) and len(v) >= 16:
                out.add(v)
            issued_in(v, out)
    elif isinstance(obj, list):
        for v in obj:
            issued_in(v, out)


def main():
    import json

    out_dir = sys.argv[1]
    known = set()
    secrets_file = os.path.join(out_dir, "secrets.txt")
    if os.path.exists(secrets_file):
        known |= {line.strip() for line in open(secrets_file) if len(line.strip()) >= 16}
    for log in glob.glob(os.path.join(out_dir, "*.stdout.log")):
        for line in open(log, errors="replace"):
            m = BANNER.match(line)
            if m and m.group(2).startswith(("sk_", "vat_")):
                known.add(m.group(2))

    answers = []  # (where, bytes) that must hold no secret
    cassettes = sorted(glob.glob(os.path.join(out_dir, "*.vcr.yaml")))
    for path in cassettes:
        doc = yaml.safe_load(open(path, encoding="utf-8", errors="replace")) or {}
        for i, it in enumerate(doc.get("http_interactions") or []):
            req, resp = it.get("request") or {}, it.get("response") or {}
            if not resp:
                continue
            method, target = req.get("method", ""), path_of(req.get("uri", ""))
            data = body_bytes(resp.get("body"))
            headers = json.dumps(resp.get("headers") or {}).encode()
            status = (resp.get("status") or {}).get("code")
            if any(method == m and rx.match(target) for m, rx in ALLOWED):
                try:
                    issued_in(json.loads(data), known)
                except ValueError:
                    pass
                answers.append((f"{os.path.basename(path)}#{i} headers of {method} {target}", headers))
            else:
                answers.append((f"{os.path.basename(path)}#{i} {method} {target} -> {status}", headers + data))

    files = []  # (where, bytes)
    for log in glob.glob(os.path.join(out_dir, "*.log")):
        lines = open(log, "rb").read().splitlines()
        kept = [l for l in lines if not BANNER.match(l.decode(errors="replace"))]
        files.append((os.path.basename(log), b"\n".join(kept)))
    db_files = [f for d in glob.glob(os.path.join(out_dir, "*-data")) for f in glob.glob(os.path.join(d, "**", "*"), recursive=True)
                if os.path.isfile(f) and not f.endswith("master.key")]
    for f in db_files:
        files.append((os.path.relpath(f, out_dir), open(f, "rb").read()))

    needles = [(k, k.encode()) for k in sorted(known)]
    leaks = []
    for where, data in answers + files:
        for k, b in needles:
            if b in data:
                leaks.append(f"{where}: holds the issued secret {k[:10]}…")
        for m in SHAPES.finditer(data):
            leaks.append(f"{where}: holds a secret-shaped value {m.group(0)[:12].decode()}…")
    print(f"secrets: {len(known)} issued secrets searched in {len(answers)} HTTP answers "
          f"({len(cassettes)} cassettes), {len(files) - len(db_files)} logs and {len(db_files)} "
          f"database files: {len(leaks)} leaks")
    for leak in leaks[:20]:
        print(f"secrets:   {leak}")
    if not known or not db_files or not answers:
        print("secrets: nothing to scan (no secrets, database files or answers found)")
        sys.exit(1)
    sys.exit(1 if leaks else 0)


if __name__ == "__main__":
    main()
