//! Rows of the table: huge strings and bodies; invalid UTF-8, lone surrogates, NUL.

use reqwest::Method;

use super::super::identify_of_len;
use super::{Case, Rows, case, post};

pub(super) fn rows(r: &Rows<'_>) -> Vec<Case> {
    let &Rows {
        pk,
        sess,
        adm,
        env_path,
        over,
        ..
    } = r;
    vec![
        // Huge strings.
        post(
            "user_id of 256 bytes",
            "/v1/identify",
            pk,
            format!(r#"{{"user_id":"{}"}}"#, "u".repeat(256)),
            400,
            "invalid_request",
        ),
        post(
            "user_id of 60 KiB",
            "/v1/identify",
            pk,
            format!(r#"{{"user_id":"{}"}}"#, "u".repeat(60 * 1024)),
            400,
            "invalid_request",
        ),
        post(
            "company_id of 256 bytes",
            "/v1/group",
            sess,
            format!(r#"{{"company_id":"{}"}}"#, "c".repeat(256)),
            400,
            "invalid_request",
        ),
        post(
            "event of 256 bytes",
            "/v1/track",
            sess,
            format!(r#"{{"event":"{}"}}"#, "e".repeat(256)),
            400,
            "invalid_request",
        ),
        post(
            "identify 1 byte over 64 KiB",
            "/v1/identify",
            pk,
            identify_of_len("big", over),
            413,
            "payload_too_large",
        ),
        post(
            "identify of 1 MiB",
            "/v1/identify",
            pk,
            identify_of_len("big", 1 << 20),
            413,
            "payload_too_large",
        ),
        post(
            "track over 64 KiB",
            "/v1/track",
            sess,
            format!(
                r#"{{"event":"e","properties":{{"p":"{}"}}}}"#,
                "p".repeat(over)
            ),
            413,
            "payload_too_large",
        ),
        case(
            "PATCH over 64 KiB",
            Method::PATCH,
            env_path,
            adm,
            format!(r#"{{"name":"{}"}}"#, "n".repeat(over)),
            413,
            "payload_too_large",
        ),
        case(
            "name of 60 KiB",
            Method::PATCH,
            env_path,
            adm,
            format!(r#"{{"name":"{}"}}"#, "n".repeat(60 * 1024)),
            400,
            "invalid_request",
        ),
        // Invalid UTF-8, lone surrogates, NUL.
        post(
            "invalid UTF-8 in user_id",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"\xff\xfe\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "overlong UTF-8",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"\xc0\xaf\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "invalid UTF-8 in attributes",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"u\",\"attributes\":{\"a\":\"\xed\xa0\x80\"}}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "invalid UTF-8 in event",
            "/v1/track",
            sess,
            b"{\"event\":\"\x80\"}".to_vec(),
            400,
            "invalid_request",
        ),
        case(
            "invalid UTF-8 in PATCH",
            Method::PATCH,
            env_path,
            adm,
            b"{\"name\":\"\xff\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "lone high surrogate",
            "/v1/identify",
            pk,
            r#"{"user_id":"\ud800"}"#,
            400,
            "invalid_request",
        ),
        post(
            "lone low surrogate",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{"a":"\udc00"}}"#,
            400,
            "invalid_request",
        ),
        post(
            "surrogate in key",
            "/v1/identify",
            pk,
            r#"{"user_id":"u","attributes":{"\ud800":1}}"#,
            400,
            "invalid_request",
        ),
        post(
            "surrogate in signed attributes",
            "/v1/identify",
            pk,
            format!(
                r#"{{"user_id":"u","attributes":{{"a":"\ud800x"}},"attributes_signature":"{}"}}"#,
                "0".repeat(64)
            ),
            400,
            "invalid_request",
        ),
        post(
            "surrogate in event",
            "/v1/track",
            sess,
            r#"{"event":"\udfff"}"#,
            400,
            "invalid_request",
        ),
        post(
            "NUL in user_id",
            "/v1/identify",
            pk,
            r#"{"user_id":"a\u0000b"}"#,
            400,
            "invalid_request",
        ),
        post(
            "raw NUL byte",
            "/v1/identify",
            pk,
            b"{\"user_id\":\"a\x00b\"}".to_vec(),
            400,
            "invalid_request",
        ),
        post(
            "NUL in company_id",
            "/v1/group",
            sess,
            r#"{"company_id":"\u0000"}"#,
            400,
            "invalid_request",
        ),
        post(
            "NUL in event",
            "/v1/track",
            sess,
            r#"{"event":"e\u0000"}"#,
            400,
            "invalid_request",
        ),
    ]
}
