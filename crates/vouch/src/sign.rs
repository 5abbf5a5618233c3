//! `vouch sign`: prints one proof, and nothing else, on one line.

use vouch_core::proof::{issue_identity_token, sign, sign_attributes};
use vouch_core::{IdentityClaims, SignatureEncoding};

use crate::cli::SignArgs;
use crate::input::{attributes_argument, secret_from_env, unix_now, usage};

/// Runs `vouch sign` and prints the signature or token.
pub fn run(args: SignArgs) -> anyhow::Result<()> {
    let value = compute(args, unix_now())?;
    println!("{value}");
    Ok(())
}

fn compute(args: SignArgs, now: i64) -> anyhow::Result<String> {
    let secret = secret_from_env()?;
    let encoding = if args.base64 {
        SignatureEncoding::Base64
    } else if args.base64url {
        SignatureEncoding::Base64Url
    } else {
        SignatureEncoding::Hex
    };
    let attributes = match &args.attributes {
        Some(arg) => Some(attributes_argument(arg)?.1),
        None => None,
    };

    if args.token {
        let Some(sub) = args.id else {
            return usage("--token needs the USER_ID the token is for");
        };
        let jti = if args.jti_random {
            Some(vouch_core::keys::random_base62(22))
        } else {
            args.jti
        };
        // `ttl` was checked by the value parser to fit an i64.
        let ttl = i64::try_from(args.ttl).unwrap_or(i64::MAX);
        let claims = IdentityClaims {
            sub,
            exp: Some(now.saturating_add(ttl)),
            nbf: None,
            iat: Some(now),
            jti,
            attributes,
        };
        return Ok(issue_identity_token(&secret, args.kid.as_deref(), &claims)?);
    }

    if let Some(attributes) = attributes {
        return Ok(sign_attributes(&secret, &attributes, encoding)?);
    }

    match args.id {
        Some(id) => Ok(sign(&secret, id.as_bytes(), encoding)),
        None => usage("give the USER_ID to sign (or --attributes JSON)"),
    }
}
