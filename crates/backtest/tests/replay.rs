//! Market replay: determinism, the surface file's canonical hash, and the replayed surfaces'
//! sanity (positive finite vols, no arbitrage the market layer would refuse, put-call parity of
//! the engine's own option values).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use backtest::ErrorKind;
use backtest::book::{expiry_after, round_strike};
use backtest::replay::{Absence, SurfaceModel, Window, replay};
use basics::Currency;
use common::{SURFACE, day, history, model};
use margin::Engine;
use pricing::{EuropeanInputs, EuropeanSpec, Model, price};
use product::{Instrument, OptionRight, Settlement};

/// A price path with a trend, a crash and a recovery: every branch of the model is exercised.
fn path() -> Vec<f64> {
    (0..200)
        .map(|i| {
            let t = f64::from(i);
            let crash = if i >= 120 { 0.55 } else { 1.0 };
            10_000.0 * (1.0 + 0.002 * t + 0.03 * (t / 7.0).sin()) * crash
        })
        .collect()
}

#[test]
fn the_same_inputs_give_the_same_bits() {
    let (h1, h2) = (history(&path()), history(&path()));
    let window = Window { from: None, to: None };
    let a = replay(&[(Currency::BTC, &h1)], &model(), window).unwrap();
    let b = replay(&[(Currency::BTC, &h2)], &model(), window).unwrap();
    assert_eq!(a, b);
    let market = |r: &backtest::replay::Replay, i: usize| {
        let m = &r.days()[i].market;
        let btc = m.underlying(Currency::BTC).unwrap();
        (btc.implied_vol(9_000.0, 0.1).unwrap().to_bits(), btc.forwards().forward(0.2).to_bits())
    };
    for i in [0, 50, 150] {
        assert_eq!(market(&a, i), market(&b, i));
    }
}

#[test]
fn the_hash_ignores_comments_order_and_spelling_and_follows_every_parameter() {
    let original = model();
    assert_eq!(original.hash(), SurfaceModel::from_toml(SURFACE).unwrap().hash());
    // Comments dropped, sections reversed, `4.0` spelled `4`: the same model.
    let mut sections: Vec<String> = Vec::new();
    for line in SURFACE.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if line.starts_with('[') || sections.is_empty() {
            sections.push(String::new());
        }
        let line = line.replace("mean_reversion_per_year = 4.0", "mean_reversion_per_year = 4");
        let _ = writeln!(sections.last_mut().unwrap(), "{line}");
    }
    let head = sections.remove(0);
    sections.reverse();
    let rewritten = format!("{head}{}", sections.concat());
    assert_ne!(rewritten, SURFACE);
    assert_eq!(SurfaceModel::from_toml(&rewritten).unwrap().hash(), original.hash());
    // Pinned so that a change of the canonical form is a deliberate diff.
    let hex = original.hash().iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    assert_eq!(hex, "3be742b7654b4b8147d1d7fc1e71bdba5d3df845c4ef88c2f4ee92312bc8098e");
    for (from, to) in [
        ("lambda = 0.94", "lambda = 0.95"),
        ("variance_premium = 1.2", "variance_premium = 1.21"),
        ("tenors_days = [1, 7, 14, 30, 60, 90, 180, 365]", "tenors_days = [1, 7, 30, 60, 90, 365]"),
        ("usd = 0.0", "usd = 0.01"),
        ("rho = -0.1", "rho = -0.11"),
    ] {
        assert!(SURFACE.contains(from), "{from}");
        let changed = SurfaceModel::from_toml(&SURFACE.replacen(from, to, 1)).unwrap();
        assert_ne!(changed.hash(), original.hash(), "{from} → {to}");
    }
}

#[test]
fn bad_surface_files_are_typed_errors_naming_the_key() {
    let unknown =
        SurfaceModel::from_toml(&SURFACE.replace("rho_abs_max", "rho_abs_maxx")).unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::UnknownKey("smile.rho_abs_maxx".to_owned()), "{unknown}");
    let missing = SurfaceModel::from_toml(&SURFACE.replace("usd = 0.0", "")).unwrap_err();
    assert_eq!((missing.field, missing.kind), ("rates.usd", ErrorKind::Missing));
    let typed =
        SurfaceModel::from_toml(&SURFACE.replace("eta = 1.2", "eta = \"high\"")).unwrap_err();
    assert_eq!(typed.field, "smile.eta");
    assert!(matches!(typed.kind, ErrorKind::Syntax(_)));
    // η (1 + ρ_max) > 2 admits butterfly arbitrage: refused before any market is built.
    let arbitrage =
        SurfaceModel::from_toml(&SURFACE.replace("eta = 1.2", "eta = 1.3")).unwrap_err();
    assert_eq!(arbitrage.field, "smile.eta");
    let top = SurfaceModel::from_toml(&format!("extra = 1\n{SURFACE}")).unwrap_err();
    assert_eq!(top.kind, ErrorKind::UnknownKey("extra".to_owned()));
    assert!(matches!(
        SurfaceModel::from_toml("not toml [").unwrap_err().kind,
        ErrorKind::Syntax(_)
    ));
}

#[test]
fn replayed_vols_are_positive_finite_and_respond_to_the_crash() {
    let h = history(&path());
    let r = replay(&[(Currency::BTC, &h)], &model(), Window { from: None, to: None }).unwrap();
    let p = model().params().clone();
    // The first 30 returns warm the EWMA up: they are named, not replayed.
    assert_eq!(r.days()[0].date, day(30));
    assert!(r.missing().iter().all(|m| matches!(m.absence, Absence::WarmingUp { .. })));
    assert_eq!(r.missing().len(), 30);
    let atm = |i: usize| {
        let market = &r.days()[i].market;
        let btc = market.underlying(Currency::BTC).unwrap();
        btc.implied_vol(btc.forwards().forward(30.0 / 365.0), 30.0 / 365.0).unwrap()
    };
    for d in r.days() {
        let btc = d.market.underlying(Currency::BTC).unwrap();
        let spot = btc.index();
        for tenor in [1.0, 7.0, 30.0, 90.0, 364.0] {
            for m in [0.5, 0.8, 1.0, 1.25, 2.0] {
                let vol = btc.implied_vol(spot * m, tenor / 365.0).unwrap();
                assert!(vol.is_finite() && vol > 0.0, "{:?} {tenor} {m}: {vol}", d.date);
                assert!(vol < 4.0 * p.vol_max, "{vol}");
            }
        }
    }
    // The crash (day 120, the 90th replayed) lifts the short-term vol and steepens the put skew.
    let crash = r.day_at(day(120)).unwrap();
    assert!(atm(crash) > 1.5 * atm(crash - 1), "{} {}", atm(crash), atm(crash - 1));
    let skew = |i: usize| {
        let btc = r.days()[i].market.underlying(Currency::BTC).unwrap();
        let s = btc.index();
        btc.implied_vol(0.8 * s, 30.0 / 365.0).unwrap()
            - btc.implied_vol(1.2 * s, 30.0 / 365.0).unwrap()
    };
    assert!(skew(crash) > skew(crash - 1));
}

/// `C − P = (F − K) / F` in coins for Deribit's coin-settled options at a zero coin rate, on the
/// engine's own values of a replayed market, and `e^(−rT)(F − K)` for the pricer's linear values
/// at the model's USD rate.
#[test]
fn put_call_parity_holds_on_replayed_markets() {
    let h = history(&path());
    let r = replay(&[(Currency::BTC, &h)], &model(), Window { from: None, to: None }).unwrap();
    let engine = Engine::new(common::methodology("ballast-pm")).unwrap();
    for i in [0, 89, 90, 150] {
        let market = &r.days()[i].market;
        let btc = market.underlying(Currency::BTC).unwrap();
        let spot = btc.index();
        let expiry = expiry_after(market.valuation(), 30);
        let years = market.years_to(expiry);
        let forward = btc.forwards().forward(years);
        for m in [0.8, 1.0, 1.2] {
            let strike = round_strike(m * spot, spot);
            let option =
                |right| Instrument::inverse_option(Currency::BTC, expiry, strike, right).unwrap();
            let (call, put) = (option(OptionRight::Call), option(OptionRight::Put));
            let priced = engine.price(&Arc::new((**market).clone()), &[call, put]).unwrap();
            let parity = priced.mark(&call).unwrap() - priced.mark(&put).unwrap();
            assert!((parity - (forward - strike) / forward).abs() < 1e-12, "{parity}");
            let vol = btc.implied_vol(strike, years).unwrap();
            let rate = market.rate(Currency::USD);
            let value = |right| {
                let spec = EuropeanSpec {
                    model: Model::Black76,
                    underlying: forward,
                    strike,
                    years,
                    vol,
                    rate,
                    dividend: 0.0,
                    right,
                    settlement: Settlement::Linear,
                };
                price(&EuropeanInputs::new(spec).unwrap())
            };
            let linear = value(OptionRight::Call) - value(OptionRight::Put);
            let expected = (-rate * years).exp() * (forward - strike);
            assert!((linear - expected).abs() < 1e-9 * spot, "{linear} {expected}");
        }
    }
}
