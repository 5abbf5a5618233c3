//! Prometheus metrics, served as text at `/metrics`.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerificationLabels {
    /// verified | unverified | rejected
    pub result: String,
    /// signature | token | none
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

type Hist = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms … ~1.6 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// Every metric of the process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Hist,
    pub verifications: Family<VerificationLabels, Counter>,
    pub db_commit_seconds: Histogram,
    pub db_batch_size: Histogram,
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    pub cache_lookups: Family<OutcomeLabels, Counter>,
    pub sessions_issued: Counter,
    pub in_flight: Gauge,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("vouch");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            http_requests.clone(),
        );
        let http_duration: Hist = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            http_duration.clone(),
        );
        let verifications = Family::<VerificationLabels, Counter>::default();
        registry.register(
            "verifications",
            "Identify outcomes by result and proof method",
            verifications.clone(),
        );
        let db_commit_seconds = latency_histogram();
        registry.register(
            "db_commit_seconds",
            "Duration of one group-commit transaction",
            db_commit_seconds.clone(),
        );
        let db_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "db_batch_size",
            "Writes committed together in one transaction",
            db_batch_size.clone(),
        );
        let webhook_deliveries = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome",
            webhook_deliveries.clone(),
        );
        let cache_lookups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "key_cache_lookups",
            "Publishable-key lookups in the in-memory cache (hit or miss)",
            cache_lookups.clone(),
        );
        let sessions_issued = Counter::default();
        registry.register(
            "sessions_issued",
            "Session tokens issued",
            sessions_issued.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            verifications,
            db_commit_seconds,
            db_batch_size,
            webhook_deliveries,
            cache_lookups,
            sessions_issued,
            in_flight,
        }
    }

    pub fn verification(&self, result: &str, method: &str) {
        self.verifications
            .get_or_create(&VerificationLabels {
                result: result.into(),
                method: method.into(),
            })
            .inc();
    }

    pub fn outcome(family: &Family<OutcomeLabels, Counter>, outcome: &str) {
        family
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// `GET /metrics`.
pub async fn metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        METRICS.render(),
    )
        .into_response()
}

/// Counts and times every request by its route template (never the raw path,
/// which may carry a user id).
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let m = &*METRICS;
    m.in_flight.inc();
    let started = Instant::now();
    let resp = next.run(req).await;
    m.in_flight.dec();
    m.http_duration
        .get_or_create(&RouteLabels {
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    m.http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
