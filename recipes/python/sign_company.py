"""Proof for a company (group): the same HMAC-SHA256 as for a user, over the company id.

    VOUCH_SECRET=sk_test_… python3 sign_company.py COMPANY_ID
"""

import hashlib
import hmac
import os
import sys


def sign_company_id(company_id: str, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), company_id.encode("utf-8"), hashlib.sha256).hexdigest()


if __name__ == "__main__":
    secret = os.environ.get("VOUCH_SECRET")
    if not secret or len(sys.argv) != 2:
        sys.exit("usage: VOUCH_SECRET=sk_… python3 sign_company.py COMPANY_ID")
    print(sign_company_id(sys.argv[1], secret))
