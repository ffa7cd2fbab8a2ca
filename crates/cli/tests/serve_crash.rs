//! Crash test of `ballast serve`: stream idempotent writes, `kill -9` the process mid-stream,
//! restart it on the same database and check that every acknowledged write is there, with its
//! first answer on replay; on SQLite always and on PostgreSQL when `BALLAST_TEST_POSTGRES_URL`
//! is set (`scripts/test` starts a cluster; CI always does).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use service::client::Client;

/// Writers streaming at the same time, so that some writes are in flight at the kill.
const WRITERS: usize = 4;
/// Acknowledged writes to see before the kill.
const ACKED_BEFORE_KILL: usize = 60;
/// The admin key the test provisions (a test value, public).
const KEY: &str =
    "bk_00000000000c0ffe_1111111111111111111111111111111111111111111111111111111111111111";

/// Starts `ballast serve` on `database`, with [`KEY`] as its first admin key, and reads the
/// address it prints.
fn serve(database: &str) -> (Child, SocketAddr) {
    let key_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ballast-crash.key");
    std::fs::write(&key_file, KEY).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
        .arg("--no-sample-accounts")
        .arg("--admin-key-file")
        .arg(&key_file)
        // The writers stream as fast as the disk allows: no rate limit to meet.
        .args(["--rate-limit", "1000000"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.split("http://").nth(1).unwrap().split('/').next().unwrap();
    (child, address.parse().unwrap())
}

/// The body of write `i`: a new account with a position and a balance that identify `i`.
fn write(i: usize) -> Value {
    json!({
        "id": format!("crash-{i}"),
        "positions": [{ "instrument": "BTC-PERPETUAL", "size": 1000.0 * (i + 1) as f64 }],
        "balances": { "USDC": format!("{}", 100_000 + i) },
    })
}

async fn stream(address: SocketAddr, writer: usize, acked: Arc<Mutex<Vec<(usize, String)>>>) {
    let Ok(client) = Client::connect(address).await else { return };
    let mut client = client.authorized(KEY);
    for i in (writer..).step_by(WRITERS) {
        let key = format!("crash-key-{i}");
        let body = write(i).to_string();
        let headers = [("Idempotency-Key", key.as_str())];
        match client.request("POST", "/api/accounts", &headers, body.as_bytes()).await {
            Ok(reply) if reply.status == 201 => acked.lock().unwrap().push((i, reply.body)),
            Ok(reply) => panic!("write {i} refused: {} {}", reply.status, reply.body),
            Err(_) => return, // the server died
        }
    }
}

async fn crash_and_recover(database: &str) {
    let (mut child, address) = serve(database);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> =
        (0..WRITERS).map(|w| tokio::spawn(stream(address, w, Arc::clone(&acked)))).collect();
    while acked.lock().unwrap().len() < ACKED_BEFORE_KILL {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL: no shutdown code runs
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let (mut child, address) = serve(database);
    let mut client = Client::connect(address).await.unwrap().authorized(KEY);
    for (i, first_answer) in &acked {
        let account = client.get(&format!("/api/accounts/crash-{i}")).await.unwrap();
        assert_eq!(account.status, 200, "acknowledged write {i} lost");
        let stored = account.json();
        let expected = write(*i);
        assert_eq!(stored["positions"][0]["size"], expected["positions"][0]["size"]);
        assert_eq!(stored["balances"]["USDC"], expected["balances"]["USDC"]);
        let key = format!("crash-key-{i}");
        let headers = [("Idempotency-Key", key.as_str())];
        let body = expected.to_string();
        let replay =
            client.request("POST", "/api/accounts", &headers, body.as_bytes()).await.unwrap();
        assert_eq!((replay.status, &replay.body), (201, first_answer), "replay of write {i}");
    }
    // Writes in flight at the kill were either committed whole or not at all.
    let list = client.get("/api/accounts?limit=1000").await.unwrap().json();
    for row in list["accounts"].as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        let i: usize = id.trim_start_matches("crash-").parse().unwrap();
        let stored = client.get(&format!("/api/accounts/{id}")).await.unwrap().json();
        assert_eq!(stored["balances"]["USDC"], write(i)["balances"]["USDC"], "{id} partial");
    }
    assert!(list["total"].as_u64().unwrap() as usize >= acked.len());
    child.kill().unwrap();
    child.wait().unwrap();
    // The audit log survived the kill too: its chain is whole.
    let audit = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["audit", "verify", "--database", database])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success(), "{said}{}", String::from_utf8_lossy(&audit.stderr));
    assert!(said.starts_with("audit log intact: "), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_sqlite() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ballast-crash");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    crash_and_recover(&format!("sqlite://{}", dir.join("crash.db").display())).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_postgres() {
    let Ok(admin) = std::env::var("BALLAST_TEST_POSTGRES_URL") else {
        assert!(std::env::var_os("CI").is_none(), "BALLAST_TEST_POSTGRES_URL must be set under CI");
        eprintln!(
            "\n*** WARNING: BALLAST_TEST_POSTGRES_URL is unset: the PostgreSQL crash test is \
             SKIPPED. Run ./scripts/test, which starts a throwaway cluster. ***\n"
        );
        return;
    };
    let name = format!("ballast_crash_{}", std::process::id());
    let url = service::store::create_postgres_database(&admin, &name).await.unwrap();
    crash_and_recover(&url).await;
}
