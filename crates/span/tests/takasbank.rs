//! Takasbank's published SPAN file (settlement of 17 May 2016, BIST derivatives): parsed and every
//! risk array regenerated. The file is read from the shared conformance folder, never committed.
#![allow(clippy::unwrap_used, reason = "test helpers fail loudly")]

use span::{ARRAY_TOLERANCE_CURRENCY, CheckedKind, SpanFile};

const TAKAS: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance/span-takasbank/takas.spn");

fn takas() -> SpanFile {
    let bytes = std::fs::read(TAKAS).unwrap_or_else(|e| panic!("reading {TAKAS}: {e}"));
    SpanFile::from_bytes(&bytes).unwrap()
}

#[test]
fn parses_the_takasbank_file_with_its_counts() {
    let file = takas();
    assert_eq!(file.clearing_org, "TAKASBANK");
    assert_eq!(file.business_date, "20160517");
    assert_eq!(file.exchanges.len(), 1);
    let bist = &file.exchanges[0];
    assert_eq!(bist.code, "BIST");
    // Counts of the elements as `grep -c` finds them in the file.
    assert_eq!(bist.physicals.len(), 40);
    assert_eq!(bist.physicals.iter().map(|p| p.contracts.len()).sum::<usize>(), 37);
    assert_eq!(bist.futures.len(), 35);
    assert_eq!(bist.futures.iter().map(|p| p.contracts.len()).sum::<usize>(), 146);
    assert_eq!(bist.options.len(), 23);
    let series: Vec<_> = bist.options.iter().flat_map(|p| &p.series).collect();
    assert_eq!(series.len(), 90);
    assert_eq!(series.iter().map(|s| s.options.len()).sum::<usize>(), 2628);
    assert_eq!(file.combined.len(), 40);
    assert_eq!(file.combined.iter().map(|c| c.intra_spreads.len()).sum::<usize>(), 40);
    assert_eq!(file.inter_spreads.len(), 56);
    // The scan points: 14 ordinary points at weight 1, two extremes of ±3 ranges covering 32 %.
    assert_eq!(file.scan_points.len(), 16);
    assert_eq!((file.scan_points[14].price_mult, file.scan_points[14].weight), (3.0, 0.32));
    assert_eq!(file.scan_points[15].price_mult, -3.0);
    assert_eq!(file.scan_points[0].paired, 1);
    let weights: f64 = file.delta_points.iter().map(|p| p.weight).sum();
    assert!((weights - 1.0).abs() < 1e-12);
    // AKBNK's first option as written: call 6.00, premium 1.63, vol 20 %, rate 10 %.
    let akbnk = &bist.options[0];
    let first = &akbnk.series[0];
    assert_eq!((akbnk.code.as_str(), first.period.as_str()), ("AKBNKE", "201605S0"));
    assert_eq!((first.rate, first.vol_scan_fraction, first.price_scan), (0.1, Some(0.23), 90.0));
    let call = &first.options[0];
    assert_eq!((call.strike, call.price, call.vol), (6.0, 1.63, 0.2));
    assert_eq!(call.risk.losses[15], 52.255_028);
    let akbnk_cc = file.combined.iter().find(|c| c.code == "AKBNKE").unwrap();
    assert_eq!(akbnk_cc.short_option_minimum[0].1, 15.0);
    assert_eq!(akbnk_cc.intra_spreads[0].rate, 90.0);
}

#[test]
fn every_risk_array_and_composite_delta_regenerates() {
    let file = takas();
    let checks = span::regenerate(&file).unwrap();
    let options: Vec<_> = checks.iter().filter(|c| c.kind == CheckedKind::Option).collect();
    assert_eq!(options.len(), 2628);
    for c in &checks {
        let (error, scenario) = c.array_error();
        assert!(
            c.passed(),
            "{}: array error {error} at scenario {}, delta error {}",
            c.location,
            scenario + 1,
            c.delta_error()
        );
    }
    // Measured: the worst option value is 0.0024 TRY off; well inside the tolerance.
    let worst = options.iter().map(|c| c.array_error().0).fold(0.0, f64::max);
    assert!(worst < ARRAY_TOLERANCE_CURRENCY / 2.0, "worst {worst}");
}

#[test]
fn a_deep_in_the_money_call_against_its_future_nets_to_time_value() {
    use span::{ContractKind, SpanPortfolio, SpanPosition};
    let file = takas();
    let position = |kind, quantity| SpanPosition {
        exchange: "BIST".into(),
        product: "AKBNKE".into(),
        period: "201605S0".into(),
        kind,
        quantity,
    };
    let call = ContractKind::Option { right: pricing::OptionRight::Call, strike: 6.0 };
    let alone = SpanPortfolio::new(vec![position(ContractKind::Future, -1.0)]).unwrap();
    let alone = span::margin(&file, &alone).unwrap();
    // Short one May future: the full 90 TRY range up; the extreme, 3 × 90 × 32 % = 86.4, is less.
    assert!((alone.commodities[0].scan_risk - 90.0).abs() < 1e-5);
    assert_eq!(alone.commodities[0].worst_scenario, 10);
    let hedged =
        SpanPortfolio::new(vec![position(call, 1.0), position(ContractKind::Future, -1.0)]);
    let hedged = span::margin(&file, &hedged.unwrap()).unwrap();
    let akbnk = &hedged.commodities[0];
    // Delta 0.99997 against 1: what is left is the call's day of time value (0.24 TRY) and
    // the gain its convexity gives in the down extreme.
    assert!(akbnk.scan_risk < 0.5, "{}", akbnk.scan_risk);
    assert!((akbnk.net_delta - (0.999_967 - 1.0)).abs() < 1e-9);
    // Same month and tier: no calendar spread to charge; the call's premium counts as a credit.
    assert_eq!(akbnk.intra_spread_charge, 0.0);
    assert!((akbnk.net_option_value - 163.0).abs() < 1e-9);
}
