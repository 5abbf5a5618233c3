"""Vouch test vectors, computed with Python's `hmac` and `hashlib`.

    python3 vectors/gen/python.py [inputs.json]

Independent of the Node generator: the RFC 8785 canonical form is computed
here too (keys sorted by UTF-16 code units, ECMAScript number forms), and
identity tokens are built from the claims in inputs.json.
"""

import base64
import decimal
import hashlib
import hmac
import json
import math
import os
import platform
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def mac(key: str, message: str) -> bytes:
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()


def encodings(digest: bytes) -> dict:
    return {
        "hex": digest.hex(),
        "base64": base64.b64encode(digest).decode("ascii"),
        "base64url": base64.urlsafe_b64encode(digest).decode("ascii").rstrip("="),
    }


def es_number(value) -> str:
    """ECMAScript Number::toString, which RFC 8785 adopts for numbers."""
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    value = float(value)  # JSON numbers are IEEE doubles in JCS
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"JCS cannot represent {value}")
    if value == 0:
        return "0"  # also -0
    if value < 0:
        return "-" + es_number(-value)
    # repr() gives the shortest digit string that round-trips, as ES requires.
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    s = "".join(map(str, digits)).rstrip("0")
    exponent += len(digits) - len(s)
    s = s.lstrip("0")
    k = len(s)
    n = exponent + k  # value = 0.s * 10^n
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + s
    e = n - 1
    mantissa = s if k == 1 else s[0] + "." + s[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def canonicalize(value) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return es_number(value)
    if isinstance(value, str):
        # Same escapes as JSON.stringify: \" \\ \b \f \n \r \t, \u00XX for
        # other controls, everything else (U+2028, DEL, non-ASCII) raw.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(canonicalize(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(f"{canonicalize(k)}:{canonicalize(value[k])}" for k in keys) + "}"
    raise TypeError(f"unexpected JSON value {value!r}")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def compact(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "inputs.json")
    with open(path, encoding="utf-8") as f:
        inputs = json.load(f)
    secrets = {s["name"]: s["value"] for s in inputs["secrets"]}

    signatures = [
        {"id": f"{s['name']}/{m['name']}", **encodings(mac(s["value"], m["value"]))}
        for s in inputs["secrets"]
        for m in inputs["messages"]
    ]

    attributes = []
    for s in inputs["secrets"]:
        for a in inputs["attributes"]:
            canonical = canonicalize(json.loads(a["json"]))
            attributes.append(
                {"id": f"{s['name']}/{a['name']}", "canonical": canonical, **encodings(mac(s["value"], canonical))}
            )

    tokens = []
    for t in inputs["tokens"]:
        header = {"alg": "HS256", "typ": "JWT"}
        if t.get("kid"):
            header["kid"] = t["kid"]
        signing_input = b64url(compact(header).encode()) + "." + b64url(compact(t["claims"]).encode())
        signature = b64url(mac(secrets[t["secret"]], signing_input))
        tokens.append({"id": t["name"], "token": f"{signing_input}.{signature}"})

    out = {
        "runtime": f"python {platform.python_version()}",
        "signatures": signatures,
        "attributes": attributes,
        "tokens": tokens,
    }
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
