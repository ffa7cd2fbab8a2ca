//! Capital metrics of a replayed book: a book of coins has a known answer, Euler contributions
//! add up to the book's ES, and the books are seeded and spot-relative.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use backtest::book::{AccountSpec, Book, Contract, Leg, Strategy, relative_account, round_strike};
use backtest::capital::{Levels, tail_risk};
use backtest::replay::{Window, replay};
use backtest::var::{LONG_HORIZON_DAYS, Method, capital};
use backtest::{Confidence, ErrorKind};
use basics::Currency;
use common::{history, methodology, model};
use margin::Engine;
use product::Settlement;

const LEVELS: Levels = Levels { var: Confidence::VAR_BASEL, es: Confidence::ES_FRTB };

fn path() -> Vec<f64> {
    (0..400)
        .map(|i| 30_000.0 * (1.0 + 0.3 * (f64::from(i) / 23.0).sin() + 0.001 * f64::from(i)))
        .collect()
}

/// One coin held: its loss in the scenario of day `s` is `S_T · (1 − S_s / S_(s−1))`, with no
/// optionality and no time decay, so HS VaR and ES are those of that series exactly.
#[test]
fn coins_held_have_the_hand_computed_var() {
    let closes = path();
    let h = history(&closes);
    let r = replay(&[(Currency::BTC, &h)], &model(), Window { from: None, to: None }).unwrap();
    let coin = Leg {
        underlying: Currency::BTC,
        settlement: Settlement::Inverse,
        contract: Contract::Spot,
        size: 1.0,
    };
    let book = Book::new(vec![AccountSpec { name: "coin".into(), legs: vec![coin], cash: vec![] }])
        .unwrap();
    let engine = Engine::new(methodology("ballast-pm")).unwrap();
    let report = capital(&r, &engine, &book, LEVELS).unwrap();
    let days = r.days();
    let spot = days.last().unwrap().states[0].1.spot;
    let expected: Vec<f64> = days
        .windows(2)
        .map(|w| spot - spot * (w[1].states[0].1.spot / w[0].states[0].1.spot).ln().exp())
        .collect();
    let hs = report
        .measures
        .iter()
        .find(|m| m.method == Method::Historical && m.horizon_days == 1)
        .unwrap();
    assert_eq!(hs.scenarios, expected.len());
    let want = tail_risk(&expected, LEVELS).unwrap();
    assert!((hs.book.risk.var - want.var).abs() < 1e-6 * spot, "{} {}", hs.book.risk.var, want.var);
    assert!((hs.book.risk.es - want.es).abs() < 1e-6 * spot);
    assert_eq!(hs.accounts[0], hs.book.risk);
    // Ten-day scenarios overlap: one per day with a day ten days before.
    let ten = report
        .measures
        .iter()
        .find(|m| m.method == Method::Historical && m.horizon_days == LONG_HORIZON_DAYS)
        .unwrap();
    assert_eq!(ten.scenarios, days.len() - 10);
    assert!(ten.book.risk.es > hs.book.risk.es);
    // The stressed window is 250 one-day scenarios, and its ES is the largest of any window.
    let stressed = report
        .measures
        .iter()
        .find(|m| m.method == Method::Stressed && m.horizon_days == 1)
        .unwrap();
    assert_eq!(stressed.scenarios, 250);
    for start in (0..=expected.len() - 250).step_by(17) {
        let es = tail_risk(&expected[start..start + 250], LEVELS).unwrap().es;
        assert!(stressed.book.risk.es >= es - 1e-6 * spot);
    }
}

/// Euler: the accounts' contributions add up to the book's ES, for every method and horizon.
#[test]
fn euler_contributions_add_up_to_the_book_es() {
    let h = history(&path());
    let r = replay(&[(Currency::BTC, &h)], &model(), Window { from: None, to: None }).unwrap();
    let book = Book::strategies(&Strategy::ALL, &[Currency::BTC]).unwrap();
    let engine = Engine::new(methodology("ballast-pm")).unwrap();
    let report = capital(&r, &engine, &book, LEVELS).unwrap();
    assert_eq!(report.accounts.len(), Strategy::ALL.len());
    assert_eq!(report.measures.len(), 6);
    for m in &report.measures {
        let sum: f64 = m.book.contributions.iter().sum();
        assert!(
            (sum - m.book.risk.es).abs() <= 1e-9 * m.book.risk.es.abs().max(1.0),
            "{:?}",
            m.method
        );
        assert!(m.accounts.iter().all(|r| r.var.is_finite() && r.es.is_finite()));
    }
    // The same inputs give the same bits.
    assert_eq!(capital(&r, &engine, &book, LEVELS).unwrap(), report);
}

#[test]
fn a_leg_inside_the_ten_day_horizon_is_refused() {
    let h = history(&path());
    let r = replay(&[(Currency::BTC, &h)], &model(), Window { from: None, to: None }).unwrap();
    let short = Leg {
        underlying: Currency::BTC,
        settlement: Settlement::Inverse,
        contract: Contract::Future { tenor_days: 7 },
        size: 1.0,
    };
    let book =
        Book::new(vec![AccountSpec { name: "short".into(), legs: vec![short], cash: vec![] }])
            .unwrap();
    let engine = Engine::new(methodology("ballast-pm")).unwrap();
    let err = capital(&r, &engine, &book, LEVELS).unwrap_err();
    assert!(matches!(err.kind, ErrorKind::OutOfRange(_)) && err.field == "tenor_days");
}

#[test]
fn random_books_are_seeded_and_portfolios_become_spot_relative() {
    let a = Book::random(7, 200, &[Currency::BTC, Currency::ETH]).unwrap();
    assert_eq!(a, Book::random(7, 200, &[Currency::BTC, Currency::ETH]).unwrap());
    assert_ne!(a, Book::random(8, 200, &[Currency::BTC, Currency::ETH]).unwrap());
    assert!(a.accounts().iter().all(|x| (1..=4).contains(&x.legs.len())));
    let market = formats::bundled::sample_market().unwrap();
    let text = include_str!("../../../examples/portfolios/hedged-book.json");
    let portfolio =
        formats::portfolio::PortfolioDocument::from_json(text).unwrap().to_portfolio().unwrap();
    let account = relative_account("hedged", &portfolio, &market).unwrap();
    let btc = market.underlying(Currency::BTC).unwrap().index();
    let strike_of = |l: &Leg| match l.contract {
        Contract::Option { moneyness, tenor_days, .. } if l.underlying == Currency::BTC => {
            Some((moneyness * btc, tenor_days))
        }
        _ => None,
    };
    let strikes: Vec<(f64, u32)> = account.legs.iter().filter_map(strike_of).collect();
    assert_eq!(strikes.len(), 4);
    assert!(strikes.iter().any(|(k, t)| (k - 100_000.0).abs() < 1e-6 && *t > 30), "{strikes:?}");
    // The BTC balance is coins held, the USDC balance cash.
    assert!(account.legs.iter().any(|l| l.contract == Contract::Spot && l.size == 12.5));
    assert_eq!(account.cash, vec![(Currency::USDC, 1_500_000.0)]);
    // Strikes land on a grid of about 1 % of the spot and print as a venue lists them.
    assert_eq!(round_strike(8_123.0, 9_000.0), 8_120.0);
    assert_eq!(round_strike(0.9 * 6.5, 6.5), 5.85);
    assert_eq!(format!("{}", round_strike(1.1 * 180.0, 180.0)), "198");
}
