//! The gate every request passes: authentication, the route's permission, the account named in
//! the path, and the rules that keep a browser page on another origin from writing.
//!
//! A key travels as `Authorization: Bearer <key>`; a WebSocket, which a browser cannot give
//! headers, offers it as the subprotocol `bearer.<key>` beside `ballast`. Writes must declare a
//! JSON body: a page on another origin can send `text/plain` without a preflight, never
//! `application/json`, and it cannot read or forge a key. A forced market push needs a risk
//! role on top of the book's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::{Permission, Principal, Role, authenticate, required};
use crate::error::{Error, ErrorKind};
use crate::state::Service;

/// The subprotocol a WebSocket client offers beside its key, and the one the server accepts.
pub const WS_PROTOCOL: &str = "ballast";
/// Prefix of the subprotocol that carries a key.
pub const WS_KEY_PREFIX: &str = "bearer.";

/// Requests per second each key may make, on average, with bursts of twice as many: a token
/// bucket per key, so one client cannot take the service from the others.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    /// Tokens and the time they were counted, by key id; bounded by the keys stored.
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter of `per_sec` requests per second per key (bursts of `2 × per_sec`).
    #[must_use]
    pub fn new(per_sec: u32) -> RateLimiter {
        let per_sec = f64::from(per_sec.max(1));
        RateLimiter { per_sec, burst: 2.0 * per_sec, buckets: Mutex::new(HashMap::new()) }
    }

    /// Whether `key` may make one more request at `now`; takes its token if so.
    pub fn admit(&self, key: &str, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        let refilled = *tokens + now.saturating_duration_since(*at).as_secs_f64() * self.per_sec;
        *at = now;
        *tokens = refilled.min(self.burst);
        if *tokens < 1.0 {
            return false;
        }
        *tokens -= 1.0;
        true
    }
}

/// What the gate needs: the service (its keys) and the rate limiter.
pub type GateState = (Arc<Service>, Arc<RateLimiter>);

/// Admits `request` if its key may use its route, and passes the [`Principal`] on to the
/// handler in the request's extensions; answers 401, 403, 415 or 429 otherwise.
pub async fn guard(
    State((service, limiter)): State<GateState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Unrouted paths fall through to the 404 answer, which tells nothing.
    let Some(route) = request.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned())
    else {
        return next.run(request).await;
    };
    let permission = required(request.method(), &route);
    if permission == Permission::Public {
        return next.run(request).await;
    }
    let admitted = admit(&service, &request, &route, permission).and_then(|principal| {
        if limiter.admit(&principal.key, Instant::now()) {
            Ok(principal)
        } else {
            let why = "more requests than this key's rate allows: slow down".to_owned();
            Err(Error::new("Authorization", ErrorKind::TooManyRequests(why)))
        }
    });
    match admitted {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(error) => error.into_response(),
    }
}

fn admit(
    service: &Service,
    request: &Request,
    route: &str,
    permission: Permission,
) -> Result<Principal, Error> {
    let key = presented_key(request.headers(), route == "/ws")?;
    let now = crate::state::unix_secs();
    let principal = {
        let model = service.model();
        authenticate(|id| model.keys.get(id), &key, now)?
    };
    let forbid = |why: String| Error::new("Authorization", ErrorKind::Forbidden(why));
    if !permission.granted_to(principal.role) {
        return Err(forbid(format!("a {} key may not use {route}", principal.role)));
    }
    if permission == Permission::Account {
        let id = request.uri().path().split('/').nth(3).unwrap_or_default();
        if !principal.reads_account(id) {
            return Err(forbid(format!("this {} key may not see account {id}", principal.role)));
        }
    }
    let writes = matches!(*request.method(), Method::POST | Method::PUT);
    if writes && declares_a_body(request.headers()) && !is_json(request.headers()) {
        return Err(Error::new("Content-Type", ErrorKind::UnsupportedMediaType));
    }
    let forced = request.uri().query().is_some_and(|q| q.split('&').any(|p| p == "force=true"));
    if forced && !matches!(principal.role, Role::RiskAdmin | Role::Admin) {
        return Err(forbid("a forced market push needs a risk-admin or admin key".into()));
    }
    Ok(principal)
}

/// The key of a request: its bearer token, or for a WebSocket its `bearer.` subprotocol.
///
/// # Errors
/// `Unauthorized` when there is none.
fn presented_key(headers: &HeaderMap, websocket: bool) -> Result<String, Error> {
    let bearer = (headers.get(header::AUTHORIZATION))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let offered = || {
        let protocols = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
        protocols.split(',').map(str::trim).find_map(|p| p.strip_prefix(WS_KEY_PREFIX))
    };
    let key = bearer.or_else(|| if websocket { offered() } else { None });
    key.map(str::to_owned).ok_or_else(|| {
        let why = "an API key is required: Authorization: Bearer <key>";
        Error::new("Authorization", ErrorKind::Unauthorized(why.into()))
    })
}

/// Whether the request says it carries a body (any length but zero, or chunked).
fn declares_a_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    length.is_none_or(|l| l.trim() != "0")
}

fn is_json(headers: &HeaderMap) -> bool {
    (headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()))
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether a WebSocket upgrade comes from the service's own origin (or from no browser at all:
/// no `Origin` header). A page elsewhere could otherwise open the feed in its visitor's name.
#[must_use]
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}
