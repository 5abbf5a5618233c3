//! Sign a user id, its attributes and an identity token as a customer backend would, then
//! verify each against an environment's key ring as Vouch does, and diagnose a mistake.
//!
//! Run with `cargo run -p vouch-core --example verify`.

use vouch_core::diagnosis::{DiagnosisInput, diagnose};
use vouch_core::jcs::parse_attributes;
use vouch_core::keys::generate_identity_secret;
use vouch_core::proof::{issue_identity_token, sign, sign_attributes};
use vouch_core::{IdentityClaims, KeyEntry, KeyRing, Mode, ProofError, SignatureEncoding};

fn main() -> Result<(), ProofError> {
    let now = 1_700_000_000;

    // Vouch side: an environment with one active identity secret.
    let secret = generate_identity_secret(Mode::Test);
    let ring = KeyRing::new(vec![KeyEntry::new(
        "key_demo",
        secret.clone(),
        now,
        None,
        None,
    )]);

    // Customer backend: sign the user id (hex, as Intercom-style recipes do).
    let user_id = "user-42";
    let signature = sign(&secret, user_id.as_bytes(), SignatureEncoding::Hex);
    let key_id = ring.verify_signature(user_id.as_bytes(), &signature, now)?;
    println!("signature {signature} verified by {key_id}");

    // Attributes signature over the canonical JSON of the attributes.
    let attributes = parse_attributes(r#"{"plan": "pro", "email": "ada@example.com"}"#)?;
    let attributes_signature = sign_attributes(&secret, &attributes, SignatureEncoding::Base64)?;
    let key_id = ring.verify_attributes(&attributes, &attributes_signature, now)?;
    println!("attributes signature {attributes_signature} verified by {key_id}");

    // Identity token with a ten-minute expiry.
    let claims = IdentityClaims::new(user_id).with_expiry(now + 600);
    let token = issue_identity_token(&secret, Some("key_demo"), &claims)?;
    let (key_id, verified) = ring.verify_token(&token, Some(user_id), now)?;
    println!("token for {} verified by {key_id}", verified.sub);

    // A classic mistake: `echo "user-42" | openssl dgst -sha256 -hmac …` signs a newline too.
    let wrong = sign(&secret, b"user-42\n", SignatureEncoding::Hex);
    let err = ring
        .verify_signature(user_id.as_bytes(), &wrong, now)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let cause = diagnose(
        &DiagnosisInput {
            message: user_id,
            signature: &wrong,
            keys: &ring,
            other_environments: &[],
            attributes: Some(&attributes),
        },
        now,
    );
    println!("{err}: {} ({})", cause.message(), cause.code());
    Ok(())
}
