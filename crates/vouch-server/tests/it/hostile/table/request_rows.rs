//! Rows of the table: wrong content types, proofs that must not pass (alg none,
//! unsigned, forged), unknown routes and methods.

use reqwest::Method;
use serde_json::json;

use super::{Auth, Case, Rows, bare, case, post};

pub(super) fn rows(r: &Rows<'_>) -> Vec<Case> {
    let &Rows {
        pk,
        sess,
        adm,
        none,
        env_path,
        none_token,
        none_token_sig,
        none_case_token,
        hs256_unsigned,
        ..
    } = r;
    vec![
        // Wrong content types.
        Case {
            content_type: "text/plain",
            ..post(
                "text/plain",
                "/v1/identify",
                pk,
                r#"{"user_id":"u"}"#,
                415,
                "unsupported_media_type",
            )
        },
        Case {
            content_type: "",
            ..post(
                "no content type",
                "/v1/track",
                sess,
                r#"{"event":"e"}"#,
                415,
                "unsupported_media_type",
            )
        },
        Case {
            content_type: "application/jsonx",
            ..case(
                "jsonx PATCH",
                Method::PATCH,
                env_path,
                adm,
                "{}",
                415,
                "unsupported_media_type",
            )
        },
        // Proofs that must not pass: alg none, unsigned, forged.
        post(
            "alg none, empty signature",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": none_token}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "alg none with signature",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": none_token_sig}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "alg None with kid",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": none_case_token}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "HS256 with a junk signature",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": hs256_unsigned}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "token of one part",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": "abc"}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "token of four parts",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "token": "a.b.c.d"}).to_string(),
            401,
            "invalid_token",
        ),
        post(
            "signature of the wrong length",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "signature": "abc"}).to_string(),
            400,
            "malformed_signature",
        ),
        post(
            "signature with a NUL",
            "/v1/identify",
            pk,
            json!({"user_id": "victim", "signature": format!("{}\u{0}", "a".repeat(63))})
                .to_string(),
            400,
            "malformed_signature",
        ),
        bare(
            "alg none session",
            Method::GET,
            "/v1/me",
            Auth::None,
            401,
            "invalid_session",
        ),
        // Unknown routes and methods.
        bare(
            "unknown route",
            Method::GET,
            "/nope",
            none,
            404,
            "not_found",
        ),
        bare(
            "unknown widget route",
            Method::POST,
            "/v1/identify/extra",
            pk,
            404,
            "not_found",
        ),
        bare(
            "encoded NUL in path",
            Method::GET,
            "/v1/%00",
            none,
            404,
            "not_found",
        ),
        bare(
            "8 KiB path",
            Method::GET,
            &format!("/{}", "a".repeat(8 * 1024)),
            none,
            404,
            "not_found",
        ),
        bare(
            "GET identify",
            Method::GET,
            "/v1/identify",
            pk,
            405,
            "invalid_request",
        ),
        bare(
            "DELETE track",
            Method::DELETE,
            "/v1/track",
            sess,
            405,
            "invalid_request",
        ),
        bare(
            "PUT environments",
            Method::PUT,
            "/admin/v1/environments",
            adm,
            405,
            "invalid_request",
        ),
        bare(
            "unknown method",
            Method::from_bytes(b"BREW").unwrap(),
            "/v1/identify",
            pk,
            405,
            "invalid_request",
        ),
        bare(
            "unknown environment",
            Method::GET,
            "/admin/v1/environments/env_nope",
            adm,
            404,
            "not_found",
        ),
        bare(
            "user id with NUL",
            Method::GET,
            &format!("{env_path}/users/a%00b"),
            adm,
            404,
            "not_found",
        ),
        bare(
            "NUL in a query",
            Method::GET,
            &format!("{env_path}/events?user_id=a%00"),
            adm,
            400,
            "invalid_request",
        ),
        bare(
            "no admin token",
            Method::GET,
            "/admin/v1/environments",
            none,
            401,
            "invalid_admin_token",
        ),
        post(
            "identify without a key",
            "/v1/identify",
            none,
            r#"{"user_id":"u"}"#,
            401,
            "invalid_publishable_key",
        ),
    ]
}
