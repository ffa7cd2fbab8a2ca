//! Liquidation plans on the full engine, on the bundled sample market under Ballast PM.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::sync::Arc;

use basics::{Currency, Money, Rounding};
use liquidation::{Profile, Selection, compare, plan};
use margin::health::Status;
use margin::{Engine, PricedMarket};
use product::{Instrument, Portfolio, Position};

fn priced(portfolio: &Portfolio) -> PricedMarket {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market: Arc<_> = testkit::sample_market();
    engine.price_for(&market, portfolio).unwrap()
}

fn book(positions: &[(&str, f64)], usdc: f64) -> Portfolio {
    let positions = positions
        .iter()
        .map(|(name, size)| Position::new(Instrument::parse(name).unwrap(), *size))
        .collect();
    let cash = Money::from_f64(usdc, Currency::USDC, Rounding::Down).unwrap();
    Portfolio::new(positions, &[cash]).unwrap()
}

/// A book whose cash is set so that its equity is `health` × its MM.
fn at_health(positions: &[(&str, f64)], health: f64) -> Portfolio {
    let probe = book(positions, 1_000_000.0);
    let p = priced(&probe);
    let f = p.margin(&p.entered(&probe).unwrap()).unwrap();
    let (equity, mm): (f64, f64) = f
        .iter()
        .map(|f| (f.equity, f.maintenance_margin))
        .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    book(positions, 1_000_000.0 - equity + health * mm)
}

const HEDGED: [(&str, f64); 4] = [
    ("BTC_USDC-PERPETUAL", 10.0),
    ("BTC_USDC-25DEC26-100000-C", -20.0),
    ("BTC_USDC-25DEC26-90000-P", 10.0),
    ("ETH_USDC-PERPETUAL", -50.0),
];

#[test]
fn every_step_lowers_the_shortfall_and_the_smallest_step_costs_no_more_than_the_slice() {
    let portfolio = at_health(&HEDGED, 0.8);
    let priced = priced(&portfolio);
    let ballast = Profile::bundled("ballast").unwrap();
    let plans = compare(&priced, &portfolio, &ballast).unwrap();
    for p in &plans {
        assert!(p.breached(), "{:?}", p.before);
        assert!(p.reached, "{:?} did not reach the target: {:?}", p.selection, p.after);
        assert!(p.after.equity_usd >= 1.2 * p.after.maintenance_usd * (1.0 - 1e-9));
        let mut last = p.before.shortfall_usd;
        for t in &p.trades {
            assert!(
                t.shortfall_after_usd <= last,
                "{:?}: a step raised the shortfall",
                p.selection
            );
            last = t.shortfall_after_usd;
        }
        assert!(p.after.status != Status::MmBreach);
        assert!(p.after.shortfall_usd < p.before.shortfall_usd);
    }
    let cost = |s: Selection| {
        let p = plans.iter().find(|p| p.selection == s).unwrap();
        p.expected_cost_usd + p.fees_usd
    };
    assert!(cost(Selection::Smallest) <= cost(Selection::ProRata) + 1e-9);
    // The slice sells some of every leg; the smallest step need not.
    let pro_rata = plans.iter().find(|p| p.selection == Selection::ProRata).unwrap();
    assert_eq!(pro_rata.trades.len(), HEDGED.len());
}

#[test]
fn a_hedge_is_not_sold_alone_into_a_worse_state() {
    // Short calls hedged by the perpetual: selling the perpetual alone raises the margin.
    let legs = [("BTC_USDC-PERPETUAL", 12.0), ("BTC_USDC-25DEC26-100000-C", -20.0)];
    let portfolio = at_health(&legs, 0.9);
    let priced = priced(&portfolio);
    for selection in Selection::ALL {
        let profile = Profile::bundled("ballast").unwrap().with_selection(selection);
        let p = plan(&priced, &portfolio, &profile).unwrap();
        assert!(p.after.shortfall_usd <= p.before.shortfall_usd);
        // No state along the way is worse than the start.
        assert!(p.trades.iter().all(|t| t.shortfall_after_usd <= p.before.shortfall_usd));
        if let Some(first) = p.trades.first() {
            assert!(
                first.instrument.is_option() || p.trades.iter().any(|t| t.instrument.is_option()),
                "{selection:?} sold only the hedge"
            );
        }
    }
}

#[test]
fn a_healthy_account_has_nothing_to_sell() {
    let portfolio = at_health(&HEDGED, 1.5);
    let p = plan(&priced(&portfolio), &portfolio, &Profile::bundled("derive").unwrap()).unwrap();
    assert!(!p.breached());
    assert!(p.trades.is_empty());
}

#[test]
fn caps_bound_each_round() {
    let portfolio = at_health(&HEDGED, 0.5);
    let priced = priced(&portfolio);
    let dydx = Profile::bundled("dydx-v4").unwrap();
    let p = plan(&priced, &portfolio, &dydx).unwrap();
    assert!(p.rounds > 1, "10 % per block needs several blocks");
    for round in 0..p.rounds {
        let sold: f64 = p.trades.iter().filter(|t| t.round == round).map(|t| t.notional_usd).sum();
        assert!(sold <= 100_000.0 * (1.0 + 1e-9), "round {round} sold {sold}");
    }
    // Every delta-one sale carries its fillable price, below the mark for a sale.
    for t in p.trades.iter().filter(|t| !t.instrument.is_option()) {
        let limit = t.limit_price.unwrap();
        assert!(if t.size < 0.0 { limit <= t.mark } else { limit >= t.mark });
    }
    let aave = Profile::bundled("aave-v3").unwrap();
    let p = plan(&priced, &portfolio, &aave).unwrap();
    let first: f64 = p.trades.iter().filter(|t| t.round == 0).map(|t| t.notional_usd).sum();
    let total: f64 = p.trades.iter().map(|t| t.notional_usd).sum::<f64>().max(first);
    assert!(
        first <= 0.5 * total.max(first) + 1e-6
            || p.before.equity_usd <= 0.95 * p.before.maintenance_usd
    );
}

#[test]
fn below_the_backstop_threshold_the_whole_account_goes_to_the_vault() {
    let portfolio = at_health(&HEDGED, 0.5);
    let p =
        plan(&priced(&portfolio), &portfolio, &Profile::bundled("hyperliquid").unwrap()).unwrap();
    assert!(p.backstop);
    assert_eq!(p.trades.len(), HEDGED.len());
    assert!(p.trades.iter().all(|t| t.price == t.mark));
}

#[test]
fn an_instrument_outside_the_priced_universe_is_named() {
    let portfolio = at_health(&HEDGED, 0.8);
    let narrow = book(&[("BTC_USDC-PERPETUAL", 1.0)], 0.0);
    let e = plan(&priced(&narrow), &portfolio, &Profile::bundled("ballast").unwrap()).unwrap_err();
    assert_eq!(e.field, "portfolio");
}

#[test]
fn a_negative_depth_is_refused_by_name() {
    // The depth model's parameters are the friction add-on's: a negative volume floor or impact
    // coefficient never reaches a plan.
    let text = formats::bundled::bundled_text("ballast-pm").unwrap();
    for (from, to, key) in [
        ("volume_floor = 1000.0", "volume_floor = -1000.0", "volume_floor"),
        ("impact_coefficient = 1.0", "impact_coefficient = -1.0", "impact_coefficient"),
    ] {
        assert!(text.contains(from), "{from}");
        let e = formats::methodology::Profile::from_toml(&text.replacen(from, to, 1)).unwrap_err();
        assert!(e.to_string().contains(key), "{e}");
    }
}
