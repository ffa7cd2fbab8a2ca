// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! Published feed data: the oracle-confidence add-on against a hand computation, and a
//! risk-cancelling collateral that follows another underlying.

use std::sync::Arc;

use basics::{Currency, Money, Rounding};
use margin::Engine;
use market::{FeedData, MarketSnapshot};
use methodology::{AddOn, AddOnKind, CollateralRule, Methodology};
use product::{Instrument, Portfolio, Position};

fn usd_figures(
    methodology: Methodology,
    market: &MarketSnapshot,
    portfolio: &Portfolio,
    feeds: &FeedData,
) -> margin::CurrencyFigures {
    let engine = Engine::new(methodology).unwrap();
    let market = Arc::new(market.with_feeds(feeds.clone()).unwrap());
    let figures = engine.margin(&market, portfolio).unwrap();
    *figures.iter().find(|f| f.currency == Currency::USD).unwrap()
}

/// A future and two options of one expiry; that expiry's feeds have confidence 0.3 < 0.55, the
/// index 0.9. IM rises by (1 − 0.3) · 1 · (|−2| + |1|) · index, the future counting for
/// nothing (only options are charged per expiry), and MM does not move (IM-only weights).
#[test]
fn low_expiry_confidence_charges_the_gross_option_notional() {
    let market = testkit::sample_market();
    let mut methodology = testkit::ballast_pm();
    let charge = AddOnKind::OracleConfidence { threshold: 0.55, factor: 1.0 };
    methodology.add_ons = vec![AddOn { kind: charge, im_weight: 1.0, mm_weight: 0.0 }];
    let call = Instrument::parse("BTC-25DEC26-100000-C").unwrap();
    let put = Instrument::parse("BTC-25DEC26-80000-P").unwrap();
    let future = Instrument::parse("BTC-25DEC26").unwrap();
    let positions =
        vec![Position::new(future, 10_000.0), Position::new(call, -2.0), Position::new(put, 1.0)];
    let portfolio = Portfolio::new(positions, &[]).unwrap();
    let mut feeds = FeedData::default();
    let plain = usd_figures(methodology.clone(), &market, &portfolio, &feeds);
    feeds.index_confidence.insert(Currency::BTC, 0.9);
    feeds.expiry_confidence.insert((Currency::BTC, call.expiry().unwrap()), 0.3);
    let charged = usd_figures(methodology, &market, &portfolio, &feeds);
    let index = market.underlying(Currency::BTC).unwrap().index();
    let expected = 0.7 * 3.0 * index;
    let added = charged.initial_margin - plain.initial_margin;
    assert!((added - expected).abs() < 1e-9 * expected, "{added} vs {expected}");
    assert_eq!(charged.maintenance_margin, plain.maintenance_margin);
}

/// A coin that is not an underlying but follows one (a wrapped or staked BTC) moves with BTC in
/// every scenario when its rule says so: one such coin against a short BTC perpetual of one coin
/// leaves no scenario loss, and without the rule the short loses on every up move.
#[test]
fn collateral_follows_its_underlying() {
    let market = MarketSnapshot::builder(testkit::sample_market().valuation());
    let sample = testkit::sample_market();
    let btc = sample.underlying(Currency::BTC).unwrap().index();
    let wrapped = Currency::from_static("WBTC");
    let market = sample
        .underlyings()
        .iter()
        .fold(market, |b, (c, u)| {
            let input = market::UnderlyingInput {
                index: u.index(),
                forwards: u.forwards().points().iter().map(|p| (p.expiry, p.forward)).collect(),
                smiles: Vec::new(),
                perpetual_mark: None,
                reference_vol: None,
                settlements: Vec::new(),
            };
            b.underlying(*c, input)
        })
        .usd_price(wrapped, btc)
        .usd_price(Currency::USDC, 1.0)
        .build()
        .unwrap();
    let mut methodology = testkit::ballast_pm();
    methodology.add_ons.clear();
    methodology.valuation.dynamics = methodology::VolDynamics::MarkVol;
    let rule = |underlying: Option<Currency>| CollateralRule {
        im_haircut: 0.0,
        mm_haircut: 0.0,
        risk_cancelling: underlying.is_some(),
        underlying,
    };
    let future = Instrument::parse("BTC_USDC-PERPETUAL").unwrap();
    let short = vec![Position::new(future, -1.0)];
    let one = Money::from_f64(1.0, wrapped, Rounding::Down).unwrap();
    let portfolio = Portfolio::new(short, &[one]).unwrap();
    methodology.collateral.insert(wrapped, rule(Some(Currency::BTC)));
    let hedged = usd_figures(methodology.clone(), &market, &portfolio, &FeedData::default());
    methodology.collateral.insert(wrapped, rule(None));
    let open = usd_figures(methodology, &market, &portfolio, &FeedData::default());
    assert!(hedged.scan_loss < 1e-9 * btc, "{}", hedged.scan_loss);
    assert!(open.scan_loss > 0.1 * btc, "{}", open.scan_loss);
}
