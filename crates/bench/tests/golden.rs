// Test helpers outside `#[test]` functions unwrap too: a failure is the test failing.
#![allow(clippy::unwrap_used)]

//! Golden figures: the refresh digest of a seeded book under every bundled portfolio
//! methodology, on the synthetic exchange and on the bundled sample market, and the epoch root
//! of the example book. Any change of any figure (a bit of an IM, an equity, a worst scenario, a
//! refused account) changes a digest here, so it is a visible, deliberate diff of this file.
//!
//! The digests of the refreshes were first computed by the engine before its facade existed
//! (account by account, through the old `Engine::account_into`) and are unchanged by it: the
//! facade, the per-account results and the market-only liquidity give the same bits when every
//! quoted instrument is priced, as here. To update after a deliberate change of figures, run
//! with `--nocapture` and copy the printed values, saying in the commit which figures moved
//! and why.

use std::collections::BTreeMap;
use std::sync::Arc;

use bench::synthetic;
use formats::bundled::BUNDLED;
use formats::methodology::Profile;
use margin::Engine;
use market::MarketSnapshot;
use product::Instrument;

/// (methodology, market, digest) as pinned.
const REFRESH_DIGESTS: [(&str, &str, &str); 12] = [
    ("ballast-pm", "synthetic", "271d3679b6533d1f38d4be8fde7d099b315f505f9eb062841eb3656c4ac098f0"),
    ("ballast-pm", "sample", "a8edba090c51e158ab1cd1f05a78caeb3e040d9a63c684db7e819f8fc50f6cac"),
    (
        "derive-pmrm2",
        "synthetic",
        "c11cc81c6770caac271e405e0235ec17878704665e7ca37f85209dfd9d3d4f1b",
    ),
    ("derive-pmrm2", "sample", "0a1e0244a83c3204e9212510da66affda7f94c0d8eac224c379bae2d0fb08010"),
    ("span", "synthetic", "19d4c9380fdac9d5c93e95735cc02a3649cb38fcded55f158ff0b3a1f500a4f2"),
    ("span", "sample", "9b7d6ed08cd4682a0096add8cbc4f8e6b0ff0ce79091459409790ff2dbb2bf73"),
    // Changed once, deliberately: cross mode values each coin vector at the current index (was
    // 8f45dd9d…43c524 and e39ab10b…e5a234 while coin P&L was converted at each scenario's price).
    ("deribit-pm", "synthetic", "fc9c02fcdf47863a3e8435e52c9bd3cca326bf21a29fac094a9330e7d11324b0"),
    ("deribit-pm", "sample", "f23c9767850e36f88f5eb62775c2ec38bee722ffb78a4b058c1ff91997e9ae25"),
    (
        "deribit-pm-segregated",
        "synthetic",
        "3007d5b162c59722c70f4cb71080c948df0d43bd56955acdea383d931a2ed7b7",
    ),
    (
        "deribit-pm-segregated",
        "sample",
        "67763ce9e4ee70816568aecfcae40a90be67e3eb5fc86f2c2e013022efef3e85",
    ),
    ("tims", "synthetic", "14d69db2fafad8904737e59201164b74db4198a9dd21fd42e4d4f82e8d074504"),
    ("tims", "sample", "19233d10bf628bf0062bdac149eb34eba824f18c0b6dfdba8e9cb94a9564b25f"),
];

/// Epoch 1 of `examples/oracle/book.json` on `examples/market.json`, valid for an hour, per
/// methodology: the root `ballast attest` prints. Ballast PM's changed once, deliberately, when
/// liquidity became a function of the market alone (it was 0x112be2b7…a4692e4 while the
/// friction add-on weighed the volume of options outside the book by a rough vega); Deribit PM's
/// when its cross mode began to value coin vectors at the current index (it was
/// 0xdf8d3de3…f53fe14 before); the others kept their roots.
const EPOCH_ROOTS: [(&str, &str); 5] = [
    ("ballast-pm", "0x7553c828cb9b7ac605b21e5c7316d644aa7befa04fda01fd98f9d9b2d357a4be"),
    ("deribit-pm", "0x22c9aa835c5c0db243745b37080bbc4bce4dbc01ddfd3bc01e78baded2d23277"),
    ("derive-pmrm2", "0xf9a7f2fc434aed545c1c666cb0e150403f2c6f12879669eb594d6d29f41a5904"),
    ("tims", "0x512d228dae87b06b36ec2bf3a5e6411c66200a25561155465cbdb0aae085e179"),
    ("span", "0xead6b84b8251fc8b109f499574a26bf204da2ddee1f752343d4f14a8ca89ad85"),
];

const BOOK_JSON: &str = include_str!("../../../examples/oracle/book.json");

/// The markets of the golden refreshes with their universes: every instrument of the synthetic
/// exchange, every quoted instrument of the sample market.
fn markets() -> Vec<(&'static str, Arc<MarketSnapshot>, Vec<Instrument>)> {
    let (synthetic, listed) = synthetic::exchange(400);
    let sample = testkit::sample_market();
    let quoted = sample.quotes().keys().copied().collect();
    vec![("synthetic", Arc::new(synthetic), listed), ("sample", sample, quoted)]
}

fn portfolio_profiles() -> Vec<(&'static str, methodology::Methodology)> {
    (BUNDLED.iter())
        .filter_map(|(name, _)| match formats::bundled::bundled(name).unwrap() {
            Profile::Portfolio(m) => Some((*name, *m)),
            Profile::PerPosition(_) => None,
        })
        .collect()
}

#[test]
fn every_bundled_methodologys_refresh_digest_is_pinned() {
    let pinned: BTreeMap<(&str, &str), &str> =
        REFRESH_DIGESTS.iter().map(|(m, k, d)| ((*m, *k), *d)).collect();
    let mut mismatches = Vec::new();
    let mut count = 0;
    for (name, methodology) in portfolio_profiles() {
        let engine = Engine::new(methodology).unwrap();
        for (label, market, universe) in markets() {
            let priced = engine.price(&market, &universe).unwrap();
            let futures: Vec<usize> = (0..universe.len())
                .filter(|&i| !priced.arrays().instruments()[i].is_option())
                .collect();
            let book = synthetic::book(20_261_201, 3_000, 8, universe.len(), &futures);
            let digest = bench::digest::refresh(&priced, &priced.refresh(&book));
            println!("(\"{name}\", \"{label}\", \"{}\"),", &digest[2..]);
            count += 1;
            if pinned.get(&(name, label)).is_none_or(|d| *d != &digest[2..]) {
                mismatches.push(format!("{name} on {label}: {digest}"));
            }
        }
    }
    assert_eq!(count, REFRESH_DIGESTS.len(), "a bundled methodology without a pinned digest");
    assert!(mismatches.is_empty(), "figures changed:\n{}", mismatches.join("\n"));
}

#[test]
fn the_example_books_epoch_roots_are_pinned() {
    let market = testkit::sample_market();
    let accounts = formats::portfolio::BookDocument::from_json(BOOK_JSON)
        .and_then(|d| d.to_accounts())
        .unwrap();
    let mut mismatches = Vec::new();
    for (name, pinned) in EPOCH_ROOTS {
        let profile = formats::bundled::bundled(name).unwrap();
        let methodology_hash = oracle::B256::from(profile.hash());
        let Profile::Portfolio(methodology) = profile else { panic!("{name} is per-position") };
        let source = epoch::EpochSource {
            market: Arc::clone(&market),
            methodology: *methodology,
            methodology_hash,
            accounts: accounts.clone(),
            salt_secret: None,
        };
        let computed = epoch::compute(&source).unwrap();
        let tree = oracle::EpochTree::build(&computed.header(1, 3_600), &computed.results).unwrap();
        let root = tree.root().to_string();
        println!("(\"{name}\", \"{root}\"),");
        if root != pinned {
            mismatches.push(format!("{name}: {root}"));
        }
    }
    assert!(mismatches.is_empty(), "roots changed:\n{}", mismatches.join("\n"));
}
