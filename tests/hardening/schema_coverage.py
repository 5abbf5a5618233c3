#!/usr/bin/env python3
"""Counts the schemathesis cases in the VCR cassettes of a run and fails when any
operation of /openapi.json was never exercised.

Usage: schema_coverage.py OUT_DIR OPENAPI_JSON_FILE
"""
import glob
import json
import re
import sys
from urllib.parse import urlsplit

METHODS = ("get", "post", "put", "patch", "delete")


def main():
    out, schema = sys.argv[1], sys.argv[2]
    seen, cases = set(), 0
    for path in sorted(glob.glob(f"{out}/schema-*.vcr.yaml")):
        text = open(path, encoding="utf-8", errors="replace").read()
        for uri, method in re.findall(r"^\s+uri: '([^'\n]+)'\n\s+method: '([A-Z]+)'", text, re.M):
            cases += 1
            seen.add((method, urlsplit(uri).path))
    doc = json.load(open(schema))
    ops, missing = 0, []
    for tmpl, item in doc["paths"].items():
        rx = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]*", re.escape(tmpl)) + "$")
        for method in item:
            if method not in METHODS:
                continue
            ops += 1
            if not any(m == method.upper() and rx.match(p) for m, p in seen):
                missing.append(f"{method.upper()} {tmpl}")
    print(f"schema: {cases} cases over {ops} operations; operations never exercised: {len(missing)}")
    for m in missing:
        print(f"schema:   not exercised: {m}")
    sys.exit(1 if missing or cases == 0 else 0)


if __name__ == "__main__":
    main()
