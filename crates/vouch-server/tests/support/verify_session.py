#!/usr/bin/env python3
"""Verifies a Vouch session token the way a vendor's other service would:
PyJWT fetches the server's JWKS, picks the key by `kid`, and checks the EdDSA
signature, `aud`, `iss` and `exp`.

Usage: verify_session.py JWKS_URL TOKEN AUDIENCE ISSUER
Prints {"kid": ..., "alg": ..., "claims": {...}} on success; exits 1 with the
reason on stderr when the token does not verify.
"""

import json
import sys

import jwt


def main() -> int:
    jwks_url, token, audience, issuer = sys.argv[1:5]
    client = jwt.PyJWKClient(jwks_url, cache_keys=False, cache_jwk_set=False)
    try:
        signing_key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=["EdDSA"],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.PyJWTError as e:
        print(f"rejected: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    header = jwt.get_unverified_header(token)
    print(json.dumps({"kid": header.get("kid"), "alg": header.get("alg"), "claims": claims}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
