//! The audit log against the real service on SQLite: the first admin key, a market push, a
//! methodology, a key created and revoked, a settlement each leave one entry with who and
//! what; the chain verifies; editing an entry in the database, or deleting one, is named at the
//! right entry (issue 14).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use serde_json::json;
use service::audit;
use service::client::Client;

const ADMIN: &str =
    "bk_0000000000a0d170_5555555555555555555555555555555555555555555555555555555555555555";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_chained_and_tampering_is_named() {
    let database = common::sqlite("audit-log");
    let config = common::config(database.clone(), ADMIN);
    let running = service::start(&config).await.unwrap();
    let mut client = Client::connect(running.address).await.unwrap().authorized(ADMIN);
    let market = formats::bundled::SAMPLE_MARKET_JSON.as_bytes();
    let pushed = client.request("POST", "/api/markets", &[], market).await.unwrap();
    assert_eq!(pushed.status, 202, "{}", pushed.body);
    let toml = formats::bundled::bundled_text("deribit-pm").unwrap();
    let body = json!({ "toml": toml }).to_string();
    let added = client.request("POST", "/api/methodologies", &[], body.as_bytes()).await.unwrap();
    assert!(added.status == 201 || added.status == 200, "{}", added.body);
    let body = json!({ "methodology": "deribit-pm" }).to_string();
    let headers = [("Idempotency-Key", "audit-move")];
    let path = "/api/accounts/eth-puts/methodology";
    let moved = client.request("PUT", path, &headers, body.as_bytes()).await.unwrap();
    assert_eq!(moved.status, 200, "{}", moved.body);
    let body = json!({ "role": "viewer", "label": "auditor" }).to_string();
    let made = client.request("POST", "/api/keys", &[], body.as_bytes()).await.unwrap();
    let id = made.json()["record"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/keys/{id}");
    assert_eq!(client.request("DELETE", &path, &[], b"").await.unwrap().status, 200);
    let settled = client.request("POST", "/api/settlements", &[], b"").await.unwrap();
    assert_eq!(settled.status, 200, "{}", settled.body);
    let store = running.service.store();
    let entries = store.audit_log().await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.note.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "key.create",
            "market",
            "methodology",
            "account.methodology",
            "key.create",
            "key.revoke",
            "settlement"
        ]
    );
    assert_eq!(entries[0].note.actor, "start", "the first admin key is made at start");
    assert!(entries[1..].iter().all(|e| e.note.actor == "0000000000a0d170"), "{entries:?}");
    assert!(entries[2].note.subject.starts_with("deribit-pm@"), "{:?}", entries[2]);
    assert_eq!(audit::verify(&entries), Ok(()));
    running.server.abort();
    running.recompute.abort();

    // Tampering with the stored log: an edited subject, then a deleted entry.
    let pool = sqlx::SqlitePool::connect(&database).await.unwrap();
    sqlx::query("UPDATE audit_log SET subject = 'nothing to see' WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    let edited = store.audit_log().await.unwrap();
    let broken = audit::verify(&edited).unwrap_err();
    assert_eq!(broken.seq, 3, "{broken}");
    sqlx::query("DELETE FROM audit_log WHERE seq = 3").execute(&pool).await.unwrap();
    let removed = store.audit_log().await.unwrap();
    assert_eq!(audit::verify(&removed).unwrap_err().seq, 4);
}

/// Idempotency receipts are kept for a day: a keyed write prunes every receipt older than
/// [`service::store::RECEIPTS_KEPT_SECS`] before the write's own, in the same transaction, so the
/// table is bounded by a day of writes; a receipt inside the window still replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_receipts_expire() {
    use service::store::{RECEIPTS_KEPT_SECS, Receipt, Store};
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("audit-receipts");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("r.db").display())).await.unwrap();
    let receipt = |key: &str, created_at: i64| Receipt {
        key: key.to_owned(),
        request: "POST /api/accounts".to_owned(),
        status: 201,
        response: "{}".to_owned(),
        created_at,
    };
    let now = 1_800_000_000;
    store.commit(&[], Some(&receipt("old", now - RECEIPTS_KEPT_SECS - 1))).await.unwrap();
    store.commit(&[], Some(&receipt("recent", now - RECEIPTS_KEPT_SECS + 1))).await.unwrap();
    assert!(store.replay("old").await.unwrap().is_some(), "kept until a write prunes it");
    store.commit(&[], Some(&receipt("now", now))).await.unwrap();
    assert!(store.replay("old").await.unwrap().is_none(), "pruned");
    assert_eq!(
        store.replay("recent").await.unwrap(),
        Some(receipt("recent", now - RECEIPTS_KEPT_SECS + 1))
    );
}
