"""An identity token: a short-lived HS256 JWT whose `sub` is the user id, signed with your
identity secret. Unlike a signature it expires, and it can carry verified attributes.

    pip install PyJWT
    VOUCH_SECRET=sk_test_… [VOUCH_KEY_ID=key_…] python3 identity_token.py USER_ID ['{"plan":"pro"}']
"""

import json
import os
import sys
import time

import jwt


def identity_token(user_id, secret, attributes=None, key_id=None, ttl_seconds=600):
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl_seconds}
    if attributes is not None:
        claims["attributes"] = attributes
    # Optional `kid` header: the id of the secret (key_…), so Vouch tries only that one.
    headers = {"kid": key_id} if key_id else None
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


if __name__ == "__main__":
    secret = os.environ.get("VOUCH_SECRET")
    if not secret or len(sys.argv) not in (2, 3):
        sys.exit(
            "usage: VOUCH_SECRET=sk_… [VOUCH_KEY_ID=key_…] python3 identity_token.py USER_ID [ATTRIBUTES_JSON]"
        )
    attributes = json.loads(sys.argv[2]) if len(sys.argv) == 3 else None
    print(identity_token(sys.argv[1], secret, attributes, os.environ.get("VOUCH_KEY_ID")))
