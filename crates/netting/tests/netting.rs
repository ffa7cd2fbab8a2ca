//! Cross-venue netting against the engine: a hedge split over venues nets to the one-venue
//! requirement, allocations sum exactly, netting never raises a requirement and never goes
//! below an agreeing venue's whole-book figure, failed venues withdraw it, bad input is typed.
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::sync::Arc;

use basics::{Currency, Money, Rounding};
use margin::{Engine, Scratch};
use market::MarketSnapshot;
use netting::seeded::{self, Strategy};
use netting::{
    AccountInput, Bound, CrossBook, ErrorKind, Fallback, Feed, Leg, Listing, NettedAccount, Netter,
    Policy, RiskVector, StandardSet, Status, Venue, VenueId, VenueKind,
};
use product::{Instrument, Portfolio, Position};

fn market() -> Arc<MarketSnapshot> {
    testkit::sample_market()
}

fn now(market: &MarketSnapshot) -> u64 {
    u64::try_from(market.valuation().secs()).unwrap()
}

fn standard() -> StandardSet {
    formats::bundled::standard_set().unwrap()
}

fn engine(name: &str) -> Engine {
    match formats::bundled::bundled(name).unwrap() {
        formats::methodology::Profile::Portfolio(m) => Engine::new(*m).unwrap(),
        formats::methodology::Profile::PerPosition(_) => panic!("{name} is per position"),
    }
}

fn id(text: &str) -> VenueId {
    VenueId::new(text, "id").unwrap()
}

fn venue(name: &str, engine: Engine, as_of_secs: u64) -> Venue {
    Venue {
        id: id(name),
        kind: VenueKind::Exchange,
        listing: Listing::ALL,
        engine,
        liquidation: "ballast".into(),
        floor: true,
        feed: Feed { as_of_secs, halted_at_secs: None },
    }
}

fn position(name: &str, size: f64) -> Position {
    Position::new(Instrument::parse(name).unwrap(), size)
}

fn money(amount: f64, currency: Currency) -> Money {
    Money::from_f64(amount, currency, Rounding::Down).unwrap()
}

fn leg(venue: &str, positions: Vec<Position>, balances: &[Money], controller: bool) -> Leg {
    Leg { venue: id(venue), portfolio: Portfolio::new(positions, balances).unwrap(), controller }
}

/// Long calls and puts against a short perpetual and coins: a hedge.
fn hedge() -> (Vec<Position>, Vec<Position>, Vec<Money>, Vec<Money>) {
    let options = vec![
        position("BTC-25DEC26-100000-C", 20.0),
        position("BTC-25DEC26-90000-P", -10.0),
        position("ETH-26MAR27-3000-P", 50.0),
    ];
    let delta = vec![position("BTC-PERPETUAL", -900_000.0), position("ETH-PERPETUAL", 60_000.0)];
    let a = vec![money(2.0, Currency::BTC), money(250_000.0, Currency::USDC)];
    let b = vec![money(150_000.0, Currency::USDC)];
    (options, delta, a, b)
}

fn net(venues: Vec<Venue>, accounts: Vec<AccountInput>, at: u64) -> Vec<NettedAccount> {
    let market = market();
    let book = CrossBook::new(venues, accounts).unwrap();
    let netter =
        Netter::new(&book, &market, &standard(), Policy::new(600, 3_600).unwrap(), at).unwrap();
    netter.run(&book).into_iter().map(Result::unwrap).collect()
}

fn input(id: &str, legs: Vec<Leg>) -> AccountInput {
    AccountInput { id: id.into(), legs, liens: Vec::new() }
}

#[test]
fn a_hedge_split_over_two_venues_nets_to_the_one_venue_requirement() {
    let market = market();
    let at = now(&market);
    let (options, delta, a, b) = hedge();
    let split = input(
        "split",
        vec![leg("x", options.clone(), &a, true), leg("y", delta.clone(), &b, false)],
    );
    let mut all = options;
    all.extend(delta);
    let balances = vec![money(2.0, Currency::BTC), money(400_000.0, Currency::USDC)];
    let whole = input("whole", vec![leg("x", all.clone(), &balances, true)]);
    // Both venues margin with the standard set's own methodology: its scan is all there is.
    let standard_engine = standard().engine;
    let venues =
        vec![venue("x", standard_engine.clone(), at), venue("y", standard_engine.clone(), at)];
    let out = net(venues, vec![split, whole], at);
    let (split, whole) = (&out[0], &out[1]);
    assert_eq!(split.status, Status::Netted);
    assert_eq!(whole.status, Status::Standalone(Fallback::OneVenue));
    let direct = standard_engine.margin(&market, &Portfolio::new(all, &balances).unwrap()).unwrap()
        [0]
    .initial_margin;
    assert_eq!(whole.netted.im, Money::from_f64(direct, Currency::USD, Rounding::Up).unwrap());
    // Equal up to the quantisation of the two vectors (a micro-dollar per cell and venue) and
    // the rounding of the requirement up to a micro-dollar.
    let gap = (split.netted.im.to_f64() - whole.netted.im.to_f64()).abs();
    assert!(gap <= 4e-6, "split {} against whole {}: {gap}", split.netted.im, whole.netted.im);
    assert!(split.standalone.im.to_f64() > split.netted.im.to_f64() * 1.5, "the hedge releases");
}

#[test]
fn one_account_s_vector_scans_to_the_engine_s_scan_loss_exactly() {
    let market = market();
    let (options, delta, a, _) = hedge();
    let mut all = options;
    all.extend(delta);
    let portfolio = Portfolio::new(all, &a).unwrap();
    let engine = standard().engine;
    let priced = engine.price_for(&market, &portfolio).unwrap();
    let resolved = priced.resolve(&portfolio).unwrap();
    let mut vector = vec![0.0; priced.vector_layout().len()];
    priced.scenario_vector_into(resolved.slices(), &mut Scratch::default(), &mut vector).unwrap();
    let scan = priced.vector_scan(&vector).unwrap();
    let figures = priced.figures(&resolved).unwrap();
    assert_eq!(scan.scan.to_bits(), figures[0].scan_loss.to_bits());
    let shares: f64 = scan.units.iter().map(|u| u.share).sum();
    assert!((shares - scan.scan).abs() <= 1e-9 * scan.scan, "Euler shares sum to the scan");
    // A methodology with dampened tails is not a standard set.
    let pm = engine_priced("ballast-pm", &market, &portfolio);
    let refused = pm.vector_scan(&vector).unwrap_err();
    assert!(refused.to_string().contains("not linear"), "{refused}");
}

fn engine_priced(
    name: &str,
    market: &Arc<MarketSnapshot>,
    portfolio: &Portfolio,
) -> margin::PricedMarket {
    engine(name).price_for(market, portfolio).unwrap()
}

fn seeded_book(count: usize, seed: u64) -> (Vec<Venue>, Vec<AccountInput>) {
    let at = now(&market());
    let venues =
        seeded::venues(engine("ballast-pm"), engine("deribit-pm"), engine("ballast-pm"), at)
            .unwrap();
    let mut accounts = Vec::new();
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        accounts.extend(seeded::accounts(strategy, count, 95_000.0, seed + i as u64).unwrap());
    }
    (venues, accounts)
}

#[test]
fn allocations_sum_exactly_and_netting_never_raises_nor_drops_below_the_floor() {
    for seed in [1, 2, 3] {
        let (venues, accounts) = seeded_book(40, seed);
        let at = now(&market());
        for n in net(venues, accounts, at) {
            let im: i128 = n.legs.iter().map(|l| l.credited.im.raw()).sum();
            let mm: i128 = n.legs.iter().map(|l| l.credited.mm.raw()).sum();
            assert_eq!(im, n.netted.im.raw(), "{}: IM allocations", n.id);
            assert_eq!(mm, n.netted.mm.raw(), "{}: MM allocations", n.id);
            assert!(n.netted.im <= n.standalone.im && n.netted.mm <= n.standalone.mm, "{}", n.id);
            for (venue, whole_im, _) in &n.whole_book {
                let floor = Money::from_f64(
                    whole_im.min(n.standalone.im.to_f64()),
                    Currency::USD,
                    Rounding::Down,
                )
                .unwrap();
                assert!(n.netted.im >= floor, "{}: below {venue}'s whole book", n.id);
            }
            assert_eq!(n.status, Status::Netted, "{}", n.id);
            assert!(n.released_im().raw() >= 0);
        }
    }
}

#[test]
fn every_strategy_releases_capital_and_the_contributions_add_up_to_the_scan() {
    let (venues, accounts) = seeded_book(20, 7);
    let out = net(venues, accounts, now(&market()));
    for strategy in ["pvo-", "basis-", "cc-"] {
        let released: f64 = out
            .iter()
            .filter(|n| n.id.starts_with(strategy))
            .map(|n| n.released_im().to_f64())
            .sum();
        assert!(released > 0.0, "{strategy} releases nothing");
    }
    for n in &out {
        let sum: f64 = n.legs.iter().map(|l| l.contribution).sum();
        assert!(
            (sum - n.scan).abs() <= 1e-6 * n.scan.max(1.0),
            "{}: contributions {sum} against {}",
            n.id,
            n.scan
        );
    }
    let covered =
        out.iter().find(|n| n.id.starts_with("cc-") && n.bound == Bound::Combined).unwrap();
    let lending = covered.legs.iter().find(|l| l.venue.as_str() == "lending").unwrap();
    let options = covered.legs.iter().find(|l| l.venue.as_str() == "options").unwrap();
    // The worst combined scenario is a fall: the coins lose, the short calls gain.
    assert!(lending.contribution > 0.0 && options.contribution < 0.0, "{covered:?}");
    assert!(lending.lien_out.raw() > 0);
    // Its coins are pledged to the options venue, and the requirement they cover follows them.
    assert!(lending.credited.im <= lending.credited_collateral().max_zero(), "{covered:?}");
    assert!(options.lien_in.raw() > 0 && options.lien_in <= lending.lien_out);
    assert!(options.credited_collateral() > options.equity);
}

#[test]
fn a_stale_or_halted_venue_withdraws_the_netting_with_a_grace_period() {
    let market = market();
    let at = now(&market);
    let (venues, accounts) = seeded_book(3, 11);
    let live = net(venues.clone(), accounts.clone(), at);
    assert!(live.iter().all(|n| n.status == Status::Netted));
    let mut stale = venues.clone();
    stale[1].feed.as_of_secs = at - 900; // perps: 900 s old against a 600 s bound
    let out = net(stale.clone(), accounts.clone(), at);
    for n in &out {
        if n.legs.iter().any(|l| l.venue.as_str() == "perps") {
            let expect = Status::Grace {
                reason: Fallback::Stale(id("perps")),
                until_secs: at - 300 + 3_600,
            };
            assert_eq!(n.status, expect, "{}", n.id);
            assert_eq!(n.netted, n.standalone, "{}: falls back to standalone", n.id);
            for l in &n.legs {
                assert_eq!(l.credited, l.standalone, "{}: each venue its own", n.id);
            }
        } else {
            assert_eq!(n.status, Status::Netted, "{}: untouched by another venue", n.id);
        }
    }
    let after_grace = net(stale, accounts.clone(), at + 3_600);
    assert!(
        after_grace.iter().any(|n| n.status == Status::Standalone(Fallback::Stale(id("perps"))))
    );
    let mut halted = venues;
    halted[0].feed.halted_at_secs = Some(at - 10);
    let out = net(halted, accounts, at);
    let cc = out.iter().find(|n| n.id.starts_with("cc-")).unwrap();
    assert_eq!(
        cc.status,
        Status::Grace { reason: Fallback::Halted(id("options")), until_secs: at - 10 + 3_600 }
    );
}

#[test]
fn one_venue_keeps_its_figures_and_no_controller_is_advisory() {
    let market = market();
    let at = now(&market);
    let (options, delta, a, b) = hedge();
    let pm = engine("ballast-pm");
    let alone = Portfolio::new(options.clone(), &a).unwrap();
    let direct = pm.margin(&market, &alone).unwrap()[0];
    let accounts = vec![
        input("alone", vec![leg("x", options.clone(), &a, false)]),
        input("advisory", vec![leg("x", options, &a, false), leg("y", delta, &b, false)]),
    ];
    let out = net(vec![venue("x", pm.clone(), at), venue("y", pm, at)], accounts, at);
    assert_eq!(
        out[0].netted.im,
        Money::from_f64(direct.initial_margin, Currency::USD, Rounding::Up).unwrap()
    );
    assert_eq!(
        out[0].netted.mm,
        Money::from_f64(direct.maintenance_margin, Currency::USD, Rounding::Up).unwrap()
    );
    assert_eq!(out[1].status, Status::Standalone(Fallback::NoController));
    assert_eq!(out[1].netted, out[1].standalone);
    assert!(out[1].combined.0 < out[1].standalone.im.to_f64(), "the advisory figure still nets");
}

#[test]
fn netting_is_the_same_for_any_thread_count() {
    let (venues, accounts) = seeded_book(30, 5);
    let at = now(&market());
    let many = net(venues.clone(), accounts.clone(), at);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    let one = pool.install(|| net(venues, accounts, at));
    assert_eq!(many, one);
}

/// The batch hashes each chunk's vectors four at a time; every leg's commitment must be the
/// single-message hash of its own vector, computed here from the engine, and an account netted
/// alone must come out as it does inside a chunk.
#[test]
fn each_legs_commitment_is_the_hash_of_its_own_vector() {
    let (venues, accounts) = seeded_book(70, 9);
    let market = market();
    let standard = standard();
    let book = CrossBook::new(venues, accounts).unwrap();
    let netter =
        Netter::new(&book, &market, &standard, Policy::new(600, 3_600).unwrap(), now(&market))
            .unwrap();
    let out: Vec<NettedAccount> = netter.run(&book).into_iter().map(Result::unwrap).collect();
    assert!(out.len() > 128, "more than two chunks");
    let mut scratch = Scratch::default();
    for (account, netted) in book.accounts().iter().zip(&out).step_by(7) {
        for (leg, figures) in account.legs.iter().zip(&netted.legs) {
            let priced = standard.engine.price_for(&market, &leg.portfolio).unwrap();
            let resolved = priced.resolve(&leg.portfolio).unwrap();
            let mut pnl = vec![0.0; priced.vector_layout().len()];
            priced.scenario_vector_into(resolved.slices(), &mut scratch, &mut pnl).unwrap();
            let vector = RiskVector::quantise(&pnl, standard.quantum_usd, "vector").unwrap();
            assert_eq!(figures.vector_hash, vector.hash(&standard.hash, netter.layout()));
        }
        assert_eq!(&netter.account(account).unwrap(), netted);
    }
}

trait MaxZero {
    fn max_zero(self) -> Money;
}

impl MaxZero for Money {
    fn max_zero(self) -> Money {
        if self.raw() < 0 { Money::zero(self.currency()) } else { self }
    }
}

fn refused(venues: Vec<Venue>, accounts: Vec<AccountInput>) -> netting::Error {
    CrossBook::new(venues, accounts).unwrap_err()
}

#[test]
fn bad_input_is_a_typed_error_naming_the_field() {
    let at = now(&market());
    let pm = engine("ballast-pm");
    let venues = || vec![venue("x", pm.clone(), at), venue("y", pm.clone(), at)];
    let coin = |amount| money(amount, Currency::BTC);
    let e = refused(venues(), vec![input("a", vec![leg("z", Vec::new(), &[coin(1.0)], false)])]);
    assert_eq!(
        (e.field.as_str(), &e.kind),
        ("accounts[0].venues[0].venue", &ErrorKind::UnknownVenue("z".into()))
    );
    let two =
        vec![leg("x", Vec::new(), &[coin(1.0)], true), leg("y", Vec::new(), &[coin(1.0)], true)];
    let e = refused(venues(), vec![input("a", two)]);
    assert_eq!(e.kind, ErrorKind::TwoControllers("x".into(), "y".into()));
    let lien = |amount| AccountInput {
        id: "a".into(),
        legs: vec![leg("x", Vec::new(), &[coin(1.0)], false), leg("y", Vec::new(), &[], true)],
        liens: vec![(id("x"), id("y"), coin(amount))],
    };
    let e = refused(venues(), vec![lien(1.5)]);
    assert_eq!(e.field, "accounts[0].liens[0].amount");
    assert_eq!(e.kind, ErrorKind::LienTooLarge { pledged: 1.5, held: 1.0 });
    assert!(CrossBook::new(venues(), vec![lien(1.0)]).is_ok(), "a lien of everything held is fine");
    let mut to_other = lien(0.5);
    to_other.legs[1].controller = false;
    to_other.legs[0].controller = true;
    let e = refused(venues(), vec![to_other]);
    assert!(matches!(e.kind, ErrorKind::Controller(_)), "{e}");
    let mut options_only = venues();
    options_only[1].listing = Listing { options: true, futures: false, perpetuals: false };
    let perp = vec![leg("y", vec![position("BTC-PERPETUAL", 10.0)], &[], false)];
    let e = refused(options_only, vec![input("a", perp)]);
    assert_eq!(e.field, "accounts[0].venues[0].positions[0]");
    assert!(matches!(e.kind, ErrorKind::NotListed(_)));
    let e = refused(vec![venue("x", pm.clone(), at), venue("x", pm.clone(), at)], Vec::new());
    assert_eq!(e.kind, ErrorKind::Duplicate("x".into()));
    // Accounts are checked in parallel; the error is still the first in the book's order.
    let one = |name: &str| input(name, vec![leg("x", Vec::new(), &[coin(1.0)], false)]);
    let mut many: Vec<AccountInput> = (0..500).map(|i| one(&format!("a{i}"))).collect();
    many[300] = one("a7");
    many[400] = one("a7");
    many[450] = one("");
    let e = refused(venues(), many.clone());
    assert_eq!(e.field, "accounts[300].id");
    assert_eq!(e.kind, ErrorKind::Duplicate("a7 (first at accounts[7])".into()));
    many[200].legs[0].venue = id("z");
    assert_eq!(refused(venues(), many).field, "accounts[200].venues[0].venue");
    assert!(VenueId::new("", "venues[0].id").is_err() && VenueId::new("a b", "v").is_err());
    assert!(Policy::new(0, 10).is_err() && Policy::new(10, 100 * 86_400).is_err());
}
