//! Vouch server: the widget API, the admin API, session tokens and storage.
//!
//! [`run`] binds the configured address; [`run_with_listener`] takes a bound
//! listener so tests start the real server on port 0.

pub mod admin;
pub mod api;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod error;
pub mod events;
pub mod exposure;
pub mod extract;
pub mod health;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod model;
pub mod ratelimit;
pub mod session;
pub mod state;
pub mod store;
pub mod ui;
pub mod webhooks;
pub mod widget;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use tokio::net::TcpListener;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use config::{Config, LogFormat};
pub use state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vouch",
        description = "Identity verification for embeddable web widgets: widget API, admin API, session keys."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "widget", description = "Called by the browser SDK"),
        (name = "admin", description = "Operators; bearer admin token"),
        (name = "sessions", description = "Offline verification of session tokens"),
        (name = "operations", description = "Health and discovery")
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["publishable_key", "session", "admin_token"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    let widget = widget::router().layer(middleware::from_fn_with_state(
        state.clone(),
        exposure::scan_layer,
    ));
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(widget)
        .merge(admin::router())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::jwks))
        .routes(routes!(health::openapi_json))
        .routes(routes!(health::get_metrics))
        .split_for_parts();
    if let Ok(doc) = serde_json::to_value(&openapi) {
        let _ = health::OPENAPI.set(doc);
    }
    router
        .route_layer(middleware::from_fn(metrics::track_http))
        .merge(ui::router())
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        // Around the whole app (not the widget routes only), so that
        // preflights (OPTIONS, which no route handles) reach it.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::widget_cors,
        ))
        .layer(middleware::from_fn(http::reject_nul))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(middleware::from_fn(http::json_errors))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(http::MakeId))
        .with_state(state)
}

/// Binds `config.addr` and serves until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.addr))?;
    run_with_listener(listener, config, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` completes.
pub async fn run_with_listener(
    listener: TcpListener,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let local = listener.local_addr()?;
    config.addr = local.to_string();
    let (state, banner) = bootstrap::start(config).await?;
    println!("{banner}");
    let store = state.store.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(webhooks::Dispatcher::new(state.clone())?.run(stop_rx));
    let router = app(state);
    tracing::info!(addr = %local, "vouch listening");
    serve_connections(listener, router, shutdown).await;
    tracing::info!("shutting down: finishing webhook attempts and flushing the store");
    let _ = stop_tx.send(true);
    let _ = dispatcher.await;
    store.close().await;
    Ok(())
}

/// Time a client gets to send a request's headers; a half-sent request holds nothing longer.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest pause between two pieces of a request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections served at once; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 1024;

/// The accept loop. `axum::serve` sets no header read timeout (hyper needs a
/// timer for one), so connections are served here with hyper-util directly.
async fn serve_connections(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;

    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        BODY_READ_TIMEOUT,
    ));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = router.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        );
        let conn = builder
            .serve_connection_with_upgrades(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(svc),
            )
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s of graceful shutdown");
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Installs the log subscriber (text or JSON lines on stderr).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("VOUCH_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
