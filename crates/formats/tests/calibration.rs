// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! The `[calibration]` record of a methodology: it is part of the hashed document, it survives
//! the canonical write and read, and bad values are refused naming their key.

use formats::bundled::bundled_text;
use formats::methodology::Profile;

const RECORD: &str = r#"
[calibration]
target_coverage = 0.99
horizon_days = 2
anti_procyclicality = "buffer"
anti_procyclicality_share = 0.25
lookback_years = 10
surface_model = "0x01"
base = "0x02"

[calibration.underlyings.BTC]
history = "btc-usd-daily.csv"
history_keccak = "0x03"
fit = ["2016-01-01", "2019-06-30"]
test = ["2019-07-01", "2020-12-07"]
required = [0.2, 0.25, 0.5]
price_down = 0.25
price_up = 0.3
vol_scale = 0.6
in_sample = { "long-perpetual/BTC" = [2, 1267] }
out_of_sample = { "long-perpetual/BTC" = [1, 524] }
"#;

fn with_record(record: &str) -> String {
    format!("{}{record}", bundled_text("derive-pmrm2").unwrap())
}

#[test]
fn the_record_is_hashed_and_survives_the_canonical_write() {
    let plain = Profile::from_toml(bundled_text("derive-pmrm2").unwrap()).unwrap();
    let recorded = Profile::from_toml(&with_record(RECORD)).unwrap();
    assert_ne!(plain.hash(), recorded.hash(), "the record is part of the methodology");
    let again = Profile::from_toml(&recorded.to_toml().unwrap()).unwrap();
    assert_eq!(again.hash(), recorded.hash());
    assert!(recorded.to_toml().unwrap().contains("[calibration.underlyings.BTC]"));
    // A methodology without a record writes none: its hash is what it was before records.
    assert!(!plain.to_toml().unwrap().contains("[calibration"));
    for (from, to) in [
        ("history_keccak = \"0x03\"", "history_keccak = \"0x04\""),
        ("[1, 524]", "[2, 524]"),
        ("target_coverage = 0.99", "target_coverage = 0.995"),
    ] {
        let changed = Profile::from_toml(&with_record(&RECORD.replacen(from, to, 1))).unwrap();
        assert_ne!(changed.hash(), recorded.hash(), "{from}");
    }
}

#[test]
fn bad_records_are_refused_naming_the_key() {
    for (from, to, key) in [
        ("target_coverage = 0.99", "target_coverage = 1.5", "calibration.target_coverage"),
        ("horizon_days = 2", "horizon_days = 0", "calibration.horizon_days"),
        ("\"buffer\"", "\"sometimes\"", "calibration.anti_procyclicality"),
        ("anti_procyclicality_share = 0.25\n", "", "calibration.anti_procyclicality_share"),
        ("underlyings.BTC]", "underlyings.BT-C]", "calibration.underlyings.BT-C"),
        ("price_down = 0.25", "price_down = 1.5", "calibration.underlyings.BTC.price_down"),
        ("[2, 1267]", "[1300, 1267]", "calibration.underlyings.BTC.long-perpetual/BTC"),
    ] {
        assert!(RECORD.contains(from), "{from}");
        let error = Profile::from_toml(&with_record(&RECORD.replacen(from, to, 1))).unwrap_err();
        assert_eq!(error.location, key, "{from} → {to}: {error}");
    }
    let unknown = RECORD.replacen("lookback_years", "lookback_yaers", 1);
    assert!(Profile::from_toml(&with_record(&unknown)).is_err());
}
