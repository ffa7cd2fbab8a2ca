//! The Merkle tree: published vectors, thread-count independence, proofs and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use alloy_sol_types::{SolType, sol_data};
use basics::{Currency, Money};
use common::{header, synthetic_results, usdc};
use oracle::tree::{MerkleTree, process_multiproof, process_proof, standard_leaf_hash};
use oracle::{B256, EpochTree, ErrorKind, Leaf, RejectionCode, verify_account, verify_accounts};
use proptest::prelude::*;

/// OpenZeppelin/merkle-tree `test/dumps/standard-v1.sorted.1_0_6.json`: types `["string"]`,
/// values a..f.
const OZ_STRING_ROOT: &str = "0x6deb52b5da8fd108f79fab00341f38d2587896634c646ee52e49f845680a70c8";
const OZ_STRING_LEAF_A: &str = "0x9c15a6a0eaeed500fd9eed4cbeab71f797cefcc67bfd46683e4d2e6ff7f06d1c";

fn string_leaf(value: &str) -> B256 {
    standard_leaf_hash(&<(sol_data::String,)>::abi_encode_params(&(value.to_owned(),)))
}

#[test]
fn matches_the_published_openzeppelin_vector() {
    let leaves: Vec<B256> = ["a", "b", "c", "d", "e", "f"].iter().map(|v| string_leaf(v)).collect();
    assert_eq!(leaves[0], OZ_STRING_LEAF_A.parse::<B256>().unwrap());
    let tree = MerkleTree::from_leaf_hashes(leaves.clone()).unwrap();
    assert_eq!(tree.root(), OZ_STRING_ROOT.parse::<B256>().unwrap());
    for leaf in &leaves {
        assert_eq!(process_proof(leaf, &tree.proof(leaf).unwrap()), Some(tree.root()));
    }
}

fn build_with_threads(threads: usize, results: &[oracle::AccountResult]) -> EpochTree {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| EpochTree::build(&header(3), results).unwrap())
}

#[test]
fn identical_for_every_thread_count_and_input_order() {
    // Large enough that every level above the leaves is split across tasks.
    let results = synthetic_results(100_003, 1);
    let reference = build_with_threads(1, &results);
    let mut reversed = results.clone();
    reversed.reverse();
    for (threads, input) in [(2, &results), (3, &reversed), (4, &results), (8, &reversed)] {
        let other = build_with_threads(threads, input);
        assert_eq!(other.root(), reference.root(), "{threads} threads");
        assert_eq!(other.leaves(), reference.leaves(), "{threads} threads");
        assert_eq!(other.tree(), reference.tree(), "{threads} threads");
    }
}

#[test]
fn every_proof_leads_to_the_root_and_a_changed_leaf_does_not() {
    for count in [1, 2, 3, 4, 5, 8, 9, 255, 256, 257] {
        let epoch = EpochTree::build(&header(1), &synthetic_results(count, 2)).unwrap();
        let root = epoch.root();
        for leaf in epoch.leaves() {
            let found = epoch.account_proof(&leaf.account()).unwrap();
            assert!(found.proof.len() <= 9, "a tree of {count} leaves is at most 9 deep");
            assert_eq!(verify_account(Some(&root), &found.leaf, &found.proof), Ok(()));
            let mut changed = found.leaf.result(Currency::USDC);
            changed.initial_margin = usdc(changed.initial_margin.raw() + 1);
            let tampered = Leaf::new(1, Currency::USDC, &changed).unwrap();
            let rejected = verify_account(Some(&root), &tampered, &found.proof);
            assert_eq!(rejected, Err(RejectionCode::ProofInvalid), "{count} leaves");
        }
        let any = epoch.leaves()[0];
        assert_eq!(verify_account(None, &any, &[]), Err(RejectionCode::UnknownEpoch));
    }
}

#[test]
fn multiproofs_rebuild_the_root() {
    let epoch = EpochTree::build(&header(1), &synthetic_results(77, 3)).unwrap();
    let accounts: Vec<B256> = epoch.leaves().iter().map(Leaf::account).collect();
    for stride in [1, 2, 5, 13, 76] {
        let chosen: Vec<B256> = accounts.iter().step_by(stride).copied().collect();
        let batch = epoch.multiproof(&chosen).unwrap();
        let (leaves, multi) = (batch.leaves, batch.multi);
        assert_eq!(process_multiproof(&multi).unwrap(), epoch.root());
        let hashes: Vec<B256> = leaves.iter().map(Leaf::hash).collect();
        assert_eq!(hashes, multi.leaves, "leaves come in proof order");
        assert_eq!(verify_accounts(Some(&epoch.root()), &leaves, &multi), Ok(()));
        let mut wrong_order = leaves.clone();
        wrong_order.rotate_left(1);
        if leaves.len() > 1 {
            let rejected = verify_accounts(Some(&epoch.root()), &wrong_order, &multi);
            assert_eq!(rejected, Err(RejectionCode::ProofInvalid));
        }
    }
    let twice = [accounts[0], accounts[0]];
    assert!(matches!(epoch.multiproof(&twice).unwrap_err().kind, ErrorKind::Duplicate(_)));
}

#[track_caller]
fn check_rejected(results: &[oracle::AccountResult], field: &str, kind: &str) {
    let error = EpochTree::build(&header(5), results).unwrap_err();
    assert_eq!(error.field, field, "{error}");
    assert!(format!("{:?}", error.kind).starts_with(kind), "{error}");
}

#[test]
fn bad_results_are_typed_errors_naming_the_field() {
    let good = synthetic_results(4, 4);
    let with = |change: &dyn Fn(&mut oracle::AccountResult)| {
        let mut results = good.clone();
        change(&mut results[2]);
        results
    };
    check_rejected(&with(&|r| r.initial_margin = usdc(-1)), "initial_margin", "OutOfRange");
    check_rejected(&with(&|r| r.maintenance_margin = usdc(-5)), "maintenance_margin", "OutOfRange");
    let btc = Money::from_raw(1, Currency::BTC);
    check_rejected(&with(&|r| r.mark_to_market = btc), "mark_to_market", "CurrencyMismatch");
    check_rejected(&with(&|r| r.account = good[0].account), "results", "Duplicate");
    check_rejected(&[], "results", "OutOfRange");
    let mut no_epoch = header(5);
    no_epoch.epoch = 0;
    assert_eq!(EpochTree::build(&no_epoch, &good).unwrap_err().field, "epoch");
    let mut inverted = header(5);
    inverted.valid_until_secs = inverted.as_of_secs - 1;
    assert_eq!(EpochTree::build(&inverted, &good).unwrap_err().field, "valid_until_secs");
    // Negative equity is legitimate and must be accepted.
    assert!(EpochTree::build(&header(5), &with(&|r| r.mark_to_market = usdc(-7))).is_ok());
}

#[test]
fn unknown_leaves_are_not_found() {
    let epoch = EpochTree::build(&header(1), &synthetic_results(10, 5)).unwrap();
    let stranger = B256::repeat_byte(0xab);
    assert!(matches!(epoch.account_proof(&stranger).unwrap_err().kind, ErrorKind::NotFound(_)));
    let leaves = vec![B256::repeat_byte(1), B256::repeat_byte(1)];
    let duplicate = MerkleTree::from_leaf_hashes(leaves).unwrap_err();
    assert!(matches!(duplicate.kind, ErrorKind::Duplicate(_)));
    assert!(MerkleTree::from_leaf_hashes(Vec::new()).is_err());
}

type LeafEncoding = (
    sol_data::FixedBytes<32>,
    sol_data::Uint<64>,
    sol_data::Uint<256>,
    sol_data::Uint<256>,
    sol_data::Int<256>,
    sol_data::Uint<16>,
    sol_data::FixedBytes<32>,
);

proptest! {
    /// The hand-rolled seven-word encoding equals alloy's `abi.encode` of the same tuple.
    #[test]
    fn prop_leaf_encoding_is_abi_encode(
        account in any::<[u8; 32]>(), epoch in 1u64.., im in 0i128.., mm in 0i128..,
        mtm in any::<i128>(), worst in any::<u16>(), portfolio in any::<[u8; 32]>(),
    ) {
        let result = oracle::AccountResult {
            account: B256::from(account),
            initial_margin: usdc(im),
            maintenance_margin: usdc(mm),
            mark_to_market: usdc(mtm),
            worst_scenario: worst,
            portfolio_hash: B256::from(portfolio),
        };
        let leaf = Leaf::new(epoch, Currency::USDC, &result).unwrap();
        let values = (
            B256::from(account),
            epoch,
            alloy_primitives::U256::from(im as u128),
            alloy_primitives::U256::from(mm as u128),
            alloy_primitives::I256::try_from(mtm).unwrap(),
            worst,
            B256::from(portfolio),
        );
        prop_assert_eq!(leaf.abi_encode().to_vec(), LeafEncoding::abi_encode_params(&values));
        prop_assert_eq!(leaf.result(Currency::USDC), result);
    }
}
