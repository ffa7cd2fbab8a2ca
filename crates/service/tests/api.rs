//! The service against a real database: SQLite always, PostgreSQL when
//! `BALLAST_TEST_POSTGRES_URL` names a server (`scripts/test` starts one; CI always does).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use service::Running;
use service::client::{Client, Reply};

use common::databases;

/// The admin key every test service starts with (a public test value).
const ADMIN: &str =
    "bk_00000000000000ad_2222222222222222222222222222222222222222222222222222222222222222";

async fn start(database: &str) -> Running {
    service::start(&common::config(database.to_owned(), ADMIN)).await.unwrap()
}

async fn call(
    address: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> Reply {
    call_as(address, Some(ADMIN), method, path, key, body).await
}

/// A request with API key `api_key` (none when `None`) and idempotency key `key`.
async fn call_as(
    address: SocketAddr,
    api_key: Option<&str>,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &Value,
) -> Reply {
    let client = Client::connect(address).await.unwrap();
    let mut client = match api_key {
        Some(api_key) => client.authorized(api_key),
        None => client,
    };
    let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
    let text = if body.is_null() { String::new() } else { body.to_string() };
    client.request(method, path, &headers, text.as_bytes()).await.unwrap()
}

/// A WebSocket request for `url` offering `key` as the `bearer.` subprotocol, as browsers do.
fn ws_request(url: &str, key: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = url.into_client_request().unwrap();
    let protocols = format!("ballast, bearer.{key}").parse().unwrap();
    request.headers_mut().insert("sec-websocket-protocol", protocols);
    request
}

async fn get(address: SocketAddr, path: &str) -> Value {
    let reply = call(address, "GET", path, None, &Value::Null).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json()
}

/// The sample market with BTC's index, perpetual mark and forwards scaled by `factor`.
fn moved_market(factor: f64) -> Value {
    let mut market: Value = serde_json::from_str(formats::bundled::SAMPLE_MARKET_JSON).unwrap();
    let btc = &mut market["underlyings"]["BTC"];
    for key in ["index", "perpetual_mark"] {
        btc[key] = json!(btc[key].as_f64().unwrap() * factor);
    }
    for forward in btc["forwards"].as_object_mut().unwrap().values_mut() {
        *forward = json!(forward.as_f64().unwrap() * factor);
    }
    market
}

/// Pushes `market` and waits until the health list shows it recomputed; returns the list.
async fn push_and_wait(a: SocketAddr, market: &Value) -> Value {
    push_to_and_wait(a, "/api/markets", market).await
}

/// [`push_and_wait`] to `path` (a push with a query, say).
async fn push_to_and_wait(a: SocketAddr, path: &str, market: &Value) -> Value {
    let pushed = call(a, "POST", path, None, market).await;
    assert_eq!(pushed.status, 202, "{}", pushed.body);
    let seq = pushed.json()["seq"].clone();
    let mut list = get(a, "/api/accounts?limit=1000").await;
    for _ in 0..300 {
        if list["market_seq"] == seq {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        list = get(a, "/api/accounts?limit=1000").await;
    }
    assert_eq!(list["market_seq"], seq, "the push was recomputed");
    list
}

/// Account `id`'s row of a health list.
fn row(list: &Value, id: &str) -> Value {
    list["accounts"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap().clone()
}

fn usd(figures: &Value, key: &str) -> f64 {
    figures.as_array().unwrap()[0][key].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_writes_replay_the_first_answer_and_survive_a_restart() {
    for url in databases("idempotency").await {
        let running = start(&url).await;
        let a = running.address;
        let body = json!({ "id": "carol", "balances": { "USDC": "250000" },
            "positions": [{ "instrument": "BTC-PERPETUAL", "size": 10000 }] });
        let first = call(a, "POST", "/api/accounts", Some("k-carol"), &body).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let replay = call(a, "POST", "/api/accounts", Some("k-carol"), &body).await;
        assert_eq!((replay.status, replay.body.clone()), (first.status, first.body.clone()));
        // The same key for another request is refused; a new key for the same id conflicts.
        let other = json!({ "id": "carol2" });
        let reused = call(a, "POST", "/api/accounts", Some("k-carol"), &other).await;
        assert_eq!(reused.status, 409);
        assert_eq!(reused.json()["error"]["field"], "Idempotency-Key");
        assert_eq!(call(a, "POST", "/api/accounts", Some("k2"), &body).await.status, 409);
        let missing = call(a, "POST", "/api/accounts", None, &other).await;
        assert_eq!(missing.status, 400);
        let set = json!({ "size": -5000 });
        let path = "/api/accounts/carol/positions/BTC-PERPETUAL";
        assert_eq!(call(a, "PUT", path, Some("k-size"), &set).await.status, 200);
        running.server.abort();
        running.recompute.abort();
        if url.starts_with("sqlite") {
            assert_eq!(running.service.store().sqlite_synchronous().await.unwrap(), 2, "FULL");
        }
        drop(running);
        let again = start(&url).await;
        let account = get(again.address, "/api/accounts/carol").await;
        // Created without an entry price, the perpetual was entered at the market's mark.
        assert_eq!(
            account["positions"],
            json!([{ "instrument": "BTC-PERPETUAL", "size": -5000.0, "entry": 95_009.5 }])
        );
        assert_eq!(account["balances"]["USDC"], "250000");
        let replay = call(again.address, "POST", "/api/accounts", Some("k-carol"), &body).await;
        assert_eq!((replay.status, replay.body), (first.status, first.body));
        let refused = call(again.address, "GET", "/api/accounts/carol2", None, &Value::Null).await;
        assert_eq!(refused.status, 404, "the refused write left no account");
        again.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_located_4xx_and_changes_nothing() {
    for url in databases("bad_input").await {
        let running = start(&url).await;
        let a = running.address;
        let before = get(a, "/api/accounts/hedged-book").await;
        let cases: Vec<(&str, String, Value, u16, &str)> = vec![
            ("POST", "/api/accounts".into(), json!("{not json"), 400, "body"),
            (
                "PUT",
                "/api/accounts/hedged-book/positions/SOL-PERPETUAL".into(),
                json!({ "size": 1 }),
                422,
                "SOL-PERPETUAL",
            ),
            (
                "PUT",
                "/api/accounts/hedged-book/positions/NOT-AN-INSTRUMENT".into(),
                json!({ "size": 1 }),
                422,
                "instrument",
            ),
            (
                "PUT",
                "/api/accounts/hedged-book/balances/USDC".into(),
                json!({ "amount": "-1" }),
                422,
                "amount",
            ),
            (
                "PUT",
                "/api/accounts/hedged-book/positions/BTC-PERPETUAL".into(),
                json!({ "size": "big" }),
                400,
                "body",
            ),
            (
                "PUT",
                "/api/accounts/nobody/balances/USDC".into(),
                json!({ "amount": "1" }),
                404,
                "id",
            ),
        ];
        for (i, (method, path, body, status, field)) in cases.into_iter().enumerate() {
            let key = format!("bad-{i}");
            let reply = if let Some(text) = body.as_str() {
                let mut client = Client::connect(a).await.unwrap().authorized(ADMIN);
                let headers = [("Idempotency-Key", key.as_str())];
                client.request(method, &path, &headers, text.as_bytes()).await.unwrap()
            } else {
                call(a, method, &path, Some(&key), &body).await
            };
            assert_eq!(reply.status, status, "{path}: {}", reply.body);
            let error = &reply.json()["error"];
            assert!(error["field"].as_str().unwrap().contains(field), "{path}: {error}");
            assert!(!error["reason"].as_str().unwrap().is_empty());
        }
        let page = call(a, "GET", "/api/accounts?limit=many", None, &Value::Null).await;
        assert_eq!((page.status, page.json()["error"]["field"].as_str()), (400, Some("query")));
        let huge = vec![b' '; service::writes::BODY_BYTES_MAX + 1];
        let mut client = Client::connect(a).await.unwrap().authorized(ADMIN);
        let reply = client.request("POST", "/api/markets", &[], &huge).await.unwrap();
        assert_eq!(reply.status, 413, "{}", reply.body);
        assert_eq!(reply.json()["error"]["field"], "body");
        assert_eq!(get(a, "/api/accounts/hedged-book").await, before);
        assert_eq!(get(a, "/api/markets/latest").await["valuation_time"], "2026-11-20T08:00:00Z");
        running.server.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_risk_array_and_margin_agree_with_each_other_and_with_hand_values() {
    let url = databases("margin").await.remove(0);
    let running = start(&url).await;
    let a = running.address;
    // A lone short perpetual of 100,000 USD against USDC. Inverse: P&L in coins is
    // S (1/F - 1/(F (1 + m))) at the perpetual mark F, converted at the shocked index I (1 + m),
    // so in USD it is S m I / F, at every vol move.
    let body = json!({ "id": "perp", "balances": { "USDC": "1000000" },
        "positions": [{ "instrument": "BTC-PERPETUAL", "size": -100_000 }] });
    assert_eq!(call(a, "POST", "/api/accounts", Some("perp"), &body).await.status, 201);
    let risk = get(a, "/api/accounts/perp/risk-array").await;
    let unit = &risk["units"][0];
    assert_eq!(unit["underlying"], "BTC");
    let mut checked = 0;
    for s in unit["scenarios"].as_array().unwrap() {
        let (m, pnl) = (s["spot_move"].as_f64().unwrap(), s["pnl"].as_f64().unwrap());
        if s["kind"] == "regular" {
            let hand = -100_000.0 * m * 95_000.0 / 95_009.5;
            assert!((pnl - hand).abs() < 1e-9 * 100_000.0, "move {m}: {pnl} against {hand}");
            let price = unit["index"].as_f64().unwrap() * (1.0 + m);
            assert!((s["price"].as_f64().unwrap() - price).abs() < 1e-9 * price);
            checked += 1;
        }
    }
    assert!(checked >= 9, "{checked} regular scenarios");
    // A what-if without trades changes nothing; a trade and its reverse cancel exactly; a trade
    // then applied for real gives the what-if's figures.
    let path = "/api/accounts/hedged-book/what-if";
    let none = call(a, "POST", path, None, &json!({ "trades": [] })).await.json();
    assert_eq!(none["before"], none["after"]);
    let trade = json!({ "instrument": "BTC-25DEC26-100000-C", "size": 5 });
    let reverse = json!({ "instrument": "BTC-25DEC26-100000-C", "size": -5 });
    let both = call(a, "POST", path, None, &json!({ "trades": [trade, reverse] })).await.json();
    assert_eq!(both["before"], both["after"]);
    let one = call(a, "POST", path, None, &json!({ "trades": [trade] })).await.json();
    assert_ne!(one["before"], one["after"]);
    let traded = "/api/accounts/hedged-book/trades";
    let applied = call(a, "POST", traded, Some("apply"), &json!({ "trades": [trade] })).await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    let risk = get(a, "/api/accounts/hedged-book/risk-array").await;
    assert_eq!(risk["figures"], one["after"]);
    let margin = get(a, "/api/accounts/hedged-book/margin").await;
    let report = &margin["report"];
    // The report values the account's own instruments; the live state values every quoted
    // one. A margin is a function of the market, the methodology and the portfolio alone, so
    // every figure is the same bits on both routes (JSON numbers round-trip f64 exactly).
    let reported = &report["currencies"][0];
    let keys =
        ["equity", "scan_loss", "add_ons_im", "add_ons_mm", "initial_margin", "maintenance_margin"];
    for key in keys {
        let live = usd(&risk["figures"], key);
        assert_eq!(reported[key].as_f64().unwrap().to_bits(), live.to_bits(), "{key}");
    }
    assert!(usd(&risk["figures"], "add_ons_im") > 0.0, "the friction add-on is charged");
    let baseline = &report["baseline"];
    let released = baseline["initial_margin"].as_f64().unwrap()
        - baseline["portfolio_initial_margin"].as_f64().unwrap();
    assert!((baseline["released"].as_f64().unwrap() - released).abs() < 1e-6);
    assert!(!report["liquidation"].as_array().unwrap().is_empty());
    // Unknown instruments in a what-if are refused by name.
    let unknown = json!({ "trades": [{ "instrument": "SOL-PERPETUAL", "size": 1 }] });
    assert_eq!(call(a, "POST", path, None, &unknown).await.status, 422);
    running.server.abort();
}

/// Sets `account`'s USDC balance so that its equity is `ratio` × IM (twice: IM moves a little
/// with the balance through haircuts).
async fn set_collateral_above_im(a: SocketAddr, account: &str, ratio: f64) {
    let put = format!("/api/accounts/{account}/balances/USDC");
    for round in 0..2 {
        let path = format!("/api/accounts/{account}/risk-array");
        let figures = get(a, &path).await["figures"].clone();
        let usdc = get(a, &format!("/api/accounts/{account}")).await["balances"]["USDC"].clone();
        let usdc: f64 = usdc.as_str().unwrap().parse().unwrap();
        let options = usd(&figures, "equity") - 0.9998 * usdc;
        let target = (ratio * usd(&figures, "initial_margin") - options) / 0.9998;
        let collateral = json!({ "amount": format!("{target:.2}") });
        let key = format!("{account}-collateral-{round}");
        assert_eq!(call(a, "PUT", &put, Some(&key), &collateral).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_push_recomputes_everyone_and_alerts_breaches_live() {
    for url in databases("live").await {
        let running = start(&url).await;
        let a = running.address;
        // Short calls with collateral 20 % above IM: healthy now; after BTC rises 25 % the
        // calls' value (part of equity) falls by far more than the cushion.
        let body = json!({ "id": "fragile", "balances": { "USDC": "1" },
            "positions": [{ "instrument": "BTC-25DEC26-100000-C", "size": -10 }] });
        assert_eq!(call(a, "POST", "/api/accounts", Some("f1"), &body).await.status, 201);
        set_collateral_above_im(a, "fragile", 1.2).await;
        let list = get(a, "/api/accounts?limit=1000").await;
        let row = list["accounts"].as_array().unwrap().iter().find(|r| r["id"] == "fragile");
        assert_eq!(row.unwrap()["status"], "healthy");
        let healths: Vec<f64> = list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["health"].as_f64())
            .collect();
        assert!(healths.windows(2).all(|w| w[0] <= w[1]), "ordered by health: {healths:?}");

        let url_ws = format!("ws://{a}/ws?accounts=fragile");
        let (mut socket, _) =
            tokio_tungstenite::connect_async(ws_request(&url_ws, ADMIN)).await.unwrap();
        let hello: Value =
            serde_json::from_str(&socket.next().await.unwrap().unwrap().into_text().unwrap())
                .unwrap();
        assert_eq!(hello["type"], "hello");
        let pushed = call(a, "POST", "/api/markets", None, &moved_market(1.25)).await;
        assert_eq!(pushed.status, 202, "{}", pushed.body);
        let seq = pushed.json()["seq"].clone();
        let (mut recompute, mut margin, mut alert, mut liquidation) = (None, None, None, None);
        while recompute.is_none() || margin.is_none() || alert.is_none() || liquidation.is_none() {
            let next = tokio::time::timeout(std::time::Duration::from_secs(30), socket.next());
            let text = next.await.unwrap().unwrap().unwrap().into_text().unwrap();
            let message: Value = serde_json::from_str(&text).unwrap();
            match message["type"].as_str().unwrap() {
                "recompute" if message["market_seq"] == seq => recompute = Some(message),
                "margin" if message["market_seq"] == seq => margin = Some(message),
                "alert" if message["account"] == "fragile" => alert = Some(message),
                "liquidation" if message["account"] == "fragile" => liquidation = Some(message),
                _ => {}
            }
        }
        let margin = margin.unwrap();
        let latest = get(a, "/api/markets/latest").await;
        assert_eq!(margin["valuation_time"], latest["valuation_time"], "{margin}");
        let figures = &margin["account"]["figures"];
        assert!(usd(figures, "equity") < usd(figures, "initial_margin"));
        let status = margin["account"]["status"].as_str().unwrap().to_owned();
        assert_eq!(alert.unwrap()["to"], status);
        // The breach starts a liquidation, whose plan the route serves.
        assert_eq!(status, "mm-breach");
        let liquidation = liquidation.unwrap();
        assert_eq!(liquidation["stage"], "started", "{liquidation}");
        let plan = get(a, liquidation["plan"].as_str().unwrap()).await;
        assert_eq!(
            (plan["account"].as_str(), plan["breached"].as_bool()),
            (Some("fragile"), Some(true))
        );
        let recompute = recompute.unwrap();
        let breaches = |kind: &str| recompute[kind].as_u64().unwrap();
        assert!(breaches("im_breaches") + breaches("mm_breaches") >= 1, "{recompute}");
        socket.send(tokio_tungstenite::tungstenite::Message::Close(None)).await.ok();

        check_metrics(a).await;
        running.server.abort();
    }
}

/// The recompute, request and breach metrics are exported.
async fn check_metrics(a: SocketAddr) {
    let metrics = call(a, "GET", "/metrics", None, &Value::Null).await.body;
    for name in [
        "ballast_recompute_seconds_bucket",
        "ballast_http_request_seconds_bucket",
        "ballast_accounts_in_breach",
        "ballast_recompute_lag_seconds",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_and_dashboard_are_served() {
    let url = databases("openapi").await.remove(0);
    let running = start(&url).await;
    let a = running.address;
    let doc = get(a, "/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/accounts",
        "/api/accounts/{id}/what-if",
        "/api/accounts/{id}/risk-array",
        "/api/accounts/{id}/margin",
        "/api/markets",
        "/api/methodologies",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from /openapi.json");
    }
    let page = call(a, "GET", "/", None, &Value::Null).await;
    assert!(page.status == 200 && page.body.contains("/dashboard.js"));
    assert!(!page.body.contains("http://") && !page.body.contains("https://"), "no CDN");
    let methodologies = get(a, "/api/methodologies").await;
    let named = |name: &str| methodologies.as_array().unwrap().iter().find(|m| m["name"] == name);
    // Every bundled portfolio methodology is there for accounts to use.
    for name in ["ballast-pm", "deribit-pm", "deribit-pm-segregated", "derive-pmrm2"] {
        assert!(named(name).is_some(), "{name} is not seeded: {methodologies}");
    }
    let hash = named("ballast-pm").unwrap()["hash"].as_str().unwrap();
    let one = get(a, &format!("/api/methodologies/{hash}")).await;
    assert_eq!(one["name"], "ballast-pm");
    // Storing the same file again is a no-op answered 200 with the same hash.
    let toml = json!({ "toml": one["toml"] });
    let again = call(a, "POST", "/api/methodologies", None, &toml).await;
    assert_eq!((again.status, again.json()["hash"].as_str()), (200, Some(hash)));
    running.server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deribit_book_summary_becomes_the_market_and_survives_a_restart() {
    let url = databases("deribit").await.remove(0);
    let running = start(&url).await;
    let book = include_str!("../../../examples/deribit/book_summary_btc.json");
    let mut client = Client::connect(running.address).await.unwrap().authorized(ADMIN);
    // The recorded book is from 2024, before the sample market: time would go back, so the
    // push is refused unless forced with a reason.
    let refused = client.request("POST", "/api/markets/deribit", &[], book.as_bytes()).await;
    let refused = refused.unwrap();
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["error"]["field"], "valuation_time", "{}", refused.body);
    let no_reason = "/api/markets/deribit?force=true";
    let unexplained = client.request("POST", no_reason, &[], book.as_bytes()).await.unwrap();
    assert_eq!(unexplained.json()["error"]["field"], "reason", "{}", unexplained.body);
    let forced = "/api/markets/deribit?force=true&reason=replaying%20a%20recorded%20book";
    let reply = client.request("POST", forced, &[], book.as_bytes()).await.unwrap();
    assert_eq!(reply.status, 202, "{}", reply.body);
    // The book's creation_timestamp, 1732089600000 ms, is 2024-11-20T08:00:00Z.
    assert_eq!(reply.json()["valuation_time"], "2024-11-20T08:00:00Z");
    let served = get(running.address, "/api/markets/latest").await;
    assert_eq!(served["underlyings"]["BTC"]["index"], 95_000.0);
    assert_eq!(served["underlyings"]["BTC"]["perpetual_mark"], 95_020.0);
    let garbage =
        client.request("POST", "/api/markets/deribit", &[], b"[{\"x\":1}]").await.unwrap();
    assert_eq!(garbage.status / 100, 4, "{}", garbage.body);
    running.server.abort();
    running.recompute.abort();
    drop(running);
    let again = start(&url).await;
    assert_eq!(get(again.address, "/api/markets/latest").await, served);
    again.server.abort();
}

/// Every account's figures and health in `published`, by id (bits, so NaN compares too).
fn state_by_id(published: &service::compute::LiveState) -> Vec<(String, Vec<u64>, u64, String)> {
    let mut out = Vec::new();
    for group in published.groups.values() {
        for (i, id) in group.book.ids.iter().enumerate() {
            let figures = match group.figures(i) {
                Ok(lines) => lines
                    .iter()
                    .flat_map(|l| {
                        let f = &l.figures;
                        [f.equity, f.scan_loss, f.add_ons_im, f.add_ons_mm, f.initial_margin]
                            .into_iter()
                            .chain([f.maintenance_margin, f.haircut_im, f.haircut_mm])
                            .map(f64::to_bits)
                    })
                    .collect(),
                Err(why) => vec![why.len() as u64],
            };
            let service::compute::Health { ratio, status } = group.health[i];
            out.push((id.clone(), figures, ratio.to_bits(), status.name().to_owned()));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_update_re_margins_that_account_alone_and_matches_a_full_rebuild() {
    for url in databases("incremental").await {
        let running = start(&url).await;
        let (a, service) = (running.address, &running.service);
        let ids = |s: &service::state::Service| {
            let published = s.published();
            let group = published.groups.values().find(|g| g.book.index.contains_key("eth-puts"));
            Arc::clone(&group.unwrap().book.ids)
        };
        let before = ids(service);
        // Existing accounts, instruments their group already holds: re-margined alone.
        let writes = [
            ("/api/accounts/short-strangle/positions/BTC-25DEC26-120000-C", json!({ "size": -10 })),
            ("/api/accounts/eth-puts/balances/USDC", json!({ "amount": "1000" })),
            ("/api/accounts/hedged-book/positions/ETH-PERPETUAL", json!({ "size": 0 })),
            ("/api/accounts/perp-trader/positions/ETH-26MAR27-3000-P", json!({ "size": -400 })),
        ];
        for (n, (path, body)) in writes.iter().enumerate() {
            let key = format!("incremental-{n}");
            assert_eq!(call(a, "PUT", path, Some(&key), body).await.status, 200, "{path}");
            assert!(Arc::ptr_eq(&before, &ids(service)), "{path}: the group was rebuilt");
            let rebuilt = service::compute::publish_all(
                &service.model(),
                &service::compute::LiveState::default(),
                true,
                0,
            );
            assert_eq!(state_by_id(&service.published()), state_by_id(&rebuilt), "{path}");
        }
        // An instrument no account of the group holds yet: the group is rebuilt.
        let path = "/api/accounts/eth-puts/positions/BTC-25DEC26-105000-P";
        assert_eq!(
            call(a, "PUT", path, Some("new-instrument"), &json!({ "size": 3 })).await.status,
            200
        );
        assert!(!Arc::ptr_eq(&before, &ids(service)), "a newly held instrument rebuilds the group");
        let rebuilt = service::compute::publish_all(
            &service.model(),
            &service::compute::LiveState::default(),
            true,
            0,
        );
        assert_eq!(state_by_id(&service.published()), state_by_id(&rebuilt));
        running.server.abort();
        running.recompute.abort();
    }
}

/// A pushed market without ETH (no index, surface or quotes) is accepted, and only the accounts
/// that hold ETH go unpriced, each naming its own ETH position; the BTC-only accounts keep
/// their figures (issue 13: one bad input must not blank the accounts it does not concern).
/// The ETH holders keep their last good figures, bit for bit, marked stale with the market
/// they are from, through further pushes, until the market values them again. The search
/// finds accounts by a part of their id, and counts only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_without_an_underlying_unprices_only_its_holders() {
    for url in databases("containment").await {
        let running = start(&url).await;
        let a = running.address;
        let good = push_and_wait(a, &moved_market(1.0)).await;
        let market = without_eth(moved_market(1.0));
        // Accounts hold ETH: a whole market without it is refused unless forced.
        let refused = call(a, "POST", "/api/markets?mode=replace", None, &market).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(refused.json()["error"]["field"], "underlyings.ETH");
        let replace = "/api/markets?mode=replace&force=true&reason=ETH%20feed%20down";
        let list = push_to_and_wait(a, replace, &market).await;
        for id in ["short-strangle", "perp-trader"] {
            assert_ne!(row(&list, id)["status"], "unpriced", "{id}: {}", row(&list, id));
            assert!(usd(&row(&list, id)["figures"], "initial_margin") > 0.0, "{id}");
            assert_eq!(row(&list, id)["stale"], Value::Null, "{id} is current");
        }
        let stale_rows = |list: &Value| {
            for id in ["eth-puts", "hedged-book"] {
                let (now, before) = (row(list, id), row(&good, id));
                assert_eq!(now["status"], "unpriced", "{id}");
                let why = now["error"].as_str().unwrap().to_owned();
                assert!(why.starts_with("positions.ETH-"), "{id}: {why}");
                assert_eq!(now["figures"], before["figures"], "{id}: the last good figures");
                let kept = json!({ "market_seq": good["market_seq"], "status": before["status"],
                    "health": before["health"] });
                assert_eq!(now["stale"], kept, "{id}");
            }
        };
        stale_rows(&list);
        let risk = call(a, "GET", "/api/accounts/eth-puts/risk-array", None, &Value::Null).await;
        assert_eq!(risk.status, 422, "no partial risk array: {}", risk.body);
        assert!(risk.json()["error"]["reason"].as_str().unwrap().starts_with("positions.ETH-"));
        // Another market that cannot value them keeps the same figures from the same market.
        let mut market = market;
        market["underlyings"]["BTC"]["index"] = json!(101_000.0);
        stale_rows(&push_to_and_wait(a, replace, &market).await);
        let back = push_and_wait(a, &moved_market(1.0)).await;
        assert_eq!(row(&back, "eth-puts")["stale"], Value::Null, "valued again");
        assert_eq!(row(&back, "eth-puts")["figures"], row(&good, "eth-puts")["figures"]);

        let found = get(a, "/api/accounts?q=eth&limit=1000").await;
        let ids: Vec<&str> = found["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(!ids.is_empty() && ids.iter().all(|id| id.contains("eth")), "{ids:?}");
        assert_eq!(found["total"], json!(ids.len()), "the count covers the matches only");
        let long = "x".repeat(65);
        let refused = call(a, "GET", &format!("/api/accounts?q={long}"), None, &Value::Null).await;
        assert_eq!((refused.status, refused.json()["error"]["field"].clone()), (400, json!("q")));
        running.server.abort();
        running.recompute.abort();
    }
}

/// `market` without ETH: no index, surface or quotes.
fn without_eth(mut market: Value) -> Value {
    market["underlyings"].as_object_mut().unwrap().remove("ETH");
    market["instruments"].as_object_mut().unwrap().retain(|name, _| !name.starts_with("ETH"));
    market
}

/// A push of one underlying merges into the current market (the default): BTC moves, ETH is
/// kept as it was, so an ETH-only account's figures stay bit for bit while a BTC account's
/// move; the stored market holds both. Pushing the whole market again as a merge or as a
/// replacement gives the same figures for every account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_of_one_underlying_merges_into_the_market() {
    let url = databases("merge").await.remove(0);
    let running = start(&url).await;
    let a = running.address;
    let whole = push_and_wait(a, &moved_market(1.0)).await;
    let merged = push_and_wait(a, &without_eth(moved_market(1.1))).await;
    assert_eq!(row(&merged, "eth-puts")["figures"], row(&whole, "eth-puts")["figures"]);
    assert_ne!(row(&merged, "perp-trader")["figures"], row(&whole, "perp-trader")["figures"]);
    let latest = get(a, "/api/markets/latest").await;
    let text = latest.to_string();
    assert!(text.contains("ETH") && text.contains("BTC"), "both underlyings are kept");
    let replaced = push_to_and_wait(a, "/api/markets?mode=replace", &moved_market(1.1)).await;
    let again = push_and_wait(a, &moved_market(1.1)).await;
    for list in [&replaced, &again] {
        for r in merged["accounts"].as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            assert_eq!(row(list, id)["figures"], r["figures"], "{id}");
        }
    }
    running.server.abort();
    running.recompute.abort();
}

/// A push whose index jumps beyond a doubling or a halving of the last accepted market (an
/// index of 1e308 here) is refused, naming the index, and changes nothing; a move within the
/// bound is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_jump_beyond_the_bound_is_refused() {
    let url = databases("jump").await.remove(0);
    let running = start(&url).await;
    let a = running.address;
    let before = get(a, "/api/markets/latest").await;
    let mut wild = moved_market(1.0);
    wild["underlyings"]["BTC"]["index"] = json!(1e308);
    let refused = call(a, "POST", "/api/markets", None, &wild).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["error"]["field"], "underlyings.BTC.index", "{}", refused.body);
    assert_eq!(get(a, "/api/markets/latest").await, before);
    let pushed = call(a, "POST", "/api/markets", None, &moved_market(1.5)).await;
    assert_eq!(pushed.status, 202, "{}", pushed.body);
    running.server.abort();
    running.recompute.abort();
}

/// Futures carry their P&L and trades their premium (issue 13). The sample `perp-trader` (long
/// 2,000,000 USD of the inverse perpetual, entered at the perpetual's mark when created) loses
/// 2e6 · (1/F₀ − 1/F₁) BTC at the moved index, about 200,000 USD, on a −10 % BTC push and falls
/// below MM. A settlement leaves every figure as it was (it holds no BTC to pay the loss, which
/// stays in the position). A what-if gives exactly the figures the recorded
/// trade leaves, premium paid; the pre-trade check refuses new risk, naming the currency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_carry_their_pnl_and_trades_their_premium() {
    for url in databases("futures").await {
        let running = start(&url).await;
        let a = running.address;
        let account = get(a, "/api/accounts/perp-trader").await;
        let f0 = account["positions"][0]["entry"].as_f64().unwrap();
        assert_eq!(f0, 95_009.5, "entered at the sample's perpetual mark");
        let before = usd(
            &row(&get(a, "/api/accounts?limit=1000").await, "perp-trader")["figures"],
            "equity",
        );
        let list = push_and_wait(a, &moved_market(0.9)).await;
        let moved = row(&list, "perp-trader");
        let (f1, index) = (f0 * 0.9, 95_000.0 * 0.9);
        let pnl = 2_000_000.0 * (1.0 / f0 - 1.0 / f1) * index;
        let equity = usd(&moved["figures"], "equity");
        assert!(((equity - before) - pnl).abs() < 1e-6 * pnl.abs(), "{equity} {before} {pnl}");
        assert!((-205_000.0..-195_000.0).contains(&pnl));
        assert_eq!(moved["status"], "mm-breach", "{moved}");

        // `hedged-book` pays its perpetual's loss from its BTC; `perp-trader` holds no BTC, so
        // its loss stays whole in the position (its entry unchanged). No figure moves.
        let settled = call(a, "POST", "/api/settlements", None, &Value::Null).await;
        assert_eq!(settled.status, 200, "{}", settled.body);
        let body = settled.json();
        let flows = body["flows"].as_array().unwrap();
        let flow = flows.iter().find(|f| f["account"] == "hedged-book").expect(&settled.body);
        assert_eq!((&flow["kind"], &flow["currency"]), (&json!("variation"), &json!("BTC")));
        assert!(flow["amount"].as_str().unwrap().starts_with('-'), "{flow}");
        let settled_list = get(a, "/api/accounts?limit=1000").await;
        for id in ["perp-trader", "hedged-book"] {
            let (was, now) = (row(&list, id), row(&settled_list, id));
            let (x, y) = (usd(&was["figures"], "equity"), usd(&now["figures"], "equity"));
            assert!((x - y).abs() < 1e-9 * x.abs(), "{id}: {x} then {y}");
            assert_eq!(was["status"], now["status"], "{id}");
        }
        let entry = get(a, "/api/accounts/perp-trader").await["positions"][0]["entry"].clone();
        assert_eq!(entry.as_f64().unwrap(), f0, "the unpaid loss stays in the position");

        let trades = json!({ "trades": [
            { "instrument": "BTC-25DEC26-120000-C", "size": 10, "price": 0.02 } ] });
        let path = "/api/accounts/short-strangle";
        let what_if = call(a, "POST", &format!("{path}/what-if"), None, &trades).await;
        assert_eq!(what_if.status, 200, "{}", what_if.body);
        let what_if = what_if.json();
        assert_eq!(what_if["fills"][0]["cash"], "-0.2");
        let done = call(a, "POST", &format!("{path}/trades"), Some("trade-1"), &trades).await;
        assert_eq!(done.status, 200, "{}", done.body);
        assert_eq!(done.json()["account"]["balances"]["BTC"], "5.8");
        let list = get(a, "/api/accounts?limit=1000").await;
        assert_eq!(row(&list, "short-strangle")["figures"], what_if["after"]);

        let risky = json!({ "trades": [ { "instrument": "BTC-25DEC26-120000-C", "size": -500 } ] });
        let check = call(a, "POST", &format!("{path}/pre-trade"), None, &risky).await.json();
        assert_eq!(check["accepted"], false, "{check}");
        assert!(check["reason"].as_str().unwrap().starts_with("USD: equity after"), "{check}");
        running.server.abort();
        running.recompute.abort();
    }
}

/// An account can be moved to another stored methodology (the figures then follow it) and
/// deleted with its positions and balances; both survive a restart; an unknown methodology is
/// refused naming the field, and a deleted account is gone from the list and the reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_change_methodology_and_are_deleted() {
    for url in databases("lifecycle").await {
        let running = start(&url).await;
        let a = running.address;
        let toml = formats::bundled::bundled_text("deribit-pm").unwrap();
        let added = call(a, "POST", "/api/methodologies", None, &json!({ "toml": toml })).await;
        assert!(added.status == 201 || added.status == 200, "{}", added.body);
        let path = "/api/accounts/short-strangle/methodology";
        let unknown = call(a, "PUT", path, Some("m0"), &json!({ "methodology": "nope" })).await;
        assert_eq!(
            (unknown.status, unknown.json()["error"]["field"].clone()),
            (422, json!("methodology"))
        );
        let moved = call(a, "PUT", path, Some("m1"), &json!({ "methodology": "deribit-pm" })).await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert!(moved.json()["methodology_label"].as_str().unwrap().starts_with("deribit-pm@"));
        let gone = call(a, "DELETE", "/api/accounts/eth-puts", Some("d1"), &Value::Null).await;
        assert_eq!(gone.status, 200, "{}", gone.body);
        assert_eq!(call(a, "GET", "/api/accounts/eth-puts", None, &Value::Null).await.status, 404);
        let list = get(a, "/api/accounts?limit=1000").await;
        let ids: Vec<&str> = list["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(!ids.contains(&"eth-puts") && ids.contains(&"short-strangle"), "{ids:?}");
        running.server.abort();
        running.recompute.abort();
        drop(running);
        let again = start(&url).await;
        let account = get(again.address, "/api/accounts/short-strangle").await;
        assert!(account["methodology_label"].as_str().unwrap().starts_with("deribit-pm@"));
        let reread = call(again.address, "GET", "/api/accounts/eth-puts", None, &Value::Null).await;
        assert_eq!(reread.status, 404);
        again.server.abort();
        again.recompute.abort();
    }
}

/// The BTC file of `../shared/history`, or `None` outside CI when it is absent (skipped loudly).
fn btc_history() -> Option<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/history/btc-usd-daily.csv");
    let text = std::fs::read_to_string(path).ok();
    assert!(text.is_some() || std::env::var_os("CI").is_none(), "{path} is absent under CI");
    if text.is_none() {
        eprintln!("SKIPPED: {path} is absent (it is required under CI)");
    }
    text
}

/// The library's side-by-side on the inputs the service was sent: (label, margin rate, covers),
/// and the index of the least margin.
fn library_side_by_side(text: &str, from: &str, to: &str) -> (Vec<(String, f64, bool)>, usize) {
    use backtest::history::{Gaps, Interval, Policy, ReadConfig, parse_day, read_csv};
    use backtest::run::{VERDICT_HORIZON_DAYS, least_margin, side_by_side, verdicts};
    let config = ReadConfig { interval: Interval::Day, rows: Policy::Skip, gaps: Gaps::Report };
    let history = read_csv(text, config).unwrap();
    let model =
        backtest::replay::SurfaceModel::from_toml(formats::bundled::REPLAY_SURFACE_TOML).unwrap();
    let window = backtest::replay::Window { from: parse_day(from), to: parse_day(to) };
    let replay =
        backtest::replay::replay(&[(basics::Currency::BTC, &history)], &model, window).unwrap();
    let book =
        backtest::book::Book::strategies(&backtest::book::Strategy::ALL, &[basics::Currency::BTC])
            .unwrap();
    let engines: Vec<(String, margin::Engine)> = formats::bundled::BUNDLED
        .iter()
        .filter_map(|(_, text)| match formats::methodology::Profile::from_toml(text).unwrap() {
            formats::methodology::Profile::Portfolio(m) => {
                Some((format!("{}@{}", m.name, m.version), margin::Engine::new(*m).unwrap()))
            }
            formats::methodology::Profile::PerPosition(_) => None,
        })
        .collect();
    let confidence = backtest::Confidence::VAR_BASEL;
    let rows = side_by_side(&replay, &engines, &book, &[], confidence, &mut |_, _| {});
    let verdicts = verdicts(&rows, VERDICT_HORIZON_DAYS);
    let least = least_margin(&verdicts).unwrap();
    let figures = rows
        .iter()
        .zip(&verdicts)
        .map(|(r, v)| {
            let v = v.as_ref().unwrap();
            (r.name.clone(), v.margin_rate.unwrap(), v.covers())
        })
        .collect();
    (figures, least)
}

/// Each refused backtest names its field (422) and stores nothing.
async fn refused_backtests_change_nothing(a: SocketAddr, text: &str) {
    let before = get(a, "/api/backtests").await;
    for (bad, field) in [
        (json!({ "histories": { "BTC": "date,open\n1,2" } }), "histories.BTC"),
        (json!({ "histories": { "X-Y": text } }), "histories.X-Y"),
        (json!({ "histories": { "BTC": text, "btc": text } }), "histories.btc"),
        (json!({ "histories": {} }), "histories"),
        (json!({ "histories": { "BTC": text }, "methodologies": ["nope"] }), "methodologies[0]"),
        (json!({ "histories": { "BTC": text }, "strategies": ["long-gamma"] }), "strategies[0]"),
        (json!({ "histories": { "BTC": text }, "from": "2019-02-29" }), "from"),
    ] {
        let refused = call(a, "POST", "/api/backtests", None, &bad).await;
        assert_eq!(refused.status, 422, "{field}: {}", refused.body);
        assert_eq!(refused.json()["error"]["field"], field, "{}", refused.body);
    }
    assert_eq!(get(a, "/api/backtests").await, before);
}

/// A backtest run from history sent in the request: every stored methodology and bundled
/// profile, each with the library's own figures to the bit and the same least margin; the
/// latest of each methodology is what GET answers, across a restart; refused input (a history
/// that does not parse, an unknown methodology or strategy, a bad date) names its field and
/// changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtests_keep_the_latest_of_each_methodology_with_the_librarys_figures() {
    let Some(text) = btc_history() else { return };
    let (from, to) = ("2019-06-01", "2020-06-30");
    let (expected, least) = library_side_by_side(&text, from, to);
    for url in databases("backtests").await {
        let running = start(&url).await;
        let a = running.address;
        assert_eq!(get(a, "/api/backtests").await, json!([]));
        let body = json!({ "histories": { "BTC": text }, "from": from, "to": to });
        let first = call(a, "POST", "/api/backtests", None, &body).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let run = first.json();
        assert_eq!(run["run"], 1);
        let views = run["backtests"].as_array().unwrap();
        let got: Vec<(String, f64, bool)> = views
            .iter()
            .map(|v| {
                let label = format!(
                    "{}@{}",
                    v["methodology"]["name"].as_str().unwrap(),
                    v["methodology"]["version"].as_str().unwrap()
                );
                let verdict = &v["verdict"];
                (label, verdict["margin_to_notional"].as_f64().unwrap(), verdict["covers"] == true)
            })
            .collect();
        let mut sorted_got = got.clone();
        sorted_got.sort_by(|x, y| x.0.cmp(&y.0));
        let mut sorted_expected = expected.clone();
        sorted_expected.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(sorted_got, sorted_expected, "the service's figures are the library's");
        assert_eq!(run["least_margin"], expected[least].0);
        assert_eq!(views[0]["inputs"]["first_day"], "2019-06-01");
        let book = views[0]["series"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(book["name"], "book");
        assert!(book["observations"].as_u64().unwrap() > 300, "{book}");

        // A second run of one methodology replaces its latest only.
        let one = json!({ "histories": { "BTC": text }, "from": "2020-01-01", "to": to,
            "methodologies": ["ballast-pm"], "strategies": ["naked-short-put"] });
        let second = call(a, "POST", "/api/backtests", None, &one).await;
        assert_eq!(second.status, 201, "{}", second.body);
        let latest = get(a, "/api/backtests").await;
        let latest = latest.as_array().unwrap();
        assert_eq!(latest.len(), expected.len());
        for view in latest {
            let ballast = view["methodology"]["name"] == "ballast-pm";
            assert_eq!(view["run"], if ballast { 2 } else { 1 }, "{}", view["methodology"]);
        }

        refused_backtests_change_nothing(a, &text).await;
        let before = get(a, "/api/backtests").await;
        running.server.abort();
        running.recompute.abort();
        drop(running);
        let again = start(&url).await;
        assert_eq!(get(again.address, "/api/backtests").await, before, "stored, and unchanged");
        again.server.abort();
    }
}

/// Retention: past `BACKTEST_RUNS_KEPT_COUNT` runs the oldest are pruned, but never the latest of
/// a methodology, which the service still shows after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_backtest_runs_are_pruned_but_never_a_methodologys_latest() {
    use std::fmt::Write as _;
    let mut csv = String::from("date,open,high,low,close,volume\n");
    for i in 0..90_i32 {
        let close = 20_000.0 * (1.0 + 0.03 * f64::from(i % 7) - 0.02 * f64::from(i % 3));
        let (high, low) = (close * 1.01, close * 0.99);
        let (y, m, d) = basics::civil_from_days(basics::days_from_civil(2020, 1, 1) + i64::from(i));
        let _ = writeln!(csv, "{y:04}-{m:02}-{d:02},{close},{high},{low},{close},1");
    }
    let body = |methodology: &str| {
        json!({ "histories": { "BTC": csv }, "methodologies": [methodology],
            "strategies": ["naked-short-put"] })
    };
    let kept = service::store::BACKTEST_RUNS_KEPT_COUNT;
    for url in databases("retention").await {
        let running = start(&url).await;
        let a = running.address;
        assert_eq!(call(a, "POST", "/api/backtests", None, &body("deribit-pm")).await.status, 201);
        for _ in 0..kept + 2 {
            let reply = call(a, "POST", "/api/backtests", None, &body("ballast-pm")).await;
            assert_eq!(reply.status, 201, "{}", reply.body);
        }
        // deribit-pm's run 1 stays beside ballast-pm's last `kept` runs.
        assert_eq!(running.service.store().backtest_rows().await.unwrap(), kept + 1);
        running.server.abort();
        running.recompute.abort();
        drop(running);
        let again = start(&url).await;
        let latest = get(again.address, "/api/backtests").await;
        let runs: Vec<(String, i64)> = latest
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (v["methodology"]["name"].as_str().unwrap().to_owned(), v["run"].as_i64().unwrap())
            })
            .collect();
        assert_eq!(runs, vec![("ballast-pm".into(), kept + 3), ("deribit-pm".into(), 1)]);
        again.server.abort();
    }
}

/// A service over `url` sampling every account's margin each second.
async fn start_sampling(url: &str) -> Running {
    let retention =
        service::history::Retention { raw_secs: 3_600, step_secs: 1, kept_secs: 86_400 };
    let config = service::Config { retention, ..common::config(url.to_owned(), ADMIN) };
    service::start(&config).await.unwrap()
}

/// Polls `path` (as the admin) until `done` holds of its JSON, for at most 15 s.
async fn wait_for(a: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..150 {
        let value = get(a, path).await;
        if done(&value) {
            return value;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{path} never showed what the test waits for: {}", get(a, path).await);
}

/// The sample of `history` on market `seq`.
fn sample_on(history: &Value, seq: &Value) -> Option<Value> {
    history["samples"].as_array().unwrap().iter().find(|s| &s["market_seq"] == seq).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn margin_history_and_the_alert_log_follow_the_market_with_the_lists_figures() {
    for url in databases("history").await {
        let running = start_sampling(&url).await;
        let a = running.address;
        let path = "/api/accounts/perp-trader/history";
        let before = get(a, "/api/accounts?limit=1000").await;
        let first_seq = before["market_seq"].clone();
        let history = wait_for(a, path, |h| sample_on(h, &first_seq).is_some()).await;
        let sample = sample_on(&history, &first_seq).unwrap();
        let listed = row(&before, "perp-trader");
        // One number everywhere: the sample is the list's row, bit for bit.
        for key in ["status", "health", "figures"] {
            assert_eq!(sample[key], listed[key], "{key}");
        }
        // Long about 21 BTC of perpetual: a 10 % fall costs ~200k and breaches MM.
        let after = push_and_wait(a, &moved_market(0.9)).await;
        let seq = after["market_seq"].clone();
        let listed = row(&after, "perp-trader");
        assert_eq!(listed["status"], "mm-breach", "{listed}");
        let history = wait_for(a, path, |h| sample_on(h, &seq).is_some()).await;
        let sample = sample_on(&history, &seq).unwrap();
        for key in ["status", "health", "figures"] {
            assert_eq!(sample[key], listed[key], "{key}");
        }
        let alerts = wait_for(a, "/api/alerts?account=perp-trader", |l| {
            l["alerts"].as_array().unwrap().iter().any(|x| x["market_seq"] == seq)
        })
        .await;
        let alert = &alerts["alerts"][0];
        assert_eq!((&alert["from"], &alert["to"]), (&json!("healthy"), &json!("mm-breach")));
        assert_eq!(alert["health"], listed["health"]);

        // A quiet book adds nothing: no sample is written while the figures stay the same.
        let count = |h: &Value| h["samples"].as_array().unwrap().len();
        let samples = count(&history);
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        assert_eq!(count(&get(a, path).await), samples, "samples of unchanged figures");

        check_history_csv_and_paging(a, path, &listed, &seq).await;
        let markets = get(a, "/api/markets/history").await["markets"].clone();
        let last = markets.as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["seq"], seq);
        let pushed = moved_market(0.9)["underlyings"]["BTC"]["index"].as_f64().unwrap();
        assert_eq!(last["indices"]["BTC"].as_f64().unwrap().to_bits(), pushed.to_bits());
        check_history_access(a).await;
        running.server.abort();
        running.housekeeping.abort();
    }
}

/// The CSV export repeats the JSON's figures bit for bit; a page of one sample leads to the next.
async fn check_history_csv_and_paging(a: SocketAddr, path: &str, listed: &Value, seq: &Value) {
    let csv = call(a, "GET", &format!("{path}?format=csv"), None, &Value::Null).await;
    assert_eq!(csv.status, 200, "{}", csv.body);
    let mut lines = csv.body.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[..3], ["at", "market_seq", "status"]);
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let line = lines.find(|l| l.split(',').nth(1) == Some(seq.to_string().as_str())).unwrap();
    let cells: Vec<&str> = line.split(',').collect();
    assert_eq!(cells[column("status")], "mm-breach");
    let equity: f64 = cells[column("equity")].parse().unwrap();
    assert_eq!(equity.to_bits(), usd(&listed["figures"], "equity").to_bits());

    let page = get(a, &format!("{path}?limit=1")).await;
    assert_eq!(page["samples"].as_array().unwrap().len(), 1);
    let after = page["next_after"].as_i64().unwrap();
    let next = get(a, &format!("{path}?limit=1&after={after}")).await;
    assert!(next["samples"][0]["at"].as_i64().unwrap() > after, "{next}");
    for (query, field) in [("limit=0", "limit"), ("from=10&to=10", "to"), ("limit=x", "query")] {
        let reply = call(a, "GET", &format!("{path}?{query}"), None, &Value::Null).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(reply.json()["error"]["field"], field, "{query}");
    }
    let unknown = call(a, "GET", "/api/accounts/nobody/history", None, &Value::Null).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

/// An account key reads its own alerts only; another account's are refused by name.
async fn check_history_access(a: SocketAddr) {
    let body = json!({ "role": "account", "accounts": ["eth-puts"], "label": "history test" });
    let made = call(a, "POST", "/api/keys", Some("history-key"), &body).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let key = made.json()["key"].as_str().unwrap().to_owned();
    let null = &Value::Null;
    let theirs = call_as(a, Some(&key), "GET", "/api/alerts?account=perp-trader", None, null).await;
    assert_eq!(theirs.status, 403, "{}", theirs.body);
    let own = call_as(a, Some(&key), "GET", "/api/alerts", None, null).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let own = own.json()["alerts"].clone();
    assert!(own.as_array().unwrap().iter().all(|x| x["account"] == "eth-puts"), "{own}");
    let all = call(a, "GET", "/api/alerts?format=csv", None, null).await;
    assert_eq!(all.status, 200, "{}", all.body);
    let mut lines = all.body.lines();
    assert_eq!(lines.next(), Some("seq,at,account,from,to,health,market_seq"));
    assert!(lines.any(|l| l.contains(",perp-trader,healthy,mm-breach,")), "{}", all.body);
}

/// Three hours of history stored as if received every 10 s (markets) and every minute (margin
/// samples of five accounts, alerts), then pruned at the end with a raw hour, a minute step and
/// two hours kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_bounds_the_database() {
    use service::store::Store;
    let base: i64 = 1_800_000_000; // a multiple of 60
    let now = base + 3 * 3_600;
    let retention =
        service::history::Retention { raw_secs: 3_600, step_secs: 60, kept_secs: 7_200 };
    for url in databases("prune").await {
        let store = Store::open(&url).await.unwrap();
        fill_three_hours(&store, base, now).await;
        let stored = store.history_rows().await.unwrap();
        assert_eq!((stored.markets, stored.samples, stored.alerts), (1_080, 900, 180));
        assert_eq!(stored.receipts, 2);

        store.prune(now, &retention).await.unwrap();
        let kept = store.history_rows().await.unwrap();
        // The last hour raw (360 pushes), the hour before one a minute (60), nothing older.
        assert_eq!(kept.markets, 360 + 60);
        // Two hours of one sample a minute, for five accounts; two hours of alerts.
        assert_eq!((kept.samples, kept.alerts, kept.receipts), (5 * 120, 120, 1));
        let thinned = store.markets(service::store::Window {
            from: now - 7_200,
            to: now - 3_600,
            after: None,
            limit: 1_000,
        });
        let thinned = thinned.await.unwrap();
        assert!(thinned.windows(2).all(|w| w[1].received_at - w[0].received_at == 60));
        // Pruning again at the same time deletes nothing; long after, only the current market
        // is left.
        assert_eq!(store.prune(now, &retention).await.unwrap(), service::store::Pruned::default());
        store.prune(now + 86_400 * 30, &retention).await.unwrap();
        let left = store.history_rows().await.unwrap();
        assert_eq!((left.markets, left.samples, left.alerts, left.receipts), (1, 0, 0, 0));
        let current = store.load().await.unwrap().market.unwrap();
        assert_eq!(current.0, 1_080);
    }
}

/// Markets every 10 s, samples of five accounts and alerts every minute, from `base` for three
/// hours; a receipt older than a day before `now` and a fresh one.
async fn fill_three_hours(store: &service::store::Store, base: i64, now: i64) {
    use service::store::{AlertRow, Op, Receipt, Sample};
    let markets: Vec<Op> = (0..1_080)
        .map(|i| Op::Market {
            seq: i + 1,
            valuation: "2026-12-01T00:00:00Z".into(),
            document: "{}".into(),
            received_at: base + 10 * i,
            indices: "{}".into(),
        })
        .collect();
    store.commit(&markets, None).await.unwrap();
    let sample = |account: usize, minute: i64| Sample {
        account: format!("a{account}"),
        at: base + 60 * minute,
        market_seq: 1,
        status: "healthy".into(),
        health: "2.0".into(),
        figures: "[]".into(),
        stale: "null".into(),
        error: String::new(),
    };
    let samples: Vec<Sample> = (0..180).flat_map(|m| (0..5).map(move |a| sample(a, m))).collect();
    store.insert_samples(&samples).await.unwrap();
    let alert = |minute: i64| AlertRow {
        seq: 0,
        at: base + 60 * minute,
        account: "a0".into(),
        from: "healthy".into(),
        to: "mm-breach".into(),
        health: "0.9".into(),
        market_seq: 1,
    };
    store.insert_alerts(&(0..180).map(alert).collect::<Vec<_>>()).await.unwrap();
    let receipt = |key: &str, created_at: i64| Receipt {
        key: key.into(),
        request: "r".into(),
        status: 200,
        response: "{}".into(),
        created_at,
    };
    store.commit(&[], Some(&receipt("old", now - 86_400 - 1))).await.unwrap();
    store.commit(&[], Some(&receipt("new", now - 60))).await.unwrap();
}

/// The sample market with BTC-PERPETUAL quoting cumulative funding index `index`.
fn market_with_funding(index: f64) -> Value {
    let mut market: Value = serde_json::from_str(formats::bundled::SAMPLE_MARKET_JSON).unwrap();
    market["instruments"]["BTC-PERPETUAL"]["funding_index"] = json!(index);
    market
}

/// A perpetual written while the market quotes a funding index is paid up to it; as the index
/// rises its funding accrues in equity (the long pays, at the coin's price), a settlement pays
/// it from the BTC balance as a `funding` flow with no figure moving, and the position is then
/// paid up to the new index. A funding index on anything but a perpetual is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_perpetual_pays_its_funding_at_settlement() {
    for url in databases("funding").await {
        let running = start(&url).await;
        let a = running.address;
        push_and_wait(a, &market_with_funding(1e-6)).await;
        let body = json!({ "id": "funded", "balances": { "BTC": "1", "USDC": "100000" },
            "positions": [{ "instrument": "BTC-PERPETUAL", "size": 1_000_000 }] });
        assert_eq!(call(a, "POST", "/api/accounts", Some("fund-1"), &body).await.status, 201);
        let stored = get(a, "/api/accounts/funded").await;
        assert_eq!(stored["positions"][0]["funding"], json!(1e-6), "{stored}");
        let before =
            usd(&row(&get(a, "/api/accounts?limit=1000").await, "funded")["figures"], "equity");

        let list = push_and_wait(a, &market_with_funding(1.05e-6)).await;
        let accrued = usd(&row(&list, "funded")["figures"], "equity");
        let due = product::funding_due(1_000_000.0, 1e-6, 1.05e-6);
        let btc_usd = get(a, "/api/markets/latest").await["underlyings"]["BTC"]["index"].as_f64();
        let cost = due * btc_usd.unwrap();
        assert!(((accrued - before) - cost).abs() < 1e-6 * cost.abs(), "{accrued} {before} {cost}");

        let settled = call(a, "POST", "/api/settlements", None, &Value::Null).await;
        assert_eq!(settled.status, 200, "{}", settled.body);
        let flows = settled.json()["flows"].clone();
        let flow =
            flows.as_array().unwrap().iter().find(|f| f["account"] == "funded").unwrap().clone();
        assert_eq!(
            (&flow["kind"], &flow["currency"]),
            (&json!("funding"), &json!("BTC")),
            "{flow}"
        );
        let amount: f64 = flow["amount"].as_str().unwrap().parse().unwrap();
        assert!((amount - due).abs() < 1e-15, "{amount} {due}");
        let account = get(a, "/api/accounts/funded").await;
        assert_eq!(account["positions"][0]["funding"], json!(1.05e-6), "{account}");
        let btc: f64 = account["balances"]["BTC"].as_str().unwrap().parse().unwrap();
        assert!((btc - (1.0 + due)).abs() < 1e-15, "{btc}");
        let after =
            usd(&row(&get(a, "/api/accounts?limit=1000").await, "funded")["figures"], "equity");
        assert!((after - accrued).abs() < 1e-9 * accrued.abs(), "{after} {accrued}");

        let path = "/api/accounts/funded/positions/BTC-25DEC26-100000-C";
        let refused =
            call(a, "PUT", path, Some("fund-2"), &json!({ "size": 1, "funding": 1.0 })).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert_eq!(refused.json()["error"]["field"], "funding");
        running.server.abort();
        running.recompute.abort();
    }
}

/// Position and balance writes published while market recomputes run (pushes every 20 ms) are
/// never lost: once the last market is recomputed, every account's figures equal a full rebuild
/// of the stored model, bit for bit, and the sizes written last are the ones margined.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_writes_during_recomputes_are_never_lost() {
    for url in databases("race").await {
        let running = start(&url).await;
        let a = running.address;
        let pusher = tokio::spawn(async move {
            let mut last = Value::Null;
            for i in 0..20 {
                let market = moved_market(if i % 2 == 0 { 1.01 } else { 1.0 });
                let pushed = call(a, "POST", "/api/markets", None, &market).await;
                assert_eq!(pushed.status, 202, "{}", pushed.body);
                last = pushed.json()["seq"].clone();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            last
        });
        for n in 0..40 {
            let (path, body) = if n % 2 == 0 {
                let size = -1 - n;
                let path = "/api/accounts/short-strangle/positions/BTC-25DEC26-120000-C";
                (path, json!({ "size": size }))
            } else {
                (
                    "/api/accounts/eth-puts/balances/USDC",
                    json!({ "amount": format!("{}", 1_000 + n) }),
                )
            };
            let key = format!("race-{n}");
            assert_eq!(call(a, "PUT", path, Some(&key), &body).await.status, 200, "{path}");
        }
        let last = pusher.await.unwrap();
        let mut list = get(a, "/api/accounts?limit=1000").await;
        for _ in 0..300 {
            if list["market_seq"] == last {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            list = get(a, "/api/accounts?limit=1000").await;
        }
        assert_eq!(list["market_seq"], last);
        let service = &running.service;
        let empty = service::compute::LiveState::default();
        let rebuilt = service::compute::publish_all(&service.model(), &empty, true, 0);
        assert_eq!(state_by_id(&service.published()), state_by_id(&rebuilt));
        let strangle = get(a, "/api/accounts/short-strangle").await;
        let mut legs = strangle["positions"].as_array().unwrap().iter();
        let size = legs.find(|p| p["instrument"] == "BTC-25DEC26-120000-C").unwrap();
        assert_eq!(size["size"], json!(-39.0));
        running.server.abort();
        running.recompute.abort();
    }
}

/// A what-if with `cross_spread` fills a trade without a price half the quoted spread from the
/// mark (above it for a buy), and recording the same trades leaves the account the what-if said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_crossing_the_spread_pay_half_the_quoted_bid_ask() {
    let market: Value = serde_json::from_str(formats::bundled::SAMPLE_MARKET_JSON).unwrap();
    let quote = &market["instruments"]["BTC-25DEC26-120000-C"];
    let half = (quote["best_ask"].as_f64().unwrap() - quote["best_bid"].as_f64().unwrap()) / 2.0;
    for url in databases("spread").await {
        let running = start(&url).await;
        let a = running.address;
        let path = "/api/accounts/short-strangle";
        let trade = json!([{ "instrument": "BTC-25DEC26-120000-C", "size": 5 }]);
        let at_mark = json!({ "trades": trade });
        let crossing = json!({ "trades": trade, "cross_spread": true });
        let mark = call(a, "POST", &format!("{path}/what-if"), None, &at_mark).await.json();
        let crossed = call(a, "POST", &format!("{path}/what-if"), None, &crossing).await.json();
        let price = |v: &Value| v["fills"][0]["price"].as_f64().unwrap();
        let paid = price(&crossed) - price(&mark);
        assert!((paid - half).abs() < 1e-9 * half, "{paid} against half the spread {half}");
        let done = call(a, "POST", &format!("{path}/trades"), Some("cross-1"), &crossing).await;
        assert_eq!(done.status, 200, "{}", done.body);
        let list = get(a, "/api/accounts?limit=1000").await;
        assert_eq!(row(&list, "short-strangle")["figures"], crossed["after"]);
        running.server.abort();
        running.recompute.abort();
    }
}

/// The liquidation route gives the library's plan, bit for bit, for the account's own
/// portfolio on the current market and methodology; an unknown profile is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_liquidation_plan_route_is_the_librarys_plan() {
    let url = databases("liquidation").await.remove(0);
    let running = start(&url).await;
    let a = running.address;
    let book = json!({ "balances": { "USDC": "190000" },
        "positions": [{ "instrument": "BTC_USDC-PERPETUAL", "size": 12 },
                      { "instrument": "BTC_USDC-25DEC26-100000-C", "size": -20 }] });
    let mut body = book.clone();
    body["id"] = json!("liq");
    assert_eq!(call(a, "POST", "/api/accounts", Some("liq"), &body).await.status, 201);
    let portfolio = formats::portfolio::PortfolioDocument::from_json(&book.to_string())
        .and_then(|d| d.to_portfolio())
        .unwrap();
    let engine = margin::Engine::new(testkit::ballast_pm()).unwrap();
    let priced = engine.price_for(&testkit::sample_market(), &portfolio).unwrap();
    for name in ["ballast", "derive", "dydx-v4"] {
        let served = get(a, &format!("/api/accounts/liq/liquidation?profile={name}")).await;
        let profile = liquidation::Profile::bundled(name).unwrap();
        let plan = liquidation::plan(&priced, &portfolio, &profile).unwrap();
        assert_eq!(served["breached"], true, "{served}");
        assert_eq!(served["reached"], plan.reached);
        // Compared as the wire carries them: the library's number printed and read back by the
        // same JSON code as the route's (serde_json's default reader may round the last bit).
        let wire = |x: f64| serde_json::from_str::<Value>(&serde_json::to_string(&x).unwrap());
        assert_eq!(served["expected_cost_usd"], wire(plan.expected_cost_usd).unwrap(), "{name}");
        assert_eq!(served["before"]["equity_usd"], wire(plan.before.equity_usd).unwrap());
        assert_eq!(served["after"]["equity_usd"], wire(plan.after.equity_usd).unwrap(), "{name}");
        let trades = served["trades"].as_array().unwrap();
        assert_eq!(trades.len(), plan.trades.len());
        for (t, p) in trades.iter().zip(&plan.trades) {
            assert_eq!(t["instrument"], p.instrument.to_string());
            assert_eq!(t["size"], wire(p.size).unwrap());
        }
    }
    let refused =
        call(a, "GET", "/api/accounts/liq/liquidation?profile=bitmex", None, &Value::Null).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("profile"), "{}", refused.body);
    let missing = call(a, "GET", "/api/accounts/nobody/liquidation", None, &Value::Null).await;
    assert_eq!(missing.status, 404);
    running.server.abort();
}
