//! Cross-check against npm `@openzeppelin/merkle-tree` (StandardMerkleTree.of): the same values
//! must give byte-identical leaf hashes, roots, proofs and multiproofs.
//!
//! Needs `npm ci --prefix contracts` and Node 20+.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use common::{header, run_node, synthetic_results};
use oracle::{B256, EpochTree, Leaf};
use serde::Deserialize;
use serde_json::{Value, json};

const LEAF_TYPES: [&str; 7] =
    ["bytes32", "uint64", "uint256", "uint256", "int256", "uint16", "bytes32"];

#[derive(Deserialize)]
struct OzLeaf {
    hash: B256,
    proof: Vec<B256>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OzMultiProof {
    leaf_hashes: Vec<B256>,
    proof: Vec<B256>,
    proof_flags: Vec<bool>,
}

#[derive(Deserialize)]
struct OzTree {
    root: B256,
    leaves: Vec<OzLeaf>,
    multiproof: Option<OzMultiProof>,
}

fn oz_tree(types: &[&str], values: &[Value], multiproof: &[usize]) -> OzTree {
    let fixture = json!({ "types": types, "values": values, "multiproof": multiproof });
    serde_json::from_str(&run_node(&["scripts/oz-tree.mjs"], &fixture.to_string())).unwrap()
}

/// The leaf as the npm package takes it: integers as decimal strings.
fn leaf_values(leaf: &Leaf) -> Value {
    let result = leaf.result(basics::Currency::USDC);
    json!([
        result.account.to_string(),
        leaf.epoch().to_string(),
        result.initial_margin.raw().to_string(),
        result.maintenance_margin.raw().to_string(),
        result.mark_to_market.raw().to_string(),
        result.worst_scenario.to_string(),
        result.portfolio_hash.to_string(),
    ])
}

#[track_caller]
fn check(count: usize, multiproof_stride: usize) {
    let epoch = EpochTree::build(&header(9), &synthetic_results(count, 11)).unwrap();
    // The npm package gets the leaves in account order, not in our tree order; it sorts itself.
    let values: Vec<Value> = epoch.leaves().iter().map(leaf_values).collect();
    let chosen: Vec<usize> = (0..count).step_by(multiproof_stride).collect();
    let oz = oz_tree(&LEAF_TYPES, &values, &chosen);
    assert_eq!(epoch.root(), oz.root, "root of {count} leaves");
    for (leaf, expected) in epoch.leaves().iter().zip(&oz.leaves) {
        assert_eq!(leaf.hash(), expected.hash, "leaf hash of {}", leaf.account());
        let ours = epoch.account_proof(&leaf.account()).unwrap();
        assert_eq!(ours.proof, expected.proof, "proof of {} in {count}", leaf.account());
    }
    let accounts: Vec<B256> = chosen.iter().map(|&i| epoch.leaves()[i].account()).collect();
    let ours = epoch.multiproof(&accounts).unwrap().multi;
    let theirs = oz.multiproof.unwrap();
    assert_eq!(ours.leaves, theirs.leaf_hashes, "multiproof leaves of {count}");
    assert_eq!(ours.proof, theirs.proof, "multiproof siblings of {count}");
    assert_eq!(ours.proof_flags, theirs.proof_flags, "multiproof flags of {count}");
}

#[test]
fn account_trees_match_openzeppelin() {
    check(1, 1);
    check(2, 2);
    check(3, 1);
    check(5, 2);
    check(8, 3);
    check(100, 7);
    check(1_000, 97);
}

#[test]
fn extreme_values_match_openzeppelin() {
    // Largest i128 requirements, most negative equity, and the largest scenario index: the
    // sign extension of int256 and the widths of every word are exercised.
    let mut results = synthetic_results(6, 12);
    results[0].initial_margin = common::usdc(i128::MAX);
    results[1].mark_to_market = common::usdc(i128::MIN);
    results[2].mark_to_market = common::usdc(-1);
    results[3].worst_scenario = u16::MAX;
    results[4].maintenance_margin = common::usdc(0);
    let mut last_epoch = header(1);
    last_epoch.epoch = u64::MAX;
    let epoch = EpochTree::build(&last_epoch, &results).unwrap();
    let values: Vec<Value> = epoch.leaves().iter().map(leaf_values).collect();
    let oz = oz_tree(&LEAF_TYPES, &values, &[0, 5]);
    assert_eq!(epoch.root(), oz.root);
    let hashes: Vec<B256> = epoch.leaves().iter().map(Leaf::hash).collect();
    let expected: Vec<B256> = oz.leaves.iter().map(|leaf| leaf.hash).collect();
    assert_eq!(hashes, expected);
}

#[test]
fn the_published_string_vector_comes_out_of_node_too() {
    // Proves the script itself is the package's StandardMerkleTree and not something that
    // agrees with us by construction.
    let values: Vec<Value> = ["a", "b", "c", "d", "e", "f"].iter().map(|v| json!([v])).collect();
    let oz = oz_tree(&["string"], &values, &[]);
    let expected: B256 =
        "0x6deb52b5da8fd108f79fab00341f38d2587896634c646ee52e49f845680a70c8".parse().unwrap();
    assert_eq!(oz.root, expected);
}
