//! Who may call what (issue 14), against the real service on SQLite: every operation of the
//! OpenAPI document called without a key, with a revoked key and with a key of each role, each
//! answer checked against the access policy written out here; a policy without an entry for an
//! operation fails the test, so a new endpoint cannot ship unprotected. Then margin-call
//! privacy (an account key sees its own account only; a viewer sees counts, not accounts),
//! revocation on the next request, and the browser rules (JSON writes, same-origin WebSocket).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use service::client::{Client, Reply};
use service::{Config, Running};

/// Idempotency keys, one per request.
static NEXT: AtomicUsize = AtomicUsize::new(0);

const ADMIN: &str =
    "bk_00000000000000ad_3333333333333333333333333333333333333333333333333333333333333333";

async fn start(test: &str) -> Running {
    start_with(test, service::HEADER_READ_TIMEOUT_DEFAULT, 100_000).await
}

async fn start_with(
    test: &str,
    read_timeout: std::time::Duration,
    requests_per_sec_per_key: u32,
) -> Running {
    let database = common::sqlite(&format!("access-{test}"));
    let config =
        Config { read_timeout, requests_per_sec_per_key, ..common::config(database, ADMIN) };
    service::start(&config).await.unwrap()
}

async fn call(a: SocketAddr, key: Option<&str>, method: &str, path: &str, body: &str) -> Reply {
    let client = Client::connect(a).await.unwrap();
    let mut client = match key {
        Some(key) => client.authorized(key),
        None => client,
    };
    let idempotency = format!("access-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let headers = [("Idempotency-Key", idempotency.as_str())];
    client.request(method, path, &headers, body.as_bytes()).await.unwrap()
}

/// A new key of `role` (for `accounts` when it is an account key), made by the admin.
async fn key(a: SocketAddr, role: &str, accounts: &[&str]) -> (String, String) {
    let body = json!({ "role": role, "accounts": accounts, "label": "access test" }).to_string();
    let made = call(a, Some(ADMIN), "POST", "/api/keys", &body).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.json();
    (made["key"].as_str().unwrap().to_owned(), made["record"]["id"].as_str().unwrap().to_owned())
}

/// Who may call `method path` (the route as the OpenAPI document writes it), as the issue
/// states the policy; `None` for an operation the policy does not know.
fn allowed(method: &str, path: &str) -> Option<&'static [&'static str]> {
    const EVERY: &[&str] = &["viewer", "account", "operator", "risk-admin", "admin"];
    const ACCOUNT: &[&str] = &["account", "operator", "risk-admin", "admin"];
    const BOOK: &[&str] = &["operator", "admin"];
    const METHODOLOGY: &[&str] = &["risk-admin", "admin"];
    const KEYS: &[&str] = &["admin"];
    let read = method == "GET";
    Some(match path {
        "/api/accounts"
        | "/api/markets/latest"
        | "/api/methodologies"
        | "/api/methodologies/{reference}"
        | "/api/backtests"
        | "/api/alerts"
        | "/api/markets/history"
            if read =>
        {
            EVERY
        }
        "/api/accounts/{id}"
        | "/api/accounts/{id}/margin"
        | "/api/accounts/{id}/risk-array"
        | "/api/accounts/{id}/liquidation"
        | "/api/accounts/{id}/history"
            if read =>
        {
            ACCOUNT
        }
        "/api/accounts/{id}/what-if" | "/api/accounts/{id}/pre-trade" if method == "POST" => {
            ACCOUNT
        }
        "/api/accounts"
        | "/api/accounts/{id}/trades"
        | "/api/settlements"
        | "/api/markets"
        | "/api/markets/deribit"
        | "/api/netting"
            if method == "POST" =>
        {
            BOOK
        }
        "/api/accounts/{id}/positions/{instrument}"
        | "/api/accounts/{id}/balances/{currency}"
        | "/api/netting/book"
            if method == "PUT" =>
        {
            BOOK
        }
        "/api/accounts/{id}" if method == "DELETE" => BOOK,
        // The stored cross-venue book shows every account in it: the operator's view.
        "/api/netting" if read => BOOK,
        "/api/accounts/{id}/methodology" if method == "PUT" => METHODOLOGY,
        "/api/methodologies" | "/api/backtests" if method == "POST" => METHODOLOGY,
        "/api/keys" if read || method == "POST" => KEYS,
        "/api/keys/{id}" if method == "DELETE" => KEYS,
        _ => return None,
    })
}

/// `path` with its parameters filled in: the account `account`, a key id nobody uses.
fn concrete(path: &str, account: &str) -> String {
    let id = if path.starts_with("/api/keys") { "00000000deadbeef" } else { account };
    path.replace("{id}", id)
        .replace("{instrument}", "BTC-25DEC26-100000-C")
        .replace("{currency}", "USDC")
        .replace("{reference}", "ballast-pm")
}

/// Every operation of the OpenAPI document: (method, path).
async fn operations(a: SocketAddr) -> Vec<(String, String)> {
    let document = call(a, None, "GET", "/openapi.json", "").await;
    assert_eq!(document.status, 200, "the API document is public");
    let mut out = Vec::new();
    for (path, item) in document.json()["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    assert!(out.len() >= 20, "{out:?}");
    out
}

/// Every operation answers 401 without a key and with a revoked key, 403 to a role the policy
/// leaves out (an account key, for an account not its own) and neither to a role it lets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_guarded_by_the_policy() {
    let running = start("policy").await;
    let a = running.address;
    let mut keys = vec![("admin".to_owned(), ADMIN.to_owned())];
    for role in ["viewer", "operator", "risk-admin"] {
        keys.push((role.to_owned(), key(a, role, &[]).await.0));
    }
    keys.push(("account".to_owned(), key(a, "account", &["eth-puts"]).await.0));
    let (revoked, revoked_id) = key(a, "operator", &[]).await;
    let gone = call(a, Some(ADMIN), "DELETE", &format!("/api/keys/{revoked_id}"), "").await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    for (method, path) in operations(a).await {
        let roles = allowed(&method, &path)
            .unwrap_or_else(|| panic!("{method} {path}: not in the access policy; add it"));
        let target = concrete(&path, "hedged-book");
        let body = if method == "GET" || method == "DELETE" { "" } else { "{}" };
        for key in [None, Some(revoked.as_str())] {
            let reply = call(a, key, &method, &target, body).await;
            assert_eq!(reply.status, 401, "{method} {target} with {key:?}: {}", reply.body);
        }
        for (role, key) in &keys {
            let reply = call(a, Some(key), &method, &target, body).await;
            let scoped = path.contains("{id}") && !path.starts_with("/api/keys");
            let expected = roles.contains(&role.as_str()) && !(role == "account" && scoped);
            let denied = matches!(reply.status, 401 | 403);
            let own = role == "account" && scoped && roles.contains(&"account");
            assert_eq!(!denied, expected, "{method} {target} as {role}: {}", reply.body);
            if own {
                let mine = concrete(&path, "eth-puts");
                let reply = call(a, Some(key), &method, &mine, body).await;
                assert!(!matches!(reply.status, 401 | 403), "{method} {mine}: {}", reply.body);
            }
        }
    }
    running.server.abort();
    running.recompute.abort();
}

/// An account key sees its own account in the health list and nothing of the others; a viewer
/// sees how many accounts are in breach but not which; a revoked key is refused on the very
/// next request; a write in `text/plain` (what a page on another origin can send unasked) is
/// refused; a WebSocket needs a key and the service's own origin; `/metrics` needs a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn margin_calls_are_private_and_browsers_cannot_write() {
    let running = start("privacy").await;
    let a = running.address;
    let (own, _) = key(a, "account", &["eth-puts"]).await;
    let list = call(a, Some(&own), "GET", "/api/accounts?limit=1000", "").await.json();
    let ids: Vec<&str> =
        list["accounts"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["eth-puts"]);
    let (viewer, viewer_id) = key(a, "viewer", &[]).await;
    let seen = call(a, Some(&viewer), "GET", "/api/accounts?limit=1000", "").await.json();
    assert_eq!(seen["accounts"], json!([]));
    let everyone = call(a, Some(ADMIN), "GET", "/api/accounts?limit=1000", "").await.json();
    assert_eq!(seen["total"], everyone["total"], "counts stay visible");
    assert!(everyone["accounts"].as_array().unwrap().len() >= 4, "{everyone}");
    assert_eq!(call(a, Some(&viewer), "GET", "/metrics", "").await.status, 200);
    assert_eq!(call(a, None, "GET", "/metrics", "").await.status, 401);
    let revoke = format!("/api/keys/{viewer_id}");
    assert_eq!(call(a, Some(ADMIN), "DELETE", &revoke, "").await.status, 200);
    assert_eq!(call(a, Some(&viewer), "GET", "/api/accounts", "").await.status, 401);
    // The last working admin key cannot be revoked; once another exists, it can.
    let admin_id = ADMIN.split('_').nth(1).unwrap();
    let own_revoke = format!("/api/keys/{admin_id}");
    let last = call(a, Some(ADMIN), "DELETE", &own_revoke, "").await;
    assert_eq!((last.status, last.json()["error"]["field"].as_str()), (409, Some("id")));
    let (second, second_id) = key(a, "admin", &[]).await;
    assert_eq!(call(a, Some(&second), "DELETE", &own_revoke, "").await.status, 200);
    assert_eq!(call(a, Some(ADMIN), "GET", "/api/keys", "").await.status, 401);
    let last = call(a, Some(&second), "DELETE", &format!("/api/keys/{second_id}"), "").await;
    assert_eq!(last.status, 409, "{}", last.body);
    let admin = second;

    let market = formats::bundled::SAMPLE_MARKET_JSON;
    let plain = format!(
        "POST /api/markets HTTP/1.1\r\nHost: {a}\r\nAuthorization: Bearer {admin}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{market}",
        market.len()
    );
    let refused = raw_reply(a, &plain).await;
    assert!(refused.starts_with("HTTP/1.1 415"), "{refused}");
    let mut client = Client::connect(a).await.unwrap().authorized(&admin);
    let accepted = client.request("POST", "/api/markets", &[], market.as_bytes()).await.unwrap();
    assert_eq!(accepted.status, 202, "the same push as JSON: {}", accepted.body);

    let ws = |origin: Option<&str>, key: Option<&str>| {
        let mut request = format!("GET /ws HTTP/1.1\r\nHost: {a}\r\nUpgrade: websocket\r\n");
        request.push_str("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
        request.push_str("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
        if let Some(origin) = origin {
            let _ = write!(request, "Origin: {origin}\r\n");
        }
        if let Some(key) = key {
            let _ = write!(request, "Sec-WebSocket-Protocol: ballast, bearer.{key}\r\n");
        }
        request + "\r\n"
    };
    let own_origin = format!("http://{a}");
    for (origin, key, status) in [
        (None, None, "401"),
        (Some("http://evil.example"), Some(admin.as_str()), "403"),
        (Some(own_origin.as_str()), Some(admin.as_str()), "101"),
        (None, Some(own.as_str()), "101"),
    ] {
        let reply = raw_reply(a, &ws(origin, key)).await;
        assert!(reply.starts_with(&format!("HTTP/1.1 {status}")), "{origin:?}: {reply}");
    }
    running.server.abort();
    running.recompute.abort();
}

/// The status line and headers of a raw request's answer.
async fn raw_reply(a: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(a).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0; 4096];
    let read = stream.read(&mut buffer).await.unwrap();
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

/// Slow clients (issue 14): 300 connections that send half a request and then nothing are all
/// closed by the server once the read timeout passes (1 s here), and a complete request on a
/// fresh connection is still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let running = start_with("slow", std::time::Duration::from_secs(1), 100_000).await;
    let a = running.address;
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut stream = tokio::net::TcpStream::connect(a).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let mut closed = 0;
    for stream in &mut held {
        let mut buffer = [0_u8; 512];
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut buffer));
        // Closed: end of stream, a reset, or hyper's 408 before closing.
        match read.await {
            Ok(Ok(0) | Err(_)) => closed += 1,
            Ok(Ok(n)) if String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 408") => {
                closed += 1;
            }
            _ => {}
        }
    }
    assert_eq!(closed, 300, "every half-sent request is dropped");
    let ok = raw_reply(a, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    running.server.abort();
    running.recompute.abort();
}

/// Per-key rate limits: at 5 requests a second (bursts of 10), a key's 30 quick requests are
/// answered 429 past its burst, while another key is served as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_over_its_rate_is_slowed_down_alone() {
    let running = start_with("rate", service::HEADER_READ_TIMEOUT_DEFAULT, 5).await;
    let a = running.address;
    let (other, _) = key(a, "viewer", &[]).await;
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(call(a, Some(ADMIN), "GET", "/api/markets/latest", "").await.status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!((15..=29).contains(&limited), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    assert_eq!(call(a, Some(&other), "GET", "/api/markets/latest", "").await.status, 200);
    running.server.abort();
    running.recompute.abort();
}
