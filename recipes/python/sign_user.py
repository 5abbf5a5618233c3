"""Proof that a user is who your backend says: HMAC-SHA256 of the user id, keyed with
your Vouch identity secret, as 64 lowercase hex characters.

Run it on your server, never in the browser:
    VOUCH_SECRET=sk_test_… python3 sign_user.py USER_ID
"""

import hashlib
import hmac
import os
import sys


def sign_user_id(user_id: str, secret: str) -> str:
    # The key is the secret exactly as shown by Vouch; the message is the user id's UTF-8 bytes.
    return hmac.new(secret.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


if __name__ == "__main__":
    secret = os.environ.get("VOUCH_SECRET")
    if not secret or len(sys.argv) != 2:
        sys.exit("usage: VOUCH_SECRET=sk_… python3 sign_user.py USER_ID")
    print(sign_user_id(sys.argv[1], secret))
