// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! `ballast settle` and the entry price in `ballast margin`, on the bundled sample market:
//! checked against the inverse perpetual's P&L formula, not against a stored copy of the output.

use std::path::PathBuf;
use std::process::Command;

fn ballast(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn portfolio_file(name: &str, json: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, json).unwrap();
    path
}

/// Long 1,000,000 USD of the perpetual entered at 90,000, on the sample market (perpetual mark
/// 95,009.5): 1e6 · (1/90,000 − 1/95,009.5) BTC of P&L, in the report and, once settled, in the
/// BTC balance, the entry reset to the mark.
#[test]
fn a_perpetual_settles_its_pnl_into_its_coin() {
    let path = portfolio_file(
        "settle-perpetual.json",
        r#"{ "positions": [ { "instrument": "BTC-PERPETUAL", "size": 1000000, "entry": 90000 } ],
             "balances": { "BTC": "1" } }"#,
    );
    let pnl = 1e6 * (1.0 / 90_000.0 - 1.0 / 95_009.5);
    let (ok, stdout, stderr) =
        ballast(&["margin", "--portfolio", path.to_str().unwrap(), "--no-liquidation", "--json"]);
    assert!(ok, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let line = &report["positions"][0];
    assert_eq!((line["entry"].as_f64(), line["mark"].as_f64()), (Some(90_000.0), Some(95_009.5)));
    assert!((line["unrealised_pnl"].as_f64().unwrap() - pnl).abs() < 1e-15, "{line}");
    assert_eq!(line["pnl_currency"], "BTC");

    let (ok, stdout, stderr) =
        ballast(&["settle", "--portfolio", path.to_str().unwrap(), "--json"]);
    assert!(ok, "{stderr}");
    let settled: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(settled["positions"][0]["entry"], 95_009.5);
    let btc: f64 = settled["balances"]["BTC"].as_str().unwrap().parse().unwrap();
    assert!((btc - (1.0 + pnl)).abs() < 1e-15, "{btc}");
}

/// An expired option without a settlement price in the market is refused, naming it.
#[test]
fn an_expired_contract_without_a_settlement_price_is_refused() {
    let path = portfolio_file(
        "settle-expired.json",
        r#"{ "positions": [ { "instrument": "BTC-13NOV26-90000-C", "size": 1 } ] }"#,
    );
    let (ok, _, stderr) = ballast(&["settle", "--portfolio", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("positions.BTC-13NOV26-90000-C: expired"), "{stderr}");
}
