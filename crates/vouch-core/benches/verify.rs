//! Verification costs, with two raw SHA-256 block compressions as the floor.
//!
//! `cargo bench -p vouch-core --bench verify -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use sha2::block_api::compress256;
use vouch_core::jcs::parse_attributes;
use vouch_core::proof::{issue_identity_token, sign, sign_attributes};
use vouch_core::{IdentityClaims, KeyEntry, KeyRing, Secret, SignatureEncoding};

const NOW: i64 = 1_700_000_000;

fn benches(c: &mut Criterion) {
    let secret = Secret::new("sk_test_4eC39HqLyjWDarjtT1zdp7dcF3kZmQ8vBn2xYpLw0Rs1a2B3c");
    let ring = KeyRing::new(vec![KeyEntry::new("key_1", secret.clone(), 0, None, None)]);
    let user_id = b"user_2fQ8kLm3Zp9";

    let mut floor = c.benchmark_group("floor");
    let mut state = [0u32; 8];
    let blocks = [[0x5au8; 64]; 2];
    floor.bench_function("sha256_two_blocks", |b| {
        b.iter(|| {
            compress256(black_box(&mut state), black_box(&blocks[..1]));
            compress256(black_box(&mut state), black_box(&blocks[1..]));
        })
    });
    floor.finish();

    let mut verify = c.benchmark_group("verify");
    let hex = sign(&secret, user_id, SignatureEncoding::Hex);
    verify.bench_function("hex", |b| {
        b.iter(|| ring.verify_signature(black_box(user_id), black_box(&hex), NOW))
    });
    let b64 = sign(&secret, user_id, SignatureEncoding::Base64);
    verify.bench_function("base64", |b| {
        b.iter(|| ring.verify_signature(black_box(user_id), black_box(&b64), NOW))
    });
    let attributes = parse_attributes(
        r#"{"name":"Ada Lovelace","email":"ada@example.com","plan":"pro","seats":12,
            "mrr":99.5,"admin":true,"company":"Analytical Engines","country":"GB",
            "signed_up_at":1699999999,"tags":["beta","vip"]}"#,
    )
    .unwrap_or_default();
    let attributes_signature =
        sign_attributes(&secret, &attributes, SignatureEncoding::Hex).unwrap_or_default();
    verify.bench_function("attributes_10_keys", |b| {
        b.iter(|| {
            ring.verify_attributes(
                black_box(&attributes),
                black_box(&attributes_signature),
                NOW,
            )
        })
    });
    let claims = IdentityClaims::new("user_2fQ8kLm3Zp9").with_expiry(NOW + 600);
    let token = issue_identity_token(&secret, Some("key_1"), &claims).unwrap_or_default();
    verify.bench_function("token", |b| {
        b.iter(|| ring.verify_token(black_box(&token), Some("user_2fQ8kLm3Zp9"), NOW))
    });
    verify.finish();
}

criterion_group!(verify_benches, benches);
criterion_main!(verify_benches);
