//! The simulator with its auditor, on generated paths replayed through the bundled surface
//! model.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::sync::Arc;

use backtest::history::{Gaps, Interval, Policy, ReadConfig, read_csv};
use backtest::replay::SurfaceModel;
use basics::UnixNanos;
use liquidation::path::{Generated, generated_csv, generated_markets};
use liquidation::sim::{Config, simulate};
use liquidation::{ErrorKind, Profile};
use margin::Engine;
use market::MarketSnapshot;

const SURFACE: &str = include_str!("../../../examples/replay/surface.toml");

/// A path of `steps` markets after the surface model's warm-up, with a crash on its
/// `crash_step`.
fn path(seed: u64, steps: usize, crash: Option<(usize, f64)>) -> Vec<Arc<MarketSnapshot>> {
    let warmup = 40;
    let generated = Generated {
        seed,
        start: UnixNanos::from_civil(2020, 1, 1, 0),
        bars: warmup + steps,
        start_price: 8_000.0,
        daily_vol: 0.04,
        crash: crash.map(|(at, drop)| (warmup + at, drop)),
    };
    let model = SurfaceModel::from_toml(SURFACE).unwrap();
    generated_markets(&model, &generated, steps).unwrap()
}

fn engine() -> Engine {
    Engine::new(testkit::ballast_pm()).unwrap()
}

fn small(seed: u64) -> Config {
    Config {
        seed,
        traders: 60,
        liquidators: 3,
        liquidator_capacity_usd: 2e6,
        fund_usd: 2e4,
        ..Config::default()
    }
}

#[test]
fn every_profile_survives_a_crash_with_its_books_audited() {
    let markets = path(7, 4, Some((1, 0.45)));
    for (name, _) in liquidation::profile::BUNDLED {
        let profile = Profile::bundled(name).unwrap();
        let report = simulate(&engine(), &markets, &profile, &small(3)).unwrap();
        assert_eq!(report.audits, markets.len(), "{name}");
        let liquidations: usize = report.steps.iter().map(|s| s.liquidations).sum();
        assert!(liquidations > 0, "{name}: a 45 % crash liquidates someone");
        assert!(report.steps[1].breaches > 0, "{name}");
        assert!(report.fund_min_usd.is_finite());
    }
}

#[test]
fn runs_replay_bit_for_bit_from_the_seed() {
    let markets = path(11, 3, Some((1, 0.35)));
    let profile = Profile::bundled("derive").unwrap();
    let a = simulate(&engine(), &markets, &profile, &small(5)).unwrap();
    let b = simulate(&engine(), &markets, &profile, &small(5)).unwrap();
    assert_eq!(a, b);
    let c = simulate(&engine(), &markets, &profile, &small(6)).unwrap();
    assert_ne!(a.steps, c.steps);
}

#[test]
fn a_deep_crash_with_an_empty_fund_reaches_the_waterfall() {
    let markets = path(13, 3, Some((1, 0.6)));
    let config = Config { fund_usd: 0.0, ..small(9) };
    let ranked =
        simulate(&engine(), &markets, &Profile::bundled("ballast").unwrap(), &config).unwrap();
    assert!(ranked.bad_debt_usd() > 0.0, "a 60 % crash with no fund leaves a loss to share");
    let adl: usize = ranked.steps.iter().map(|s| s.adl_events).sum();
    assert!(adl > 0);
    // Aave keeps what the fund cannot pay as a deficit, neither deleveraged nor socialised.
    let aave =
        simulate(&engine(), &markets, &Profile::bundled("aave-v3").unwrap(), &config).unwrap();
    assert_eq!(aave.total(|s| s.adl_usd + s.socialised_usd), 0.0);
}

#[test]
fn bad_inputs_are_typed() {
    let markets = path(1, 2, None);
    let profile = Profile::bundled("ballast").unwrap();
    let e = simulate(&engine(), &[], &profile, &small(1)).unwrap_err();
    assert_eq!(e.field, "path");
    let e = simulate(&engine(), &markets, &profile, &Config { cushion: (0.5, 2.0), ..small(1) })
        .unwrap_err();
    assert_eq!(e.field, "cushion");
    let e = simulate(&engine(), &markets, &profile, &Config { fund_usd: -1.0, ..small(1) })
        .unwrap_err();
    assert_eq!(e.field, "fund_usd");
    let zero = Generated {
        seed: 1,
        start: UnixNanos(0),
        bars: 10,
        start_price: 0.0,
        daily_vol: 0.02,
        crash: None,
    };
    let e = generated_csv(&zero).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::OutOfRange(_)) && e.field == "start_price");
    // A zero price in a file is refused by the history reader, by line.
    let csv = "date,open,high,low,close,volume\n2020-01-01,1,1,1,1,1\n2020-01-02,0,0,0,0,1\n";
    let config = ReadConfig { interval: Interval::Day, rows: Policy::Refuse, gaps: Gaps::Refuse };
    assert!(read_csv(csv, config).is_err());
}

#[test]
fn a_thousand_seeded_runs_conserve_money_at_every_step() {
    // The auditor is the oracle: `simulate` fails on the first violation of any step.
    let profiles: Vec<Profile> =
        liquidation::profile::BUNDLED.iter().map(|(n, _)| Profile::bundled(n).unwrap()).collect();
    let engine = engine();
    let mut steps = 0;
    for seed in 0..1_000_u64 {
        let drop = 0.1 + 0.5 * (seed % 7) as f64 / 7.0;
        let markets = path(seed, 2, Some((1, drop)));
        let profile = &profiles[seed as usize % profiles.len()];
        let config =
            Config { traders: 8, liquidators: 2, fund_usd: (seed % 3) as f64 * 5e3, ..small(seed) };
        let report = simulate(&engine, &markets, profile, &config)
            .unwrap_or_else(|e| panic!("seed {seed}, {}: {e}", profile.name));
        steps += report.audits;
    }
    assert_eq!(steps, 2_000);
}

#[test]
fn the_auditor_catches_money_created_and_an_unflagged_breach() {
    let markets = path(2, 1, None);
    let engine = engine();
    let profile = Profile::bundled("ballast").unwrap();
    let mut exchange = liquidation::sim::exchange(&engine, &markets[0], &small(2)).unwrap();
    let priced = engine.price(&markets[0], &exchange.universe).unwrap();
    let auditor = liquidation::audit::Auditor::new(&profile);
    auditor.check(&exchange, &priced, &[]).unwrap();
    exchange.accounts[0].cash += 1;
    assert_eq!(auditor.check(&exchange, &priced, &[]).unwrap_err().rule, "money");
    exchange.accounts[0].cash -= 1;
    // Move all of a trader's cash to its pair: the first is now below MM and unflagged.
    let moved = exchange.accounts[0].cash;
    exchange.accounts[0].cash = 0;
    exchange.accounts[1].cash += moved;
    assert_eq!(auditor.check(&exchange, &priced, &[]).unwrap_err().rule, "flags");
}
