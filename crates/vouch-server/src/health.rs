//! Health, readiness, JWKS and the OpenAPI document.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use crate::api::ErrorOut;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The OpenAPI document one listener serves, serialised once at start.
#[derive(Clone, Debug)]
pub struct OpenApiDoc(Bytes);

impl OpenApiDoc {
    /// The document as served: utoipa's, completed with every operation's
    /// error answers (`crate::openapi::complete`).
    pub fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        let mut value = serde_json::to_value(doc).unwrap_or_default();
        crate::openapi::complete(&mut value);
        Self(
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .unwrap_or_default(),
        )
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthOut {
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = HealthOut)))]
pub async fn healthz() -> Json<HealthOut> {
    Json(HealthOut { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = HealthOut), (status = 503, body = ErrorOut)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<HealthOut>> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::unavailable()
    })?;
    Ok(Json(HealthOut { status: "ready" }))
}

/// Public keys of the session tokens (JWK Set).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "sessions",
    responses((status = 200, description = "JWK Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.sessions().jwks().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
pub async fn get_metrics() -> Response {
    crate::metrics::metrics().await
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi_json(Extension(doc): Extension<OpenApiDoc>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0,
    )
        .into_response()
}
