//! Venue leaves on two chains: one root, signed under each chain's EIP-712 domain and accepted by
//! a `BallastVerifier` on each, proves every venue's leaves through that chain's `BallastVenue`
//! with the same credit as the Rust twin, and a leaf of one chain is refused on the other.
//!
//! Needs `npm ci --prefix contracts` and Node 20+. The gas figure prints with `--nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use alloy_primitives::{Address, B256, Bytes, I256, U256};
use alloy_sol_types::SolCall;
use common::chain::{
    Chain, credit_call, creditOfCall, describe_gas, lastEpochCall, rootOfCall, submit_call,
};
use common::{BOUNDS, dev_signers, hash_of, header, synthetic_results, usdc};
use oracle::RejectionCode as R;
use oracle::{
    Domain, EpochTree, ErrorKind, Report, Signer, SignerSet, VenueLeaf, VenueResult, VenueStatus,
    Verifier, venue_key, verify_venue,
};

/// Venues of the tests: (id, chain). Two share a chain, so a leaf can name the right chain and
/// the wrong venue; the exchange is off chain (0).
const VENUES: [(&str, u64); 4] =
    [("options-l1", 1), ("perps-arb", 42_161), ("lending-arb", 42_161), ("cex", 0)];

/// One chain with a verifier and the venue contracts of its venues.
struct Deployment {
    chain: Chain,
    now_secs: u64,
    verifier: Verifier,
    contract: Address,
    venues: Vec<(B256, Address)>,
}

impl Deployment {
    fn new(chain_id: u64, set: &SignerSet) -> Deployment {
        let now_secs = header(1).as_of_secs;
        let mut chain = Chain::with_id(chain_id, now_secs);
        let contract = chain.deploy(set, BOUNDS).unwrap();
        let domain = Domain { chain_id, verifying_contract: contract };
        let verifier = Verifier { domain, signer_set: set.clone(), bounds: BOUNDS };
        let venues = VENUES
            .iter()
            .filter(|(_, chain)| *chain == chain_id)
            .map(|(id, _)| (venue_key(id), chain.deploy_venue(contract, venue_key(id)).unwrap()))
            .collect();
        Deployment { chain, now_secs, verifier, contract, venues }
    }

    fn set_time(&mut self, now_secs: u64) {
        self.now_secs = now_secs;
        self.chain.set_time(now_secs);
    }

    fn venue(&self, id: &str) -> Address {
        let key = venue_key(id);
        self.venues.iter().find(|(k, _)| *k == key).unwrap().1
    }

    /// Submits `report` with `signatures` at its as-of time; the contract's rejection code, which
    /// must be the Rust verifier's.
    fn submit(&mut self, report: &Report, signatures: &[Bytes]) -> Option<u8> {
        let last: u64 = self.chain.view(self.contract, &lastEpochCall {});
        let rust = self.verifier.verify_report(report, signatures, last, report.as_of_secs);
        self.set_time(report.as_of_secs);
        let outcome = self.chain.send(self.contract, submit_call(report, signatures));
        assert!(outcome.success || outcome.rejection().is_some(), "{outcome:?}");
        assert_eq!(rust.err().map(R::code), outcome.rejection(), "Rust and EVM differ");
        outcome.rejection()
    }

    /// `creditOf` at `venue` and the Rust twin on this chain's root for the leaf's epoch; both
    /// answers must agree. The credit, or the rejection, and the gas.
    fn credit(
        &mut self,
        venue: &str,
        leaf: &VenueLeaf,
        proof: &[B256],
    ) -> (Result<Credit, R>, u64) {
        let address = self.venue(venue);
        let root: B256 = self.chain.view(self.contract, &rootOfCall { epoch: leaf.epoch() });
        let root = (root != B256::ZERO).then_some(root);
        let (chain_id, now) = (self.chain.id, self.now_secs);
        let rust = verify_venue(root.as_ref(), chain_id, &venue_key(venue), leaf, proof, now);
        let outcome = self.chain.call(address, credit_call(leaf, proof));
        let evm = if outcome.success {
            Ok(Credit::from(creditOfCall::abi_decode_returns(&outcome.output).unwrap()))
        } else {
            Err(R::from_code(outcome.rejection().expect("only Rejected(code) reverts")).unwrap())
        };
        assert_eq!(rust.map(Credit::from), evm, "Rust and EVM differ");
        (evm, outcome.gas_used)
    }
}

/// A credit in the contract's units, for comparing both sides field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Credit {
    initial_margin: U256,
    maintenance_margin: U256,
    collateral: I256,
    liquidatable: bool,
    controller: bool,
}

impl From<oracle::Credit> for Credit {
    fn from(c: oracle::Credit) -> Credit {
        let uint = |amount: basics::Money| U256::from(u128::try_from(amount.raw()).unwrap());
        Credit {
            initial_margin: uint(c.initial_margin),
            maintenance_margin: uint(c.maintenance_margin),
            collateral: I256::try_from(c.collateral.raw()).unwrap(),
            liquidatable: c.liquidatable,
            controller: c.controller,
        }
    }
}

impl From<common::chain::Credit> for Credit {
    fn from(c: common::chain::Credit) -> Credit {
        Credit {
            initial_margin: c.initialMargin,
            maintenance_margin: c.maintenanceMargin,
            collateral: c.collateral,
            liquidatable: c.liquidatable,
            controller: c.controller,
        }
    }
}

/// Venue results of `accounts` accounts, one per venue each: requirements and liens over many
/// magnitudes, negative equity now and then, every status, one controller per account.
fn venue_results(accounts: usize) -> Vec<VenueResult> {
    let mut out = Vec::new();
    for i in 0..accounts as u64 {
        let account = hash_of(&[b"account", &i.to_be_bytes()]);
        for (v, (id, chain_id)) in VENUES.iter().enumerate() {
            let seed = hash_of(&[account.as_slice(), id.as_bytes()]);
            let word = u128::from_be_bytes(seed.0[..16].try_into().unwrap());
            let magnitude = 10i128.pow(u32::try_from(i % 25).unwrap() + 1);
            let im = (word % 1_000_003) as i128 * magnitude;
            let equity = (word >> 70) as i128 % (3 * magnitude + 1) - magnitude;
            let status = match (i + v as u64) % 3 {
                0 => VenueStatus::Netted,
                1 => VenueStatus::Standalone,
                _ => VenueStatus::Grace { until_secs: header(1).as_of_secs + 3_600 },
            };
            out.push(VenueResult {
                account,
                venue: venue_key(id),
                chain_id: *chain_id,
                initial_margin: usdc(im),
                maintenance_margin: usdc(im / 2),
                equity: usdc(equity),
                lien_in: usdc(if v == 0 { magnitude / 3 } else { 0 }),
                lien_out: usdc(if v == 2 { magnitude / 3 } else { 0 }),
                status,
                controller: u64::try_from(v).unwrap() == i % 3,
                vector_hash: hash_of(&[b"vector", seed.as_slice()]),
            });
        }
    }
    out
}

/// Two chains, each with a verifier that accepted epoch 1's root under its own domain.
struct TwoChains {
    epoch: EpochTree,
    l1: Deployment,
    arb: Deployment,
    report: Report,
    keys: Vec<Signer>,
}

impl TwoChains {
    fn new() -> TwoChains {
        let mut keys = dev_signers(4);
        keys.sort_by_key(Signer::address);
        let set = SignerSet::new(keys.iter().map(Signer::address).collect(), 3, 7).unwrap();
        let venues = venue_results(250);
        let epoch = EpochTree::build_with_venues(&header(1), &synthetic_results(250, 1), &venues);
        let epoch = epoch.unwrap();
        let report = epoch.report(&set);
        let mut l1 = Deployment::new(1, &set);
        let mut arb = Deployment::new(42_161, &set);
        for deployment in [&mut l1, &mut arb] {
            let signatures = sign(&keys, &report, &deployment.verifier.domain);
            assert_eq!(deployment.submit(&report, &signatures), None);
        }
        TwoChains { epoch, l1, arb, report, keys }
    }

    fn deployment(&mut self, chain_id: u64) -> &mut Deployment {
        if chain_id == 1 { &mut self.l1 } else { &mut self.arb }
    }
}

fn sign(keys: &[Signer], report: &Report, domain: &Domain) -> Vec<Bytes> {
    keys[..3]
        .iter()
        .map(|k| Bytes::from(k.sign_report(report, domain).as_bytes().to_vec()))
        .collect()
}

fn id_of(key: &B256) -> &'static str {
    VENUES.iter().find(|(id, _)| venue_key(id) == *key).unwrap().0
}

#[test]
fn one_root_on_two_chains_credits_every_venue_leaf_as_the_rust_twin() {
    let mut two = TwoChains::new();
    assert_eq!(two.report.leaf_count, 1_250, "250 account leaves and 1,000 venue leaves");
    assert_eq!(two.epoch.tree().leaf_count(), 1_250);
    let leaves = two.epoch.venue_leaves().to_vec();
    let mut checked = 0;
    for leaf in &leaves {
        let r = *leaf.result();
        if r.chain_id == 0 {
            continue;
        }
        let found = two.epoch.venue_proof(&r.account, &r.venue).unwrap();
        assert_eq!(found.leaf, *leaf);
        let (credit, _) = two.deployment(r.chain_id).credit(id_of(&r.venue), leaf, &found.proof);
        let credit = credit.unwrap();
        let collateral = r.equity - r.lien_out + r.lien_in;
        assert_eq!(credit.collateral, I256::try_from(collateral.raw()).unwrap());
        assert_eq!(credit.controller, r.controller);
        checked += 1;
    }
    assert_eq!(checked, 750, "three of the four venues are on a chain");
}

#[test]
fn a_report_signed_for_one_chain_is_refused_on_the_other() {
    let mut two = TwoChains::new();
    let next =
        EpochTree::build_with_venues(&header(2), &synthetic_results(10, 2), &venue_results(10));
    let report = next.unwrap().report(&two.l1.verifier.signer_set);
    let for_l1 = sign(&two.keys, &report, &two.l1.verifier.domain);
    assert_eq!(two.arb.submit(&report, &for_l1), Some(R::UnknownSigner.code()));
    assert_eq!(two.l1.submit(&report, &for_l1), None);
}

#[test]
fn a_venue_leaf_is_refused_on_another_chain_another_venue_or_when_tampered() {
    let mut two = TwoChains::new();
    let leaves = two.epoch.venue_leaves().to_vec();
    let on = |chain: u64, venue: &str| {
        leaves.iter().find(|l| l.result().chain_id == chain && l.result().venue == venue_key(venue))
    };
    let l1_leaf = *on(1, "options-l1").unwrap();
    let proof = two.epoch.venue_proof(&l1_leaf.result().account, &l1_leaf.result().venue);
    let proof = proof.unwrap().proof;
    // Replayed on the other chain: refused before the root is even read.
    let (answer, _) = two.arb.credit("perps-arb", &l1_leaf, &proof);
    assert_eq!(answer, Err(R::WrongChain));
    // The same leaf with its chain id rewritten to pass that check no longer hashes into the root.
    let mut forged = *l1_leaf.result();
    forged.chain_id = 42_161;
    forged.venue = venue_key("perps-arb");
    let forged = VenueLeaf::new(1, header(1).currency, &forged).unwrap();
    assert_eq!(two.arb.credit("perps-arb", &forged, &proof).0, Err(R::ProofInvalid));
    // A leaf of one venue shown to the other venue on the same chain.
    let arb_leaf = *on(42_161, "perps-arb").unwrap();
    let arb_proof = two.epoch.venue_proof(&arb_leaf.result().account, &arb_leaf.result().venue);
    let arb_proof = arb_proof.unwrap().proof;
    assert_eq!(two.arb.credit("lending-arb", &arb_leaf, &arb_proof).0, Err(R::WrongVenue));
    assert!(two.arb.credit("perps-arb", &arb_leaf, &arb_proof).0.is_ok());
    // A lowered credited requirement, and an epoch no root was accepted for.
    let mut lowered = *arb_leaf.result();
    lowered.initial_margin = usdc(lowered.initial_margin.raw() / 2);
    let lowered = VenueLeaf::new(1, header(1).currency, &lowered).unwrap();
    assert_eq!(two.arb.credit("perps-arb", &lowered, &arb_proof).0, Err(R::ProofInvalid));
    let later = VenueLeaf::new(2, header(1).currency, arb_leaf.result()).unwrap();
    assert_eq!(two.arb.credit("perps-arb", &later, &arb_proof).0, Err(R::UnknownEpoch));
    // An account leaf's proof is not a venue leaf's: the two kinds hash apart.
    let account = two.epoch.leaves()[0];
    let account_proof = two.epoch.account_proof(&account.account()).unwrap().proof;
    assert_eq!(two.arb.credit("perps-arb", &arb_leaf, &account_proof).0, Err(R::ProofInvalid));
}

#[test]
fn grace_stops_liquidation_until_it_ends() {
    let mut two = TwoChains::new();
    let leaves = two.epoch.venue_leaves().to_vec();
    let underwater = |leaf: &&VenueLeaf| {
        let r = leaf.result();
        r.chain_id == 42_161 && r.equity - r.lien_out + r.lien_in < r.maintenance_margin
    };
    let grace = leaves
        .iter()
        .filter(underwater)
        .find(|l| matches!(l.result().status, VenueStatus::Grace { .. }))
        .unwrap();
    let standalone = leaves
        .iter()
        .filter(underwater)
        .find(|l| l.result().status == VenueStatus::Standalone)
        .unwrap();
    let until = grace.result().status.grace_until_secs();
    for (now, grace_liquidatable) in [(until - 1, false), (until, true)] {
        two.arb.set_time(now);
        for leaf in [grace, standalone] {
            let r = leaf.result();
            let proof = two.epoch.venue_proof(&r.account, &r.venue).unwrap().proof;
            let (credit, _) = two.arb.credit(id_of(&r.venue), leaf, &proof);
            let expected = leaf.result().status == VenueStatus::Standalone || grace_liquidatable;
            assert_eq!(credit.unwrap().liquidatable, expected, "at {now}: {:?}", r.status);
        }
    }
}

#[test]
fn bad_venue_results_get_typed_errors() {
    let good = venue_results(1)[0];
    let currency = header(1).currency;
    let mut negative_lien = good;
    negative_lien.lien_out = usdc(-1);
    let e = VenueLeaf::new(1, currency, &negative_lien).unwrap_err();
    assert_eq!(e.field, "venue.lien_out");
    assert!(matches!(e.kind, ErrorKind::OutOfRange(_)));
    let mut negative_im = good;
    negative_im.initial_margin = usdc(-5);
    assert_eq!(
        VenueLeaf::new(1, currency, &negative_im).unwrap_err().field,
        "venue.initial_margin"
    );
    let mut no_grace_end = good;
    no_grace_end.status = VenueStatus::Grace { until_secs: 0 };
    assert_eq!(VenueLeaf::new(1, currency, &no_grace_end).unwrap_err().field, "venue.status");
    let mut other_currency = good;
    other_currency.equity = basics::Money::from_raw(1, basics::Currency::BTC);
    let e = VenueLeaf::new(1, currency, &other_currency).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::CurrencyMismatch { .. }), "{e}");
    let twice = EpochTree::build_with_venues(&header(1), &[], &[good, good]).unwrap_err();
    assert!(matches!(twice.kind, ErrorKind::Duplicate(_)), "{twice}");
    let empty = EpochTree::build_with_venues(&header(1), &[], &[]).unwrap_err();
    assert!(matches!(empty.kind, ErrorKind::OutOfRange(_)), "{empty}");
    let epoch = EpochTree::build_with_venues(&header(1), &[], &[good]).unwrap();
    let missing = epoch.venue_proof(&good.account, &venue_key("elsewhere")).unwrap_err();
    assert!(matches!(missing.kind, ErrorKind::NotFound(_)), "{missing}");
}

/// Venue leaves in files: the leaves file lists them and reads back to the root; every venue
/// proof file reads back and verifies; a tampered amount or status is refused by its field.
#[test]
fn venue_leaves_and_proofs_round_trip_through_their_files() {
    let venues = venue_results(40);
    let epoch =
        EpochTree::build_with_venues(&header(3), &synthetic_results(40, 3), &venues).unwrap();
    let leaves = oracle::json::read_leaves(&oracle::json::write_leaves(&epoch)).unwrap();
    assert_eq!(leaves.venue_leaves, epoch.venue_leaves());
    assert_eq!(leaves.tree.root(), epoch.root());
    for v in &venues {
        let text = oracle::json::write_venue_proof(&epoch, &v.account, &v.venue).unwrap();
        let file = oracle::json::read_venue_proof(&text).unwrap();
        assert_eq!(file.root, epoch.root());
        let credit = verify_venue(
            Some(&epoch.root()),
            v.chain_id,
            &v.venue,
            &file.proof.leaf,
            &file.proof.proof,
            0,
        );
        assert_eq!(credit.unwrap(), file.proof.leaf.credit(0));
    }
    let v = venues[0];
    let text = oracle::json::write_venue_proof(&epoch, &v.account, &v.venue).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let im: u128 = json["leaf"]["initial_margin"].as_str().unwrap().parse().unwrap();
    json["leaf"]["initial_margin"] = (im - 1).to_string().into();
    let e = oracle::json::read_venue_proof(&json.to_string()).unwrap_err();
    assert_eq!(e.field, "leaf_hash", "{e}");
    json["leaf"]["status"] = "liquidated".into();
    let e = oracle::json::read_venue_proof(&json.to_string()).unwrap_err();
    assert_eq!(e.field, "status", "{e}");
}

/// Gas of one credited-requirement check at the depth of the 1,250-leaf tree.
#[test]
fn gas_of_a_credit_check() {
    let mut two = TwoChains::new();
    let leaf = *two.epoch.venue_leaves().iter().find(|l| l.result().chain_id == 1).unwrap();
    let proof = two.epoch.venue_proof(&leaf.result().account, &leaf.result().venue).unwrap().proof;
    let (credit, gas) = two.l1.credit("options-l1", &leaf, &proof);
    assert!(credit.is_ok());
    let depth = proof.len();
    assert!((10..=11).contains(&depth), "a 1,250-leaf tree is 11 deep, got {depth}");
    let data = credit_call(&leaf, &proof);
    println!("gas: creditOf, depth {depth}: {}", describe_gas(gas, &data));
}
