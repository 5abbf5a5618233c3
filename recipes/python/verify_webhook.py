"""In your webhook receiver: check that a delivery really comes from Vouch (Standard
Webhooks). Use the raw request body, byte for byte, before any JSON parsing.

    VOUCH_WEBHOOK_SECRET=whsec_… python3 verify_webhook.py WEBHOOK_ID WEBHOOK_TIMESTAMP WEBHOOK_SIGNATURE < body
"""

import base64
import hashlib
import hmac
import os
import sys
import time


def verify_webhook(secret: str, headers: dict, raw_body: bytes, tolerance_seconds: int = 300) -> bool:
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        return False
    # Refuse old deliveries, so that a captured one cannot be replayed later.
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    # The key is the base64 part of the secret, decoded; the message is "id.timestamp.body".
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + raw_body, hashlib.sha256).digest()
    # The header may hold several space-separated "v1,<base64>" (during a secret rotation).
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        try:
            given = base64.b64decode(value, validate=True)
        except ValueError:
            continue
        if version == "v1" and hmac.compare_digest(given, expected):
            return True
    return False


if __name__ == "__main__":
    secret = os.environ.get("VOUCH_WEBHOOK_SECRET")
    if not secret or len(sys.argv) != 4:
        sys.exit("usage: VOUCH_WEBHOOK_SECRET=whsec_… python3 verify_webhook.py ID TIMESTAMP SIGNATURE < body")
    headers = dict(zip(["webhook-id", "webhook-timestamp", "webhook-signature"], sys.argv[1:]))
    if verify_webhook(secret, headers, sys.stdin.buffer.read()):
        print("valid")
    else:
        print("invalid")
        sys.exit(1)
