//! Guessing a signature is cut off by the per-user and the per-address limits.

use serde_json::json;

use super::assert_alive;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_forcing_a_signature_is_cut_off() {
    let s = Server::start().await;
    let env = s.env().await;
    avoid_minute_boundary(30).await;
    let mut answers = Vec::new();
    for i in 0..40u32 {
        let guess = format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15);
        let r = s
            .identify(&env.pk, &json!({"user_id": "target", "signature": guess}))
            .await;
        assert!(r.status == 401 || r.status == 429, "guess {i}: {}", r.text);
        if r.status == 429 {
            r.expect_error(429, "rate_limited");
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "Retry-After {retry}");
        } else {
            r.expect_error(401, "invalid_signature");
        }
        answers.push(r.status);
    }
    // The default 10 wrong guesses a minute answer 401; the rest 429.
    assert_eq!(
        answers.iter().filter(|&&c| c == 401).count(),
        10,
        "{answers:?}"
    );
    assert!(answers[10..].iter().all(|&c| c == 429), "{answers:?}");
    // The right signature is never refused by a limit (a guess that is right
    // is no guess: the secret alone makes it).
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "target", "signature": env.sign("target")}),
    )
    .await;
    // The moment the client was throttled is audited once, not per request.
    let throttled = s
        .audit(&env.id)
        .await
        .iter()
        .filter(|a| a["kind"] == "client.throttled")
        .count();
    assert_eq!(throttled, 1);
    // Spreading guesses over user ids hits the per-address limit.
    let spread = s
        .env_with(json!({"rate_limit_per_address": 15, "rate_limit_per_user": 1000}))
        .await;
    let mut refused_at = None;
    for i in 0..30 {
        let r = s
            .identify(
                &spread.pk,
                &json!({"user_id": format!("user-{i}"), "signature": "0".repeat(64)}),
            )
            .await;
        if r.status == 429 {
            r.expect_error(429, "rate_limited");
            assert!(r.header("retry-after").is_some());
            refused_at = Some(i);
            break;
        }
        r.expect_error(401, "invalid_signature");
    }
    assert_eq!(refused_at, Some(15));
    assert_alive(&s, "brute force").await;
}
