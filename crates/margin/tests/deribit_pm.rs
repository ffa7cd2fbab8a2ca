// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! The bundled Deribit PM profiles against hand computations from Deribit's published formulas
//! (`../shared/research/cex-pm.md` 1.3-1.4): 9 buckets over ±16 %, vol up 50 % / down 25 % at
//! 30 days, extended table weighted `0.16/|m|` with the edge conversion and the dampener after
//! aggregation, `pnl_offset`, roll shock, delta shock and MM = 0.8 × the risk-matrix margin.
//!
//! The market is flat and simple on purpose, so every expected number is a line of arithmetic:
//! index 100,000 (ETH 3,000), forwards equal to the index, no rates, 60 % vol, options 30 days
//! out (the vol shock's tenor scale is then exactly 1).

use basics::Currency;
use formats::market::MarketDocument;
use formats::methodology::Profile;
use margin::{AccountDetail, CurrencyFigures, Engine};
use market::MarketSnapshot;
use methodology::{Methodology, ScenarioKind, VolMove};
use product::{Instrument, Portfolio, Position};

const INDEX: f64 = 100_000.0;
const ETH_INDEX: f64 = 3_000.0;

/// BTC and ETH (index 3,000) with the same flat 60 % smile at 30 days (total variance
/// 0.36 · 30/365 everywhere).
fn market() -> MarketSnapshot {
    let text = r#"{
        "valuation_time": "2024-11-20T08:00:00Z",
        "underlyings": {
            "BTC": {
                "index": 100000.0,
                "forwards": { "20DEC24": 100000.0, "28FEB25": 100000.0 },
                "smiles": {
                    "20DEC24": { "a": 0.029589041095890, "b": 0.0, "rho": 0.0, "m": 0.0,
                                 "sigma": 0.1 }
                }
            },
            "ETH": {
                "index": 3000.0,
                "forwards": { "20DEC24": 3000.0, "28FEB25": 3000.0 },
                "smiles": {
                    "20DEC24": { "a": 0.029589041095890, "b": 0.0, "rho": 0.0, "m": 0.0,
                                 "sigma": 0.1 }
                }
            }
        },
        "usd_prices": { "USDC": 1.0 },
        "instruments": {
            "BTC-20DEC24-60000-P": { "mark_iv": 0.6 },
            "BTC-20DEC24-90000-P": { "mark_iv": 0.6 },
            "ETH-20DEC24-2700-P": { "mark_iv": 0.6 },
            "ETH-20DEC24-3300-C": { "mark_iv": 0.6 }
        }
    }"#;
    MarketDocument::from_json(text).unwrap().to_snapshot().unwrap()
}

fn run_on(
    market: &MarketSnapshot,
    methodology: Methodology,
    positions: &[(&str, f64)],
) -> (Vec<CurrencyFigures>, AccountDetail) {
    let engine = Engine::new(methodology).unwrap();
    let portfolio = portfolio(positions);
    let priced = engine.price_for(&std::sync::Arc::new(market.clone()), &portfolio).unwrap();
    priced.account(&priced.resolve(&portfolio).unwrap()).unwrap()
}

fn profile(name: &str) -> Methodology {
    match formats::bundled::bundled(name).unwrap() {
        Profile::Portfolio(m) => *m,
        Profile::PerPosition(_) => panic!("{name} is not a portfolio profile"),
    }
}

fn portfolio(positions: &[(&str, f64)]) -> Portfolio {
    let positions = positions
        .iter()
        .map(|(name, size)| Position::new(Instrument::parse(name).unwrap(), *size))
        .collect();
    Portfolio::new(positions, &[]).unwrap()
}

fn run(
    methodology: Methodology,
    positions: &[(&str, f64)],
) -> (Vec<CurrencyFigures>, AccountDetail) {
    run_on(&market(), methodology, positions)
}

fn line(figures: &[CurrencyFigures], currency: Currency) -> CurrencyFigures {
    *figures.iter().find(|f| f.currency == currency).unwrap()
}

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} differs from {expected} by more than {tolerance}"
    );
}

/// The add-on value of kind index `index` (0 roll, 1 delta shock) for the unit in `currency`.
fn add_on(detail: &AccountDetail, index: usize, currency: Currency) -> f64 {
    detail
        .add_ons
        .iter()
        .filter(|a| a.index == index && a.currency == currency)
        .map(|a| a.value)
        .sum()
}

/// MM = 0.8 × the risk-matrix margin (worst case + roll + delta shock), IM = the risk matrix.
fn assert_mm_is_four_fifths(f: &CurrencyFigures) {
    close(f.maintenance_margin, 0.8 * f.initial_margin, 1e-12 * f.initial_margin.max(1.0));
}

/// Undiscounted Black-76 put value, written out here so that the expected numbers do not go
/// through the engine's SIMD kernel.
fn black_put(forward: f64, strike: f64, vol: f64, years: f64) -> f64 {
    let s = vol * years.sqrt();
    let d1 = (forward / strike).ln() / s + s / 2.0;
    strike * pricing::norm_cdf(-(d1 - s)) - forward * pricing::norm_cdf(-d1)
}

#[test]
fn grid_is_nine_buckets_three_vols_and_the_extended_table() {
    let set = profile("deribit-pm").scenario_set(Currency::BTC).unwrap();
    assert_eq!(set.len(), 9 * 3 + 8);
    let regular: Vec<f64> = set.scenarios()[..27].iter().step_by(3).map(|s| s.spot_move).collect();
    let expected = [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16];
    for (a, e) in regular.iter().zip(expected) {
        close(*a, e, 1e-15);
    }
    // Paradex publishes the same extended weights, rounded to whole percents or two decimals:
    // 24, 48, 32, 16, 8, 5.33, 4, 3.2 %.
    let weights = [0.24, 0.48, 0.32, 0.16, 0.08, 0.0533, 0.04, 0.032];
    for (s, w) in set.scenarios()[27..].iter().zip(weights) {
        assert_eq!((s.kind, s.vol), (ScenarioKind::Extreme, VolMove::Up));
        close(s.weight, w, 5e-3);
    }
}

#[test]
fn long_perpetual_segregated_matches_the_published_vector_and_roll() {
    // Deribit's documentation example: long 0.314538364 BTC of perpetual; its −16 % cell is
    // −0.05991206933 BTC = −0.314538364 · 0.16 / 0.84, and so are its −66 % and −33 % extended
    // cells before the dampener, which then zeroes them.
    let coins = 0.314_538_364;
    let (figures, detail) =
        run(profile("deribit-pm-segregated"), &[("BTC-PERPETUAL", coins * INDEX)]);
    let btc = line(&figures, Currency::BTC);
    let unit = &detail.units[0];
    close(unit.pnl[0], -0.059_912_069_33, 1e-11);
    close(btc.scan_loss, coins * 0.16 / 0.84, 1e-12);
    for cell in &unit.pnl[27..] {
        assert!(*cell <= 0.0 && *cell > -1e-12, "extended cells are dampened to 0: {cell}");
    }
    // BTC's pnl_offset is 0: gains in the standard table count for nothing.
    close(unit.pnl[26], 0.0, 0.0);
    // Roll shock on the floor: 0.01 per coin of perpetual.
    close(add_on(&detail, 0, Currency::BTC), 0.01 * coins, 1e-12);
    close(btc.initial_margin, coins * (0.16 / 0.84 + 0.01), 1e-12);
    assert_mm_is_four_fifths(&btc);
}

#[test]
fn short_future_loses_at_the_top_bucket() {
    let coins = 2.0;
    let (figures, _) = run(profile("deribit-pm-segregated"), &[("BTC-28FEB25", -coins * INDEX)]);
    let btc = line(&figures, Currency::BTC);
    // Coin P&L of a short inverse future at +16 %: −X · (1 − 1/1.16).
    close(btc.scan_loss, coins * 0.16 / 1.16, 1e-12);
    // 100 days out: roll 0.075 · 100/365 per coin, above the 0.01 floor.
    let roll = coins * 0.075 * 100.0 / 365.0;
    close(btc.initial_margin, coins * 0.16 / 1.16 + roll, 1e-10);
    assert_mm_is_four_fifths(&btc);
}

#[test]
fn roll_shock_is_not_netted_across_expiries() {
    // A perpetual hedged by a 30-day future of the same coin amount: no price risk, but each
    // leg pays the roll floor, 0.01 per coin (0.075 · 30/365 = 0.0062 < 0.01).
    let coins = 3.0;
    let (figures, detail) = run(
        profile("deribit-pm-segregated"),
        &[("BTC-PERPETUAL", coins * INDEX), ("BTC-20DEC24", -coins * INDEX)],
    );
    let btc = line(&figures, Currency::BTC);
    close(btc.scan_loss, 0.0, 1e-12);
    close(add_on(&detail, 0, Currency::BTC), 0.01 * 2.0 * coins, 1e-12);
    close(btc.initial_margin, 0.02 * coins, 1e-12);
    assert_mm_is_four_fifths(&btc);
}

#[test]
fn delta_shock_starts_above_twenty_million_usd() {
    // Threshold 20,000,000 USD = 200 coins at 100,000. Below it nothing; at 300 coins
    // min(m_inc · D · (D − 200), 0.1 · D) = min(0.00005 · 300 · 100, 30) = 1.5 BTC.
    let (_, below) = run(profile("deribit-pm-segregated"), &[("BTC-PERPETUAL", 199.0 * INDEX)]);
    close(add_on(&below, 1, Currency::BTC), 0.0, 0.0);
    let (figures, above) =
        run(profile("deribit-pm-segregated"), &[("BTC-PERPETUAL", 300.0 * INDEX)]);
    close(add_on(&above, 1, Currency::BTC), 1.5, 1e-9);
    let btc = line(&figures, Currency::BTC);
    close(btc.initial_margin, 300.0 * (0.16 / 0.84 + 0.01) + 1.5, 1e-9);
    assert_mm_is_four_fifths(&btc);
}

/// Cross mode keeps each coin's risk vector in coins and values it at the current index
/// (Deribit's X:PM, as its R2 capture shows): a long perpetual of X coins loses
/// X·S₀·0.16/0.84 at −16 % in both modes, the same USD.
#[test]
fn cross_values_the_coin_vector_at_the_current_index() {
    let coins = 1.0;
    let (cross, _) = run(profile("deribit-pm"), &[("BTC-PERPETUAL", coins * INDEX)]);
    let (segregated, _) =
        run(profile("deribit-pm-segregated"), &[("BTC-PERPETUAL", coins * INDEX)]);
    let usd = line(&cross, Currency::USD);
    let btc = line(&segregated, Currency::BTC);
    close(btc.scan_loss, coins * 0.16 / 0.84, 1e-12);
    close(usd.scan_loss, btc.scan_loss * INDEX, 1e-6);
    close(usd.initial_margin, (0.16 / 0.84 + 0.01) * coins * INDEX, 1e-6);
    close(usd.initial_margin, btc.initial_margin * INDEX, 1e-6);
    assert_mm_is_four_fifths(&usd);
    // Cell by cell, regular and extreme, the cross vector is the coin vector at S₀.
    let (_, cross) = run(profile("deribit-pm"), &[("BTC-PERPETUAL", coins * INDEX)]);
    let (_, coin) = run(profile("deribit-pm-segregated"), &[("BTC-PERPETUAL", coins * INDEX)]);
    let (cross, coin) = (&cross.units[0].pnl, &coin.units[0].pnl);
    let set = profile("deribit-pm").scenario_set(Currency::BTC).unwrap();
    for (s, scenario) in set.scenarios().iter().enumerate() {
        if scenario.kind == ScenarioKind::Regular {
            close(cross[s], coin[s] * INDEX, 1e-6);
        }
    }
    // An inverse long against a USDC-settled short of the same coins is no longer flat in USD:
    // the coin leg is valued at S₀, so the pair loses X·S₀·m²/(1+m) at a move m.
    let pair = [("BTC-PERPETUAL", coins * INDEX), ("BTC_USDC-PERPETUAL", -coins)];
    let (_, both) = run(profile("deribit-pm"), &pair);
    for (s, scenario) in set.scenarios().iter().enumerate() {
        let m = scenario.spot_move;
        if scenario.kind == ScenarioKind::Regular {
            close(both.units[0].pnl[s], -coins * INDEX * m * m / (1.0 + m), 1e-6);
        }
    }
}

/// Deribit's R2 capture (`private/pme/simulate` on a cross_pm account, ETH, 2026-02-15): a
/// short perpetual of 0.999487053 ETH at index 1949.34 (mark 1949.49), no collateral. Deribit's
/// risk vector is in ETH, `−X·m/(1+m)`; its IM is 0.157461562 ETH (worst case
/// 0.152464126728814 at +18 % plus the roll 0.005 · X), MM 0.125969249812. Cross mode gives the
/// same, in USD at the index; segregated mode gives it in ETH.
#[test]
fn r2_cross_capture_is_reproduced() {
    let (index, mark, coins) = (1_949.34, 1_949.49, 0.999_487_053);
    let text = format!(
        r#"{{"valuation_time": "2026-02-15T23:20:09Z",
            "underlyings": {{"ETH": {{"index": {index}, "perpetual_mark": {mark},
                                      "forwards": {{}}, "smiles": {{}}}}}},
            "usd_prices": {{"USDC": 1.0}}}}"#
    );
    let market = MarketDocument::from_json(&text).unwrap().to_snapshot().unwrap();
    let short = [("ETH-PERPETUAL", -coins * mark)];
    let (cross, _) = run_on(&market, profile("deribit-pm"), &short);
    let usd = line(&cross, Currency::USD);
    close(usd.scan_loss / index, 0.152_464_126_728_814, 1e-12);
    close(usd.initial_margin / index, 0.157_461_562, 1e-9);
    close(usd.maintenance_margin / index, 0.125_969_249_812, 1e-9);
    let (segregated, _) = run_on(&market, profile("deribit-pm-segregated"), &short);
    let eth = line(&segregated, Currency::ETH);
    close(usd.initial_margin / index, eth.initial_margin, 1e-12);
}

#[test]
fn pnl_offset_keeps_a_fraction_of_gains() {
    // With pnl_offset 0.6 (Deribit's ETH setting), a long perpetual's +16 % cell keeps 60 % of
    // its gain X·0.16/1.16, and losses are unchanged.
    let mut m = profile("deribit-pm-segregated");
    m.aggregation.gain_fraction = 0.6;
    let coins = 1.0;
    let (_, detail) = run(m, &[("BTC-PERPETUAL", coins * INDEX)]);
    let pnl = &detail.units[0].pnl;
    close(pnl[26], 0.6 * coins * 0.16 / 1.16, 1e-12);
    close(pnl[0], -coins * 0.16 / 0.84, 1e-12);
}

#[test]
fn short_far_put_is_margined_by_the_extended_table() {
    // Short 100 puts struck at 60,000, 30 days, mark vol 60 %; vol up: max(0.6 · 1.5, 0.5).
    let (size, strike, years) = (-100.0, 60_000.0, 30.0 / 365.0);
    let (figures, detail) = run(profile("deribit-pm-segregated"), &[("BTC-20DEC24-60000-P", size)]);
    let coin_value = |m: f64, vol: f64| {
        let forward = INDEX * (1.0 + m);
        black_put(forward, strike, vol, years) / forward
    };
    let base = coin_value(0.0, 0.6);
    let pnl = |m: f64, vol: f64| size * (coin_value(m, vol) - base);
    // The standard table's worst: −16 % with vol up.
    let standard = pnl(-0.16, 0.9);
    // Extended cell at m: P&L · 0.16/|m| · (1+m)/0.84, plus the dampener
    // (|m|/0.16 − 1) · 100,000 / (0.84 · S), never a gain.
    let extended = |m: f64| {
        let weighted = pnl(m, 0.9) * 0.16 / m.abs() * (1.0 + m) / 0.84;
        (weighted + (m.abs() / 0.16 - 1.0) * 100_000.0 / (0.84 * INDEX)).min(0.0)
    };
    let unit = &detail.units[0];
    close(unit.pnl[2], standard, 1e-9);
    close(unit.pnl[27], extended(-0.66), 1e-9);
    close(unit.pnl[28], extended(-0.33), 1e-9);
    let worst = extended(-0.66).min(extended(-0.33));
    assert!(worst < standard, "the extended table binds: {worst} vs {standard}");
    let btc = line(&figures, Currency::BTC);
    close(btc.scan_loss, -worst, 1e-9);
    // No delta-one position: no roll; delta far below the threshold.
    close(btc.initial_margin, -worst, 1e-9);
    assert_mm_is_four_fifths(&btc);
}

#[test]
fn dampener_requires_a_grid_edge_on_each_side() {
    let mut m = profile("deribit-pm");
    m.scenarios.price_grid.moves.retain(|x| *x <= 0.0);
    let err = m.validate().unwrap_err();
    assert!(err.field.contains("extreme.dampener.moves"), "{err}");
}

#[test]
fn without_allowance_extended_cells_of_a_future_equal_the_edge() {
    // The fraction 0.16/|m| caps linear exposure at the edge move: with no dampener allowance,
    // a long future's extended cells on the way down equal its −16 % cell, in coins (converted at
    // the edge price) and in USD (the coin vector at the current index, converted alike).
    let coin_edge = -0.16 / 0.84;
    for (name, edge) in [("deribit-pm-segregated", coin_edge), ("deribit-pm", coin_edge * INDEX)] {
        let mut m = profile(name);
        let extreme = m.scenarios.extreme.as_mut().unwrap();
        let dampener = extreme.dampener.as_mut().unwrap();
        dampener.amount_usd = 0.0;
        dampener.amount_usd_by_currency.clear();
        let (_, detail) = run(m, &[("BTC-PERPETUAL", INDEX)]);
        let pnl = &detail.units[0].pnl;
        for cell in [pnl[0], pnl[27], pnl[28]] {
            close(cell, edge, 1e-12 * edge.abs());
        }
        // Rises are gains for a long: the extended table never shows one.
        assert!(pnl[29..].iter().all(|c| *c == 0.0), "{name}: {:?}", &pnl[29..]);
    }
}

#[test]
fn usdc_units_use_their_own_allowance() {
    // Segregated USDC unit, short 100 coins of the linear perpetual: at +500 % the weighted loss
    // is −100 · S · 0.16 USDC, and the USDC allowance 25,000 · (5/0.16 − 1) is added back.
    let (_, detail) = run(profile("deribit-pm-segregated"), &[("BTC_USDC-PERPETUAL", -100.0)]);
    let unit = &detail.units[0];
    assert_eq!(unit.currency, Currency::USDC);
    let expected = -100.0 * INDEX * 0.16 + 25_000.0 * (5.0 / 0.16 - 1.0);
    close(unit.pnl[34], expected, 1e-6);
}

#[test]
fn eth_is_margined_with_its_own_range_offset_roll_and_delta_shock() {
    // ETH's capture: ±18 %, pnl_offset 0.6, roll floor 0.005 per coin, m_inc 0.000004.
    let market = market();
    let coins = 10_000.0;
    let (figures, detail) =
        run_on(&market, profile("deribit-pm-segregated"), &[("ETH-PERPETUAL", coins * ETH_INDEX)]);
    let eth = line(&figures, Currency::ETH);
    let unit = &detail.units[0];
    // Long inverse perpetual: worst at −18 %, X · 0.18/0.82 coins; +18 % keeps 60 % of the gain.
    close(eth.scan_loss, coins * 0.18 / 0.82, 1e-8);
    close(unit.pnl[26], 0.6 * coins * 0.18 / 1.18, 1e-8);
    close(add_on(&detail, 0, Currency::ETH), 0.005 * coins, 1e-9);
    // Delta shock: threshold 20,000,000 USD = 6,666.67 coins at 3,000;
    // min(0.000004 · D · (D − 6,666.67), 0.1 · D) = 133.33 coins.
    let threshold = 20_000_000.0 / ETH_INDEX;
    close(add_on(&detail, 1, Currency::ETH), 0.000_004 * coins * (coins - threshold), 1e-8);
    // BTC in the same account keeps BTC's numbers: ±16 %, no gains, roll floor 0.01.
    let (figures, detail) = run_on(
        &market,
        profile("deribit-pm-segregated"),
        &[("BTC-PERPETUAL", INDEX), ("ETH-PERPETUAL", coins * ETH_INDEX)],
    );
    let btc = line(&figures, Currency::BTC);
    close(btc.scan_loss, 0.16 / 0.84, 1e-12);
    close(add_on(&detail, 0, Currency::BTC), 0.01, 1e-12);
    assert_eq!(line(&figures, Currency::ETH), eth);
}

/// `m` with ETH's own parameters made the methodology-wide ones, and none set apart.
fn ethereum_throughout(mut m: Methodology) -> Methodology {
    let own = m.by_underlying.remove(&Currency::ETH).unwrap();
    m.scenarios = m.scenarios_by_underlying.remove(&Currency::ETH).unwrap();
    m.vol_shock = own.vol_shock.unwrap();
    m.aggregation.gain_fraction = own.gain_fraction.unwrap();
    m.add_ons = own.add_ons.unwrap();
    m
}

#[test]
fn parameters_set_apart_for_an_underlying_act_as_its_methodology() {
    // An ETH book under the profile is, bit for bit, the same book under a profile whose
    // methodology-wide numbers are ETH's; a BTC book does not see ETH's numbers at all.
    let market = market();
    let eth_book = [
        ("ETH-20DEC24-2700-P", -40.0),
        ("ETH-20DEC24-3300-C", 25.0),
        ("ETH-28FEB25", 150.0 * ETH_INDEX),
        ("ETH-PERPETUAL", -90.0 * ETH_INDEX),
    ];
    let btc_book = [("BTC-20DEC24-90000-P", -3.0), ("BTC-PERPETUAL", 2.0 * INDEX)];
    for name in ["deribit-pm", "deribit-pm-segregated"] {
        let (with_own, _) = run_on(&market, profile(name), &eth_book);
        let (throughout, _) = run_on(&market, ethereum_throughout(profile(name)), &eth_book);
        assert_eq!(with_own, throughout, "{name}: ETH book");
        let mut without = profile(name);
        without.by_underlying.clear();
        without.scenarios_by_underlying.clear();
        let (with_own, _) = run_on(&market, profile(name), &btc_book);
        let (plain, _) = run_on(&market, without, &btc_book);
        assert_eq!(with_own, plain, "{name}: BTC book");
        // And the ETH numbers do change the ETH book.
        let mut without = profile(name);
        without.by_underlying.clear();
        without.scenarios_by_underlying.clear();
        let (plain, _) = run_on(&market, without, &eth_book);
        assert_ne!(throughout, plain, "{name}: ETH's own numbers changed nothing");
    }
}

#[test]
fn parameters_set_apart_are_validated_under_their_own_path() {
    let eth = Currency::ETH;
    let mut m = profile("deribit-pm");
    m.by_underlying.get_mut(&eth).unwrap().gain_fraction = Some(1.5);
    assert_eq!(m.validate().unwrap_err().field, "by_underlying.ETH.gain_fraction");
    let mut m = profile("deribit-pm");
    m.by_underlying.get_mut(&eth).unwrap().vol_shock.as_mut().unwrap().up = -0.4;
    assert_eq!(m.validate().unwrap_err().field, "by_underlying.ETH.vol_shock.up");
    // The add-ons set apart must be the methodology's kinds, in its order.
    let mut m = profile("deribit-pm");
    m.by_underlying.get_mut(&eth).unwrap().add_ons.as_mut().unwrap().reverse();
    let err = m.validate().unwrap_err();
    assert_eq!(err.field, "by_underlying.ETH.add_ons", "{err}");
    let mut m = profile("deribit-pm");
    m.by_underlying.get_mut(&eth).unwrap().add_ons.as_mut().unwrap().pop();
    assert_eq!(m.validate().unwrap_err().field, "by_underlying.ETH.add_ons");
}

/// A mark volatility beyond what the pricer accepts is an error naming the option, never a
/// silent zero in its sensitivities (the add-ons read them).
#[test]
fn an_option_the_pricer_refuses_is_named() {
    let mut text = formats::market::MarketDocument::from_snapshot(&market()).to_json_pretty();
    text = text.replacen("\"mark_iv\": 0.6", "\"mark_iv\": 20000.0", 1);
    let market = MarketDocument::from_json(&text).unwrap().to_snapshot().unwrap();
    let engine = Engine::new(profile("deribit-pm")).unwrap();
    let held = portfolio(&[("BTC-20DEC24-60000-P", -1.0)]);
    let err = engine.price_for(&std::sync::Arc::new(market), &held).unwrap_err();
    assert_eq!(err.field, "BTC-20DEC24-60000-P");
    assert!(err.to_string().contains("vol"), "{err}");
}
