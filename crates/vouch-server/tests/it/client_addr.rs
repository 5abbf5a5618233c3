//! The client address behind a reverse proxy, black-box, seen through the
//! per-address limit on failed proofs: with the proxy trusted, two
//! `X-Forwarded-For` values are two clients; from an untrusted peer the header
//! is ignored, so changing it does not make a new client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use reqwest::Method;
use serde_json::json;

/// A wrong-proof identify of `user` claiming to come from `forwarded_for`.
async fn wrong_proof(s: &Server, env: &Env, user: &str, forwarded_for: &str) -> Resp {
    let body = json!({"user_id": user, "signature": corrupt(&env.sign(user))});
    s.request(
        Method::POST,
        "/v1/identify",
        Some(&env.pk),
        &[("x-forwarded-for", forwarded_for)],
        Some(("application/json", body.to_string().into_bytes())),
    )
    .await
}

/// An environment that limits failed proofs to 3 a minute per client address.
async fn strict_env(s: &Server) -> Env {
    s.env_with(json!({"rate_limit_per_address": 3, "rate_limit_per_user": 100}))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_address_is_its_own_client() {
    let s = Server::start_configured(|c| {
        c.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    })
    .await;
    let env = strict_env(&s).await;
    avoid_minute_boundary(10).await;
    for i in 0..3 {
        wrong_proof(&s, &env, &format!("a{i}"), "198.51.100.1")
            .await
            .expect_error(401, "invalid_signature");
    }
    wrong_proof(&s, &env, "a3", "198.51.100.1")
        .await
        .expect_error(429, "rate_limited");
    // Another client behind the same proxy is not limited by the first one's failures…
    wrong_proof(&s, &env, "b0", "198.51.100.2")
        .await
        .expect_error(401, "invalid_signature");
    // …and the rightmost untrusted entry is the client: a value the first client
    // prepends itself changes nothing.
    wrong_proof(&s, &env, "a4", "203.0.113.66, 198.51.100.1")
        .await
        .expect_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_peers_forwarded_for_header_is_ignored() {
    let s = Server::start().await;
    let env = strict_env(&s).await;
    avoid_minute_boundary(10).await;
    for i in 0..3 {
        wrong_proof(&s, &env, &format!("a{i}"), &format!("198.51.100.{i}"))
            .await
            .expect_error(401, "invalid_signature");
    }
    // A fresh X-Forwarded-For does not make a fresh client.
    wrong_proof(&s, &env, "a3", "198.51.100.77")
        .await
        .expect_error(429, "rate_limited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_are_counted_per_64() {
    let s = Server::start_configured(|c| {
        c.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    })
    .await;
    let env = strict_env(&s).await;
    avoid_minute_boundary(10).await;
    // Three addresses of one /64 are one client: the fourth failure is over the limit.
    for (i, addr) in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::9"]
        .into_iter()
        .enumerate()
    {
        wrong_proof(&s, &env, &format!("v{i}"), addr)
            .await
            .expect_error(401, "invalid_signature");
    }
    wrong_proof(&s, &env, "v3", "2001:db8:1:2:abcd::1")
        .await
        .expect_error(429, "rate_limited");
    // The next /64 is another client.
    wrong_proof(&s, &env, "w0", "2001:db8:1:3::1")
        .await
        .expect_error(401, "invalid_signature");
}
