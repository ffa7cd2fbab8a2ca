//! The Ballast service: `ballast serve`.
//!
//! An HTTP + WebSocket API over the margin engine, with durable storage and live recompute:
//!
//! - [`store`]: SQLite (embedded, the default) or PostgreSQL through `sqlx`, migrations
//!   embedded; every acknowledged write is committed durably first, with its idempotency
//!   receipt in the same transaction.
//! - [`model`]: the stored state parsed into domain values; [`state`]: the write path.
//! - [`compute`]: per methodology, the risk arrays of the current market built once and every
//!   account re-aggregated by the bulk refresh (a write to one account re-margins it alone);
//!   published as one immutable value.
//! - [`writes`], [`reads`], [`live`]: the endpoints; [`metrics`]: Prometheus; the OpenAPI
//!   document at `/openapi.json`; the dashboard at `/` (static files embedded in the binary).
//!
//! **Architecture Invariants:** an acknowledged write is durable (the 2xx follows the commit);
//! a replayed idempotency key returns the first answer and changes nothing; a refused request
//! (4xx) changes nothing.

pub mod access;
pub mod audit;
pub mod auth;
pub mod client;
pub mod compute;
pub mod dto;
pub mod error;
pub mod keys;
pub mod live;
pub mod metrics;
pub mod model;
pub mod reads;
mod seed;
pub mod state;
pub mod store;
pub mod trading;
pub mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use utoipa::OpenApi;

pub use error::{Error, ErrorKind};
pub use state::Service;

/// How to run the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    pub database: String,
    /// Whether to add the sample accounts to an empty database.
    pub sample_accounts: bool,
    /// The first admin key of a database without keys (`bk_<id>_<secret>`); a new one is made
    /// and returned in [`Running::admin_key`] when absent.
    pub admin_key: Option<String>,
    /// How long a client may take to send a request's headers, and then its body: a slow or
    /// half-sent request is dropped, not held ([`HEADER_READ_TIMEOUT_DEFAULT`]).
    pub read_timeout: Duration,
    /// Requests per second each key may make on average (bursts of twice as many); more are
    /// answered 429 ([`REQUESTS_PER_SEC_PER_KEY_DEFAULT`]).
    pub requests_per_sec_per_key: u32,
}

/// The default of [`Config::requests_per_sec_per_key`].
pub const REQUESTS_PER_SEC_PER_KEY_DEFAULT: u32 = 1_000;

/// The default of [`Config::read_timeout`].
pub const HEADER_READ_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Connections served at once; more are closed at once, so a flood cannot exhaust memory.
pub const CONNECTIONS_MAX: usize = 10_000;

/// A started service.
pub struct Running {
    /// The address it listens on.
    pub address: SocketAddr,
    /// The service.
    pub service: Arc<Service>,
    /// The server task (runs until the process ends or the task is aborted).
    pub server: JoinHandle<()>,
    /// The recompute task.
    pub recompute: JoinHandle<()>,
    /// The admin key made on this start, for the operator to read once (`None` when the
    /// database had keys, or the key was given in [`Config::admin_key`]).
    pub admin_key: Option<String>,
}

/// Opens the database, loads the state, seeds an empty database (bundled methodology, sample
/// market, sample accounts) and starts serving.
///
/// # Errors
/// `Storage` when the database cannot be opened or read; `Invalid` naming `listen` when the
/// address cannot be bound.
pub async fn start(config: &Config) -> Result<Running, Error> {
    let _ = metrics::handle();
    let store = store::Store::open(&config.database).await?;
    let service = Service::load(store).await?;
    seed::seed(&service, config.sample_accounts).await?;
    let created = keys::first_admin_key(&service, config.admin_key.as_deref()).await?;
    let admin_key = created.filter(|_| config.admin_key.is_none());
    let recompute = tokio::spawn(recompute_loop(Arc::clone(&service)));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::invalid("listen", e.to_string()))?;
    let address = listener.local_addr().map_err(|e| Error::invalid("listen", e.to_string()))?;
    let limiter = Arc::new(access::RateLimiter::new(config.requests_per_sec_per_key));
    let app = router(Arc::clone(&service), limiter)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(config.read_timeout));
    let server = tokio::spawn(serve_connections(listener, app, config.read_timeout));
    Ok(Running { address, service, server, recompute, admin_key })
}

/// Serves `app` on `listener`, one task per connection and at most [`CONNECTIONS_MAX`] at once:
/// HTTP/1.1 with WebSocket upgrades, and a client that has not sent its headers within
/// `header_timeout` is disconnected (300 half-sent requests must not hold 300 connections).
async fn serve_connections(listener: TcpListener, app: Router, header_timeout: Duration) {
    let connections = Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait instead of spinning.
                eprintln!("error: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else { continue };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
            let io = hyper_util::rt::TokioIo::new(stream);
            // A connection's own failure (a reset, a timeout) concerns that client alone.
            let _ = builder.serve_connection(io, service).with_upgrades().await;
            drop(permit);
        });
    }
}

/// Recomputes on every market push; pushes that arrive during a recompute are coalesced into
/// the next one (the newest market wins), and counted.
async fn recompute_loop(service: Arc<Service>) {
    let mut pushes = service.market_pushes();
    let mut last_seq = None;
    while pushes.changed().await.is_ok() {
        let Some((seq, received)) = *pushes.borrow_and_update() else { continue };
        if let Some(last) = last_seq
            && seq > last + 1
        {
            ::metrics::counter!("ballast_markets_coalesced_total")
                .increment((seq - last - 1) as u64);
        }
        last_seq = Some(seq);
        if let Err(e) = service.recompute_market(received).await {
            eprintln!("error: recompute: {e}");
        }
    }
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ballast service",
        description = "Portfolio margin as a service: accounts, \
        positions, balances, market snapshots and methodologies; margin, what-if and risk \
        arrays; live updates on /ws."
    ),
    paths(
        writes::create_account,
        writes::set_position,
        writes::set_balance,
        writes::delete_account,
        writes::set_methodology,
        writes::push_market,
        writes::push_deribit_market,
        writes::add_methodology,
        reads::get_account,
        reads::list_accounts,
        reads::get_margin,
        reads::what_if,
        reads::pre_trade,
        trading::record_trades,
        trading::settle_all,
        keys::create_key,
        keys::list_keys,
        keys::revoke_key,
        reads::risk_array,
        reads::list_methodologies,
        reads::get_methodology,
        reads::latest_market
    )
)]
pub struct ApiDoc;

/// The routes.
pub fn router(service: Arc<Service>, limiter: Arc<access::RateLimiter>) -> Router {
    Router::new()
        .route("/", get(|| async { asset("text/html", include_str!("../dashboard/index.html")) }))
        .route(
            "/dashboard.js",
            get(|| async { asset("text/javascript", include_str!("../dashboard/dashboard.js")) }),
        )
        .route(
            "/dashboard.css",
            get(|| async { asset("text/css", include_str!("../dashboard/dashboard.css")) }),
        )
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(|| async { metrics::render() }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/accounts", get(reads::list_accounts).post(writes::create_account))
        .route("/api/accounts/{id}", get(reads::get_account).delete(writes::delete_account))
        .route("/api/accounts/{id}/methodology", put(writes::set_methodology))
        .route("/api/accounts/{id}/positions/{instrument}", put(writes::set_position))
        .route("/api/accounts/{id}/balances/{currency}", put(writes::set_balance))
        .route("/api/accounts/{id}/margin", get(reads::get_margin))
        .route("/api/accounts/{id}/what-if", post(reads::what_if))
        .route("/api/accounts/{id}/pre-trade", post(reads::pre_trade))
        .route("/api/accounts/{id}/trades", post(trading::record_trades))
        .route("/api/settlements", post(trading::settle_all))
        .route("/api/keys", get(keys::list_keys).post(keys::create_key))
        .route("/api/keys/{id}", axum::routing::delete(keys::revoke_key))
        .route("/api/accounts/{id}/risk-array", get(reads::risk_array))
        .route("/api/markets", post(writes::push_market))
        .route("/api/markets/deribit", post(writes::push_deribit_market))
        .route("/api/markets/latest", get(reads::latest_market))
        .route("/api/methodologies", get(reads::list_methodologies).post(writes::add_methodology))
        .route("/api/methodologies/{reference}", get(reads::get_methodology))
        .route("/ws", get(live::upgrade))
        .fallback(|| async { Error::new("path", ErrorKind::NotFound).into_response() })
        .layer(axum::middleware::from_fn_with_state((Arc::clone(&service), limiter), access::guard))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(writes::BODY_BYTES_MAX))
        .with_state(service)
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], text).into_response()
}

async fn openapi() -> Response {
    let text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], text).into_response()
}
