//! JOSE vectors: HS256 JWS (RFC 7515 A.1, jwt.io's default tokens, PyJWT's test tokens)
//! through vouch-core's HMAC and identity-token verification and through `vouch verify
//! --token`; the RFC 8037 Ed25519 key and JWS through vouch-server's session signing.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;
use vouch_core::proof::hmac_sha256;
use vouch_core::token::verify_identity_token;
use vouch_core::{KeyEntry, KeyRing, ProofError, Secret};
use vouch_server::crypto::MasterKey;
use vouch_server::session::{SessionClaims, SessionKeys, signing_key_from_seed};

use crate::{Context, Suite, str_field};

pub fn run(ctx: &Context) -> Vec<Suite> {
    let mut core = Suite::new("jose: HS256 JWS (RFC 7515 A.1, jwt.io, PyJWT) through vouch-core");
    let mut cli = Suite::new("jose: jwt.io tokens through `vouch verify --token`");
    let mut ed = Suite::new("jose: RFC 8037 Ed25519 through vouch-server session signing");
    match ctx.json("jwt/jose_vectors.json") {
        Ok(v) => {
            rfc7515(&mut core, &v["rfc7515_a1"]);
            jwtio(ctx, &mut core, &mut cli, &v["jwtio"]);
            pyjwt(&mut core, &v["pyjwt"]);
            rfc8037(&mut ed, &v["rfc8037"]);
        }
        Err(e) => core.fail(e),
    }
    vec![core, cli, ed]
}

/// `(signing input, signature bytes, decoded payload)` of a compact JWS.
fn parts(compact: &str) -> Option<(&str, Vec<u8>, Vec<u8>)> {
    let (input, signature) = compact.rsplit_once('.')?;
    let payload = input.split_once('.')?.1;
    Some((
        input,
        Base64UrlUnpadded::decode_vec(signature).ok()?,
        Base64UrlUnpadded::decode_vec(payload).ok()?,
    ))
}

/// The HS256 signature of `compact` recomputed with vouch-core's HMAC.
fn check_hs256_mac(suite: &mut Suite, name: &str, key: &[u8], compact: &str) {
    match parts(compact) {
        Some((input, signature, _)) => {
            let mac = hmac_sha256(key, input.as_bytes());
            suite.check(mac.as_slice() == signature, || {
                format!("{name}: HMAC-SHA256 of the signing input differs from the signature")
            });
        }
        None => suite.fail(format!("{name}: not a compact JWS")),
    }
}

fn rfc7515(suite: &mut Suite, v: &Value) {
    let (Ok(k), Ok(compact)) = (str_field(&v["jwk"], "k"), str_field(v, "compact")) else {
        return suite.fail("rfc7515_a1: missing jwk.k or compact");
    };
    let Ok(key) = Base64UrlUnpadded::decode_vec(k) else {
        return suite.fail("rfc7515_a1: jwk.k is not base64url");
    };
    check_hs256_mac(suite, "RFC 7515 A.1", &key, compact);
    if std::str::from_utf8(&key).is_err() {
        suite.not_applicable(
            "identity-token verification: the key is random bytes, an identity secret is UTF-8 text",
        );
    }
}

fn jwtio(ctx: &Context, core: &mut Suite, cli: &mut Suite, v: &Value) {
    for t in v["tokens"].as_array().into_iter().flatten() {
        let (Ok(name), Ok(alg), Ok(token), Ok(sub)) = (
            str_field(t, "name"),
            str_field(t, "alg"),
            str_field(t, "token"),
            str_field(t, "sub"),
        ) else {
            core.fail(format!("jwtio: bad token entry {t}"));
            continue;
        };
        let secret = t["secret"].as_str().unwrap_or("");
        let iat = parts(token)
            .and_then(|(_, _, p)| serde_json::from_slice::<Value>(&p).ok())
            .and_then(|p| p["iat"].as_i64());
        let Some(iat) = iat else {
            core.fail(format!("{name}: no iat in the payload"));
            continue;
        };
        let result = verify_identity_token(&Secret::new(secret), token, Some(sub), iat);
        if alg == "HS256" {
            check_hs256_mac(core, name, secret.as_bytes(), token);
            core.check(result.as_ref().is_ok_and(|c| c.sub == sub), || {
                format!("{name}: verify_identity_token gave {result:?}")
            });
            let ring = KeyRing::new(vec![KeyEntry::new(
                "key_jwtio",
                Secret::new(secret),
                0,
                None,
                None,
            )]);
            let through_ring = ring.verify_token(token, Some(sub), iat);
            core.check(through_ring.is_ok(), || {
                format!("{name}: the key ring gave {through_ring:?}")
            });
        } else {
            // Vouch accepts HS256 only: other algorithms (and alg none) must be refused.
            // An unsecured JWT has an empty signature part, refused before its header.
            let refused = match &result {
                Err(ProofError::TokenAlgorithm(a)) => a == alg,
                Err(ProofError::TokenMalformed(_)) => alg == "none",
                _ => false,
            };
            if refused {
                core.not_applicable(format!(
                    "{alg} token: Vouch accepts only HS256 identity tokens (refused, naming {alg})"
                ));
            } else {
                core.fail(format!(
                    "{name}: expected a refusal naming {alg}, got {result:?}"
                ));
            }
        }
        check_cli_token(ctx, cli, name, alg, secret, token, sub, iat);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_cli_token(
    ctx: &Context,
    suite: &mut Suite,
    name: &str,
    alg: &str,
    secret: &str,
    token: &str,
    sub: &str,
    iat: i64,
) {
    if secret.is_empty() {
        // alg none carries no secret; the CLI still needs one to run.
        suite.not_applicable("alg none: an unsecured JWT is never an identity token");
        return;
    }
    let at = iat.to_string();
    let o = match ctx.vouch(&["verify", sub, "--token", token, "--at", &at], secret) {
        Ok(o) => o,
        Err(e) => return suite.fail(e),
    };
    let out = String::from_utf8_lossy(&o.stdout);
    if alg == "HS256" {
        suite.check(
            o.status.code() == Some(0) && out.starts_with("valid ("),
            || format!("{name}: vouch verify exited {:?}: {out}", o.status.code()),
        );
    } else if o.status.code() == Some(1) && out.contains(alg) {
        suite.not_applicable(format!(
            "{alg} token: Vouch accepts only HS256 identity tokens (vouch verify refuses it)"
        ));
    } else {
        suite.fail(format!(
            "{name}: vouch verify should refuse {alg}, exited {:?}: {out}",
            o.status.code()
        ));
    }
}

fn pyjwt(suite: &mut Suite, v: &Value) {
    let Ok(secret) = str_field(v, "secret") else {
        return suite.fail("pyjwt: no secret");
    };
    for t in v["tokens"].as_array().into_iter().flatten() {
        let (Ok(name), Ok(token), Ok(expect)) = (
            str_field(t, "name"),
            str_field(t, "token"),
            str_field(t, "pyjwt"),
        ) else {
            suite.fail(format!("pyjwt: bad token entry {t}"));
            continue;
        };
        let result = verify_identity_token(&Secret::new(secret), token, None, 0);
        match expect {
            "valid" => {
                check_hs256_mac(suite, name, secret.as_bytes(), token);
                // A JWS that PyJWT accepts but that carries no `sub`: not an identity token.
                // Its signature must still be recognised as good.
                match &result {
                    Err(ProofError::TokenMalformed(m)) => suite.not_applicable(format!(
                        "identity-token verification: the payload is not claims with a sub ({})",
                        if m.contains("sub") { "no sub" } else { "not a JSON object" }
                    )),
                    other => suite.fail(format!(
                        "{name}: expected a good signature refused only for its payload, got {other:?}"
                    )),
                }
            }
            _ => suite.check(result.is_err(), || {
                format!("{name}: PyJWT refuses this token, Vouch accepted it")
            }),
        }
    }
}

fn rfc8037(suite: &mut Suite, v: &Value) {
    let (Ok(d), Ok(x), Ok(compact)) = (
        str_field(&v["private_jwk"], "d"),
        str_field(&v["public_jwk"], "x"),
        str_field(v, "compact"),
    ) else {
        return suite.fail("rfc8037: missing d, x or compact");
    };
    let Some(seed) = Base64UrlUnpadded::decode_vec(d)
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
    else {
        return suite.fail("rfc8037: d is not 32 bytes of base64url");
    };
    let keys = MasterKey::generate()
        .map_err(anyhow::Error::from)
        .and_then(|master| {
            let record = signing_key_from_seed(&master, "sk_rfc8037", &seed, 0)?;
            SessionKeys::load(&master, &[record], 0)
        });
    let keys = match keys {
        Ok(keys) => keys,
        Err(e) => return suite.fail(format!("rfc8037: cannot load the key: {e}")),
    };

    // The published JWKS entry carries the RFC's public key.
    let jwk = &keys.jwks()["keys"][0];
    suite.check(jwk["x"] == x, || {
        format!("JWKS x is {}, RFC 8037 says {x}", jwk["x"])
    });
    suite.check(
        jwk["kty"] == "OKP" && jwk["crv"] == "Ed25519" && jwk["alg"] == "EdDSA",
        || format!("JWKS entry {jwk} is not an OKP Ed25519 EdDSA key"),
    );

    // RFC 8037 A.4: the same protected header and payload give the same signature.
    let mut pieces = compact.splitn(3, '.');
    let (Some(protected), Some(payload)) = (pieces.next(), pieces.next()) else {
        return suite.fail("rfc8037: compact is not a JWS");
    };
    let signed = keys.sign_compact(protected, payload);
    suite.check(signed == compact, || {
        format!("signed {signed}, RFC 8037 A.4 says {compact}")
    });

    // Vouch's own verifier takes session tokens only: a kid header and session claims.
    match keys.verify(compact) {
        Err(_) => suite.not_applicable(
            "session verification of the RFC's JWS: a session token needs a kid header and session claims",
        ),
        Ok(claims) => suite.fail(format!("the RFC's JWS verified as a session: {claims:?}")),
    }
    suite.not_applicable("the RFC 7638 thumbprint: Vouch names its keys by kid");

    // A session token signed with the RFC's key verifies, and one changed byte does not.
    let now = time_now();
    let claims = SessionClaims {
        iss: "https://vouch.example".into(),
        aud: "env_conformance".into(),
        sub: "user-42".into(),
        verified: true,
        verified_by: None,
        key_id: Some("key_conformance".into()),
        anonymous: false,
        vid: "vis_1".into(),
        sid: "ses_1".into(),
        iat: now,
        exp: now + 60,
    };
    match keys.issue(&claims) {
        Ok(token) => {
            suite.check(keys.verify(&token).as_ref() == Ok(&claims), || {
                "a session token signed with the RFC 8037 key does not verify".to_owned()
            });
            let mut forged = token.into_bytes();
            let i = forged.len() - 3;
            forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8_lossy(&forged).into_owned();
            suite.check(keys.verify(&forged).is_err(), || {
                "a session token with a changed signature verified".to_owned()
            });
        }
        Err(e) => suite.fail(format!("cannot issue a session token: {e}")),
    }
}

fn time_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
