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
