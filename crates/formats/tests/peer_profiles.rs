// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! The language features behind the Deribit PM and TIMS profiles are part of the hashed,
//! validated document: a change of meaning changes the hash, misplaced keys are errors.

use formats::bundled::bundled_text;
use formats::methodology::Profile;

fn hash(text: &str) -> [u8; 32] {
    Profile::from_toml(text).unwrap().hash()
}

#[test]
fn dampener_and_contract_floor_are_hashed() {
    let deribit = bundled_text("deribit-pm").unwrap();
    let original = hash(deribit);
    for (from, to) in [
        ("amount_usd = 100000.0", "amount_usd = 100001.0"),
        ("USDC = 25000.0", "USDC = 25001.0"),
        ("convert_at_edge = true", "convert_at_edge = false"),
    ] {
        assert!(deribit.contains(from), "{from}");
        assert_ne!(hash(&deribit.replacen(from, to, 1)), original, "{from}");
    }
    let tims = bundled_text("tims").unwrap();
    let changed = tims.replacen("usd_per_unit = 0.375", "usd_per_unit = 0.5", 1);
    assert_ne!(hash(&changed), hash(tims));
}

#[test]
fn segregated_and_cross_hash_differently() {
    let cross = hash(bundled_text("deribit-pm").unwrap());
    let segregated = hash(bundled_text("deribit-pm-segregated").unwrap());
    assert_ne!(cross, segregated);
}

#[test]
fn misplaced_or_missing_keys_are_errors() {
    let deribit = bundled_text("deribit-pm").unwrap();
    let misplaced = deribit.replacen("min_move = 0.01", "min_move = 0.01\nusd_per_unit = 1.0", 1);
    assert_eq!(Profile::from_toml(&misplaced).unwrap_err().location, "add_ons[0].usd_per_unit");
    let unknown = deribit.replacen("convert_at_edge = true", "convert_at_edg = true", 1);
    assert!(Profile::from_toml(&unknown).is_err());
    let negative = deribit.replacen("amount_usd = 100000.0", "amount_usd = -1.0", 1);
    assert_eq!(
        Profile::from_toml(&negative).unwrap_err().location,
        "scenarios.extreme.dampener.amount_usd"
    );
    let tims = bundled_text("tims").unwrap();
    let missing = tims.replacen("usd_per_unit = 0.375", "", 1);
    assert_eq!(Profile::from_toml(&missing).unwrap_err().location, "add_ons[0].usd_per_unit");
}

#[test]
fn parameters_set_apart_for_an_underlying_are_hashed_and_located() {
    let deribit = bundled_text("deribit-pm").unwrap();
    let original = hash(deribit);
    for (from, to) in [
        ("gain_fraction = 0.6", "gain_fraction = 0.5"),
        ("up = 0.4", "up = 0.45"),
        ("slope_per_coin = 0.000004", "slope_per_coin = 0.000005"),
    ] {
        assert!(deribit.contains(from), "{from}");
        assert_ne!(hash(&deribit.replacen(from, to, 1)), original, "{from}");
    }
    let misplaced =
        deribit.replacen("min_move = 0.005", "min_move = 0.005\nthreshold_usd = 1.0", 1);
    assert_eq!(
        Profile::from_toml(&misplaced).unwrap_err().location,
        "by_underlying.ETH.add_ons[0].threshold_usd"
    );
    let unknown = deribit.replacen("gain_fraction = 0.6", "gain_fractions = 0.6", 1);
    assert!(Profile::from_toml(&unknown).is_err());
    let kind = deribit.replacen("kind = \"relative\"\nup = 0.4", "kind = \"relativ\"\nup = 0.4", 1);
    assert_eq!(Profile::from_toml(&kind).unwrap_err().location, "by_underlying.ETH.vol_shock.kind");
    // Without the section a file keeps the hash it had before the section existed: Ballast PM
    // 1.2.0 less what its calibrations changed (the BTC grid, the ETH grid's ranges, the shocks
    // by underlying, the record) and with 1.0.0's coin haircuts is 1.0.0, whose hash
    // `methodology list` printed before the section existed (ae51677).
    let text = bundled_text("ballast-pm").unwrap();
    let mut document: toml::Table = toml::from_str(text).unwrap();
    document.insert("version".into(), "1.0.0".into());
    for key in ["by_underlying", "calibration"] {
        document.remove(key).unwrap();
    }
    let by_underlying = document["scenarios_by_underlying"].as_table_mut().unwrap();
    by_underlying.remove("BTC").unwrap();
    let eth = by_underlying["ETH"].as_table_mut().unwrap();
    let moves = eth["price_moves"].as_table_mut().unwrap();
    moves.insert("down".into(), 0.20.into());
    moves.insert("up".into(), 0.20.into());
    eth["extreme"].as_table_mut().unwrap().insert("dampening_scale".into(), 0.20.into());
    let collateral = document["collateral"].as_table_mut().unwrap();
    for (coin, haircut) in [("BTC", 0.02), ("ETH", 0.03)] {
        let rule = collateral[coin].as_table_mut().unwrap();
        rule.insert("im_haircut".into(), haircut.into());
        rule.insert("mm_haircut".into(), haircut.into());
    }
    let before = Profile::from_toml(&toml::to_string(&document).unwrap()).unwrap();
    let old = "0xed1f4ba5e0eb916075a97dc840c4e20761f197ad951580debf2adff64b36df93";
    assert_eq!(formats::methodology::hash_hex(&before.hash()), old);
    assert_eq!(document.get("calibration"), None);
}
