// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! `ballast liquidate` and `ballast simulate` end to end: the plan of a breached book reaches
//! its target, the side-by-side report names every profile, and bad input is refused by name.

use std::path::PathBuf;
use std::process::Command;

fn ballast(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ballast")).args(args).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// A short-call book hedged with the perpetual, with too little cash for its MM.
#[test]
fn a_breached_book_is_planned_under_every_selection() {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("liquidate-book.json");
    std::fs::write(
        &path,
        r#"{ "positions": [ { "instrument": "BTC_USDC-PERPETUAL", "size": 12 },
                            { "instrument": "BTC_USDC-25DEC26-100000-C", "size": -20 } ],
             "balances": { "USDC": "190000" } }"#,
    )
    .unwrap();
    let (ok, stdout, stderr) =
        ballast(&["liquidate", "--portfolio", path.to_str().unwrap(), "--compare"]);
    assert!(ok, "{stderr}");
    for selection in ["smallest", "pro-rata", "largest-contributor"] {
        assert!(stdout.contains(&format!("\n{selection} (target")), "{stdout}");
    }
    assert!(stdout.contains("mm-breach"), "{stdout}");
    assert!(!stdout.contains("NOT reached"), "{stdout}");
    let (ok, _, stderr) =
        ballast(&["liquidate", "--portfolio", path.to_str().unwrap(), "--profile", "bitmex"]);
    assert!(!ok);
    assert!(stderr.contains("profile") && stderr.contains("dydx-v4"), "{stderr}");
}

#[test]
fn a_generated_crash_is_simulated_side_by_side() {
    let chart = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("simulate.svg");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("calibrated.toml");
    let (ok, stdout, stderr) = ballast(&[
        "simulate",
        "--steps",
        "3",
        "--crash",
        "1:0.4",
        "--traders",
        "40",
        "--fund-usd",
        "0",
        "--liquidation",
        "ballast",
        "--liquidation",
        "derive",
        "--chart",
        chart.to_str().unwrap(),
        "--calibrated-out",
        out.to_str().unwrap(),
        "--coverage-target",
        "0.9",
    ]);
    assert!(ok, "{stderr}");
    for row in ["\nballast ", "\nderive ", "\nballast/pro-rata "] {
        assert!(stdout.contains(row), "{stdout}");
    }
    assert!(stdout.contains("bad debt avoided by ballast's smallest step"), "{stdout}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    // The calibrated methodology is a new version whose friction add-on carries the weight.
    let calibrated = std::fs::read_to_string(&out).unwrap();
    assert!(calibrated.contains("version = \"1.3.0\""), "{calibrated}");
    let weight = stdout.lines().find_map(|l| l.strip_prefix("friction MM weight ")).unwrap();
    let weight: f64 = weight.split_whitespace().next().unwrap().parse().unwrap();
    let formats::methodology::Profile::Portfolio(m) =
        formats::methodology::Profile::from_toml(&calibrated).unwrap()
    else {
        panic!("a portfolio methodology")
    };
    let friction: Vec<f64> = (m.all_add_ons())
        .filter(|a| matches!(a.kind, methodology::AddOnKind::LiquidationFriction { .. }))
        .map(|a| a.mm_weight)
        .collect();
    assert!(!friction.is_empty());
    assert!(friction.iter().all(|w| (w - weight).abs() <= 1e-6), "{friction:?} vs {weight}");
    assert_eq!(svg.matches("<polyline").count(), 4, "two panels, two profiles");
    let (ok, _, stderr) = ballast(&["simulate", "--steps", "3", "--crash", "1:1.5"]);
    assert!(!ok);
    assert!(stderr.contains("crash"), "{stderr}");
}
