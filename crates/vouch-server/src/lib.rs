//! Vouch server: the widget API, the admin API, session tokens and storage.
//!
//! [`run`] binds the configured addresses; [`run_with_listener`] and
//! [`run_with_listeners`] take bound listeners so tests start the real server
//! on port 0.

pub mod admin;
pub mod answers;
pub mod api;
pub mod bootstrap;
pub mod clock;
pub mod codes;
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
pub mod rekey;
pub mod session;
pub mod state;
pub mod store;
pub mod ui;
pub mod webhooks;
pub mod widget;

use std::future::Future;
use std::sync::Arc;
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

/// Which routes one listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Everything, on one address (no `--admin-addr`).
    All,
    /// The main address beside a private admin one: the widget API, the JWKS,
    /// `/sdk/*`, `/demo*` (when on), `/healthz`, `/readyz` and an OpenAPI
    /// document of only these.
    Public,
    /// The private admin address: the admin API and UI, `/metrics`,
    /// `/healthz`, `/readyz` and the OpenAPI document of the whole API.
    Admin,
}

/// The whole HTTP application on one address.
pub fn app(state: AppState) -> Router {
    app_for(state, Surface::All)
}

/// The OpenAPI document of `surface`'s JSON routes, and those routes.
fn api_routes(surface: Surface) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    if surface != Surface::Admin {
        api = api.merge(widget::router()).routes(routes!(health::jwks));
    }
    if surface != Surface::Public {
        api = api
            .merge(admin::router())
            .routes(routes!(health::get_metrics));
    }
    api.routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::openapi_json))
        .split_for_parts()
}

/// The routes of one listener, with every layer (errors, limits, request ids).
pub fn app_for(state: AppState, surface: Surface) -> Router {
    let (router, own_doc) = api_routes(surface);
    // The admin address documents the whole API (operators read it there);
    // the public one only what it serves, so it advertises no admin route.
    let doc = match surface {
        Surface::Admin => {
            let mut whole = api_routes(Surface::All).1;
            whole.info.description = Some(
                "Identity verification for embeddable web widgets. This document is served on \
                 the private admin address and describes the whole API: the admin API and \
                 /metrics are served here, the widget API and the session keys on the main \
                 address."
                    .into(),
            );
            whole
        }
        Surface::Public => {
            let mut public = own_doc;
            public.info.description = Some(
                "Identity verification for embeddable web widgets: the widget API and the \
                 session keys (the admin API is served on a separate address)."
                    .into(),
            );
            public
        }
        Surface::All => own_doc,
    };
    let ui = match surface {
        Surface::All => ui::router(),
        Surface::Public => ui::public_router(),
        Surface::Admin => ui::admin_router(),
    };
    router
        .route_layer(middleware::from_fn(metrics::track_http))
        .merge(ui)
        .fallback(http::not_found)
        .method_not_allowed_fallback(http::method_not_allowed)
        // Around the whole app (not the widget routes only), so that
        // preflights (OPTIONS, which no route handles) reach it.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::widget_cors,
        ))
        // Inside the timeout and error layers: every answer of this listener,
        // the admin pages included, goes through one budget for large ones.
        .layer(middleware::from_fn_with_state(
            (state.clone(), Arc::new(answers::AnswerBudget::default())),
            answers::bound_large_answers,
        ))
        .layer(middleware::from_fn(http::reject_nul))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(middleware::from_fn(http::json_errors))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .layer(axum::Extension(health::OpenApiDoc::new(&doc)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
            })
            .on_failure(http::log_failure),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(http::MakeId))
        .with_state(state)
}

/// Binds `config.addr` (and `config.admin_addr` when set) and serves until
/// SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shutdown = shutdown_signal();
    config.validate()?;
    let listener = TcpListener::bind(&config.addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.addr))?;
    let admin = bind_admin(&config).await?;
    run_with_listeners(listener, admin, config, shutdown).await
}

async fn bind_admin(config: &Config) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = &config.admin_addr else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .map_err(|e| anyhow::anyhow!("cannot listen on the admin address {addr}: {e}"))
}

/// Serves on an already bound listener until `shutdown` completes; binds
/// `config.admin_addr` for the admin routes when it is set.
pub async fn run_with_listener(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let admin = bind_admin(&config).await?;
    run_with_listeners(listener, admin, config, shutdown).await
}

/// Serves on already bound listeners until `shutdown` completes: with an
/// `admin` listener, the admin API, the admin UI and `/metrics` are served
/// only there and the main listener answers 404 for them; without one,
/// everything is served on `main`.
pub async fn run_with_listeners(
    main: TcpListener,
    admin: Option<TcpListener>,
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.validate()?;
    let local = main.local_addr()?;
    config.addr = local.to_string();
    let admin_local = match &admin {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    config.admin_addr = admin_local.map(|a| a.to_string());
    if admin_local == Some(local) {
        anyhow::bail!("VOUCH_ADMIN_ADDR must be another address than VOUCH_ADDR ({local})");
    }
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
    tracing::info!(
        addr = %local,
        admin_addr = %admin_local.map_or_else(|| "-".to_string(), |a| a.to_string()),
        open_files_limit = open_files.unwrap_or(0),
        max_connections_per_ip = limits.max_per_address,
        trusted_proxies = %limits.trusted,
        "vouch listening"
    );
    match admin {
        None => listener::serve(main, app(state), limits, shutdown).await,
        Some(admin) => {
            // One shutdown signal for both listeners.
            let (down_tx, down_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown.await;
                let _ = down_tx.send(true);
            });
            let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
                let _ = rx.wait_for(|down| *down).await;
            };
            tokio::join!(
                listener::serve(
                    main,
                    app_for(state.clone(), Surface::Public),
                    limits.clone(),
                    stopped(down_rx.clone()),
                ),
                listener::serve(
                    admin,
                    app_for(state, Surface::Admin),
                    limits,
                    stopped(down_rx),
                ),
            );
        }
    }
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

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM during start-up
/// (the store opening, the first-start setup) still stops the server
/// gracefully instead of killing it.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = int.recv() => {},
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
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
