// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! Properties of the margin engine on the bundled sample market and Ballast PM.

use basics::{Currency, Money, Rounding, UnixNanos};
use margin::report::{ReportOptions, margin_report};
use std::sync::Arc;

use formats::methodology::Profile;
use margin::{Engine, ErrorKind};
use market::MarketSnapshot;
use methodology::{Methodology, Offsets, ScenarioKind, VolMove};
use product::{Instrument, Portfolio, Position};

fn position(name: &str, size: f64) -> Position {
    Position::new(Instrument::parse(name).unwrap(), size)
}

fn usd(amount: &str) -> Money {
    Money::parse(amount, Currency::USDC, Rounding::Down).unwrap()
}

fn portfolio(positions: &[(&str, f64)], balances: &[Money]) -> Portfolio {
    Portfolio::new(positions.iter().map(|(n, s)| position(n, *s)).collect(), balances).unwrap()
}

/// Ballast PM without add-ons, collateral haircuts or offsets: the pure scan.
fn scan_only() -> Methodology {
    let mut m = testkit::ballast_pm();
    m.add_ons.clear();
    m.offsets = Offsets::None;
    m
}

#[derive(Debug)]
struct Run {
    figures: Vec<margin::CurrencyFigures>,
    detail: margin::AccountDetail,
}

fn run(
    engine: &Engine,
    market: &Arc<MarketSnapshot>,
    portfolio: &Portfolio,
) -> Result<Run, margin::Error> {
    let priced = engine.price_for(market, portfolio)?;
    let (figures, detail) = priced.account(&priced.resolve(portfolio)?)?;
    Ok(Run { figures, detail })
}

/// The full report of `portfolio` priced for its own instruments.
fn report(
    engine: &Engine,
    market: &Arc<MarketSnapshot>,
    portfolio: &Portfolio,
    options: &ReportOptions,
) -> margin::report::MarginReport {
    margin_report(&engine.price_for(market, portfolio).unwrap(), portfolio, options).unwrap()
}

fn usd_line(run: &Run) -> margin::CurrencyFigures {
    *run.figures.iter().find(|f| f.currency == Currency::USD).unwrap()
}

#[test]
fn empty_portfolio_has_zero_margin() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let r = run(&engine, &testkit::sample_market(), &Portfolio::default()).unwrap();
    let f = usd_line(&r);
    assert_eq!(
        (f.initial_margin, f.maintenance_margin, f.equity, f.scan_loss),
        (0.0, 0.0, 0.0, 0.0)
    );
    assert!(r.detail.units.is_empty());
}

#[test]
fn opposite_positions_have_opposite_pnl() {
    let engine = Engine::new(scan_only()).unwrap();
    let market = testkit::sample_market();
    let long = run(
        &engine,
        &market,
        &portfolio(&[("BTC-25DEC26-100000-C", 3.0), ("ETH-29JAN27-3500-P", -7.0)], &[]),
    )
    .unwrap();
    let short = run(
        &engine,
        &market,
        &portfolio(&[("BTC-25DEC26-100000-C", -3.0), ("ETH-29JAN27-3500-P", 7.0)], &[]),
    )
    .unwrap();
    for (a, b) in long.detail.units.iter().zip(&short.detail.units) {
        assert!(a.pnl.iter().zip(&b.pnl).all(|(x, y)| *x == -*y), "{}", a.underlying);
    }
}

/// Long call, short put (same strike and expiry) and a short inverse future of F₀ USD replicate
/// nothing: the coin-settled call − put is worth 1 − K/F coins, whose USD P&L under a move m is
/// S₀·m, exactly the future's. Vol shocks cancel between call and put. So every scenario has
/// zero P&L, up to rounding.
#[test]
fn synthetic_forward_against_future_has_no_risk() {
    let engine = Engine::new(scan_only()).unwrap();
    let market = testkit::sample_market();
    let forward = 95_000.0 * (0.05f64 * 35.0 / 365.0).exp();
    let forward = (forward * 100.0).round() / 100.0;
    let book = portfolio(
        &[("BTC-25DEC26-95000-C", 1.0), ("BTC-25DEC26-95000-P", -1.0), ("BTC-25DEC26", -forward)],
        &[],
    );
    let r = run(&engine, &market, &book).unwrap();
    let unit = &r.detail.units[0];
    let worst = unit.pnl.iter().fold(0.0f64, |m, p| m.max(p.abs()));
    assert!(worst < 1e-6 * forward, "largest scenario P&L {worst}");
    // The same legs alone carry real risk.
    let naked = run(&engine, &market, &portfolio(&[("BTC-25DEC26", -forward)], &[])).unwrap();
    assert!(usd_line(&naked).scan_loss > 0.1 * forward);
}

#[test]
fn scan_risk_is_positively_homogeneous_in_size() {
    let engine = Engine::new(scan_only()).unwrap();
    let market = testkit::sample_market();
    let base = portfolio(
        &[
            ("BTC-25DEC26-110000-C", -4.0),
            ("BTC-29JAN27-80000-P", 2.5),
            ("BTC-PERPETUAL", 150_000.0),
            ("ETH-26MAR27-3000-P", -20.0),
        ],
        &[],
    );
    let loss = |p: &Portfolio| usd_line(&run(&engine, &market, p).unwrap()).scan_loss;
    let reference = loss(&base);
    assert!(reference > 0.0);
    for factor in [0.5, 2.0, 10.0] {
        let scaled = loss(&base.scaled(factor).unwrap());
        assert!(
            (scaled - factor * reference).abs() <= 1e-9 * factor * reference,
            "x{factor}: {scaled} vs {}",
            factor * reference
        );
    }
}

#[test]
fn a_hedge_lowers_portfolio_margin_but_not_standard_margin() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market = testkit::sample_market();
    let options =
        ReportOptions { baseline: Some(testkit::deribit_standard()), ..ReportOptions::default() };
    let cash = [usd("2000000")];
    let naked = portfolio(&[("BTC-25DEC26-95000-C", -10.0)], &cash);
    // Delta hedge with the perpetual, plus a long call above to cap the upside.
    let hedged = portfolio(
        &[
            ("BTC-25DEC26-95000-C", -10.0),
            ("BTC-25DEC26-110000-C", 10.0),
            ("BTC-PERPETUAL", 300_000.0),
        ],
        &cash,
    );
    let a = report(&engine, &market, &naked, &options);
    let b = report(&engine, &market, &hedged, &options);
    let (pm_a, pm_b) = (a.figures[0].initial_margin, b.figures[0].initial_margin);
    let (std_a, std_b) = (a.baseline.unwrap(), b.baseline.unwrap());
    assert!(pm_b < 0.6 * pm_a, "hedged PM {pm_b} vs naked {pm_a}");
    assert!(std_b.initial_margin >= std_a.initial_margin, "standard margin ignores hedges");
    assert!(std_b.released > 0.0 && pm_b < std_b.initial_margin);
}

/// The delta-gamma-vega-theta approximation matches full revaluation for small moves without vol
/// shock on a three-month book, and fails badly for a one-week at-the-money straddle at ±16 %.
#[test]
fn greek_approximation_agrees_for_small_shocks_and_diverges_with_gamma() {
    let mut methodology = scan_only();
    methodology.valuation.horizon_days = 0.0;
    // BTC on the methodology-wide grid (±16 % in 2 % steps), whose first step is a small move.
    methodology.scenarios_by_underlying.remove(&Currency::BTC);
    let engine = Engine::new(methodology).unwrap();
    let market = testkit::sample_market();
    let options = ReportOptions { greek_approximation: true, ..ReportOptions::default() };
    let compare = |book: &Portfolio, keep: &dyn Fn(f64) -> bool, check: &dyn Fn(f64, f64, f64)| {
        let report = report(&engine, &market, book, &options);
        let (full, approx) =
            (&report.detail.units[0], &report.greek.as_ref().unwrap().detail.units[0]);
        let mut compared = 0;
        for (s, scenario) in report.scenario_sets[&Currency::BTC].scenarios().iter().enumerate() {
            let regular = scenario.kind == ScenarioKind::Regular && scenario.vol == VolMove::None;
            if regular && keep(scenario.spot_move.abs()) {
                check(scenario.spot_move, full.pnl[s], approx.pnl[s]);
                compared += 1;
            }
        }
        assert!(compared >= 2);
    };
    let slow = portfolio(&[("BTC-26MAR27-100000-C", -1.0), ("BTC-26MAR27-90000-P", -1.0)], &[]);
    compare(&slow, &|m| m > 0.0 && m <= 0.021, &|m, f, g| {
        assert!((f - g).abs() < 0.01 * f.abs(), "small move {m}: full {f} vs greek {g}");
    });
    let fast = portfolio(&[("BTC-27NOV26-95000-C", -1.0), ("BTC-27NOV26-95000-P", -1.0)], &[]);
    compare(&fast, &|m| m >= 0.159, &|m, f, g| {
        assert!((f - g).abs() > 0.2 * f.abs(), "large move {m}: full {f} vs greek {g}");
    });
}

#[test]
fn bad_inputs_get_typed_errors() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market = testkit::sample_market();
    let expired =
        run(&engine, &market, &portfolio(&[("BTC-13NOV26-90000-C", 1.0)], &[])).unwrap_err();
    assert_eq!(expired.kind, ErrorKind::Expired);
    assert_eq!(expired.field, "BTC-13NOV26-90000-C");
    let beyond =
        run(&engine, &market, &portfolio(&[("BTC-31DEC27-90000-C", 1.0)], &[])).unwrap_err();
    assert!(matches!(beyond.kind, ErrorKind::MissingMarketData(_)), "{beyond}");
    let unknown_underlying =
        run(&engine, &market, &portfolio(&[("SOL-PERPETUAL", 1.0)], &[])).unwrap_err();
    assert!(
        matches!(unknown_underlying.kind, ErrorKind::MissingMarketData(_)),
        "{unknown_underlying}"
    );
    let debt = Money::parse("-5", Currency::BTC, Rounding::Down).unwrap();
    let negative =
        run(&engine, &market, &portfolio(&[("BTC-PERPETUAL", 1000.0)], &[debt])).unwrap_err();
    assert_eq!(
        (negative.kind, negative.field.as_str()),
        (ErrorKind::NegativeCollateral, "balances.BTC")
    );
    let doge = Money::parse("5", "DOGE".parse().unwrap(), Rounding::Down).unwrap();
    let refused = run(&engine, &market, &portfolio(&[], &[doge])).unwrap_err();
    assert_eq!(refused.kind, ErrorKind::CollateralNotAccepted);
    // An instrument without a row in the arrays is unknown to the aggregation step.
    let priced = engine.price(&market, &[Instrument::parse("BTC-PERPETUAL").unwrap()]).unwrap();
    let other = portfolio(&[("ETH-PERPETUAL", 1.0)], &[]);
    assert_eq!(priced.resolve(&other).unwrap_err().kind, ErrorKind::UnknownInstrument);
    // More expiries on one underlying than a market can carry surfaces for.
    let daily: Vec<Instrument> = (1..=basics::limits::EXPIRIES_MAX as i64 + 1)
        .map(|day| {
            let expiry = UnixNanos(market.valuation().0 + day * basics::NANOS_PER_DAY);
            let kind = product::InstrumentKind::Future { expiry };
            Instrument::new(Currency::BTC, Currency::USD, product::Settlement::Inverse, kind)
                .unwrap()
        })
        .collect();
    let crowded = engine.price(&market, &daily).unwrap_err();
    assert_eq!(
        (crowded.kind, crowded.field.as_str()),
        (ErrorKind::TooMany { limit: basics::limits::EXPIRIES_MAX }, "instruments.BTC")
    );
}

/// Coins held as collateral move with their underlying (risk cancelling): against short calls
/// they turn every up-move loss into a gain. In a USD account they also bring their own
/// down-move risk, so the worst scenario moves to the downside, as in Derive's test_13.
#[test]
fn coin_collateral_moves_with_its_underlying() {
    let engine = Engine::new(scan_only()).unwrap();
    let market = testkit::sample_market();
    let calls = [("BTC-25DEC26-110000-C", -10.0)];
    let coins = run(
        &engine,
        &market,
        &portfolio(&calls, &[Money::parse("10", Currency::BTC, Rounding::Down).unwrap()]),
    )
    .unwrap();
    let dollars = run(&engine, &market, &portfolio(&calls, &[usd("950000")])).unwrap();
    let set =
        engine.price(&market, &[]).unwrap().arrays().scenarios(Currency::BTC).unwrap().clone();
    // Scenario by scenario, the coins add exactly 10 · S₀ · m (times the scenario weight).
    for (s, scenario) in set.scenarios().iter().enumerate() {
        let expected = 10.0 * 95_000.0 * scenario.spot_move * scenario.weight;
        let (c, d) = (coins.detail.units[0].pnl[s], dollars.detail.units[0].pnl[s]);
        assert!(
            (c - d - expected).abs() < 1e-6 * 950_000.0,
            "scenario {s}: {c} - {d} != {expected}"
        );
    }
    let worst = &coins.detail.units[0];
    assert!(set.scenarios()[worst.worst].spot_move < 0.0);
}

#[test]
fn refresh_is_identical_for_any_thread_count() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let (market, instruments) = bench::synthetic::exchange(400);
    let priced = engine.price(&Arc::new(market), &instruments).unwrap();
    let futures: Vec<usize> =
        (0..instruments.len()).filter(|&i| !instruments[i].is_option()).collect();
    let book = bench::synthetic::book(7, 5_000, 12, instruments.len(), &futures);
    let run_with = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let refresh = pool.install(|| priced.refresh(&book));
        assert!(refresh.failures().is_empty());
        refresh
            .lines()
            .iter()
            .map(|l| (l.account, l.figures.initial_margin.to_bits(), l.figures.equity.to_bits()))
            .collect::<Vec<_>>()
    };
    let one = run_with(1);
    assert_eq!(one.len(), 5_000);
    assert_eq!(run_with(2), one);
    assert_eq!(run_with(5), one);
}

/// Euler's theorem for positively homogeneous functions: with scan risk only, IM(λq) = λ·IM(q),
/// so Σ qᵢ·∂IM/∂qᵢ = IM. The marginal margins come from finite differences on the full engine.
#[test]
fn marginal_margins_add_up_to_the_margin() {
    let engine = Engine::new(scan_only()).unwrap();
    let market = testkit::sample_market();
    let book = portfolio(
        &[
            ("BTC-25DEC26-105000-C", -3.0),
            ("BTC-29JAN27-85000-P", -2.0),
            ("BTC-PERPETUAL", 50_000.0),
        ],
        &[],
    );
    let options = ReportOptions { marginal: true, ..ReportOptions::default() };
    let report = report(&engine, &market, &book, &options);
    let euler: f64 = report.positions.iter().map(|p| p.size * p.marginal_im.unwrap()).sum();
    let im = report.figures[0].initial_margin;
    assert!((euler - im).abs() < 1e-4 * im, "Σ q·∂IM/∂q = {euler}, IM = {im}");
}

/// The liquidation move is a root of equity − MM on the full engine: just inside it the account
/// is safe, just beyond it is not.
#[test]
fn liquidation_price_is_a_root_of_the_full_engine() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market = testkit::sample_market();
    let book = portfolio(
        &[("BTC-25DEC26-90000-P", -10.0), ("BTC-25DEC26-80000-P", 5.0)],
        &[usd("150000")],
    );
    let options = ReportOptions { liquidation: true, ..ReportOptions::default() };
    let report = report(&engine, &market, &book, &options);
    let point = report.liquidation.iter().find(|p| p.underlying == Currency::BTC).unwrap();
    let m = point.move_down.expect("a short put spread breaches MM on a large enough fall");
    assert!(m < 0.0 && m > -0.99, "{m}");
    let cushion = |shift: f64| {
        let moved = Arc::new(market.with_spot_move(Currency::BTC, m + shift).unwrap());
        let f = usd_line(&run(&engine, &moved, &book).unwrap());
        f.equity - f.maintenance_margin
    };
    assert!(cushion(0.002) > 0.0, "safe just inside the liquidation move");
    assert!(cushion(-0.002) < 0.0, "breached just beyond it");
    assert_eq!(report.valuation, UnixNanos::from_civil(2026, 11, 20, 8));
}

#[test]
fn replacing_an_account_gives_the_book_built_with_it() {
    use margin::{AccountBook, ResolvedAccount};
    let account = |rows: &[usize], balances: &[f64]| ResolvedAccount {
        positions: rows.iter().map(|&r| (r, r as f64 + 0.5)).collect(),
        balances: balances.iter().map(|&b| (Currency::USDC, b)).collect(),
        entries: rows.iter().skip(1).map(|&r| (r, 1_000.0 * r as f64)).collect(),
        fundings: rows.iter().take(1).map(|&r| (r, 0.25 * r as f64)).collect(),
    };
    let (first, last) = (account(&[1, 2], &[10.0]), account(&[7], &[30.0, 40.0]));
    let book_of = |accounts: &[&ResolvedAccount]| {
        let mut book = AccountBook::default();
        for a in accounts {
            book.push(a);
        }
        book
    };
    let mut book = book_of(&[&first, &account(&[3, 4], &[20.0]), &last]);
    // More positions, entries and fewer balances, then fewer positions and more balances.
    for middle in [account(&[3, 5, 6], &[]), account(&[], &[1.0, 2.0, 3.0])] {
        book.replace(1, &middle);
        assert_eq!(book, book_of(&[&first, &middle, &last]));
    }
}

/// A book spans chunks of `BOOK_CHUNK_ACCOUNTS`; a copy shares them, and replacing an account
/// in the copy (in any chunk, at its edges too) leaves the original as it was.
#[test]
fn a_copied_book_changes_alone_across_chunks() {
    use margin::{AccountBook, BOOK_CHUNK_ACCOUNTS, ResolvedAccount};
    let account = |a: usize, extra: usize| ResolvedAccount {
        positions: (0..=(a + extra) % 5).map(|r| (r + a % 7, a as f64)).collect(),
        balances: vec![(Currency::USDC, (a + extra) as f64)],
        entries: (0..extra % 4).map(|r| (r + a % 7, 50_000.0)).collect(),
        fundings: (0..extra % 3).map(|r| (r + a % 7, 1.5)).collect(),
    };
    let accounts = 2 * BOOK_CHUNK_ACCOUNTS + 5;
    let book_of = |changed: &[usize]| {
        let mut book = AccountBook::default();
        for a in 0..accounts {
            book.push(&account(a, usize::from(changed.contains(&a)) * 3));
        }
        book
    };
    let original = book_of(&[]);
    assert_eq!(original.len(), accounts);
    let changed = [0, BOOK_CHUNK_ACCOUNTS - 1, BOOK_CHUNK_ACCOUNTS, accounts - 1];
    let mut copy = original.clone();
    for &a in &changed {
        copy.replace(a, &account(a, 3));
    }
    assert_eq!(copy, book_of(&changed));
    assert_eq!(original, book_of(&[]));
    for a in [0, BOOK_CHUNK_ACCOUNTS, accounts - 1] {
        let expected = account(a, 3);
        assert_eq!(copy.account(a), expected.slices());
    }
}

/// A refused account gets its own error and does not stop the others: every other account has
/// the figures it has alone, whatever the thread count, in cross and in segregated margin; and
/// replacing an account's result (as a service re-margining one account does) keeps the rest.
#[test]
fn a_refresh_gives_every_account_its_own_result() {
    let (market, instruments) = bench::synthetic::exchange(400);
    let market = Arc::new(market);
    let mut book = margin::AccountBook::default();
    let mut accounts = Vec::new();
    for a in 0..6_000 {
        // Debt is refused: accounts 4,321 and 5,000 cannot be margined.
        let cash = if a == 4_321 || a == 5_000 { -5.0 } else { 1_000.0 };
        let account = margin::ResolvedAccount {
            positions: vec![(a % instruments.len(), 1.0)],
            balances: vec![(Currency::BTC, cash)],
            entries: Vec::new(),
            fundings: Vec::new(),
        };
        book.push(&account);
        accounts.push(account);
    }
    let segregated = formats::bundled::bundled("deribit-pm-segregated").unwrap();
    let formats::methodology::Profile::Portfolio(segregated) = segregated else { panic!() };
    for methodology in [testkit::ballast_pm(), *segregated] {
        let priced = Engine::new(methodology).unwrap().price(&market, &instruments).unwrap();
        for threads in [1, 2, 5] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let refresh = pool.install(|| priced.refresh(&book));
            assert_eq!(refresh.len(), 6_000);
            assert_eq!(refresh.failures().keys().copied().collect::<Vec<_>>(), [4_321, 5_000]);
            let err = refresh.account(4_321).unwrap_err();
            assert_eq!((err.account, err.field.as_str()), (Some(4_321), "balances.BTC"));
            assert_eq!(err.kind, ErrorKind::NegativeCollateral);
            for a in [0, 4_320, 4_322, 5_999] {
                let alone = priced.figures(&accounts[a]).unwrap();
                let lines: Vec<_> = refresh.account(a).unwrap().iter().map(|l| l.figures).collect();
                assert_eq!(lines, alone, "account {a}, {threads} threads");
            }
        }
        let mut refresh = priced.refresh(&book);
        let mended = margin::ResolvedAccount {
            balances: vec![(Currency::BTC, 2.0)],
            ..accounts[4_321].clone()
        };
        refresh.replace(4_321, priced.figures(&mended).as_deref().map_err(Clone::clone));
        assert_eq!(refresh.failures().keys().copied().collect::<Vec<_>>(), [5_000]);
        let lines: Vec<_> = refresh.account(4_321).unwrap().iter().map(|l| l.figures).collect();
        assert_eq!(lines, priced.figures(&mended).unwrap());
        let before: Vec<_> = refresh.account(4_322).unwrap().to_vec();
        refresh.replace(0, Err(margin::Error::new("balances.BTC", ErrorKind::NegativeCollateral)));
        assert!(refresh.account(0).is_err());
        assert_eq!(refresh.account(4_322).unwrap(), &before[..]);
    }
}

/// An account's margin is a function of (market, methodology, portfolio) alone: priced for its
/// own instruments (the CLI), or among every quoted instrument of the market (the service),
/// the figures are the same bits, because the friction add-on's liquidity comes from the
/// market snapshot alone.
#[test]
fn figures_do_not_depend_on_the_universe_they_are_priced_in() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market = testkit::sample_market();
    let quoted: Vec<Instrument> = market.quotes().keys().copied().collect();
    let everything = engine.price(&market, &quoted).unwrap();
    let book = portfolio(
        &[
            ("BTC-25DEC26-110000-C", -10.0),
            ("BTC-PERPETUAL", 200_000.0),
            ("ETH-PERPETUAL", -50_000.0),
        ],
        &[usd("950000")],
    );
    let alone = engine.price_for(&market, &book).unwrap();
    assert!(alone.arrays().instruments().len() < everything.arrays().instruments().len());
    assert_eq!(alone.liquidity(), everything.liquidity());
    assert_eq!(alone.margin(&book).unwrap(), everything.margin(&book).unwrap());
    let friction = alone.margin(&book).unwrap()[0].add_ons_im;
    assert!(friction > 0.0, "the friction add-on is charged: {friction}");
}

/// A position sized beyond any market gives figures beyond the range of money: the report
/// refuses them naming the figure, the bound and the largest position, never as "non-finite".
#[test]
fn figures_beyond_money_name_the_figure_and_the_position() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market = testkit::sample_market();
    let huge = portfolio(&[("BTC-25DEC26-100000-C", 1e13), ("BTC-PERPETUAL", 10.0)], &[]);
    let priced = engine.price_for(&market, &huge).unwrap();
    let err = margin_report(&priced, &huge, &ReportOptions::default()).unwrap_err();
    assert_eq!(err.field, "USD.initial_margin");
    let ErrorKind::OutOfRange(why) = &err.kind else { panic!("{err}") };
    assert!(why.contains("beyond the range of fixed-point money"), "{why}");
    assert!(why.contains("the largest position is BTC-25DEC26-100000-C (size 1e13)"), "{why}");
}

/// An underlying listed without options has no surface to scale market impact by: the market
/// must give its reference volatility, or the friction add-on refuses the unit (naming the
/// underlying) instead of inventing one. With it, the impact grows with the volatility.
#[test]
fn impact_without_a_surface_needs_a_reference_volatility() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let futures_only = |reference_vol: Option<f64>| {
        let input = market::UnderlyingInput {
            index: 95_000.0,
            reference_vol,
            ..market::UnderlyingInput::default()
        };
        let built = MarketSnapshot::builder(testkit::sample_market().valuation())
            .underlying(Currency::BTC, input)
            .usd_price(Currency::USDC, 1.0)
            .build()
            .unwrap();
        Arc::new(built)
    };
    let book = portfolio(&[("BTC-PERPETUAL", 5e8)], &[usd("10000000")]);
    let err = run(&engine, &futures_only(None), &book).unwrap_err();
    assert_eq!(err.field, "BTC");
    assert!(matches!(err.kind, ErrorKind::MissingMarketData(_)), "{err}");
    let calm = usd_line(&run(&engine, &futures_only(Some(0.4)), &book).unwrap());
    let wild = usd_line(&run(&engine, &futures_only(Some(1.2)), &book).unwrap());
    assert!(wild.add_ons_im > calm.add_ons_im && calm.add_ons_im > 0.0, "{calm:?} {wild:?}");
    assert_eq!(wild.scan_loss, calm.scan_loss);
    // Rejected at the boundary: a reference volatility must be positive.
    let bad =
        market::UnderlyingInput { index: 1.0, reference_vol: Some(0.0), ..Default::default() };
    let refused = MarketSnapshot::builder(UnixNanos(0)).underlying(Currency::BTC, bad).build();
    assert!(refused.unwrap_err().field.ends_with("reference_vol"));
}

/// The USD summary of an account is its one USD line in cross margin, and in segregated margin
/// the sum of its lines, each at its currency's USD price, with the worst scenario of the line
/// that loses most in USD.
#[test]
fn usd_figures_sum_the_lines_at_their_prices() {
    let market = testkit::sample_market();
    let book = portfolio(&[("BTC-25DEC26-100000-C", -5.0), ("ETH-PERPETUAL", -50_000.0)], &[]);
    let cross = run(&Engine::new(testkit::ballast_pm()).unwrap(), &market, &book).unwrap();
    let usd = margin::report::UsdFigures::of(&cross.figures, &market).unwrap();
    let line = usd_line(&cross);
    assert_eq!(
        (usd.initial_margin, usd.scan_loss, usd.worst),
        (line.initial_margin, line.scan_loss, line.worst)
    );
    let Profile::Portfolio(segregated) =
        formats::bundled::bundled("deribit-pm-segregated").unwrap()
    else {
        panic!("a portfolio profile")
    };
    let lines = run(&Engine::new(*segregated).unwrap(), &market, &book).unwrap().figures;
    assert_eq!(lines.len(), 2);
    let usd = margin::report::UsdFigures::of(&lines, &market).unwrap();
    let price = |f: &margin::CurrencyFigures| market.usd_price(f.currency).unwrap();
    let im: f64 = lines.iter().map(|f| f.initial_margin * price(f)).sum();
    assert_eq!(usd.initial_margin, im);
    let largest =
        lines.iter().max_by(|a, b| (a.scan_loss * price(a)).total_cmp(&(b.scan_loss * price(b))));
    assert_eq!(usd.worst, largest.unwrap().worst);
}

/// The report's Greeks are the derivatives they claim to be. By put-call parity a call less a
/// put of one strike and expiry is a forward, whatever the volatility or its skew, so the two
/// positions' deltas must differ by a central difference of that forward's USD value under
/// ±0.1 % index moves; a long option's vega is positive and a short one's negative; an inverse
/// perpetual of S USD has a delta of S / mark coins (its mark moves with the index); the
/// per-underlying sums are the positions'.
#[test]
fn report_greeks_are_derivatives() {
    let engine = Engine::new(testkit::ballast_pm()).unwrap();
    let market = testkit::sample_market();
    let (call, put) = ("BTC-25DEC26-100000-C", "BTC-25DEC26-100000-P");
    let book =
        portfolio(&[(call, 1.0), (put, -1.0), ("BTC-PERPETUAL", 50_000.0)], &[usd("1000000")]);
    let options = ReportOptions::default();
    let base = report(&engine, &market, &book, &options);
    let index = market.underlying(Currency::BTC).unwrap().index();
    let line = |r: &margin::report::MarginReport, name: &str| {
        *r.positions.iter().find(|p| p.instrument.to_string() == name).unwrap()
    };
    // The USD value of (call − put): the book holds the call long and the put short.
    let forward_usd = |spot_move: f64| {
        let moved = Arc::new(market.with_spot_move(Currency::BTC, spot_move).unwrap());
        let r = report(&engine, &moved, &book, &options);
        [call, put]
            .iter()
            .map(|n| line(&r, n))
            .map(|p| p.value * moved.usd_price(p.currency).unwrap())
            .sum::<f64>()
    };
    let h = 1e-3;
    let difference = (forward_usd(h) - forward_usd(-h)) / (2.0 * h * index);
    let (c, p) = (line(&base, call), line(&base, put));
    let parity = c.delta_coins + p.delta_coins;
    assert!((parity - difference).abs() < 1e-6 * difference, "{parity} against {difference}");
    assert!(c.vega_usd_per_vol_point > 0.0 && p.vega_usd_per_vol_point < 0.0, "{c:?} {p:?}");
    let perp = line(&base, "BTC-PERPETUAL");
    assert!((perp.delta_coins - 50_000.0 / perp.mark).abs() < 1e-9 * perp.delta_coins, "{perp:?}");
    let btc = base.greeks[&Currency::BTC];
    let sum =
        |f: fn(&margin::report::PositionLine) -> f64| base.positions.iter().map(f).sum::<f64>();
    assert_eq!(btc.delta_coins, sum(|p| p.delta_coins));
    assert_eq!(btc.vega_usd_per_vol_point, sum(|p| p.vega_usd_per_vol_point));
    assert!((btc.delta_usd - btc.delta_coins * index).abs() < 1e-9 * btc.delta_usd.abs());
}
