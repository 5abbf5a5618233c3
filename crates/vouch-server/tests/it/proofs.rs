//! Every proof of docs/api.md: signature encodings, identity tokens, attributes
//! signatures (JCS), company signatures; and the group and track calls.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};
use vouch_core::{IdentityClaims, SignatureEncoding};

fn mac(secret_value: &str, message: &str) -> [u8; 32] {
    vouch_core::proof::hmac_sha256(secret_value.as_bytes(), message.as_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_in_every_accepted_encoding_verifies() {
    let s = Server::start().await;
    let env = s.env().await;
    let id = "user-42";
    let raw = mac(&env.secret, id);
    let lower = hex(&raw);
    assert_eq!(lower, env.sign(id));
    let upper = lower.to_uppercase();
    let b64 = Base64::encode_string(&raw);
    let b64url = Base64UrlUnpadded::encode_string(&raw);
    assert_eq!((lower.len(), b64.len(), b64url.len()), (64, 44, 43));
    // The library's encoders agree with the hand-made ones.
    assert_eq!(sign_enc(&env.secret, id, SignatureEncoding::Base64), b64);
    assert_eq!(
        sign_enc(&env.secret, id, SignatureEncoding::Base64Url),
        b64url
    );
    for sig in [&lower, &upper, &b64, &b64url] {
        let out = s
            .identify_ok(&env.pk, &json!({"user_id": id, "signature": sig}))
            .await;
        assert_eq!(out["user"]["verified"], json!(true), "{sig}");
        assert_eq!(out["user"]["verified_by"], json!("signature"), "{sig}");
        let (header, claims) = jwt_parts(out["session_token"].as_str().unwrap());
        assert_eq!(header["alg"], json!("EdDSA"));
        assert_eq!(claims["verified"], json!(true));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_user_ids_are_signed_as_utf8_bytes() {
    let s = Server::start().await;
    let env = s.env().await;
    for id in ["Zoë", "名前", "user 😀", "a/b?c#d", "e\u{301}"] {
        let out = s
            .identify_ok(&env.pk, &json!({"user_id": id, "signature": env.sign(id)}))
            .await;
        assert_eq!(out["user"]["id"], json!(id));
        assert_eq!(out["user"]["verified"], json!(true));
        let u = s.admin_user(&env.id, id).await.expect_status(200);
        assert_eq!(u["id"], json!(id));
    }
    // No normalisation: NFC "é" is not NFD "e\u{301}".
    s.identify(
        &env.pk,
        &json!({"user_id": "\u{e9}", "signature": env.sign("e\u{301}")}),
    )
    .await
    .expect_error(401, "invalid_signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_tokens_with_and_without_kid_verify() {
    let s = Server::start().await;
    let env = s.env().await;
    let claims = IdentityClaims::new("tok-user").with_expiry(now() + 600);
    let with_kid = token(&env.secret, Some(&env.key_id), &claims);
    assert_eq!(jwt_parts(&with_kid).0["kid"], json!(env.key_id));
    assert_eq!(jwt_parts(&with_kid).0["alg"], json!("HS256"));
    let without_kid = token(&env.secret, None, &claims);
    assert_eq!(jwt_parts(&without_kid).0.get("kid"), None);
    for t in [&with_kid, &without_kid] {
        let out = s
            .identify_ok(&env.pk, &json!({"user_id": "tok-user", "token": t}))
            .await;
        assert_eq!(out["user"]["verified"], json!(true));
        assert_eq!(out["user"]["verified_by"], json!("token"));
        let (_, session) = jwt_parts(out["session_token"].as_str().unwrap());
        assert_eq!(session["verified"], json!(true));
    }
    let u = s.admin_user(&env.id, "tok-user").await.expect_status(200);
    assert_eq!(u["verified_by"], json!("token"));
    assert_eq!(u["key_id"], json!(env.key_id));
    // Tokens with iat/nbf in the past and no exp work as well.
    let mut c = IdentityClaims::new("tok-2");
    c.iat = Some(now() - 10);
    c.nbf = Some(now() - 10);
    s.identify_ok(
        &env.pk,
        &json!({"user_id": "tok-2", "token": token(&env.secret, None, &c)}),
    )
    .await;
    // A kid naming a second active secret selects it.
    let second = s
        .admin(
            reqwest::Method::POST,
            &format!("/admin/v1/environments/{}/secrets", env.id),
            Some(&json!({})),
        )
        .await
        .expect_status(201);
    let (sid, sval) = (
        second["id"].as_str().unwrap(),
        second["value"].as_str().unwrap(),
    );
    let t2 = token(sval, Some(sid), &IdentityClaims::new("tok-3"));
    let out = s
        .identify_ok(&env.pk, &json!({"user_id": "tok-3", "token": t2}))
        .await;
    assert_eq!(out["user"]["verified_by"], json!("token"));
    assert_eq!(
        s.admin_user(&env.id, "tok-3").await.expect_status(200)["key_id"],
        json!(sid)
    );
    // The right secret under the wrong kid does not verify.
    let mislabeled = token(sval, Some(&env.key_id), &IdentityClaims::new("tok-4"));
    s.identify(&env.pk, &json!({"user_id": "tok-4", "token": mislabeled}))
        .await
        .expect_error(401, "invalid_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_attributes_become_verified_attributes() {
    let s = Server::start().await;
    let env = s.env().await;
    let mut claims = IdentityClaims::new("t-attr").with_expiry(now() + 600);
    claims.attributes = json!({"plan": "pro", "seats": 5}).as_object().cloned();
    let t = token(&env.secret, None, &claims);
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "t-attr", "token": t, "attributes": {"nickname": "T"}}),
        )
        .await;
    assert_eq!(
        out["user"]["verified_attributes"],
        json!({"plan": "pro", "seats": 5})
    );
    assert_eq!(out["user"]["attributes"]["nickname"], json!("T"));
    assert_eq!(out["user"]["attributes"]["plan"], json!("pro"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_signature_covers_the_jcs_form_including_unicode_keys() {
    let s = Server::start().await;
    let env = s.env().await;
    // RFC 8785: keys sorted by UTF-16 code units (so U+1F600, a surrogate pair
    // starting 0xD83D, sorts before U+FB01), no whitespace, numbers in shortest form.
    let canonical = r#"{"a":"x","n":1.5,"é":1,"名前":"太郎","😀":true,"ﬁ":[1,"two",null]}"#;
    let asig = sign_hex(&env.secret, canonical);
    // Sent in another order, with whitespace, and numbers written differently.
    let body = format!(
        r#"{{ "user_id": "jcs-user", "signature": "{}",
             "attributes": {{ "ﬁ": [1, "two", null], "😀": true, "名前": "太郎",
                              "é": 1.0, "n": 15e-1, "a": "x" }},
             "attributes_signature": "{asig}" }}"#,
        env.sign("jcs-user")
    );
    let r = s
        .post_raw("/v1/identify", Some(&env.pk), "application/json", body)
        .await;
    let out = r.expect_status(200);
    let va = &out["user"]["verified_attributes"];
    assert_eq!(va["名前"], json!("太郎"));
    assert_eq!(va["😀"], json!(true));
    assert_eq!(va["ﬁ"], json!([1, "two", null]));
    assert_eq!(va.as_object().unwrap().len(), 6);
    // The same attributes with code-point order (what a naive sort gives) signed: refused.
    let naive = r#"{"a":"x","n":1.5,"é":1,"名前":"太郎","ﬁ":[1,"two",null],"😀":true}"#;
    let bad = sign_hex(&env.secret, naive);
    s.identify(
        &env.pk,
        &json!({"user_id": "jcs-2", "signature": env.sign("jcs-2"),
                "attributes": {"a": "x", "n": 1.5, "é": 1, "名前": "太郎", "😀": true, "ﬁ": [1, "two", null]},
                "attributes_signature": bad}),
    )
    .await
    .expect_error(401, "invalid_attributes_signature");
    // Base64 encodings are accepted for attributes signatures too.
    let raw = vouch_core::proof::hmac_sha256(env.secret.as_bytes(), br#"{"k":"v"}"#);
    for enc in [
        Base64::encode_string(&raw),
        Base64UrlUnpadded::encode_string(&raw),
        hex(&raw).to_uppercase(),
    ] {
        let out = s
            .identify_ok(
                &env.pk,
                &json!({"user_id": "jcs-3", "signature": env.sign("jcs-3"), "attributes": {"k": "v"}, "attributes_signature": enc}),
            )
            .await;
        assert_eq!(out["user"]["verified_attributes"], json!({"k": "v"}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_with_company_signature_verifies_the_company() {
    let s = Server::start().await;
    let env = s.env().await;
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "g-user", "signature": env.sign("g-user")}),
        )
        .await;
    let t = out["session_token"].as_str().unwrap();
    let g = s
        .group(
            t,
            &json!({"company_id": "acme", "attributes": {"name": "Acme"}, "signature": env.sign("acme")}),
        )
        .await
        .expect_status(200);
    assert_eq!(
        g,
        json!({"company": {"id": "acme", "verified": true, "attributes": {"name": "Acme"}}})
    );
    // An unsigned company is stored unverified.
    let g2 = s
        .group(t, &json!({"company_id": "globex"}))
        .await
        .expect_status(200);
    assert_eq!(g2["company"]["verified"], json!(false));
    // A wrong company signature is refused with the same code as user signatures.
    let msg = s
        .group(
            t,
            &json!({"company_id": "initech", "signature": env.sign("acme")}),
        )
        .await
        .expect_error(401, "invalid_signature");
    assert_eq!(msg, INVALID_SIGNATURE_MESSAGE);
    s.group(t, &json!({"company_id": "initech", "signature": "nope"}))
        .await
        .expect_error(400, "malformed_signature");
    // Once verified, a company needs its signature for every later group call.
    s.group(
        t,
        &json!({"company_id": "acme", "attributes": {"name": "Hacked"}}),
    )
    .await
    .expect_error(401, "signature_required");
    // The user's companies show in /v1/me and the admin API.
    let me = s.me(t).await.expect_status(200);
    let companies: Vec<(&str, bool)> = me["user"]["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["verified"].as_bool().unwrap()))
        .collect();
    assert_eq!(companies, [("acme", true), ("globex", false)]);
    let u = s.admin_user(&env.id, "g-user").await.expect_status(200);
    assert_eq!(u["companies"][0]["attributes"]["name"], json!("Acme"));
    assert_eq!(u["companies"][0]["key_id"], json!(env.key_id));
    // An anonymous visitor cannot join a company.
    let anon = s.anonymous(&env.pk).await.expect_status(200);
    s.group(
        anon["session_token"].as_str().unwrap(),
        &json!({"company_id": "acme", "signature": env.sign("acme")}),
    )
    .await
    .expect_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_is_accepted_and_visible_in_admin_events() {
    let s = Server::start().await;
    let env = s.env().await;
    let out = s
        .identify_ok(
            &env.pk,
            &json!({"user_id": "t-user", "signature": env.sign("t-user")}),
        )
        .await;
    let t = out["session_token"].as_str().unwrap();
    let r = s
        .track(
            t,
            &json!({"event": "checkout", "properties": {"total": 42.5, "items": ["a"]}}),
        )
        .await;
    let body = r.expect_status(202);
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("evt_"), "{id}");
    s.track(t, &json!({"event": "second"}))
        .await
        .expect_status(202);
    let anon = s.anonymous(&env.pk).await.expect_status(200);
    s.track(
        anon["session_token"].as_str().unwrap(),
        &json!({"event": "visit"}),
    )
    .await
    .expect_status(202);
    let events = s
        .admin_get(&format!("/admin/v1/environments/{}/events", env.id))
        .await;
    let data = events["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    // Newest first.
    assert_eq!(data[0]["event"], json!("visit"));
    assert_eq!(data[0]["user_id"], Value::Null);
    assert_eq!(data[0]["visitor_id"], anon["visitor_id"]);
    let checkout = data.iter().find(|e| e["id"] == json!(id)).unwrap();
    assert_eq!(checkout["event"], json!("checkout"));
    assert_eq!(checkout["user_id"], json!("t-user"));
    assert_eq!(
        checkout["properties"],
        json!({"total": 42.5, "items": ["a"]})
    );
    assert!(checkout["created_at"].as_str().unwrap().ends_with('Z'));
    // Paging through events.
    let page1 = s
        .admin_get(&format!("/admin/v1/environments/{}/events?limit=2", env.id))
        .await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = s
        .admin_get(&format!(
            "/admin/v1/environments/{}/events?limit=2&cursor={cursor}",
            env.id
        ))
        .await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["next_cursor"], Value::Null);
    assert_eq!(page2["data"][0]["event"], json!("checkout"));
}
