//! The WebSocket feed at `/ws`: margin updates of subscribed accounts and health alerts.
//!
//! Every client receives, after each recompute, a `recompute` summary, a `margin` message per
//! subscribed account and an `alert` per status change (IM or MM breach, or back to healthy),
//! at most [`ALERTS_PER_EVENT_MAX`] per event; an alert into or out of an MM breach is
//! followed by a `liquidation` message (`stage` `started` or `ended`) naming the route of the
//! account's liquidation plan. A client subscribes by sending
//! `{"subscribe": ["alice", "bob"]}` (or `["*"]` for all accounts) or with `?accounts=a,b`.
//!
//! The upgrade is refused from a page of another origin, and needs a key (offered as the
//! subprotocol `bearer.<key>` beside `ballast`, since a browser cannot set headers on a
//! WebSocket). A key follows only accounts it may read: `*` and every account's alerts are for
//! the risk roles; an `account` key's subscription keeps its own accounts, a viewer's none.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::access::{WS_PROTOCOL, same_origin};
use crate::auth::Principal;
use crate::compute::{Alert, LiveState};
use crate::error::{Error, ErrorKind};
use crate::reads::health_row;
use crate::state::{Event, Service};

/// Alerts sent per event; the rest are counted in an `alerts-truncated` message.
pub const ALERTS_PER_EVENT_MAX: usize = 200;
/// Accounts a client may follow by name ("*" follows all, for small books).
const SUBSCRIPTIONS_MAX: usize = 1_000;
/// Margin messages per event for a "*" subscription.
const WILDCARD_ACCOUNTS_MAX: usize = 1_000;
/// How long one message may wait for a client to read it before the client is dropped.
const WS_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Initial subscription.
#[derive(Debug, Deserialize)]
pub struct Subscription {
    /// Comma-separated account ids, or `*`.
    #[serde(default)]
    pub accounts: Option<String>,
}

/// Upgrades to the live feed.
pub async fn upgrade(
    State(service): State<Arc<Service>>,
    Extension(principal): Extension<Principal>,
    Query(subscription): Query<Subscription>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        let why = "a WebSocket is opened only from the service's own pages".to_owned();
        return Error::new("Origin", ErrorKind::Forbidden(why)).into_response();
    }
    let requested = subscription.accounts.unwrap_or_default();
    let accounts = allowed(&principal, requested.split(',').map(str::to_owned));
    let ws = ws.protocols([WS_PROTOCOL]);
    ws.on_upgrade(move |socket| feed(service, socket, principal, accounts))
}

/// The part of a subscription `principal` may follow.
fn allowed(principal: &Principal, requested: impl Iterator<Item = String>) -> BTreeSet<String> {
    let every = principal.role.reads_every_account();
    requested
        .filter(|id| !id.is_empty() && (every || (id != "*" && principal.reads_account(id))))
        .take(SUBSCRIPTIONS_MAX)
        .collect()
}

#[derive(Deserialize)]
struct ClientMessage {
    subscribe: Vec<String>,
}

async fn feed(
    service: Arc<Service>,
    mut socket: WebSocket,
    principal: Principal,
    mut accounts: BTreeSet<String>,
) {
    let every = principal.role.reads_every_account();
    let mut events = service.subscribe();
    let published = service.published();
    let hello = json!({
        "type": "hello",
        "generation": published.generation,
        "market_seq": published.market_seq,
    });
    if socket.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(m) = serde_json::from_str::<ClientMessage>(&text) {
                        accounts = allowed(&principal, m.subscribe.into_iter());
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            event = events.recv() => {
                let messages = match event {
                    Ok(event) => messages(&event, &accounts, every),
                    Err(RecvError::Lagged(missed)) => {
                        vec![json!({ "type": "lagged", "missed": missed }).to_string()]
                    }
                    Err(RecvError::Closed) => return,
                };
                for text in messages {
                    // A client that stops reading fills its socket; it is dropped, and never
                    // holds its connection or more than the bounded event queue.
                    let sent = socket.send(Message::Text(text.into()));
                    if !matches!(tokio::time::timeout(WS_SEND_TIMEOUT, sent).await, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    }
}

/// The messages of one event for a client following `accounts`; every account's alerts when
/// `all_alerts` (the risk roles), else only those of the accounts followed.
#[must_use]
pub fn messages(event: &Event, accounts: &BTreeSet<String>, all_alerts: bool) -> Vec<String> {
    let mut out = Vec::new();
    let (published, alerts, changed) = match event {
        Event::Recomputed { published, seconds, lag_seconds, alerts } => {
            let (mut total, mut im, mut mm) = (0, 0, 0);
            for group in published.groups.values() {
                total += group.health.len();
                for s in group.health.iter().map(|h| h.status) {
                    im += usize::from(s == crate::compute::Status::ImBreach);
                    mm += usize::from(s == crate::compute::Status::MmBreach);
                }
            }
            out.push(
                json!({
                    "type": "recompute",
                    "generation": published.generation,
                    "market_seq": published.market_seq,
                    "valuation_time": valuation_time(published),
                    "seconds": seconds,
                    "lag_seconds": lag_seconds,
                    "accounts": total,
                    "im_breaches": im,
                    "mm_breaches": mm,
                })
                .to_string(),
            );
            (published, alerts, None)
        }
        Event::AccountChanged { published, account, alerts } => {
            (published, alerts, Some(account.as_str()))
        }
    };
    let everyone = accounts.contains("*");
    let follow: Vec<&str> = match changed {
        Some(id) if everyone || accounts.contains(id) => vec![id],
        Some(_) => Vec::new(),
        None if everyone => all_ids(published).take(WILDCARD_ACCOUNTS_MAX).collect(),
        None => accounts.iter().map(String::as_str).collect(),
    };
    for id in follow {
        if let Some((group, i)) = published.find(id) {
            let row = health_row(group, i);
            let message = json!({
                "type": "margin",
                "generation": published.generation,
                "market_seq": published.market_seq,
                "valuation_time": valuation_time(published),
                "account": row,
            });
            out.push(message.to_string());
        }
    }
    let alerts: Vec<&Alert> =
        alerts.iter().filter(|a| all_alerts || accounts.contains(&a.account)).collect();
    for alert in alerts.iter().take(ALERTS_PER_EVENT_MAX) {
        out.push(alert_message(alert));
        out.extend(liquidation_message(alert));
    }
    if alerts.len() > ALERTS_PER_EVENT_MAX {
        let count = alerts.len() - ALERTS_PER_EVENT_MAX;
        out.push(json!({ "type": "alerts-truncated", "count": count }).to_string());
    }
    out
}

fn all_ids(published: &LiveState) -> impl Iterator<Item = &str> {
    published.groups.values().flat_map(|g| g.book.ids.iter().map(String::as_str))
}

fn alert_message(alert: &Alert) -> String {
    let kind = match alert.to {
        crate::compute::Status::Healthy => "cleared",
        other => other.name(),
    };
    json!({
        "type": "alert",
        "kind": kind,
        "account": alert.account,
        "from": alert.from.name(),
        "to": alert.to.name(),
        "health": crate::dto::finite(alert.health),
    })
    .to_string()
}

/// The breach → liquidation event of an alert into or out of an MM breach: the plan itself is
/// served by `GET /api/accounts/{id}/liquidation`, the same bits for every reader, and computed
/// only for the clients that ask.
fn liquidation_message(alert: &Alert) -> Option<String> {
    use crate::compute::Status::MmBreach;
    let stage = match (alert.from, alert.to) {
        (from, MmBreach) if from != MmBreach => "started",
        (MmBreach, to) if to != MmBreach => "ended",
        _ => return None,
    };
    let plan = format!("/api/accounts/{}/liquidation", alert.account);
    let message = json!({ "type": "liquidation", "stage": stage, "account": alert.account,
        "health": crate::dto::finite(alert.health), "plan": plan });
    Some(message.to_string())
}

/// The valuation time of the published market, RFC 3339 (null before the first market).
fn valuation_time(published: &LiveState) -> Option<String> {
    published.valuation.map(formats::format_rfc3339)
}
