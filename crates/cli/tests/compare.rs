// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! `ballast compare` and `ballast methodology list`, checked for consistency with `ballast
//! margin` and with the profiles' own rules, not against stored output.

use std::path::PathBuf;
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join(path)
}

fn ballast(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

fn json(args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = ballast(args);
    assert!(ok, "{stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("ballast-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn one_row_per_profile_agreeing_with_ballast_margin() {
    let portfolio = repo("examples/portfolios/hedged-book.json");
    let portfolio = portfolio.to_str().unwrap();
    let rows = json(&["compare", "--portfolio", portfolio, "--json"]);
    let rows = rows.as_array().unwrap();
    let (_, list, _) = ballast(&["methodology", "list"]);
    let names: Vec<&str> = list.lines().filter(|l| !l.starts_with(' ')).skip(1).collect();
    assert_eq!(rows.len(), names.len());
    for row in rows {
        let name = row["profile"].as_str().unwrap();
        let figures = &row["figures"];
        let im = figures["initial_margin_usd"].as_f64().unwrap_or_else(|| panic!("{row}"));
        if name == "deribit-standard" {
            assert_eq!(figures["im_vs_standard"].as_f64(), Some(1.0));
            continue;
        }
        // The cross-margined profiles state one USD line: compare must equal `ballast margin`.
        if ["ballast-pm", "deribit-pm", "tims"].contains(&name) {
            let report = json(&[
                "margin",
                "--methodology",
                name,
                "--portfolio",
                portfolio,
                "--no-liquidation",
                "--json",
            ]);
            let usd = report["currencies"][0]["initial_margin"].as_f64().unwrap();
            assert!((usd - im).abs() <= 1e-9 * im, "{name}: {usd} vs {im}");
        }
        if name.starts_with("deribit-pm") {
            let mm = figures["maintenance_margin_usd"].as_f64().unwrap();
            assert!((mm - 0.8 * im).abs() <= 1e-9 * im, "{name}: MM {mm} vs 0.8 × {im}");
        }
    }
}

#[test]
fn profiles_that_cannot_value_show_the_reason() {
    // An option far beyond every surface of the sample market: no profile can value it, and
    // each row says which instrument and why instead of a number.
    let text = r#"{ "positions": [ { "instrument": "BTC-26DEC30-100000-C", "size": -1 } ] }"#;
    let path = temp_file("beyond.json", text);
    let rows = json(&["compare", "--portfolio", path.to_str().unwrap(), "--json"]);
    for row in rows.as_array().unwrap() {
        let why = row["error"].as_str().unwrap_or_else(|| panic!("{row}"));
        assert!(why.contains("BTC-26DEC30-100000-C"), "{why}");
    }
    let (ok, text, _) = ballast(&["compare", "--portfolio", path.to_str().unwrap()]);
    assert!(ok);
    assert!(text.contains("cannot value"), "{text}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn methodology_list_shows_version_hash_and_source() {
    let (ok, text, _) = ballast(&["methodology", "list"]);
    assert!(ok);
    for name in ["deribit-pm", "deribit-pm-segregated", "tims"] {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap();
        let hash = line.split_whitespace().last().unwrap();
        assert!(hash.starts_with("0x") && hash.len() == 66, "{line}");
        let (_, shown, _) = ballast(&["methodology", "show", name]);
        assert!(shown.trim_end().ends_with(hash), "list and show disagree on {name}");
    }
    assert!(text.contains("source: support.deribit.com"), "{text}");
}
