//! The browser SDK, always served: `/sdk/vouch.js` (the ES module),
//! `/sdk/vouch.global.js` (the classic script that defines `window.Vouch`) and
//! `/sdk/vouch.d.ts`.
//!
//! The files live in this crate (`assets/sdk/`), so that `cargo package` carries them;
//! `vouch.js` is the one hand-written source, `vouch.global.js` is generated from it by
//! `sdk/js/build.mjs`, which also assembles the npm package from these same files.

use std::sync::OnceLock;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

const SDK_JS: &str = include_str!("../../assets/sdk/vouch.js");
const SDK_GLOBAL_JS: &str = include_str!("../../assets/sdk/vouch.global.js");
const SDK_DTS: &str = include_str!("../../assets/sdk/vouch.d.ts");

const JS: &str = "text/javascript; charset=utf-8";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sdk/vouch.js", get(sdk_js))
        .route("/sdk/vouch.global.js", get(sdk_global_js))
        .route("/sdk/vouch.d.ts", get(sdk_dts))
}

/// A strong ETag from the file's SHA-256, computed once.
fn etag(cell: &'static OnceLock<String>, body: &str) -> &'static str {
    cell.get_or_init(|| {
        let hash = vouch_core::keys::sha256(body.as_bytes());
        let hex: String = hash[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    })
}

/// Any site may load the SDK (CORS `*`); browsers cache it for five minutes,
/// then revalidate with the ETag.
fn sdk_file(
    headers: &HeaderMap,
    body: &'static str,
    content_type: &'static str,
    tag: &'static str,
) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let common = [
        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        (
            header::CACHE_CONTROL,
            "public, max-age=300, stale-while-revalidate=86400",
        ),
        (header::ETAG, tag),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "cross-origin",
        ),
    ];
    if not_modified {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (common, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn sdk_js(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    sdk_file(&headers, SDK_JS, JS, etag(&TAG, SDK_JS))
}

async fn sdk_global_js(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    sdk_file(&headers, SDK_GLOBAL_JS, JS, etag(&TAG, SDK_GLOBAL_JS))
}

async fn sdk_dts(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    sdk_file(
        &headers,
        SDK_DTS,
        "application/typescript; charset=utf-8",
        etag(&TAG, SDK_DTS),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The classic script names the SHA-256 of the module it was generated from; an edit
    /// of `vouch.js` without `node sdk/js/build.mjs` fails here (the browser suite also
    /// compares the whole file with a fresh build).
    #[test]
    fn the_classic_script_was_generated_from_this_module() {
        let hash = vouch_core::keys::sha256(SDK_JS.as_bytes());
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            SDK_GLOBAL_JS.contains(&format!("from vouch.js (sha256 {hex})")),
            "assets/sdk/vouch.global.js is stale: run `node sdk/js/build.mjs` and commit it"
        );
        assert!(SDK_GLOBAL_JS.contains("globalThis.Vouch = Vouch;"));
        assert!(!SDK_GLOBAL_JS.contains("import.meta"));
    }
}
