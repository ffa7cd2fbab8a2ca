// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! `ballast calibrate` on the real BTC history: the methodology it writes is a new version that
//! records its fit, reaches the target in sample when backtested again by `ballast backtest`,
//! and the report keeps in-sample and out-of-sample figures apart. Bad arguments are refused by
//! name.

use std::path::{Path, PathBuf};
use std::process::Command;

const HISTORY: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/history/btc-usd-daily.csv");

fn ballast(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// The shared history file, or `None` outside CI when it is absent (skipped loudly).
fn history() -> Option<&'static str> {
    let there = Path::new(HISTORY).exists();
    assert!(there || std::env::var_os("CI").is_none(), "{HISTORY} is absent under CI");
    if !there {
        eprintln!("SKIPPED: {HISTORY} is absent (it is required under CI)");
    }
    there.then_some(HISTORY)
}

/// A year's fit, tested on the year with March 2020.
#[test]
fn a_calibrated_methodology_covers_its_fit_and_reports_out_of_sample_apart() {
    let Some(history) = history() else { return };
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("calibrated-btc.toml");
    let out_text = out.to_str().unwrap();
    let (ok, report, stderr) = ballast(&[
        "calibrate",
        "--history",
        history,
        "--fit-from",
        "2018-07-01",
        "--fit-to",
        "2019-06-30",
        "--test-from",
        "2019-07-01",
        "--test-to",
        "2020-06-30",
        "--anti-procyclicality",
        "none",
        "--version",
        "2.0.0-test",
        "--out",
        out_text,
    ]);
    assert!(ok, "{stderr}");
    assert!(
        report.contains("| account | in sample (fit) | stressed period | out of sample (test) |")
    );
    assert!(report.contains("fit 2018-07-01 to 2019-06-30, test 2019-07-01 to 2020-06-30"));
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.contains("version = \"2.0.0-test\""), "{written}");
    assert!(written.contains("[calibration.underlyings.BTC]"));
    assert!(written.contains("anti_procyclicality = \"none\""));
    assert_eq!(in_sample_rows_at_most_one_percent(&report), 8, "{report}");
    // The methodology is a file `ballast backtest` takes: on the fit window the long and the
    // short perpetual exceed their margin on at most 1 % of the days.
    let (ok, json, stderr) = ballast(&[
        "backtest",
        "--history",
        history,
        "--methodology",
        out_text,
        "--from",
        "2018-07-01",
        "--to",
        "2019-06-30",
        "--book",
        &perpetuals(),
        "--horizon-days",
        "2",
        "--json",
        "--quiet",
    ]);
    assert!(ok, "{stderr}");
    let backtest: serde_json::Value = serde_json::from_str(&json).unwrap();
    let accounts = backtest["report"]["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2, "{json}");
    for account in accounts {
        let horizons = account["horizons"].as_array().unwrap();
        let two = horizons.iter().find(|h| h["horizon_days"] == 2).unwrap();
        let coverage = &two["initial_margin"];
        let (exceedances, observations) =
            (coverage["exceedances"].as_u64().unwrap(), coverage["observations"].as_u64().unwrap());
        assert!(observations > 300 && 100 * exceedances <= observations, "{account}");
    }
}

/// Checks that every calibration account's in-sample cell reads at most 1 %; returns the rows.
fn in_sample_rows_at_most_one_percent(report: &str) -> usize {
    let rows = report.lines().filter(|l| l.starts_with("| ") && l.contains('/'));
    let mut accounts = 0;
    for row in rows {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let fraction: Vec<u32> =
            cells[2].split([' ', '/']).take(2).map(|n| n.parse().unwrap()).collect();
        assert!(100 * fraction[0] <= fraction[1], "{row}");
        accounts += 1;
    }
    accounts
}

fn perpetuals() -> String {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("calibrate-perpetuals.json");
    let book = r#"{ "accounts": [
        { "id": "long", "positions": [ { "instrument": "BTC-PERPETUAL", "size": 100000 } ] },
        { "id": "short", "positions": [ { "instrument": "BTC-PERPETUAL", "size": -100000 } ] }
    ] }"#;
    std::fs::write(&path, book).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let Some(history) = history() else { return };
    let base = ["calibrate", "--history", history, "--fit-from", "2019-01-01", "--fit-to"];
    let (ok, _, stderr) =
        ballast(&[&base[..], &["2019-06-30", "--anti-procyclicality", "sometimes"]].concat());
    assert!(!ok && stderr.contains("--anti-procyclicality \"sometimes\""), "{stderr}");
    let (ok, _, stderr) = ballast(
        &[&base[..], &["2019-06-30", "--test-from", "2019-03-01", "--test-to", "2019-12-31"]]
            .concat(),
    );
    assert!(!ok && stderr.contains("test"), "{stderr}");
    let (ok, _, stderr) = ballast(&[&base[..], &["2019-06-30", "--horizon-days", "30"]].concat());
    assert!(!ok && stderr.contains("horizon_days"), "{stderr}");
    let (ok, _, stderr) =
        ballast(&[&base[..], &["2019-06-30", "--methodology", "deribit-standard"]].concat());
    assert!(!ok && stderr.contains("per-position"), "{stderr}");
}
