// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! `ballast net` end to end on the example cross-venue book: every hedge nets below its
//! standalone requirement, the one-venue account keeps its figure, a stale venue withdraws the
//! netting, and bad input is refused by its path.

use std::path::PathBuf;
use std::process::Command;

fn ballast(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn example() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/netting");
    root.join("cross-venue-book.json").to_str().unwrap().to_owned()
}

fn released(stdout: &str, account: &str) -> f64 {
    let block = stdout.split(&format!("\naccount {account}:")).nth(1).unwrap();
    let line = block.lines().find(|l| l.contains("released")).unwrap();
    let tail = line.split("released ").nth(1).unwrap();
    tail.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn the_example_book_nets_every_hedge_and_keeps_the_one_venue_account() {
    let (ok, stdout, stderr) = ballast(&["net", "--book", &example()]);
    assert!(ok, "{stderr}");
    for account in ["delta-hedged-calls", "basis", "covered-calls"] {
        assert!(stdout.contains(&format!("account {account}: netted")), "{stdout}");
        assert!(released(&stdout, account) > 0.0, "{account}: {stdout}");
    }
    assert!(stdout.contains("account one-venue: standalone: one venue"), "{stdout}");
    assert_eq!(released(&stdout, "one-venue"), 0.0);
    // Ten minutes later the lending protocol's feed (07:58) is past the 600 s bound.
    let (ok, stdout, _) = ballast(&["net", "--book", &example(), "--at", "2026-11-20T08:09:00Z"]);
    assert!(ok);
    assert!(stdout.contains("account basis: standalone in grace until"), "{stdout}");
    assert!(stdout.contains("lending stale"), "{stdout}");
    assert!(stdout.contains("account delta-hedged-calls: netted"), "{stdout}");
}

#[test]
fn bad_books_are_refused_by_path() {
    let text = std::fs::read_to_string(example()).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cases = [
        (text.replace(r#""venue": "perps""#, r#""venue": "okx""#), "unknown venue \"okx\""),
        (text.replace(r#""amount": "8""#, r#""amount": "9""#), "accounts[2].liens[0].amount"),
        (
            text.replacen(
                r#"{ "venue": "lending", "balances": { "BTC": "8" } }"#,
                r#"{ "venue": "lending", "controller": true, "balances": { "BTC": "8" } }"#,
                1,
            ),
            "two controllers",
        ),
        (
            text.replace(r#""liquidation": "aave-v3""#, r#""liquidation": "compound""#),
            "liquidation profile",
        ),
    ];
    for (i, (book, expected)) in cases.iter().enumerate() {
        let path = dir.join(format!("net-bad-{i}.json"));
        std::fs::write(&path, book).unwrap();
        let (ok, _, stderr) = ballast(&["net", "--book", path.to_str().unwrap()]);
        assert!(!ok, "case {i} accepted");
        assert!(stderr.contains(expected), "case {i}: {stderr}");
    }
}

/// The admin key of the served instance (a public test value).
const KEY: &str =
    "bk_00000000000000ce_4444444444444444444444444444444444444444444444444444444444444444";

/// One number everywhere: `ballast net --json` and a running `ballast serve`'s `POST
/// /api/netting` give the same document, bit for bit, for the example book now and ten minutes
/// later (a stale venue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_the_service_give_the_same_netting() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ballast-net-serve");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("admin.key");
    std::fs::write(&key_file, KEY).unwrap();
    let database = format!("sqlite://{}", dir.join("ballast.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_ballast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .arg("--no-sample-accounts")
        .arg("--admin-key-file")
        .arg(&key_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let address = line.split("http://").nth(1).unwrap().split('/').next().unwrap();
    let address: std::net::SocketAddr = address.parse().unwrap();
    let body = std::fs::read_to_string(example()).unwrap();
    for (query, at) in [("", None), ("?at=2026-11-20T08:09:00Z", Some("2026-11-20T08:09:00Z"))] {
        let client = service::client::Client::connect(address).await.unwrap();
        let mut client = client.authorized(KEY);
        let path = format!("/api/netting{query}");
        let reply = client.request("POST", &path, &[], body.as_bytes()).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let example_path = example();
        let mut args: Vec<&str> = vec!["net", "--book", &example_path, "--json"];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let (ok, stdout, stderr) = ballast(&args);
        assert!(ok, "{stderr}");
        let cli: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(cli, reply.json(), "CLI and service differ at {at:?}");
        assert!(stdout.contains("\"netted_im\""), "{stdout}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}
