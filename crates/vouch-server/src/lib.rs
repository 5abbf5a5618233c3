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
pub mod datadir;
pub mod error;
pub mod events;
pub mod exposure;
pub mod extract;
pub mod health;
pub mod http;
pub mod identity;
pub mod listener;
pub mod metrics;
pub mod model;
pub mod openapi;
pub mod proxy;
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
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(widget::router())
        .merge(admin::router())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::jwks))
        .routes(routes!(health::openapi_json))
        .routes(routes!(health::get_metrics))
        .split_for_parts();
    if let Ok(mut doc) = serde_json::to_value(&openapi) {
        crate::openapi::complete(&mut doc);
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
    let open_files = raise_open_files_limit();
    let limits = listener::Limits::from_config(&config);
    let bootstrap::Started {
        state,
        banner,
        lock,
    } = bootstrap::start(config).await?;
    println!("{banner}");
    let store = state.store.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let dispatcher = tokio::spawn(webhooks::Dispatcher::new(state.clone())?.run(stop_rx));
    let router = app(state);
    tracing::info!(
        addr = %local,
        open_files_limit = open_files.unwrap_or(0),
        max_connections_per_ip = limits.max_per_address,
        trusted_proxies = %limits.trusted,
        "vouch listening"
    );
    listener::serve(listener, router, limits, shutdown).await;
    tracing::info!("shutting down: finishing webhook attempts and flushing the store");
    let _ = stop_tx.send(true);
    let _ = dispatcher.await;
    store.close().await;
    // Held until the store is closed, so a successor never opens it early.
    drop(lock);
    Ok(())
}

/// Raises the soft limit on open files to the hard limit, so that a thousand
/// sockets do not hit EMFILE; returns the limit now in force (None where it
/// cannot be read).
pub fn raise_open_files_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
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
