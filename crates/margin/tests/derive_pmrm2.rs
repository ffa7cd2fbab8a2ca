// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! Derive's 139 PMRM_2 portfolio cases, read from `../shared/conformance/derive-pmrm2` (Derive's
//! published files, never copied here), read by `formats::derive` and computed by the engine:
//! MM and IM must match Derive's to a relative 1e-8 (absolute 1e-8 where Derive's value is 0).
//! Under CI the cases must be there: a missing directory fails instead of skipping.

use std::path::Path;
use std::sync::Arc;

use formats::bundled::bundled;
use formats::derive::{CaseDocument, DeriveCase, NetMargins, RELATIVE_TOLERANCE, comparison_error};
use formats::methodology::Profile;
use margin::Engine;

const CASES: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance/derive-pmrm2");

/// Whether `path` is there; outside CI a missing file skips the test loudly, under CI it fails.
fn present(path: &Path) -> bool {
    let there = path.exists();
    assert!(there || std::env::var_os("CI").is_none(), "{} is absent under CI", path.display());
    if !there {
        eprintln!("SKIPPED: {} is absent (it is required under CI)", path.display());
    }
    there
}

/// The case's MM and IM net of its mark-to-market, as Derive reports them.
fn net_margins(case: &DeriveCase) -> Result<NetMargins, margin::Error> {
    let engine = Engine::new(case.methodology.clone())?;
    let figures = engine.margin(&Arc::new(case.market.clone()), &case.portfolio)?;
    Ok(NetMargins::of(&figures).unwrap())
}

fn base() -> methodology::Methodology {
    let Profile::Portfolio(base) = bundled("derive-pmrm2").unwrap() else { panic!("portfolio") };
    *base
}

#[test]
fn every_derive_case_matches() {
    let dir = Path::new(CASES);
    if !present(dir) {
        return;
    }
    let base = base();
    let mut failures = Vec::new();
    let mut refused = Vec::new();
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        count += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let document = CaseDocument::from_json(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let case = match document.to_case(&base) {
            Err(e) if matches!(e.kind, formats::ErrorKind::Refused(_)) => {
                refused.push((name, e.location));
                continue;
            }
            other => other,
        };
        let outcome = case
            .map_err(|e| e.to_string())
            .and_then(|c| net_margins(&c).map_err(|e| e.to_string()));
        match outcome {
            Ok(m) => {
                let error = comparison_error(m.mm, document.result.mm)
                    .max(comparison_error(m.im, document.result.im));
                if error.is_nan() || error > RELATIVE_TOLERANCE {
                    failures.push(format!(
                        "{name}: MM {} vs {}, IM {} vs {} (error {error:.2e})",
                        m.mm, document.result.mm, m.im, document.result.im
                    ));
                }
            }
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    assert_eq!(count, 139, "Derive publishes 139 cases");
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
    // test_67 gives a skew scenario a spot shock of 1.18: Derive's own setScenarios refuses
    // that set-up (its Solidity suite skips the case for it), and so does Ballast, by location.
    let expected = [(
        "test_67_misc_skew_scenario_with_spot_move.json".to_owned(),
        "Parameters.Scenarios[30].SpotShock".to_owned(),
    )];
    assert_eq!(refused, expected);
}

/// A skew scenario that also moves the price is refused by the methodology language too: its
/// options would be revalued on the base forward while delta-one positions and coin collateral
/// moved, which is what silently dropping the shock used to do.
#[test]
fn a_skew_scenario_with_a_price_move_is_refused() {
    let mut methodology = base();
    let skew = methodology::Scenario {
        spot_move: 0.18,
        vol: methodology::VolMove::None,
        kind: methodology::ScenarioKind::Skew(methodology::SkewKind::Linear),
        weight: 1.0,
    };
    methodology.scenarios.explicit.push(skew);
    let err = methodology.validate().unwrap_err();
    assert!(err.field.ends_with(".spot_move"), "{err}");
    assert!(matches!(err.kind, methodology::ErrorKind::Inconsistent(_)), "{err}");
}

/// test_12 (one short BTC call) has a hand computation in defi-pm.md 5.1:
/// MM = 0.8 · (−12939.312020) − 286.990518 − 1186.418569 = −11824.858704. Setting the MM loss
/// factor to 0 must leave the mark-to-market less the MM option contingency.
#[test]
fn parameters_of_the_case_drive_the_result() {
    let path = Path::new(CASES).join("test_12_risk_cancelling_naked_short_call.json");
    if !present(&path) {
        return;
    }
    let base = base();
    let mut document = CaseDocument::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let derive = net_margins(&document.to_case(&base).unwrap()).unwrap();
    assert!((derive.mm - -11_824.858_704).abs() < 1e-6, "{}", derive.mm);
    document.parameters.margin.mm_loss_factor = 0.0;
    let without_loss = net_margins(&document.to_case(&base).unwrap()).unwrap();
    let expected = -1_186.418_569 - 286.990_518;
    assert!((without_loss.mm - expected).abs() < 1e-5, "{}", without_loss.mm);
}

/// The language's extensions for Derive are part of the canonical hash, and a file that leaves
/// them at their defaults hashes as before they existed.
#[test]
fn extensions_are_hashed_and_validated() {
    let text = formats::bundled::bundled_text("derive-pmrm2").unwrap();
    let hash = |t: &str| Profile::from_toml(t).unwrap().hash();
    let original = hash(text);
    let window =
        text.replacen("settlement_window_minutes = 30.0", "settlement_window_minutes = 15.0", 1);
    assert_ne!(hash(&window), original);
    let follows = text.replacen(
        "[collateral.BTC]\n",
        "[collateral.CBBTC]\nrisk_cancelling = true\nunderlying = \"BTC\"\n\n[collateral.BTC]\n",
        1,
    );
    let unfollowed = follows.replacen("underlying = \"BTC\"\n", "", 1);
    assert_ne!(hash(&follows), hash(&unfollowed));
    let confidence = text.replacen("threshold = 0.55", "threshold = 0.6", 1);
    assert_ne!(hash(&confidence), original);
    // A zero window is the default and leaves the hash of a file without the key unchanged.
    let ballast = formats::bundled::bundled_text("ballast-pm").unwrap();
    let explicit =
        ballast.replacen("[valuation]\n", "[valuation]\nsettlement_window_minutes = 0.0\n", 1);
    assert_eq!(hash(&explicit), hash(ballast));
    // Validation names the field.
    let invalid = |t: &str| Profile::from_toml(t).unwrap_err().location;
    let not_cancelling = follows.replacen("risk_cancelling = true\nunderlying", "underlying", 1);
    assert_eq!(invalid(&not_cancelling), "collateral.CBBTC.underlying");
    let too_sure = text.replacen("threshold = 0.55", "threshold = 1.5", 1);
    assert!(invalid(&too_sure).ends_with(".threshold"), "{}", invalid(&too_sure));
    let too_long =
        text.replacen("settlement_window_minutes = 30.0", "settlement_window_minutes = 2000.0", 1);
    assert_eq!(invalid(&too_long), "valuation.settlement_window_minutes");
}

/// Bad values in a case are errors located by their path in Derive's document.
#[test]
fn conversion_errors_name_the_path() {
    let path = Path::new(CASES).join("test_13_risk_cancelling_btc_covered_call.json");
    if !present(&path) {
        return;
    }
    let base = base();
    let document = CaseDocument::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let location = |d: &CaseDocument| d.to_case(&base).unwrap_err().location;
    let mut bad = document.clone();
    bad.scenario.options[0].is_call = 2;
    assert_eq!(location(&bad), "Scenario.Options[0].IsCall");
    let mut bad = document.clone();
    bad.scenario.collaterals[0].name = "USDC".into();
    assert_eq!(location(&bad), "Scenario.Collaterals[0].Name");
    let mut bad = document.clone();
    bad.parameters.scenarios[0].vol_shock_direction = "Sideways".into();
    assert_eq!(location(&bad), "Parameters.Scenarios[0].VolShockDirection");
    let mut bad = document;
    bad.scenario.option_feeds.clear();
    assert_eq!(location(&bad), "Scenario.Options[0].Expiry");
    assert!(CaseDocument::from_json("{\"Scenario\": 1}").is_err());
}
