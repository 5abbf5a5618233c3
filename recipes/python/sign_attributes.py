"""Proof for a user's attributes: HMAC-SHA256 over the RFC 8785 (JCS) canonical form of
the attributes object, so that key order and spacing do not matter. Send the same object
as `attributes` and this value as `attributes_signature`.

    pip install rfc8785
    VOUCH_SECRET=sk_test_… python3 sign_attributes.py '{"plan":"pro","seats":5}'
"""

import hashlib
import hmac
import json
import os
import sys

import rfc8785


def sign_attributes(attributes: dict, secret: str) -> str:
    # rfc8785.dumps returns the canonical UTF-8 bytes (sorted keys, no spaces, and numbers
    # spelled as JavaScript does: 1e+21, 1e-7, 100 for 100.0). json.dumps(sort_keys=True)
    # is NOT the same thing.
    canonical = rfc8785.dumps(attributes)
    return hmac.new(secret.encode("utf-8"), canonical, hashlib.sha256).hexdigest()


if __name__ == "__main__":
    secret = os.environ.get("VOUCH_SECRET")
    if not secret or len(sys.argv) != 2:
        sys.exit("usage: VOUCH_SECRET=sk_… python3 sign_attributes.py ATTRIBUTES_JSON")
    print(sign_attributes(json.loads(sys.argv[1]), secret))
