//! The Solidity verifier, compiled by solc-js and run in revm, against the Rust side: the same
//! digests, the same accepted roots and proofs, and the same rejection code for every bad case.
//!
//! Needs `npm ci --prefix contracts` and Node 20+. Gas figures print with `--nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::SolCall;
use common::chain::{
    CHAIN_ID, Chain, account_leaf, describe_gas, digestOfCall, domainSeparatorCall, lastEpochCall,
    margin_root, rootOfCall, signerSetDigestCall, submit_call, verify_call, verifyAccountsCall,
};
use common::{BOUNDS, dev_signers, header, synthetic_results};
use oracle::RejectionCode as R;
use oracle::{
    Bounds, Domain, EpochTree, RejectionCode, Report, Signer, SignerSet, Verifier, verify_account,
};

/// A deployed verifier, the Rust twin configured identically, and the keys.
struct Setup {
    chain: Chain,
    contract: Address,
    verifier: Verifier,
    /// Signer keys sorted by address: index order is signature order.
    keys: Vec<Signer>,
}

impl Setup {
    /// Four signers, threshold three; the chain clock starts at epoch 1's `asOf`.
    fn new() -> Setup {
        let mut keys = dev_signers(4);
        keys.sort_by_key(Signer::address);
        let addresses = keys.iter().map(Signer::address).collect();
        let set = SignerSet::new(addresses, 3, 7).unwrap();
        let mut chain = Chain::new(header(1).as_of_secs);
        let contract = chain.deploy(&set, BOUNDS).unwrap();
        let domain = Domain { chain_id: CHAIN_ID, verifying_contract: contract };
        let verifier = Verifier { domain, signer_set: set, bounds: BOUNDS };
        Setup { chain, contract, verifier, keys }
    }

    fn sign(&self, report: &Report, order: &[usize]) -> Vec<Bytes> {
        let domain = &self.verifier.domain;
        order
            .iter()
            .map(|&i| Bytes::from(self.keys[i].sign_report(report, domain).as_bytes().to_vec()))
            .collect()
    }

    fn last_epoch(&mut self) -> u64 {
        self.chain.view(self.contract, &lastEpochCall {})
    }

    /// Runs one submission through both verifiers at `now_secs` without committing it, and
    /// returns (Rust's code, the contract's code); `None` means accepted.
    fn both(
        &mut self,
        report: &Report,
        signatures: &[Bytes],
        now_secs: u64,
    ) -> (Option<u8>, Option<u8>) {
        let last = self.last_epoch();
        let rust = self.verifier.verify_report(report, signatures, last, now_secs);
        self.chain.set_time(now_secs);
        let evm = self.chain.call(self.contract, submit_call(report, signatures));
        assert!(evm.success || evm.rejection().is_some(), "unexpected revert: {evm:?}");
        (rust.err().map(RejectionCode::code), evm.rejection())
    }

    fn submit(&mut self, report: &Report, signatures: &[Bytes]) -> u64 {
        self.chain.set_time(report.as_of_secs);
        let outcome = self.chain.send(self.contract, submit_call(report, signatures));
        assert!(outcome.success, "submitRoot reverted: {outcome:?}");
        outcome.gas_used
    }
}

fn epoch_tree(epoch: u64, count: usize) -> EpochTree {
    EpochTree::build(&header(epoch), &synthetic_results(count, epoch)).unwrap()
}

#[test]
fn contract_and_rust_derive_the_same_digests() {
    let mut setup = Setup::new();
    let report = epoch_tree(1, 10).report(&setup.verifier.signer_set);
    let (chain, contract) = (&mut setup.chain, setup.contract);
    assert_eq!(chain.view(contract, &domainSeparatorCall {}), setup.verifier.domain.separator());
    assert_eq!(chain.view(contract, &signerSetDigestCall {}), setup.verifier.signer_set.digest());
    let digest = chain.view(contract, &digestOfCall { report: margin_root(&report) });
    assert_eq!(digest, report.signing_hash(&setup.verifier.domain));
}

#[test]
fn accepts_a_quorum_and_proves_accounts_on_chain() {
    let mut setup = Setup::new();
    let epoch = epoch_tree(1, 1_000);
    let report = epoch.report(&setup.verifier.signer_set);
    let signatures = setup.sign(&report, &[0, 2, 3]);
    assert_eq!(setup.both(&report, &signatures, report.as_of_secs), (None, None));
    let submit_gas = setup.submit(&report, &signatures);
    let submit_data = submit_call(&report, &signatures);
    println!("gas: submitRoot, first epoch (3 of 4): {}", describe_gas(submit_gas, &submit_data));
    let root: B256 = setup.chain.view(setup.contract, &rootOfCall { epoch: 1 });
    assert_eq!(root, epoch.root());
    assert_eq!(setup.last_epoch(), 1);
    for leaf in epoch.leaves().iter().step_by(97) {
        let found = epoch.account_proof(&leaf.account()).unwrap();
        assert_eq!(verify_account(Some(&root), &found.leaf, &found.proof), Ok(()));
        let data = verify_call(&found.leaf, &found.proof);
        let outcome = setup.chain.call(setup.contract, data.clone());
        assert!(outcome.success, "verifyAccount rejected a valid proof: {outcome:?}");
        let depth = found.proof.len();
        println!("gas: verifyAccount, depth {depth}: {}", describe_gas(outcome.gas_used, &data));
    }
    let chosen: Vec<B256> = epoch.leaves().iter().step_by(50).map(oracle::Leaf::account).collect();
    let batch = epoch.multiproof(&chosen).unwrap();
    let leaves: Vec<_> = batch.leaves.iter().map(account_leaf).collect();
    let (proof, proof_flags) = (batch.multi.proof, batch.multi.proof_flags);
    let call = verifyAccountsCall { epoch: 1, leaves, proof, proofFlags: proof_flags };
    let data = call.abi_encode();
    let outcome = setup.chain.call(setup.contract, data.clone());
    assert!(outcome.success, "verifyAccounts rejected a valid multiproof: {outcome:?}");
    let count = chosen.len();
    println!("gas: verifyAccounts, {count} leaves: {}", describe_gas(outcome.gas_used, &data));
    // Steady state: the next epoch overwrites lastEpoch instead of setting it from zero.
    let next = epoch_tree(2, 1_000).report(&setup.verifier.signer_set);
    let next_signatures = setup.sign(&next, &[0, 2, 3]);
    let gas = setup.submit(&next, &next_signatures);
    let data = submit_call(&next, &next_signatures);
    println!("gas: submitRoot, next epoch (3 of 4): {}", describe_gas(gas, &data));
}

#[test]
fn rust_and_contract_reject_tampered_leaves_alike() {
    let mut setup = Setup::new();
    let epoch = epoch_tree(1, 64);
    let report = epoch.report(&setup.verifier.signer_set);
    let signatures = setup.sign(&report, &[0, 1, 2]);
    setup.submit(&report, &signatures);
    let found = epoch.account_proof(&epoch.leaves()[5].account()).unwrap();
    let mut changed = found.leaf.result(basics::Currency::USDC);
    changed.mark_to_market = common::usdc(changed.mark_to_market.raw() + 1);
    let tampered = oracle::Leaf::new(1, basics::Currency::USDC, &changed).unwrap();
    let cases = [
        (Some(epoch.root()), tampered, found.proof.clone(), RejectionCode::ProofInvalid),
        (Some(epoch.root()), found.leaf, found.proof[1..].to_vec(), RejectionCode::ProofInvalid),
        (
            None,
            oracle::Leaf::new(2, basics::Currency::USDC, &changed).unwrap(),
            found.proof.clone(),
            RejectionCode::UnknownEpoch,
        ),
    ];
    for (root, leaf, proof, expected) in cases {
        let rust = verify_account(root.as_ref(), &leaf, &proof);
        let evm = setup.chain.call(setup.contract, verify_call(&leaf, &proof));
        assert_eq!(rust, Err(expected));
        assert_eq!(evm.rejection(), Some(expected.code()), "{expected}");
    }
}

#[test]
fn rust_and_contract_reject_bad_multiproofs_alike() {
    let mut setup = Setup::new();
    let epoch = epoch_tree(1, 100);
    let report = epoch.report(&setup.verifier.signer_set);
    let signatures = setup.sign(&report, &[1, 2, 3]);
    setup.submit(&report, &signatures);
    let chosen: Vec<B256> = epoch.leaves().iter().step_by(9).map(oracle::Leaf::account).collect();
    let batch = epoch.multiproof(&chosen).unwrap();
    let mut rotated = batch.leaves.clone();
    rotated.rotate_left(1);
    let mut short = batch.multi.clone();
    short.proof.pop();
    let mut flipped = batch.multi.clone();
    let first_sibling = flipped.proof_flags.iter().position(|flag| !flag).unwrap();
    flipped.proof_flags[first_sibling] = true;
    let root = Some(epoch.root());
    let cases = [
        ("valid", 1, root, batch.leaves.clone(), batch.multi.clone(), None),
        ("leaves reordered", 1, root, rotated, batch.multi.clone(), Some(R::ProofInvalid)),
        ("sibling missing", 1, root, batch.leaves.clone(), short, Some(R::ProofInvalid)),
        ("flag flipped", 1, root, batch.leaves.clone(), flipped, Some(R::ProofInvalid)),
        ("no leaves", 1, root, Vec::new(), batch.multi.clone(), Some(R::ProofInvalid)),
        (
            "unknown epoch",
            2,
            None,
            batch.leaves.clone(),
            batch.multi.clone(),
            Some(R::UnknownEpoch),
        ),
    ];
    for (name, epoch_number, root, leaves, multi, expected) in cases {
        let rust = oracle::verify_accounts(root.as_ref(), &leaves, &multi).err();
        let call = verifyAccountsCall {
            epoch: epoch_number,
            leaves: leaves.iter().map(account_leaf).collect(),
            proof: multi.proof,
            proofFlags: multi.proof_flags,
        };
        let evm = setup.chain.call(setup.contract, call.abi_encode());
        let expected = expected.map(R::code);
        assert_eq!((rust.map(R::code), evm.rejection()), (expected, expected), "{name}");
        assert_eq!(evm.success, expected.is_none(), "{name}");
    }
}

/// Replaces part of a signature.
fn patched(signature: &Bytes, at: usize, part: &[u8]) -> Bytes {
    let mut bytes = signature.to_vec();
    bytes[at..at + part.len()].copy_from_slice(part);
    bytes.into()
}

#[test]
fn rust_and_contract_reject_bad_reports_with_the_same_code() {
    let mut setup = Setup::new();
    let first = epoch_tree(1, 50).report(&setup.verifier.signer_set);
    let first_signatures = setup.sign(&first, &[0, 1, 2]);
    setup.submit(&first, &first_signatures);
    let report = epoch_tree(2, 50).report(&setup.verifier.signer_set);
    let now = report.as_of_secs + 1;
    let good = setup.sign(&report, &[0, 1, 3]);
    let outsider = Signer::from_hex(common::DEV_KEYS[4]).unwrap();
    let foreign =
        Bytes::from(outsider.sign_report(&report, &setup.verifier.domain).as_bytes().to_vec());
    let order = alloy_primitives::uint!(
        0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256
    );
    let high_s = {
        let s = U256::from_be_slice(&good[1][32..64]);
        let flipped = if good[1][64] == 27 { 28 } else { 27 };
        patched(&patched(&good[1], 32, &(order - s).to_be_bytes::<32>()), 64, &[flipped])
    };
    let with = |i: usize, signature: Bytes| {
        let mut list = good.clone();
        list[i] = signature;
        list
    };
    let cases: Vec<(&str, Report, Vec<Bytes>, u64, RejectionCode)> = vec![
        ("unknown signer", report, with(1, foreign), now, R::UnknownSigner),
        ("duplicate signer", report, setup.sign(&report, &[0, 0, 1]), now, R::DuplicateSigner),
        ("descending", report, setup.sign(&report, &[1, 0, 2]), now, R::SignersNotAscending),
        ("too few", report, setup.sign(&report, &[0, 1]), now, R::TooFewSignatures),
        ("too many", report, setup.sign(&report, &[0, 1, 2, 3, 3]), now, R::TooManySignatures),
        ("replayed epoch", first, first_signatures.clone(), first.as_of_secs, R::StaleEpoch),
        ("expired", report, good.clone(), report.valid_until_secs + 1, R::Expired),
        ("not yet valid", report, good.clone(), report.as_of_secs - 1, R::NotYetValid),
        ("high s", report, with(1, high_s), now, R::HighS),
        ("64 bytes", report, with(2, good[2].slice(..64)), now, R::MalformedSignature),
        ("v = 29", report, with(0, patched(&good[0], 64, &[29])), now, R::MalformedSignature),
        ("zero r", report, with(0, patched(&good[0], 0, &[0; 32])), now, R::MalformedSignature),
    ];
    for (name, report, signatures, now_secs, expected) in cases {
        let codes = setup.both(&report, &signatures, now_secs);
        assert_eq!(codes, (Some(expected.code()), Some(expected.code())), "{name}");
    }
    // The good submission is accepted by both at the edges of its window.
    assert_eq!(setup.both(&report, &good, report.as_of_secs), (None, None));
    assert_eq!(setup.both(&report, &good, report.valid_until_secs), (None, None));
}

#[test]
fn rust_and_contract_reject_reports_changed_after_signing() {
    let mut setup = Setup::new();
    let report = epoch_tree(3, 20).report(&setup.verifier.signer_set);
    let good = setup.sign(&report, &[1, 2, 3]);
    let now = report.as_of_secs;
    let mut new_root = report;
    new_root.root = B256::repeat_byte(0xee);
    let mut longer = report;
    longer.valid_until_secs += 3_600;
    let rotated = SignerSet::new(setup.verifier.signer_set.signers().to_vec(), 3, 8).unwrap();
    let mut other_set = report;
    other_set.signer_set_digest = rotated.digest();
    let other_chain = Domain { chain_id: 1, verifying_contract: setup.contract };
    let elsewhere: Vec<Bytes> = [1, 2, 3]
        .iter()
        .map(|&i| Bytes::from(setup.keys[i].sign_report(&report, &other_chain).as_bytes().to_vec()))
        .collect();
    let cases = [
        ("root changed", new_root, &good, R::UnknownSigner),
        ("window stretched", longer, &good, R::UnknownSigner),
        ("rotated signer set", other_set, &good, R::SignerSetMismatch),
        ("signed for another chain", report, &elsewhere, R::UnknownSigner),
    ];
    for (name, report, signatures, expected) in cases {
        let codes = setup.both(&report, signatures, now);
        assert_eq!(codes, (Some(expected.code()), Some(expected.code())), "{name}");
    }
}

/// Salted leaves (issue 14, margin-call privacy): each account field is keccak-256 of the
/// account's salt and id. The contract proves them like any other leaf; whoever holds only the
/// published leaves and a list of candidate ids (their plain keccak-256, or a salt under a
/// guessed secret) finds none of them; the holder recomputes its own from its salt.
#[test]
fn salted_leaves_verify_on_chain_and_reveal_no_account() {
    let mut setup = Setup::new();
    let secret = b"federation salting secret";
    let ids: Vec<String> = (0..200).map(|i| format!("account-{i}")).collect();
    let mut results = synthetic_results(ids.len(), 9);
    for (result, id) in results.iter_mut().zip(&ids) {
        result.account = oracle::salted_account_id(&oracle::account_salt(secret, id), id);
    }
    let tree = EpochTree::build(&header(1), &results).unwrap();
    let report = tree.report(&setup.verifier.signer_set);
    let signatures = setup.sign(&report, &[0, 1, 2]);
    setup.submit(&report, &signatures);
    let published: std::collections::BTreeSet<B256> =
        tree.leaves().iter().map(oracle::Leaf::account).collect();
    for id in &ids {
        let plain = oracle::keccak256(id.as_bytes());
        let guessed = oracle::salted_account_id(&oracle::account_salt(b"a guess", id), id);
        assert!(!published.contains(&plain) && !published.contains(&guessed), "{id}");
    }
    for id in ids.iter().step_by(37) {
        let mine = oracle::salted_account_id(&oracle::account_salt(secret, id), id);
        let found = tree.account_proof(&mine).unwrap();
        let outcome = setup.chain.call(setup.contract, verify_call(&found.leaf, &found.proof));
        assert!(outcome.success, "verifyAccount rejected a salted leaf: {outcome:?}");
    }
}

/// The poisoned report of issue 14: a quorum's valid signatures on epoch 2^64 − 1, valid until
/// 2^64 − 1, would have made every honest epoch stale for ever. Both verifiers refuse it with
/// `EPOCH_JUMP`, and a window a second longer than the bound with `VALIDITY_TOO_LONG`; a jump
/// of exactly the bound and a window of exactly the bound pass; the honest next epoch is
/// accepted after all of them. A zero bound cannot be deployed, on either side.
#[test]
fn a_captured_quorum_cannot_lock_the_verifier() {
    let mut setup = Setup::new();
    let first = epoch_tree(1, 10).report(&setup.verifier.signer_set);
    let signatures = setup.sign(&first, &[0, 1, 2]);
    setup.submit(&first, &signatures);
    let honest = epoch_tree(2, 10).report(&setup.verifier.signer_set);
    let now = honest.as_of_secs + 1;
    let variant = |change: &dyn Fn(&mut Report)| {
        let mut report = honest;
        change(&mut report);
        report
    };
    let poisoned = variant(&|r| (r.epoch, r.valid_until_secs) = (u64::MAX, u64::MAX));
    let too_long = variant(&|r| r.valid_until_secs = r.as_of_secs + BOUNDS.validity_secs_max + 1);
    let widest = variant(&|r| r.valid_until_secs = r.as_of_secs + BOUNDS.validity_secs_max);
    let furthest = variant(&|r| r.epoch = 1 + BOUNDS.epoch_jump_max);
    let cases = [
        ("poisoned", poisoned, Some(R::EpochJump)),
        (
            "one epoch beyond the bound",
            variant(&|r| r.epoch = 2 + BOUNDS.epoch_jump_max),
            Some(R::EpochJump),
        ),
        ("window beyond the bound", too_long, Some(R::ValidityTooLong)),
        ("window at the bound", widest, None),
        ("jump at the bound", furthest, None),
    ];
    for (name, report, expected) in cases {
        let signatures = setup.sign(&report, &[0, 1, 2]);
        let code = expected.map(RejectionCode::code);
        assert_eq!(setup.both(&report, &signatures, now), (code, code), "{name}");
    }
    let signatures = setup.sign(&honest, &[1, 2, 3]);
    setup.submit(&honest, &signatures);
    assert_eq!(setup.last_epoch(), 2, "honest epochs go on");
    let set = setup.verifier.signer_set.clone();
    for (jump, validity) in [(0, 600), (1, 0)] {
        let bounds = Bounds { epoch_jump_max: jump, validity_secs_max: validity };
        assert!(setup.chain.deploy(&set, bounds).is_err(), "{bounds:?}");
        assert!(Bounds::new(jump, validity).is_err(), "{bounds:?}");
    }
}

#[test]
fn contract_and_rust_refuse_the_same_signer_sets() {
    let keys = dev_signers(3);
    let mut sorted: Vec<Address> = keys.iter().map(Signer::address).collect();
    sorted.sort();
    let descending: Vec<Address> = sorted.iter().rev().copied().collect();
    let with_zero = vec![Address::ZERO, sorted[0]];
    let repeated = vec![sorted[0], sorted[0]];
    let cases: [(&str, Vec<Address>, u8, bool); 7] = [
        ("valid", sorted.clone(), 2, true),
        ("threshold n", sorted.clone(), 3, true),
        ("threshold 0", sorted.clone(), 0, false),
        ("threshold above n", sorted.clone(), 4, false),
        ("descending", descending, 2, false),
        ("zero address", with_zero, 1, false),
        ("repeated", repeated, 1, false),
    ];
    let mut chain = Chain::new(1);
    for (name, signers, threshold, valid) in cases {
        let rust = SignerSet::new(signers.clone(), threshold, 1).is_ok();
        let evm = chain.deploy_raw(signers, threshold, 1, BOUNDS).is_ok();
        assert_eq!((rust, evm), (valid, valid), "{name}");
    }
}

#[test]
fn solidity_constants_match_the_rust_codes_and_limits() {
    let read = |name: &str| {
        std::fs::read_to_string(common::contracts_dir().join("src").join(name)).unwrap()
    };
    let sources = [read("BallastVerifier.sol"), read("BallastVenue.sol")];
    // Every `uint8 ... constant NAME = n;` of either contract, but the venue's status values.
    let mut declared: Vec<(String, u64)> = Vec::new();
    for line in sources.iter().flat_map(|source| source.lines()) {
        let Some(rest) = line.trim().strip_prefix("uint8 ") else { continue };
        let Some((name, value)) =
            rest.split_once(" constant ").and_then(|(_, n)| n.split_once('='))
        else {
            continue;
        };
        let name = name.trim().to_owned();
        if !name.starts_with("STATUS_") {
            declared.push((name, value.trim().trim_end_matches(';').parse().unwrap()));
        }
    }
    for code in RejectionCode::ALL {
        let name = code.solidity_name().to_owned();
        assert!(declared.contains(&(name, u64::from(code.code()))), "{code}");
    }
    for (name, value) in &declared {
        let code = RejectionCode::from_code(u8::try_from(*value).unwrap());
        assert_eq!(code.map(RejectionCode::solidity_name), Some(name.as_str()), "{name}");
    }
    let constant = |name: &str| -> Option<u64> {
        let line = sources[0].lines().find(|l| l.contains(&format!(" constant {name} = ")))?;
        line.split('=').nth(1)?.trim().trim_end_matches(';').parse().ok()
    };
    assert_eq!(constant("SIGNERS_MAX"), Some(oracle::limits::SIGNERS_MAX as u64));
    assert_eq!(constant("PROOF_DEPTH_MAX"), Some(oracle::limits::PROOF_DEPTH_MAX as u64));
    let multiproof_max = oracle::limits::MULTIPROOF_LEAVES_MAX as u64;
    assert_eq!(constant("MULTIPROOF_LEAVES_MAX"), Some(multiproof_max));
    let venue_depth = sources[1].lines().find(|l| l.contains(" constant PROOF_DEPTH_MAX = "));
    assert!(
        venue_depth
            .is_some_and(|l| l.ends_with(&format!("= {};", constant("PROOF_DEPTH_MAX").unwrap())))
    );
}

/// Gas of `verifyAccount` at the depth of a million-leaf tree (20 siblings). Takes about ten
/// seconds, so it runs on demand:
/// `cargo test -p oracle --test evm -- --ignored --nocapture gas_`.
#[test]
#[ignore = "builds a 2^20-leaf tree; run on demand for the gas figure"]
fn gas_of_a_proof_in_a_million_leaf_tree() {
    let mut setup = Setup::new();
    let epoch = EpochTree::build(&header(1), &synthetic_results(1 << 20, 1)).unwrap();
    let report = epoch.report(&setup.verifier.signer_set);
    let signatures = setup.sign(&report, &[0, 1, 2, 3]);
    let submit_gas = setup.submit(&report, &signatures);
    let submit_data = submit_call(&report, &signatures);
    println!("gas: submitRoot (4 of 4): {}", describe_gas(submit_gas, &submit_data));
    for index in [0, 123_456, (1 << 20) - 1] {
        let found = epoch.account_proof(&epoch.leaves()[index].account()).unwrap();
        let data = verify_call(&found.leaf, &found.proof);
        let outcome = setup.chain.call(setup.contract, data.clone());
        assert!(outcome.success);
        let depth = found.proof.len();
        println!("gas: verifyAccount, depth {depth}: {}", describe_gas(outcome.gas_used, &data));
    }
}
