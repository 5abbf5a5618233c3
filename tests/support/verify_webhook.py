#!/usr/bin/env python3
"""Verifies Vouch webhook deliveries with the independent `standardwebhooks`
package from PyPI (the reference implementation of the Standard Webhooks spec).

stdin: one JSON object, or a JSON array of them:
    {"secret": "whsec_...", "body": "<raw body as sent>", "headers": {"webhook-id": ..., ...}}
stdout: a JSON array with one result per input, in order:
    {"ok": true, "type": "<body type>"} or {"ok": false, "error": "..."}
Exit status: 0 when every input verified, 1 when any did not, 2 when the
package is missing or the input is malformed (a test must fail, not skip).
"""

import json
import sys

try:
    from standardwebhooks.webhooks import Webhook
except ImportError as e:  # pragma: no cover - the message is the point
    sys.stderr.write(
        f"cannot import standardwebhooks ({e}); install it with "
        "`python3 -m pip install standardwebhooks` (tests/support/install_webhook_deps.sh)\n"
    )
    sys.exit(2)


def verify(case):
    try:
        parsed = Webhook(case["secret"]).verify(case["body"], case["headers"])
    except Exception as e:  # WebhookVerificationError, bad base64, ...
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "type": parsed.get("type") if isinstance(parsed, dict) else None}


def main():
    try:
        data = json.load(sys.stdin)
    except ValueError as e:
        sys.stderr.write(f"stdin is not JSON: {e}\n")
        return 2
    cases = data if isinstance(data, list) else [data]
    if not all(isinstance(c, dict) and {"secret", "body", "headers"} <= c.keys() for c in cases):
        sys.stderr.write("every input needs `secret`, `body` and `headers`\n")
        return 2
    results = [verify(c) for c in cases]
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
