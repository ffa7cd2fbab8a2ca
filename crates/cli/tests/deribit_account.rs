// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! `ballast margin --deribit-positions --deribit-book [--deribit-index]` on the example account
//! in `examples/deribit/`, checked against identities and a hand computation, not against a
//! stored copy of its own output.

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/deribit")).join(name)
}

fn ballast(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The JSON report of `positions` under `methodology` on the example book and index.
fn report(methodology: &str, positions: &str) -> serde_json::Value {
    let book = example("book_summary_btc.json");
    let index = example("index_btc_usd.json");
    let (ok, stdout, stderr) = ballast(&[
        "margin",
        "--methodology",
        methodology,
        "--deribit-positions",
        positions,
        "--deribit-book",
        book.to_str().unwrap(),
        "--deribit-index",
        index.to_str().unwrap(),
        "--no-liquidation",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn figure(report: &serde_json::Value, currency: &str, key: &str) -> f64 {
    let line = report["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["currency"] == currency)
        .unwrap_or_else(|| panic!("no {currency} line in {report}"));
    line[key].as_f64().unwrap()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ballast-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn example_account_is_margined_in_both_modes() {
    let positions = example("positions.json");
    let positions = positions.to_str().unwrap();
    let segregated = report("deribit-pm-segregated", positions);
    let cross = report("deribit-pm", positions);
    // Segregated margin is stated in BTC, cross margin in USD; MM = 0.8 × IM in both.
    for (r, currency) in [(&segregated, "BTC"), (&cross, "USD")] {
        let im = figure(r, currency, "initial_margin");
        let mm = figure(r, currency, "maintenance_margin");
        assert!(im > 0.0);
        assert!((mm - 0.8 * im).abs() <= 1e-12 * im, "{currency}: {mm} vs 0.8 × {im}");
    }
    // 9 buckets × 3 vol moves + 8 extended moves per underlying.
    assert_eq!(segregated["units"][0]["pnl"].as_array().unwrap().len(), 35);
}

#[test]
fn perpetual_alone_matches_the_hand_computation() {
    // Long 50,000 USD of BTC-PERPETUAL, marked at 95,020 with the index at 95,000 (both from the
    // example files). Coin P&L at −16 %: 50,000/95,020 · (1 − 1/0.84); roll shock on the floor:
    // 0.01 per coin of position, 50,000/95,020 coins (Deribit's `size_currency`).
    let bare = r#"[{"instrument_name":"BTC-PERPETUAL","size":50000.0,"kind":"future",
        "size_currency":0.5262,"mark_price":95020.0,"direction":"buy"}]"#;
    let path = temp_file("perpetual.json", bare);
    let r = report("deribit-pm-segregated", path.to_str().unwrap());
    let loss = 50_000.0 / 95_020.0 * 0.16 / 0.84;
    let roll = 0.01 * 50_000.0 / 95_020.0;
    let im = figure(&r, "BTC", "initial_margin");
    assert!((figure(&r, "BTC", "scan_loss") - loss).abs() < 1e-9, "{r}");
    assert!((im - (loss + roll)).abs() < 1e-9, "{im} vs {}", loss + roll);
    // The same positions inside a JSON-RPC envelope give the same report.
    let envelope = format!(r#"{{"jsonrpc":"2.0","id":1,"result":{bare},"usIn":1,"usOut":2}}"#);
    let wrapped = temp_file("envelope.json", &envelope);
    assert_eq!(report("deribit-pm-segregated", wrapped.to_str().unwrap()), r);
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(wrapped);
}

#[test]
fn text_report_states_margin_in_settlement_currency_and_usd() {
    let positions = example("positions.json");
    let book = example("book_summary_btc.json");
    let (ok, stdout, stderr) = ballast(&[
        "margin",
        "--methodology",
        "deribit-pm-segregated",
        "--deribit-positions",
        positions.to_str().unwrap(),
        "--deribit-book",
        book.to_str().unwrap(),
        "--no-liquidation",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("Deribit account margin"), "{stdout}");
    assert!(stdout.lines().any(|l| l.trim_start().starts_with("BTC") && l.contains("USD IM")));
    // Every calibrated expiry reports its fit.
    assert_eq!(stderr.matches("SVI fit").count(), 2, "{stderr}");
}

#[test]
fn positions_without_a_book_are_refused() {
    let positions = example("positions.json");
    let (ok, _, stderr) = ballast(&["margin", "--deribit-positions", positions.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("--deribit-book"), "{stderr}");
}
