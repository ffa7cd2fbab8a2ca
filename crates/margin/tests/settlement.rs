//! Trade economics on the full engine: futures' P&L in equity, settlement at the mark, expiry
//! settlement, what-ifs with premiums and the pre-trade check. Every expectation is an identity
//! of the contracts (P&L from entry to mark, intrinsic value at expiry, a trade at the mark
//! changes no equity) or a figure computed by hand from the market.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::sync::Arc;

use basics::{Currency, Money, Rounding};
use margin::settle::FlowKind;
use margin::whatif::{Trade, liquidation_points, pre_trade, what_if};
use margin::{CurrencyFigures, Engine, ErrorKind, PricedMarket, Scratch};
use market::MarketSnapshot;
use product::{Instrument, Portfolio, Position, delta_one_pnl};

fn instrument(name: &str) -> Instrument {
    Instrument::parse(name).unwrap()
}

fn money(amount: &str, currency: Currency) -> Money {
    Money::parse(amount, currency, Rounding::Down).unwrap()
}

fn priced(market: &Arc<MarketSnapshot>, portfolio: &Portfolio) -> PricedMarket {
    Engine::new(testkit::ballast_pm()).unwrap().price_for(market, portfolio).unwrap()
}

fn figures(market: &Arc<MarketSnapshot>, portfolio: &Portfolio) -> CurrencyFigures {
    priced(market, portfolio).margin(portfolio).unwrap()[0]
}

/// The sample's `perp-trader`: long 2,000,000 USD of the inverse perpetual (about 21 BTC)
/// against 300,000 USDC, entered at the perpetual's mark.
fn perp_trader(market: &Arc<MarketSnapshot>) -> Portfolio {
    let perp = instrument("BTC-PERPETUAL");
    let mark = market.underlying(Currency::BTC).unwrap().perpetual_mark();
    let position = Position { entry: Some(mark), ..Position::new(perp, 2_000_000.0) };
    Portfolio::new(vec![position], &[money("300000", Currency::USDC)]).unwrap()
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
}

/// A −10 % BTC move costs the long perpetual its inverse P&L, 2e6 · (1/F₀ − 1/F₁) BTC at the
/// moved index: about 200,000 USD, which takes it below maintenance margin. The same book
/// without an entry price would count as settled at every mark (equity unmoved): the entry is
/// what makes equity follow the market.
#[test]
fn a_perpetual_books_equity_follows_the_market() {
    let market = testkit::sample_market();
    let book = perp_trader(&market);
    let before = figures(&market, &book);
    assert!(close(before.equity, 300_000.0 * 0.9998, 1e-12), "{}", before.equity);
    let down = Arc::new(market.with_spot_move(Currency::BTC, -0.1).unwrap());
    let after = figures(&down, &book);
    let (f0, f1) = (
        market.underlying(Currency::BTC).unwrap().perpetual_mark(),
        down.underlying(Currency::BTC).unwrap().perpetual_mark(),
    );
    let pnl_btc = delta_one_pnl(&book.positions()[0].instrument, 2_000_000.0, f0, f1);
    let index = down.underlying(Currency::BTC).unwrap().index();
    assert!(close(after.equity - before.equity, pnl_btc * index, 1e-9));
    assert!((-205_000.0..-195_000.0).contains(&(after.equity - before.equity)));
    assert!(after.equity < after.maintenance_margin, "below MM after the move: {after:?}");
    let unentered = Portfolio::new(
        vec![Position::new(book.positions()[0].instrument, 2_000_000.0)],
        &[money("300000", Currency::USDC)],
    )
    .unwrap();
    assert_eq!(figures(&down, &unentered).equity, before.equity);
}

/// The liquidation price of the perpetual book lies between the index and the −10 % move that
/// breaches it, and equity meets MM there; it is the same with or without an entry price at
/// the current mark (the search enters the book first).
#[test]
fn a_perpetual_book_has_a_liquidation_price() {
    let market = testkit::sample_market();
    let book = perp_trader(&market);
    let points = liquidation_points(&priced(&market, &book), &book).unwrap();
    let btc = points.iter().find(|p| p.underlying == Currency::BTC).unwrap();
    let m = btc.move_down.unwrap();
    assert!((-0.1..0.0).contains(&m), "{m}");
    let at = Arc::new(market.with_spot_move(Currency::BTC, m).unwrap());
    let there = figures(&at, &book);
    assert!(close(there.equity, there.maintenance_margin, 1e-6), "{there:?}");
    let unentered = Portfolio::new(
        vec![Position::new(book.positions()[0].instrument, 2_000_000.0)],
        &[money("300000", Currency::USDC)],
    )
    .unwrap();
    let again = liquidation_points(&priced(&market, &unentered), &unentered).unwrap();
    assert_eq!(again.iter().find(|p| p.underlying == Currency::BTC).unwrap().move_down, Some(m));
}

/// Settling at the mark moves the P&L into the balance and resets the entry; every figure is
/// the same before and after (to the rounding of the cash to 1e-18). A gain is credited in
/// BTC; a loss beyond the BTC balance, under a methodology without debt, pays the balance and
/// leaves the rest in the position.
#[test]
fn settlement_at_the_mark_changes_no_figure() {
    let market = testkit::sample_market();
    let perp = instrument("BTC-PERPETUAL");
    let mark = market.underlying(Currency::BTC).unwrap().perpetual_mark();
    for (entry, btc) in [(mark * 0.9, "0.5"), (mark * 1.1, "0.5")] {
        let position = Position { entry: Some(entry), ..Position::new(perp, 2_000_000.0) };
        let balances = [money("300000", Currency::USDC), money(btc, Currency::BTC)];
        let book = Portfolio::new(vec![position], &balances).unwrap();
        let priced = priced(&market, &book);
        let settled = priced.settle(&book).unwrap();
        let pnl = delta_one_pnl(&perp, 2_000_000.0, entry, mark);
        let flow = settled.flows[0];
        assert_eq!((flow.kind, flow.price), (FlowKind::Variation, mark));
        let held = settled.portfolio.balances().get(&Currency::BTC).map_or(0.0, Money::to_f64);
        if pnl > 0.0 {
            assert!(close(flow.amount.to_f64(), pnl, 1e-15));
            assert_eq!(settled.portfolio.positions()[0].entry, Some(mark));
            assert!(close(held, 0.5 + pnl, 1e-15));
        } else {
            assert!(pnl < -0.5, "the loss exceeds the BTC balance");
            assert_eq!(flow.amount, -money(btc, Currency::BTC));
            assert_eq!(held, 0.0);
            let kept = settled.portfolio.positions()[0];
            assert!(close(
                delta_one_pnl(&perp, kept.size, kept.entry.unwrap(), mark),
                pnl + 0.5,
                1e-12
            ));
        }
        let (a, b) =
            (priced.margin(&book).unwrap()[0], priced.margin(&settled.portfolio).unwrap()[0]);
        for (x, y) in [(a.equity, b.equity), (a.initial_margin, b.initial_margin)] {
            assert!(close(x, y, 1e-12), "{x} against {y}");
        }
        // Settling again at the same mark moves nothing.
        let again = priced.settle(&settled.portfolio).unwrap();
        assert!(again.flows.iter().all(|f| f.amount.raw() == 0 || pnl < 0.0));
    }
}

/// The sample market a week later, past the 27NOV26 expiry, with BTC settled at 96,000.
fn after_expiry() -> Arc<MarketSnapshot> {
    let mut doc =
        formats::market::MarketDocument::from_json(formats::bundled::SAMPLE_MARKET_JSON).unwrap();
    "2026-11-27T09:00:00Z".clone_into(&mut doc.valuation_time);
    for underlying in doc.underlyings.values_mut() {
        underlying.forwards.remove("27NOV26");
        underlying.smiles.remove("27NOV26");
    }
    let btc = doc.underlyings.get_mut("BTC").unwrap();
    btc.settlements.insert("27NOV26".to_owned(), 96_000.0);
    doc.instruments.retain(|name, _| !name.contains("27NOV26"));
    Arc::new(doc.to_snapshot().unwrap())
}

/// Expired options pay their intrinsic value at the settlement price (coins for Deribit's
/// inverse options: (S − K)⁺ / S per contract), an expired future its P&L from its entry; both
/// leave the book, which keeps its live positions. Without a settlement price, or an entry for
/// an expired future, the settlement is refused naming the position.
#[test]
fn expired_contracts_settle_at_their_settlement_price() {
    let market = after_expiry();
    let live = Position::new(instrument("BTC-25DEC26-100000-C"), -1.0);
    let book = Portfolio::new(
        vec![
            Position::new(instrument("BTC-27NOV26-90000-C"), 2.0),
            Position::new(instrument("BTC-27NOV26-100000-P"), -3.0),
            Position::new(instrument("BTC-27NOV26-90000-P"), 5.0),
            Position {
                entry: Some(95_000.0),
                ..Position::new(instrument("BTC-27NOV26"), 10_000.0)
            },
            live,
        ],
        &[money("1", Currency::BTC)],
    )
    .unwrap();
    let universe = [live.instrument];
    let priced = Engine::new(testkit::ballast_pm()).unwrap().price(&market, &universe).unwrap();
    let settled = priced.settle(&book).unwrap();
    let s = 96_000.0;
    let expected = 2.0 * (s - 90_000.0) / s - 3.0 * (100_000.0 - s) / s
        + 10_000.0 * (1.0 / 95_000.0 - 1.0 / s);
    let btc = settled.portfolio.balances()[&Currency::BTC].to_f64();
    assert!(close(btc, 1.0 + expected, 1e-15), "{btc} against {}", 1.0 + expected);
    assert_eq!(settled.portfolio.positions(), &[live]);
    assert!(settled.flows.iter().all(|f| f.kind == FlowKind::Expiry && f.price == s));
    assert_eq!(settled.flows.len(), 4);
    // The put out of the money pays nothing, and still closes.
    let otm = settled.flows.iter().find(|f| f.instrument.to_string() == "BTC-27NOV26-90000-P");
    assert_eq!(otm.unwrap().amount.raw(), 0);

    let eth =
        Portfolio::new(vec![Position::new(instrument("ETH-27NOV26-3000-C"), 1.0)], &[]).unwrap();
    let err = priced.settle(&eth).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.kind),
        ("positions.ETH-27NOV26-3000-C", ErrorKind::Expired)
    );
    let future =
        Portfolio::new(vec![Position::new(instrument("BTC-27NOV26"), 1_000.0)], &[]).unwrap();
    assert_eq!(priced.settle(&future).unwrap_err().field, "positions.BTC-27NOV26.entry");
}

/// Buying back 10 short calls at their mark pays 10 × the mark from the balance and removes
/// a liability worth as much: equity after equals equity before (the bug was a what-if that
/// added their value and paid nothing). At a price above the mark, equity falls by exactly the
/// difference. The what-if's "after" is the margin of the portfolio it returns.
#[test]
fn what_if_pays_the_premium() {
    let market = testkit::sample_market();
    let call = instrument("BTC-25DEC26-100000-C");
    let book =
        Portfolio::new(vec![Position::new(call, -10.0)], &[money("5", Currency::BTC)]).unwrap();
    let priced = priced(&market, &book);
    let mut scratch = Scratch::default();
    let at_mark = [Trade { instrument: call, size: 10.0, price: None }];
    let w = what_if(&priced, &book, &at_mark, &mut scratch).unwrap();
    assert!(w.portfolio.positions().is_empty());
    let mark = priced.mark(&call).unwrap();
    assert_eq!(w.fills[0].price, mark);
    assert!(close(w.cash[0].to_f64(), -10.0 * mark, 1e-15));
    assert!(close(w.after[0].equity, w.before[0].equity, 1e-12), "{w:?}");
    assert_eq!(w.after, priced.margin(&w.portfolio).unwrap());
    let dear = [Trade { instrument: call, size: 10.0, price: Some(mark + 0.001) }];
    let w = what_if(&priced, &book, &dear, &mut scratch).unwrap();
    let btc_usd = market.usd_price(Currency::BTC).unwrap();
    assert!(close(w.before[0].equity - w.after[0].equity, 10.0 * 0.001 * btc_usd, 1e-9));
}

/// The pre-trade check refuses a trade whose IM the equity after cannot cover, naming the
/// currency, and accepts a trade that reduces risk even in an account already below IM.
#[test]
fn the_pre_trade_check_refuses_new_risk_only() {
    let market = testkit::sample_market();
    let book = perp_trader(&market);
    let now = priced(&market, &book);
    let mut scratch = Scratch::default();
    let perp = book.positions()[0].instrument;
    let more = [Trade { instrument: perp, size: 20_000_000.0, price: None }];
    let check = pre_trade(&now, &book, &more, &mut scratch).unwrap();
    assert!(!check.accepted);
    assert!(check.reason.as_deref().unwrap().starts_with("USD: equity after"), "{check:?}");
    let down = Arc::new(market.with_spot_move(Currency::BTC, -0.1).unwrap());
    let breached = priced(&down, &book);
    let now = breached.margin(&book).unwrap()[0];
    assert!(now.equity < now.initial_margin);
    // Closing half realises half the loss in BTC: with BTC to pay it, accepted; against no
    // BTC balance, a debt the methodology refuses, so the check says why.
    let less = [Trade { instrument: perp, size: -1_000_000.0, price: None }];
    let check = pre_trade(&breached, &book, &less, &mut scratch).unwrap();
    assert!(!check.accepted);
    assert!(check.what_if.cash[0].is_negative());
    assert!(check.reason.as_deref().unwrap().starts_with("balances.BTC: negative balance"));
    let mut balances: Vec<Money> = book.balances().values().copied().collect();
    balances.push(money("1.5", Currency::BTC));
    let funded = Portfolio::new(book.positions().to_vec(), &balances).unwrap();
    let before = breached.margin(&funded).unwrap()[0];
    assert!(before.equity < before.initial_margin, "{before:?}");
    let check = pre_trade(&breached, &funded, &less, &mut scratch).unwrap();
    assert!(check.accepted, "{check:?}");
    assert!(check.what_if.after[0].initial_margin < before.initial_margin);
}

/// The sample market with `instrument` quoting cumulative funding index `index`.
fn with_funding(market: &MarketSnapshot, instrument: &str, index: f64) -> Arc<MarketSnapshot> {
    let mut document = formats::market::MarketDocument::from_snapshot(market);
    document.instruments.entry(instrument.to_owned()).or_default().funding_index = Some(index);
    Arc::new(document.to_snapshot().unwrap())
}

/// A perpetual paid up to one funding index owes `-size × (index − paid)` at a later one: the
/// long inverse perpetual (size in USD, funding in BTC per USD) and a short linear one (size in
/// BTC, funding in USDC per BTC) each move equity by exactly that cash at the coin's price, and
/// a settlement pays it into the balance as a funding flow (no figure changes, to the rounding
/// of the cash to 1e-18) and moves the index up to the market's.
#[test]
fn a_perpetual_owes_the_funding_accrued_since_its_index_and_settlement_pays_it() {
    let base = testkit::sample_market();
    let btc_usd = base.usd_price(Currency::BTC).unwrap();
    let usdc_usd = base.usd_price(Currency::USDC).unwrap();
    let cases = [
        ("BTC-PERPETUAL", 2_000_000.0, 1e-6, 1.05e-6, Currency::BTC, btc_usd),
        ("BTC_USDC-PERPETUAL", -20.0, 1_250.0, 1_180.0, Currency::USDC, usdc_usd),
    ];
    for (name, size, paid, index, currency, usd) in cases {
        let perp = instrument(name);
        let then = with_funding(&base, name, paid);
        let now = with_funding(&base, name, index);
        let entered = |btc: &str| {
            let position = Position::new(perp, size);
            let balances = [money("300000", Currency::USDC), money(btc, Currency::BTC)];
            let book = Portfolio::new(vec![position], &balances).unwrap();
            priced(&then, &book).entered(&book).unwrap()
        };
        let book = entered("0.5");
        assert_eq!(book.positions()[0].funding, Some(paid), "{name}: entered at the index");
        let due = product::funding_due(size, paid, index);
        assert!(due < 0.0, "{name}: this move of the index is paid by the position");
        let (before, after) = (figures(&then, &book), figures(&now, &book));
        assert!(
            close(after.equity - before.equity, due * usd, 1e-9),
            "{name}: {before:?} {after:?}"
        );

        let settled = priced(&now, &book).settle(&book).unwrap();
        let flow = settled.flows.iter().find(|f| f.kind == FlowKind::Funding).unwrap();
        assert_eq!((flow.instrument, flow.price), (perp, index));
        assert!(close(flow.amount.to_f64(), due, 1e-15), "{name}: {flow:?}");
        assert_eq!(flow.amount.currency(), currency);
        assert_eq!(settled.portfolio.positions()[0].funding, Some(index));
        let paid_up = figures(&now, &settled.portfolio);
        assert!(close(paid_up.equity, after.equity, 1e-12), "{name}: {paid_up:?} {after:?}");
        assert!(close(paid_up.initial_margin, after.initial_margin, 1e-12));
        // Settling again at the same index pays nothing more.
        let again = priced(&now, &settled.portfolio).settle(&settled.portfolio).unwrap();
        assert!(again.flows.iter().all(|f| f.kind != FlowKind::Funding), "{:?}", again.flows);
        if currency == Currency::BTC {
            // No BTC to pay with, and no debt: the funding stays accrued, equity unchanged.
            let broke = entered("0");
            let before = figures(&now, &broke);
            let settled = priced(&now, &broke).settle(&broke).unwrap();
            let flow = settled.flows.iter().find(|f| f.kind == FlowKind::Funding).unwrap();
            assert_eq!(flow.amount.raw(), 0);
            let kept = figures(&now, &settled.portfolio);
            assert!(close(kept.equity, before.equity, 1e-12), "{kept:?} {before:?}");
        }
    }
}

/// A trade on a perpetual first pays its accrued funding, so contracts bought at the new index
/// never pay the funding of before; a position opened by a trade starts at the market's index.
/// A market that stops quoting the index cannot value a position paid up to one, and says so.
#[test]
fn a_trade_pays_the_funding_first_and_new_contracts_start_at_the_index() {
    let base = testkit::sample_market();
    let name = "BTC-PERPETUAL";
    let perp = instrument(name);
    let now = with_funding(&base, name, 1.05e-6);
    let position = Position { funding: Some(1e-6), ..Position::new(perp, 2_000_000.0) };
    let balances = [money("300000", Currency::USDC), money("0.5", Currency::BTC)];
    let book = Portfolio::new(vec![position], &balances).unwrap();
    let priced_now = priced(&now, &book);
    let mut scratch = Scratch::default();
    let trade = Trade { instrument: perp, size: 1_000_000.0, price: None };
    let traded = what_if(&priced_now, &book, &[trade], &mut scratch).unwrap();
    let after = traded.portfolio.positions()[0];
    assert_eq!((after.size, after.funding), (3_000_000.0, Some(1.05e-6)));
    let due = product::funding_due(2_000_000.0, 1e-6, 1.05e-6);
    let btc = traded.portfolio.balances().get(&Currency::BTC).unwrap().to_f64();
    assert!(close(btc, 0.5 + due, 1e-15), "the funding paid from the BTC balance: {btc}");
    // A trade at the mark changes no equity: the funding moved from accrued to paid.
    assert!(close(traded.after[0].equity, traded.before[0].equity, 1e-9), "{traded:?}");

    let opened = Portfolio::new(vec![], &[money("300000", Currency::USDC)]).unwrap();
    let priced_open = priced(&now, &book);
    let traded = what_if(&priced_open, &opened, &[trade], &mut scratch).unwrap();
    assert_eq!(traded.portfolio.positions()[0].funding, Some(1.05e-6));

    let unquoted = priced(&base, &book).margin(&book).unwrap_err();
    assert_eq!(unquoted.field, "positions.BTC-PERPETUAL.funding");
    assert!(matches!(unquoted.kind, ErrorKind::MissingMarketData(_)), "{unquoted}");
}

/// A trade crossing the spread pays half the quoted bid/ask over the mark: 0.00022834 BTC on the
/// sample's BTC-25DEC26-100000-C (bid 0.04543977, ask 0.04589645), 0.5 USD on BTC-PERPETUAL (bid
/// 95,009, ask 95,010), above the mark for a buy and below it for a sale; a contract without a
/// quote pays the methodology's default half-spread, as a fraction of the mark for a future.
#[test]
fn a_trade_crossing_the_spread_pays_half_the_quoted_bid_ask() {
    let market = testkit::sample_market();
    let names = ["BTC-25DEC26-100000-C", "BTC-PERPETUAL", "BTC_USDC-PERPETUAL"];
    let positions = names.iter().map(|n| Position::new(instrument(n), 1.0)).collect();
    let balances = [money("300000", Currency::USDC), money("5", Currency::BTC)];
    let book = Portfolio::new(positions, &balances).unwrap();
    let priced = priced(&market, &book);
    for (name, half) in [("BTC-25DEC26-100000-C", 0.000_228_34), ("BTC-PERPETUAL", 0.5)] {
        let i = instrument(name);
        let mark = priced.mark(&i).unwrap();
        let (buy, sell) =
            (priced.crossing_price(&i, 3.0).unwrap(), priced.crossing_price(&i, -3.0).unwrap());
        assert!(close(buy - mark, half, 1e-9), "{name}: buy {buy} at mark {mark}");
        assert!(close(mark - sell, half, 1e-9), "{name}: sell {sell} at mark {mark}");
    }
    // Not quoted: Ballast PM's friction default, 0.05 % of a delta-one contract's notional.
    let linear = instrument("BTC_USDC-PERPETUAL");
    let mark = priced.mark(&linear).unwrap();
    assert!(close(priced.crossing_price(&linear, 1.0).unwrap(), mark * 1.0005, 1e-12));
    // Crossing costs the buyer equity at the mark: the half-spread times the size.
    let mut scratch = Scratch::default();
    let i = instrument("BTC-25DEC26-100000-C");
    let price = priced.crossing_price(&i, 10.0).unwrap();
    let at_mark =
        what_if(&priced, &book, &[Trade { instrument: i, size: 10.0, price: None }], &mut scratch)
            .unwrap();
    let crossed = what_if(
        &priced,
        &book,
        &[Trade { instrument: i, size: 10.0, price: Some(price) }],
        &mut scratch,
    )
    .unwrap();
    let cost = at_mark.after[0].equity - crossed.after[0].equity;
    let btc_usd = market.usd_price(Currency::BTC).unwrap();
    assert!(close(cost, 10.0 * 0.000_228_34 * btc_usd, 1e-6), "{cost}");
}
