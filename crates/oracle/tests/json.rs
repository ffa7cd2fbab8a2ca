//! The files `ballast attest` writes and `ballast verify` reads: round trips, determinism, and
//! edited files failing on read with the field named.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use alloy_primitives::Address;
use common::{dev_signers, header, synthetic_results, verifier};
use oracle::json::{
    read_account_proof, read_leaves, read_signed_report, write_account_proof, write_leaves,
    write_signed_report,
};
use oracle::{Domain, EpochTree, ErrorKind, RejectionCode, attest, verify_account};

fn domain() -> Domain {
    Domain { chain_id: 31_337, verifying_contract: Address::repeat_byte(0x11) }
}

fn signed_text() -> (EpochTree, String) {
    let signers = dev_signers(3);
    let epoch = EpochTree::build(&header(6), &synthetic_results(40, 6)).unwrap();
    let signed = attest(&epoch, &verifier(&signers, 2, domain()), &signers).unwrap();
    (epoch, write_signed_report(&signed))
}

#[test]
fn signed_reports_round_trip_byte_for_byte() {
    let (epoch, text) = signed_text();
    let read = read_signed_report(&text).unwrap();
    assert_eq!(read.report.root, epoch.root());
    assert_eq!(write_signed_report(&read), text);
    // A second, independent build and signing gives the same bytes.
    assert_eq!(signed_text().1, text);
    let trusted = verifier(&dev_signers(3), 2, domain());
    let now = read.report.as_of_secs;
    let accepted = trusted.verify_report(&read.report, &read.signatures, 5, now).unwrap();
    assert_eq!(accepted.signers, trusted.signer_set.signers().to_vec());
}

#[test]
fn leaves_and_proofs_round_trip() {
    let (epoch, _) = signed_text();
    let text = write_leaves(&epoch);
    let read = read_leaves(&text).unwrap();
    assert_eq!(read.leaves, epoch.leaves());
    assert_eq!(read.tree.root(), epoch.root());
    assert_eq!(write_leaves(&epoch), text);
    for leaf in epoch.leaves().iter().step_by(7) {
        let proof_text = write_account_proof(&epoch, &leaf.account()).unwrap();
        let read = read_account_proof(&proof_text).unwrap();
        assert_eq!(read.proof.leaf, *leaf);
        assert_eq!(
            verify_account(Some(&epoch.root()), &read.proof.leaf, &read.proof.proof),
            Ok(())
        );
    }
}

#[track_caller]
fn check_edit<T: std::fmt::Debug>(
    read: impl Fn(&str) -> Result<T, oracle::Error>,
    text: &str,
    from: &str,
    to: &str,
    field: &str,
) {
    assert!(text.contains(from), "fixture lacks {from:?}");
    let edited = text.replacen(from, to, 1);
    let error = read(&edited).unwrap_err();
    assert_eq!(error.field, field, "{error}");
}

#[test]
fn edited_signed_reports_fail_on_read() {
    let (_, text) = signed_text();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let root = json["report"]["root"].as_str().unwrap();
    let digest = json["digest"].as_str().unwrap();
    let zeros = format!("0x{}", "0".repeat(64));
    check_edit(read_signed_report, &text, root, &zeros, "digest");
    check_edit(read_signed_report, &text, "\"epoch\": 6", "\"epoch\": 7", "digest");
    check_edit(read_signed_report, &text, digest, &zeros, "digest");
    check_edit(
        read_signed_report,
        &text,
        "\"threshold\": 2",
        "\"threshold\": 1",
        "signer_set.digest",
    );
    check_edit(read_signed_report, &text, "\"threshold\": 2", "\"threshold\": 9", "threshold");
    check_edit(read_signed_report, &text, "Ballast Risk Oracle", "Ballast", "domain");
    check_edit(
        read_signed_report,
        &text,
        "\"chain_id\": 31337",
        "\"chain_id\": 1",
        "domain.separator",
    );
    check_edit(read_signed_report, &text, "margin-root.v1", "margin-root.v2", "format");
    check_edit(read_signed_report, &text, "\"leaf_count\"", "\"extra\": 1, \"leaf_count\"", "json");
    check_edit(read_signed_report, &text, "{", "[", "json");
}

#[test]
fn edited_leaves_fail_on_read() {
    let (epoch, _) = signed_text();
    let text = write_leaves(&epoch);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let first = &json["leaves"][0];
    let im = format!("\"initial_margin\": \"{}\"", first["initial_margin"].as_str().unwrap());
    let mtm = format!("\"mark_to_market\": \"{}\"", first["mark_to_market"].as_str().unwrap());
    check_edit(read_leaves, &text, &im, "\"initial_margin\": \"12345\"", "leaf_hash");
    check_edit(read_leaves, &text, &im, "\"initial_margin\": \"-1\"", "initial_margin");
    check_edit(read_leaves, &text, &im, "\"initial_margin\": \"1.5\"", "initial_margin");
    check_edit(read_leaves, &text, &im, "\"initial_margin\": \"007\"", "initial_margin");
    check_edit(read_leaves, &text, &mtm, "\"mark_to_market\": \"-0\"", "mark_to_market");
    let too_big = format!("\"initial_margin\": \"{}0\"", i128::MAX);
    check_edit(read_leaves, &text, &im, &too_big, "initial_margin");
    check_edit(read_leaves, &text, "\"USDC\"", "\"US-DC\"", "currency");
    let root = json["root"].as_str().unwrap();
    check_edit(read_leaves, &text, root, &format!("0x{}", "1".repeat(64)), "root");
    let proof = write_account_proof(&epoch, &epoch.leaves()[3].account()).unwrap();
    check_edit(
        read_account_proof,
        &proof,
        "\"worst_scenario\": ",
        "\"worst_scenario\": 1",
        "leaf_hash",
    );
}

#[test]
fn attest_refuses_keys_outside_the_set_and_short_quorums() {
    let signers = dev_signers(4);
    let epoch = EpochTree::build(&header(2), &synthetic_results(5, 2)).unwrap();
    let trusted = verifier(&signers[..3], 2, domain());
    let kind = |keys: &[oracle::Signer]| attest(&epoch, &trusted, keys).unwrap_err().kind;
    assert!(matches!(kind(&signers), ErrorKind::NotFound(_)));
    assert!(matches!(kind(&signers[..1]), ErrorKind::OutOfRange(_)));
    let twice = [signers[0].clone(), signers[0].clone()];
    assert!(matches!(kind(&twice), ErrorKind::Duplicate(_)));
    let signed = attest(&epoch, &trusted, &signers[..2]).unwrap();
    let last_accepted = signed.report.epoch;
    let replay = trusted.verify_report(&signed.report, &signed.signatures, last_accepted, 0);
    assert_eq!(replay.unwrap_err(), RejectionCode::StaleEpoch);
}
