//! An epoch computed in parts (shards of a book, each on its own pricing or together) and
//! assembled equals the epoch of the whole book; parts that cannot make one epoch are refused.
#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::collections::BTreeMap;

use epoch::{AccountKey, ComputedEpoch, EpochInputs, EpochSource, ErrorKind};
use oracle::B256;
use product::Portfolio;

/// The example book's portfolios under 120 ids, in an order unrelated to the ids.
fn book() -> BTreeMap<String, Portfolio> {
    let text = include_str!("../../../examples/oracle/book.json");
    let example = formats::portfolio::BookDocument::from_json(text).unwrap().to_accounts().unwrap();
    let portfolios: Vec<Portfolio> = example.into_values().collect();
    (0..120_usize)
        .map(|i| (format!("acct-{:03}", (i * 37) % 120), portfolios[i % portfolios.len()].clone()))
        .collect()
}

fn inputs() -> EpochInputs {
    let profile = formats::bundled::bundled("ballast-pm").unwrap();
    EpochInputs {
        market: testkit::sample_market(),
        methodology: testkit::ballast_pm(),
        methodology_hash: B256::from(profile.hash()),
    }
}

fn whole(accounts: &BTreeMap<String, Portfolio>) -> ComputedEpoch {
    let inputs = inputs();
    epoch::compute(&EpochSource {
        market: inputs.market,
        methodology: inputs.methodology,
        methodology_hash: inputs.methodology_hash,
        accounts: accounts.clone(),
        salt_secret: None,
    })
    .unwrap()
}

/// The book split in `n` parts by the last byte of each account's hash (as a shard would be).
fn parts(accounts: &BTreeMap<String, Portfolio>, n: u8) -> Vec<Vec<(AccountKey, Portfolio)>> {
    let mut parts = vec![Vec::new(); usize::from(n)];
    for (id, portfolio) in accounts {
        let key = AccountKey::new(id, portfolio);
        parts[usize::from(key.account.0[31] % n)].push((key, portfolio.clone()));
    }
    parts
}

fn computed(parts: &[Vec<(AccountKey, Portfolio)>], together: bool) -> Vec<ComputedEpoch> {
    let borrowed: Vec<Vec<(&AccountKey, &Portfolio)>> =
        parts.iter().map(|p| p.iter().map(|(k, p)| (k, p)).collect()).collect();
    if together {
        return epoch::compute_parts(&inputs(), &borrowed).unwrap();
    }
    let one = |part: &Vec<(&AccountKey, &Portfolio)>| {
        epoch::compute_parts(&inputs(), std::slice::from_ref(part)).unwrap().pop().unwrap()
    };
    borrowed.iter().map(one).collect()
}

/// One, three and seven parts, priced together or each on its own universe, assemble to the
/// whole book's results and keys.
#[test]
fn parts_assemble_to_the_whole_epoch() {
    let accounts = book();
    let expected = whole(&accounts);
    for n in [1, 3, 7] {
        for together in [true, false] {
            let assembled = epoch::assemble(computed(&parts(&accounts, n), together)).unwrap();
            assert_eq!(assembled.results, expected.results, "{n} parts, together {together}");
            assert_eq!(assembled.keys, expected.keys);
            assert_eq!(assembled.market_data_hash, expected.market_data_hash);
        }
    }
}

/// No parts, an account in two parts, a part out of id order, and parts of two methodologies
/// are refused, each with its reason.
#[test]
fn parts_that_make_no_epoch_are_refused() {
    let accounts = book();
    let split = parts(&accounts, 3);
    let reason = |parts: Vec<ComputedEpoch>| match epoch::assemble(parts).unwrap_err().kind {
        ErrorKind::Parts(why) => why,
        other => panic!("{other:?}"),
    };
    assert_eq!(reason(Vec::new()), "no parts");
    let mut twice = computed(&split, true);
    twice.push(twice[0].clone());
    assert!(reason(twice).ends_with("is in two parts"));
    let mut shuffled = computed(&split, true);
    shuffled[1].keys.reverse();
    shuffled[1].results.reverse();
    assert!(reason(shuffled).starts_with("part 1 is not in id order"));
    let mut other = computed(&split, true);
    other[2].methodology_hash = B256::ZERO;
    assert_eq!(reason(other), "parts of different markets, methodologies or valuation times");
}
