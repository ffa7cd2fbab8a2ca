// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! The bundled TIMS profile against the published rules (`../shared/research/tradfi-margin.md`
//! 2.2): ten equally spaced points over ±15 %, the largest theoretical loss per class group,
//! floored at $0.375 × multiplier per contract long or short, full netting within a class group
//! and none across.

use basics::Currency;
use formats::market::MarketDocument;
use formats::methodology::Profile;
use margin::{CurrencyFigures, Engine};
use market::MarketSnapshot;
use methodology::Methodology;
use product::{Instrument, Portfolio, Position};

const BTC: f64 = 100_000.0;
const ETH: f64 = 4_000.0;

fn market() -> MarketSnapshot {
    let text = r#"{
        "valuation_time": "2024-11-20T08:00:00Z",
        "underlyings": {
            "BTC": {
                "index": 100000.0,
                "forwards": { "20DEC24": 100000.0 },
                "smiles": {
                    "20DEC24": { "a": 0.029589041095890, "b": 0.0, "rho": 0.0, "m": 0.0,
                                 "sigma": 0.1 }
                }
            },
            "ETH": { "index": 4000.0 }
        },
        "usd_prices": { "USDC": 1.0 }
    }"#;
    MarketDocument::from_json(text).unwrap().to_snapshot().unwrap()
}

fn tims() -> Methodology {
    match formats::bundled::bundled("tims").unwrap() {
        Profile::Portfolio(m) => *m,
        Profile::PerPosition(_) => panic!("tims is a portfolio profile"),
    }
}

fn usd(positions: &[(&str, f64)]) -> CurrencyFigures {
    let engine = Engine::new(tims()).unwrap();
    let market = market();
    let positions = positions
        .iter()
        .map(|(name, size)| Position::new(Instrument::parse(name).unwrap(), *size))
        .collect();
    let portfolio = Portfolio::new(positions, &[]).unwrap();
    let figures = engine.margin(&std::sync::Arc::new(market), &portfolio).unwrap();
    assert_eq!(figures.len(), 1);
    assert_eq!(figures[0].currency, Currency::USD);
    figures[0]
}

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

#[test]
fn ten_equally_spaced_points_over_fifteen_percent() {
    let set = tims().scenario_set(Currency::BTC).unwrap();
    let moves: Vec<f64> = set.scenarios().iter().map(|s| s.spot_move).collect();
    assert_eq!(moves.len(), 10);
    for (i, m) in moves.iter().enumerate() {
        // −15, −12, −9, −6, −3, +3, +6, +9, +12, +15 %.
        let k = if i < 5 { i as f64 - 5.0 } else { i as f64 - 4.0 };
        close(*m, 0.03 * k, 1e-15);
    }
}

#[test]
fn short_future_loses_its_notional_times_fifteen_percent() {
    // Short 2 BTC of a linear perpetual: the loss at +15 % is 2 · 100,000 · 0.15 = 30,000, far
    // above the floor of 2 · 0.375. IM = MM: the rule has one requirement.
    let f = usd(&[("BTC_USDC-PERPETUAL", -2.0)]);
    close(f.scan_loss, 30_000.0, 1e-6);
    close(f.initial_margin, 30_000.0, 1e-6);
    close(f.maintenance_margin, f.initial_margin, 0.0);
    assert_eq!(f.worst.unwrap().scenario(), Some(9));
}

#[test]
fn long_straddle_pays_the_per_contract_minimum() {
    // Cboe's example: a long straddle of 200 contracts is margined $7,500 = 200 × $37.50, the
    // minimum, because a long straddle without time decay gains at every point. Here the
    // multiplier is one coin: 100 calls + 100 puts → 200 × $0.375 = $75.
    let f = usd(&[("BTC-20DEC24-100000-C", 100.0), ("BTC-20DEC24-100000-P", 100.0)]);
    close(f.scan_loss, 0.0, 0.0);
    close(f.initial_margin, 75.0, 1e-9);
    close(f.maintenance_margin, 75.0, 1e-9);
}

#[test]
fn floor_does_not_add_to_a_larger_loss() {
    // A short call: its loss at +15 % exceeds the 0.375 floor, which then adds nothing.
    let f = usd(&[("BTC-20DEC24-100000-C", -1.0)]);
    assert!(f.scan_loss > 0.375);
    close(f.add_ons_im, 0.0, 0.0);
    close(f.initial_margin, f.scan_loss, 0.0);
}

#[test]
fn class_group_nets_within_an_underlying_and_not_across() {
    // Within BTC: an inverse long against a USDC-settled short of the same coins is flat in
    // USD, so only the floor remains: 2 coins × 0.375.
    let hedged = usd(&[("BTC-PERPETUAL", 1.0 * BTC), ("BTC_USDC-PERPETUAL", -1.0)]);
    close(hedged.scan_loss, 0.0, 1e-6);
    close(hedged.initial_margin, 0.75, 1e-9);
    // Across BTC and ETH: opposite directions, no offset; the losses add.
    let btc = usd(&[("BTC_USDC-PERPETUAL", 1.0)]);
    let eth = usd(&[("ETH_USDC-PERPETUAL", -10.0)]);
    close(btc.initial_margin, 0.15 * BTC, 1e-6);
    close(eth.initial_margin, 0.15 * 10.0 * ETH, 1e-6);
    let both = usd(&[("BTC_USDC-PERPETUAL", 1.0), ("ETH_USDC-PERPETUAL", -10.0)]);
    close(both.initial_margin, btc.initial_margin + eth.initial_margin, 1e-6);
}
