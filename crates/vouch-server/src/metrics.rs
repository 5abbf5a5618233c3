//! Prometheus metrics, served as text at `/metrics`.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};
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
pub struct ReasonLabels {
    pub reason: String,
}

/// Why the server closed a connection (see `listener`).
pub const CONNECTION_CLOSE_REASONS: [&str; 4] =
    ["per_address_limit", "head_timeout", "idle", "write_stalled"];

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
    pub db_round_trips: Counter,
    pub webhook_deliveries: Family<OutcomeLabels, Counter>,
    pub cache_lookups: Family<OutcomeLabels, Counter>,
    pub sessions_issued: Counter,
    pub session_cache_lookups: Family<OutcomeLabels, Counter>,
    /// Sessions issued by this process and not yet expired, worked out when
    /// `/metrics` is read from `session_expiries`.
    open_sessions: Gauge,
    /// Issued sessions by the minute they expire in.
    session_expiries: Mutex<BTreeMap<i64, i64>>,
    pub in_flight: Gauge,
    pub connections_open: Gauge,
    pub connections_closed: Family<ReasonLabels, Counter>,
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
        let db_round_trips = Counter::default();
        registry.register(
            "db_round_trips",
            "Statements sent to PostgreSQL, each one round trip (BEGIN and COMMIT included)",
            db_round_trips.clone(),
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
        let session_cache_lookups = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "session_cache_lookups",
            "Session-token verifications answered from the verified-token cache (hit) or by an Ed25519 verification (miss)",
            session_cache_lookups.clone(),
        );
        let open_sessions = Gauge::default();
        registry.register(
            "open_sessions",
            "Session tokens issued by this process that have not expired (to the minute)",
            open_sessions.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        let connections_open = Gauge::default();
        registry.register(
            "http_connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "http_connections_closed",
            "Connections the server closed on a client that stalled it or had too many open",
            connections_closed.clone(),
        );
        for reason in CONNECTION_CLOSE_REASONS {
            let _ = connections_closed.get_or_create(&ReasonLabels {
                reason: reason.into(),
            });
        }
        // Known label values start at 0, so the series exist (and rate()
        // works) before the first event of their kind.
        for result in ["verified", "unverified", "rejected"] {
            for method in ["signature", "token", "none"] {
                let _ = verifications.get_or_create(&VerificationLabels {
                    result: result.into(),
                    method: method.into(),
                });
            }
        }
        for (family, outcomes) in [
            (&webhook_deliveries, ["delivered", "failed"]),
            (&cache_lookups, ["hit", "miss"]),
            (&session_cache_lookups, ["hit", "miss"]),
        ] {
            for outcome in outcomes {
                let _ = family.get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                });
            }
        }
        Self {
            registry,
            http_requests,
            http_duration,
            verifications,
            db_commit_seconds,
            db_batch_size,
            db_round_trips,
            webhook_deliveries,
            cache_lookups,
            sessions_issued,
            session_cache_lookups,
            open_sessions,
            session_expiries: Mutex::new(BTreeMap::new()),
            in_flight,
            connections_open,
            connections_closed,
        }
    }

    /// Counts a connection the server closed, by why.
    pub fn connection_closed(&self, reason: &str) {
        self.connections_closed
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
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

    /// Counts an issued session that expires at `exp` (seconds).
    pub fn session_issued(&self, exp: i64) {
        self.sessions_issued.inc();
        if let Ok(mut m) = self.session_expiries.lock() {
            *m.entry(exp.div_euclid(60)).or_default() += 1;
        }
    }

    /// Sessions issued here whose expiry minute has not passed at `now`.
    pub fn open_sessions_at(&self, now: i64) -> i64 {
        let Ok(mut m) = self.session_expiries.lock() else {
            return 0;
        };
        let current = now.div_euclid(60);
        *m = m.split_off(&current);
        m.values().sum()
    }

    pub fn render(&self) -> String {
        self.open_sessions
            .set(self.open_sessions_at(crate::clock::now()));
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
