//! `POST /api/netting` on a real service: the example cross-venue book gets the netting library's
//! document to the bit on the service's market, a stale venue's accounts fall back to standalone,
//! and bad books are refused by their path without a partial answer.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use std::net::SocketAddr;

use formats::venues::{NettingDocument, VenueBookDocument};
use margin::Engine;
use netting::{CrossBook, Netter, Policy};
use serde_json::Value;
use service::client::{Client, Reply};

/// The admin key of the test service (a public test value).
const ADMIN: &str =
    "bk_00000000000000ad_3333333333333333333333333333333333333333333333333333333333333333";

fn example() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/netting/cross-venue-book.json");
    std::fs::read_to_string(path).unwrap()
}

async fn post(address: SocketAddr, path: &str, body: &str) -> Reply {
    let mut client = Client::connect(address).await.unwrap().authorized(ADMIN);
    client.request("POST", path, &[], body.as_bytes()).await.unwrap()
}

/// The library's document for `text` on the bundled sample market at `at_secs` (the market's
/// valuation time when `None`), with the default policy.
fn library(text: &str, at_secs: Option<u64>) -> Value {
    let market = testkit::sample_market();
    let document = VenueBookDocument::from_json(text).unwrap();
    let (venues, accounts) = document
        .to_parts(|name| match formats::bundled::bundled(name).unwrap() {
            formats::methodology::Profile::Portfolio(m) => Ok(Engine::new(*m).unwrap()),
            formats::methodology::Profile::PerPosition(_) => Err("per position".into()),
        })
        .unwrap();
    let book = CrossBook::new(venues, accounts).unwrap();
    let standard = formats::bundled::standard_set().unwrap();
    let now = at_secs.unwrap_or(u64::try_from(market.valuation().secs()).unwrap());
    let policy = Policy::new(600, 3_600).unwrap();
    let results = Netter::new(&book, &market, &standard, policy, now).unwrap().run(&book);
    let ids: Vec<&str> = book.accounts().iter().map(|a| a.id.as_str()).collect();
    serde_json::to_value(NettingDocument::of(&standard, now, &ids, &results)).unwrap()
}

fn account<'a>(document: &'a Value, id: &str) -> &'a Value {
    let accounts = document["accounts"].as_array().unwrap();
    accounts.iter().find(|a| a["id"] == id).unwrap()
}

/// A decimal USD string as raw 1e-18 units, for exact sums.
fn raw(text: &Value) -> i128 {
    basics::Money::parse(text.as_str().unwrap(), basics::Currency::USD, basics::Rounding::Down)
        .unwrap()
        .raw()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_nets_a_book_as_the_library_does_and_withdraws_a_stale_venue() {
    let database = common::sqlite("ballast-netting-route");
    let running = service::start(&common::config(database, ADMIN)).await.unwrap();
    let a = running.address;
    let reply = post(a, "/api/netting", &example()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let served = reply.json();
    assert_eq!(served, library(&example(), None), "the service's document is the library's");
    for id in ["delta-hedged-calls", "basis", "covered-calls"] {
        let n = account(&served, id);
        assert_eq!(n["status"], "netted", "{n}");
        assert!(raw(&n["released_im"]) > 0, "{n}");
        let credited: i128 =
            n["legs"].as_array().unwrap().iter().map(|l| raw(&l["credited_im"])).sum();
        assert_eq!(credited, raw(&n["netted_im"]), "the parts sum to the netted IM: {n}");
    }
    assert_eq!(account(&served, "one-venue")["reason"], "one-venue");
    // Ten minutes later the lending protocol's feed is past the 600 s bound.
    let later = "/api/netting?at=2026-11-20T08:09:00Z";
    let reply = post(a, later, &example()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let stale = reply.json();
    assert_eq!(stale, library(&example(), Some(1_795_162_140)));
    assert_eq!(account(&stale, "basis")["status"], "grace");
    assert_eq!(account(&stale, "basis")["reason"], "stale:lending");
    assert_eq!(account(&stale, "delta-hedged-calls")["status"], "netted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_books_are_refused_by_their_path() {
    let database = common::sqlite("ballast-netting-bad");
    let running = service::start(&common::config(database, ADMIN)).await.unwrap();
    let a = running.address;
    let text = example();
    let cases = [
        (text.replace(r#""venue": "perps""#, r#""venue": "okx""#), 422, "okx"),
        (text.replace(r#""amount": "8""#, r#""amount": "9""#), 422, "accounts[2].liens[0].amount"),
        (text.replacen(r#""deribit-pm""#, r#""no-such-pm""#, 1), 422, "venues[1].methodology"),
        (text.replacen(r#""aave-v3""#, r#""nobody""#, 1), 422, "venues[2].liquidation"),
        (text.replacen('{', "[", 1), 400, "body"),
    ];
    for (body, status, named) in cases {
        let reply = post(a, "/api/netting", &body).await;
        assert_eq!(reply.status, status, "{named}: {}", reply.body);
        assert!(reply.body.contains(named), "{named}: {}", reply.body);
    }
    let reply = post(a, "/api/netting?stale_after_secs=0", &text).await;
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert!(reply.body.contains("stale_after_secs"), "{}", reply.body);
}

async fn call(address: SocketAddr, key: &str, method: &str, path: &str, body: &str) -> Reply {
    let mut client = Client::connect(address).await.unwrap().authorized(key);
    client.request(method, path, &[], body.as_bytes()).await.unwrap()
}

/// A stored book is netted on each read exactly as the same book posted, survives a restart
/// on each database, is only replaced by a book that passes every check, and is the
/// operator's view: a viewer key is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_book_is_netted_on_read_and_survives_a_restart() {
    for url in common::databases("netting_book").await {
        let running = service::start(&common::config(url.clone(), ADMIN)).await.unwrap();
        let a = running.address;
        let none = call(a, ADMIN, "GET", "/api/netting", "").await;
        assert_eq!(none.status, 404, "{}", none.body);
        let stored = call(a, ADMIN, "PUT", "/api/netting/book", &example()).await;
        assert_eq!(stored.status, 200, "{}", stored.body);
        assert_eq!(stored.json()["accounts"], 4, "{}", stored.body);
        let read = call(a, ADMIN, "GET", "/api/netting", "").await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.json(), library(&example(), None), "stored and read: the library's");
        let posted = post(a, "/api/netting", &example()).await;
        assert_eq!(read.body, posted.body, "one document for one book, to the byte");
        // A book with a lien over its collateral is refused whole; the stored one stays.
        let bad = example().replace(r#""amount": "8""#, r#""amount": "9""#);
        let refused = call(a, ADMIN, "PUT", "/api/netting/book", &bad).await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains("accounts[2].liens[0].amount"), "{}", refused.body);
        let viewer = call(a, ADMIN, "POST", "/api/keys", r#"{"role":"viewer","label":"v"}"#).await;
        assert_eq!(viewer.status, 201, "{}", viewer.body);
        let viewer_key = viewer.json()["key"].as_str().unwrap().to_owned();
        let denied = call(a, &viewer_key, "GET", "/api/netting", "").await;
        assert_eq!(denied.status, 403, "{}", denied.body);
        running.server.abort();
        running.recompute.abort();
        drop(running);
        let again = service::start(&common::config(url, ADMIN)).await.unwrap();
        let reread = call(again.address, ADMIN, "GET", "/api/netting", "").await;
        assert_eq!(reread.status, 200, "{}", reread.body);
        assert_eq!(reread.body, read.body, "the stored book after a restart");
    }
}
