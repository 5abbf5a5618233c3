"""In another service of yours: check a Vouch session token (what identify returns) without
calling Vouch for each request. The token is an EdDSA JWT; the public keys are published at
/.well-known/jwks.json and cached by PyJWKClient.

    pip install "PyJWT[crypto]"
    VOUCH_URL=https://vouch.example.com VOUCH_ENVIRONMENT=env_… python3 verify_session.py TOKEN
"""

import json
import os
import sys

import jwt

VOUCH_URL = os.environ.get("VOUCH_URL", "")
jwks = jwt.PyJWKClient(VOUCH_URL.rstrip("/") + "/.well-known/jwks.json")


def verify_session(token: str, environment_id: str) -> dict:
    key = jwks.get_signing_key_from_jwt(token)  # picks the public key named by `kid`
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA"],
        issuer=VOUCH_URL,  # `iss` is the server's public URL (VOUCH_PUBLIC_URL)
        audience=environment_id,  # `aud` is the environment the session belongs to
        options={"require": ["exp", "sub", "aud", "iss"]},
    )
    # `sub` is the user id; trust it as that user only when `verified` is true.
    return {"userId": claims["sub"], "verified": claims.get("verified") is True}


if __name__ == "__main__":
    if not VOUCH_URL or not os.environ.get("VOUCH_ENVIRONMENT") or len(sys.argv) != 2:
        sys.exit("usage: VOUCH_URL=… VOUCH_ENVIRONMENT=env_… python3 verify_session.py TOKEN")
    try:
        result = verify_session(sys.argv[1], os.environ["VOUCH_ENVIRONMENT"])
    except jwt.PyJWTError as e:
        sys.exit(f"invalid session token: {e}")
    print(json.dumps(result, separators=(",", ":"), ensure_ascii=False))
