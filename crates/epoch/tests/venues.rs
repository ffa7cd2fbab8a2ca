//! Venue leaves from a netted cross-venue book: one per leg, crediting each venue its part of the
//! netted requirement, proved against the epoch root as each venue's contract would check it.
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::sync::Arc;

use basics::Currency;
use margin::Engine;
use market::MarketSnapshot;
use netting::seeded::{self, Strategy};
use netting::{CrossBook, NettedAccount, Netter, Policy, Status, VenueKind};
use oracle::{B256, EpochHeader, EpochTree, VenueStatus, venue_key, verify_venue};

fn engine(name: &str) -> Engine {
    match formats::bundled::bundled(name).unwrap() {
        formats::methodology::Profile::Portfolio(m) => Engine::new(*m).unwrap(),
        formats::methodology::Profile::PerPosition(_) => panic!("{name} is per position"),
    }
}

/// Twenty accounts of each seeded strategy over the three seeded venues; `perps_as_of` is the
/// exchange's last report.
fn book(now: u64, perps_as_of: u64) -> CrossBook {
    let mut venues =
        seeded::venues(engine("ballast-pm"), engine("deribit-pm"), engine("ballast-pm"), now)
            .unwrap();
    venues[1].feed.as_of_secs = perps_as_of;
    let accounts = (Strategy::ALL.iter().enumerate())
        .flat_map(|(i, s)| seeded::accounts(*s, 20, 95_000.0, 7 + i as u64).unwrap())
        .collect();
    CrossBook::new(venues, accounts).unwrap()
}

fn net(market: &Arc<MarketSnapshot>, book: &CrossBook, now: u64) -> Vec<NettedAccount> {
    let standard = formats::bundled::standard_set().unwrap();
    let policy = Policy::new(600, 3_600).unwrap();
    let netter = Netter::new(book, market, &standard, policy, now).unwrap();
    netter.run(book).into_iter().map(Result::unwrap).collect()
}

fn header(now: u64) -> EpochHeader {
    EpochHeader {
        epoch: 1,
        as_of_secs: now,
        valid_until_secs: now + 600,
        market_data_hash: B256::repeat_byte(1),
        methodology_hash: B256::repeat_byte(2),
        currency: Currency::USD,
    }
}

#[test]
fn each_venue_is_credited_its_part_and_proves_it_against_the_root() {
    let market = testkit::sample_market();
    let now = u64::try_from(market.valuation().secs()).unwrap();
    let book = book(now, now);
    let netted = net(&market, &book, now);
    let results = epoch::venue_results(&book, &netted, None).unwrap();
    assert_eq!(results.len(), netted.iter().map(|a| a.legs.len()).sum::<usize>());
    let tree = EpochTree::build_with_venues(&header(now), &[], &results).unwrap();
    let mut netted_count = 0;
    for account in &netted {
        let key = epoch::account_id(&account.id);
        let mut credited_im = 0i128;
        for leg in &account.legs {
            let venue = &book.venues()[&leg.venue];
            let chain_id = match venue.kind {
                VenueKind::Exchange => 0,
                VenueKind::Protocol { chain_id } => chain_id,
            };
            let found = tree.venue_proof(&key, &venue_key(leg.venue.as_str())).unwrap();
            let credit = verify_venue(
                Some(&tree.root()),
                chain_id,
                &venue_key(leg.venue.as_str()),
                &found.leaf,
                &found.proof,
                now,
            )
            .unwrap();
            assert_eq!(credit.initial_margin, leg.credited.im);
            assert_eq!(credit.maintenance_margin, leg.credited.mm);
            assert_eq!(credit.collateral, leg.credited_collateral());
            assert_eq!(credit.controller, leg.controller);
            assert_eq!(found.leaf.result().vector_hash, B256::from(leg.vector_hash));
            credited_im += credit.initial_margin.raw();
        }
        // The parts proved at the venues add up to the netted requirement, exactly.
        assert_eq!(credited_im, account.netted.im.raw(), "{}", account.id);
        netted_count += usize::from(account.status == Status::Netted);
    }
    assert!(netted_count > 0, "the seeded hedges net");
}

#[test]
fn a_stale_venue_withdraws_netting_in_the_leaves_with_a_grace_end() {
    let market = testkit::sample_market();
    let now = u64::try_from(market.valuation().secs()).unwrap();
    let book = book(now, now - 3_600);
    let netted = net(&market, &book, now);
    let results = epoch::venue_results(&book, &netted, None).unwrap();
    let at_perps: Vec<_> = results.iter().filter(|r| r.venue == venue_key("perps")).collect();
    assert!(!at_perps.is_empty());
    for result in &results {
        let account = netted.iter().find(|a| epoch::account_id(&a.id) == result.account).unwrap();
        let expected = match account.status {
            Status::Netted => VenueStatus::Netted,
            Status::Standalone(_) => VenueStatus::Standalone,
            Status::Grace { until_secs, .. } => VenueStatus::Grace { until_secs },
        };
        assert_eq!(result.status, expected);
        if account.legs.iter().any(|l| l.venue.as_str() == "perps") {
            assert_ne!(result.status, VenueStatus::Netted, "{}", account.id);
        }
    }
    // With the grace over, the same venue leaf is liquidatable where its standalone collateral
    // falls short; before, it is not.
    let tree = EpochTree::build_with_venues(&header(now), &[], &results).unwrap();
    let mut in_grace = 0;
    for leaf in tree.venue_leaves() {
        if let VenueStatus::Grace { until_secs } = leaf.result().status {
            in_grace += 1;
            assert!(until_secs > now, "the exchange went stale less than the grace period ago");
            assert!(!leaf.credit(until_secs - 1).liquidatable);
            let short = leaf.credit(until_secs).collateral < leaf.result().maintenance_margin;
            assert_eq!(leaf.credit(until_secs).liquidatable, short);
        }
    }
    assert!(in_grace > 0, "the stale exchange puts its accounts in grace");
}

#[test]
fn salted_venue_leaves_share_the_account_leaf_key_and_the_root_is_order_free() {
    let market = testkit::sample_market();
    let now = u64::try_from(market.valuation().secs()).unwrap();
    let book = book(now, now);
    let netted = net(&market, &book, now);
    let secret = b"federation salting secret";
    let salted = epoch::venue_results(&book, &netted, Some(secret)).unwrap();
    for (result, account) in
        salted.iter().zip(netted.iter().flat_map(|a| a.legs.iter().map(move |_| a)))
    {
        let salt = oracle::account_salt(secret, &account.id);
        assert_eq!(result.account, oracle::salted_account_id(&salt, &account.id));
    }
    let forward = EpochTree::build_with_venues(&header(now), &[], &salted).unwrap();
    let mut reversed = salted.clone();
    reversed.reverse();
    let backward = EpochTree::build_with_venues(&header(now), &[], &reversed).unwrap();
    assert_eq!(forward.root(), backward.root());
    let plain = epoch::venue_results(&book, &netted, None).unwrap();
    assert_ne!(
        EpochTree::build_with_venues(&header(now), &[], &plain).unwrap().root(),
        forward.root()
    );
}

#[test]
fn a_leg_at_a_venue_outside_the_book_is_named() {
    let market = testkit::sample_market();
    let now = u64::try_from(market.valuation().secs()).unwrap();
    let book = book(now, now);
    let mut netted = net(&market, &book, now);
    netted[0].legs[0].venue = netting::VenueId::new("elsewhere", "id").unwrap();
    let e = epoch::venue_results(&book, &netted, None).unwrap_err();
    assert_eq!(e.account.as_deref(), Some(netted[0].id.as_str()));
    assert!(matches!(e.kind, epoch::ErrorKind::UnknownVenue(ref v) if v == "elsewhere"), "{e}");
}
