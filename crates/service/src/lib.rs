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
pub mod backtests;
pub mod client;
pub mod compute;
pub mod dto;
pub mod error;
pub mod history;
pub mod keys;
pub mod liquidation;
pub mod live;
pub mod metrics;
pub mod model;
pub mod reads;
mod seed;
pub mod state;
pub mod store;
pub mod tls;
pub mod trading;
pub mod venues;
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
    /// Serve HTTPS (and WSS) with this certificate and key instead of plain HTTP.
    pub tls: Option<tls::TlsPem>,
    /// What the database keeps of past markets, margin and alerts.
    pub retention: history::Retention,
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
    /// The housekeeping task (alert log, margin samples, retention).
    pub housekeeping: JoinHandle<()>,
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
    config.retention.check()?;
    let store = store::Store::open(&config.database).await?;
    let service = Service::load(store).await?;
    seed::seed(&service, config.sample_accounts).await?;
    let created = keys::first_admin_key(&service, config.admin_key.as_deref()).await?;
    let admin_key = created.filter(|_| config.admin_key.is_none());
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let recompute = tokio::spawn(recompute_loop(Arc::clone(&service)));
    let housekeeping = tokio::spawn(history::housekeeping(Arc::clone(&service), config.retention));
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::invalid("listen", e.to_string()))?;
    let address = listener.local_addr().map_err(|e| Error::invalid("listen", e.to_string()))?;
    let limiter = Arc::new(access::RateLimiter::new(config.requests_per_sec_per_key));
    let app = router(Arc::clone(&service), limiter)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(config.read_timeout));
    let server = tokio::spawn(serve_connections(listener, app, tls, config.read_timeout));
    Ok(Running { address, service, server, recompute, housekeeping, admin_key })
}

/// Serves `app` on `listener`, one task per connection and at most [`CONNECTIONS_MAX`] at once:
/// HTTP/1.1 with WebSocket upgrades, inside TLS when `tls` is given. A client that has not
/// finished its TLS handshake, or sent its headers, within `header_timeout` is disconnected
/// (300 half-sent requests must not hold 300 connections).
async fn serve_connections(
    listener: TcpListener,
    app: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    header_timeout: Duration,
) {
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
        let (app, tls) = (app.clone(), tls.clone());
        tokio::spawn(async move {
            // A connection's own failure (a reset, a timeout, a bad handshake) concerns that
            // client alone.
            match tls {
                None => serve_one(stream, app, header_timeout).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(header_timeout, acceptor.accept(stream));
                    if let Ok(Ok(stream)) = handshake.await {
                        serve_one(stream, app, header_timeout).await;
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Serves one connection until the client closes it or it fails.
async fn serve_one<S>(stream: S, app: Router, header_timeout: Duration)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
    let io = hyper_util::rt::TokioIo::new(stream);
    let _ = builder.serve_connection(io, service).with_upgrades().await;
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
        liquidation::liquidation_plan,
        venues::net_book,
        venues::net_stored,
        venues::store_book,
        reads::list_methodologies,
        reads::get_methodology,
        reads::latest_market,
        backtests::run_backtests,
        backtests::latest_backtests,
        history::account_history,
        history::alert_log,
        history::market_history
    ),
    modifiers(&Guarded)
)]
pub struct ApiDoc;

/// What the gate in front of every operation may answer, declared on each operation so the
/// document is true for any client (and schemathesis holds the service to it): 401 without a
/// working key, 403 for a role that may not, 429 over the key's rate; for a write also 400 (a
/// malformed body or idempotency key), 409 (an idempotency key reused for another
/// request), 413 (too large) and 415 (not `application/json`). The
/// bearer scheme is declared once and required everywhere.
struct Guarded;

impl utoipa::Modify for Guarded {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("bk_<16 hex>_<64 hex>")
            .build();
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
        openapi.security = Some(vec![SecurityRequirement::new("api_key", Vec::<String>::new())]);
        let gate = [
            ("401", "no key, or one that is malformed, unknown, revoked or expired"),
            ("403", "the key's role may not do this"),
            ("429", "the key is over its request rate"),
        ];
        let write = [
            ("400", "malformed body, query or idempotency key"),
            ("409", "the idempotency key was used for another request, or a conflict of state"),
            ("413", "body larger than the limit"),
            ("415", "the body is not declared application/json"),
        ];
        let path = [("422", "a path segment outside its grammar, or a refused value")];
        for (route, item) in &mut openapi.paths.paths {
            let account = route.starts_with("/api/accounts/{id}");
            let reads = [&mut item.get].into_iter().flatten().map(|o| (o, false));
            let writes = [&mut item.post, &mut item.put, &mut item.delete].into_iter().flatten();
            for (operation, is_write) in reads.chain(writes.map(|o| (o, true))) {
                add_errors(operation, &gate);
                if is_write {
                    add_errors(operation, &write);
                }
                if route.contains('{') {
                    add_errors(operation, &path);
                }
                if account {
                    declare_id_grammar(operation);
                }
            }
        }
    }
}

/// Declares [`writes::ACCOUNT_ID_PATTERN`] on the operation's `id` path parameter.
fn declare_id_grammar(operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::schema::{Object, Schema, Type};
    use utoipa::openapi::{RefOr, path::ParameterIn};
    let parameters = operation.parameters.iter_mut().flatten();
    for parameter in parameters.filter(|p| p.name == "id" && p.parameter_in == ParameterIn::Path) {
        let grammar = Object::builder()
            .schema_type(Type::String)
            .pattern(Some(writes::ACCOUNT_ID_PATTERN))
            .build();
        parameter.schema = Some(RefOr::T(Schema::Object(grammar)));
    }
}

/// Adds each `(status, description)` not declared yet, with the [`error::ErrorBody`] shape.
fn add_errors(operation: &mut utoipa::openapi::path::Operation, statuses: &[(&str, &str)]) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    for (status, description) in statuses {
        let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let response =
            ResponseBuilder::new().description(*description).content("application/json", body);
        operation
            .responses
            .responses
            .entry((*status).to_owned())
            .or_insert(response.build().into());
    }
}

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
        .route("/api/accounts/{id}/history", get(history::account_history))
        .route("/api/alerts", get(history::alert_log))
        .route("/api/markets/history", get(history::market_history))
        .route("/api/accounts/{id}/what-if", post(reads::what_if))
        .route("/api/accounts/{id}/pre-trade", post(reads::pre_trade))
        .route("/api/accounts/{id}/trades", post(trading::record_trades))
        .route("/api/settlements", post(trading::settle_all))
        .route("/api/keys", get(keys::list_keys).post(keys::create_key))
        .route("/api/keys/{id}", axum::routing::delete(keys::revoke_key))
        .route("/api/accounts/{id}/risk-array", get(reads::risk_array))
        .route("/api/accounts/{id}/liquidation", get(liquidation::liquidation_plan))
        .route("/api/netting", get(venues::net_stored).post(venues::net_book))
        .route("/api/netting/book", put(venues::store_book))
        .route("/api/markets", post(writes::push_market))
        .route("/api/markets/deribit", post(writes::push_deribit_market))
        .route("/api/markets/latest", get(reads::latest_market))
        .route("/api/methodologies", get(reads::list_methodologies).post(writes::add_methodology))
        .route("/api/methodologies/{reference}", get(reads::get_methodology))
        .route("/api/backtests", get(backtests::latest_backtests).post(backtests::run_backtests))
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

#[cfg(test)]
mod tests {
    use super::ApiDoc;
    use utoipa::OpenApi;

    /// Every `$ref` under `value`, as the component name it points to.
    fn references(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner.as_str()) {
                        ("$ref", Some(target)) => out.push(target.to_owned()),
                        _ => references(inner, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| references(i, out)),
            _ => {}
        }
    }

    /// A reference to a component the document lacks makes every client generator and
    /// schemathesis refuse the operation (a `PushMode` query parameter once did).
    #[test]
    fn every_reference_in_the_openapi_document_resolves() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("the document serialises");
        let mut found = Vec::new();
        references(&document, &mut found);
        assert!(found.len() > 10, "the document references its schemas: {found:?}");
        for target in found {
            let name = target.strip_prefix("#/components/schemas/");
            let resolved = name.and_then(|n| document["components"]["schemas"].get(n));
            assert!(resolved.is_some(), "{target} does not resolve");
        }
    }
}
