//! Wall time to build and sign one epoch of 1,000,000 synthetic accounts, on 1 and 2 threads.
//!
//! Run: `cargo bench -p oracle --bench attest` (release profile, LTO). Prints the minimum and
//! median of several runs per thread count, and checks that every run gives the same root.

#![allow(clippy::unwrap_used, reason = "a benchmark should stop loudly on a broken setup")]

use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, keccak256};
use basics::{Currency, Money};
use oracle::tree::MerkleTree;
use oracle::{AccountResult, Domain, EpochHeader, EpochTree, Signer, SignerSet, Verifier, attest};

const ACCOUNTS: usize = 1_000_000;
const RUNS: usize = 5;

fn synthetic(count: usize) -> Vec<AccountResult> {
    (0..count as u64)
        .map(|i| {
            let account = keccak256(i.to_be_bytes());
            let raw = i128::from(u32::from_be_bytes(account.0[..4].try_into().unwrap()));
            let usdc = |value: i128| Money::from_raw(value * 1_000_000_000_000, Currency::USDC);
            AccountResult {
                account,
                initial_margin: usdc(raw),
                maintenance_margin: usdc(raw / 2),
                mark_to_market: usdc(raw - 2_000_000_000),
                worst_scenario: (i % 300) as u16,
                portfolio_hash: keccak256(account),
            }
        })
        .collect()
}

fn main() {
    let results = synthetic(ACCOUNTS);
    let header = EpochHeader {
        epoch: 1,
        as_of_secs: 1_700_000_000,
        valid_until_secs: 1_700_000_600,
        market_data_hash: B256::repeat_byte(1),
        methodology_hash: B256::repeat_byte(2),
        currency: Currency::USDC,
    };
    let keys: Vec<Signer> = (1u8..=3).map(|k| Signer::from_bytes(&[k; 32]).unwrap()).collect();
    let mut addresses: Vec<Address> = keys.iter().map(Signer::address).collect();
    addresses.sort();
    let signer_set = SignerSet::new(addresses, 2, 1).unwrap();
    let domain = Domain { chain_id: 1, verifying_contract: Address::repeat_byte(9) };
    let bounds = oracle::Bounds { epoch_jump_max: 1, validity_secs_max: 600 };
    let verifier = Verifier { domain, signer_set, bounds };
    let mut roots = Vec::new();
    println!("{ACCOUNTS} accounts, {RUNS} runs per thread count");
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut build_times = Vec::new();
        let mut sign_times = Vec::new();
        let mut node_times = Vec::new();
        for _ in 0..RUNS {
            let start = Instant::now();
            let epoch = pool.install(|| EpochTree::build(&header, &results).unwrap());
            let built = Instant::now();
            let signed = attest(&epoch, &verifier, &keys).unwrap();
            sign_times.push(built.elapsed());
            build_times.push(built - start);
            roots.push(signed.report.root);
            let hashes = epoch.tree().leaves().to_vec();
            let start = Instant::now();
            let tree = pool.install(|| MerkleTree::from_leaf_hashes(hashes).unwrap());
            node_times.push(start.elapsed());
            assert_eq!(tree.root(), epoch.root());
        }
        report(threads, "EpochTree::build (validate, sort, leaf hashes, tree)", &mut build_times);
        report(threads, "  of which MerkleTree::from_leaf_hashes (sort, nodes)", &mut node_times);
        report(threads, "attest (report, 3 signatures, verify)", &mut sign_times);
    }
    assert!(roots.windows(2).all(|pair| pair[0] == pair[1]), "roots differ between runs");
    println!("root {}", roots[0]);
}

fn report(threads: usize, what: &str, times: &mut [Duration]) {
    times.sort();
    let min = times[0].as_secs_f64() * 1e3;
    let median = times[times.len() / 2].as_secs_f64() * 1e3;
    println!("{threads} thread(s): {what}: min {min:.1} ms, median {median:.1} ms");
}
