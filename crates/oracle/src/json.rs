//! JSON files of the oracle: the signed report, an epoch's leaves, and one account's proof.
//!
//! `ballast attest` writes them and `ballast verify` reads them back offline, so every reader
//! re-derives what it can (leaf hashes, the root, the EIP-712 digest, the signer-set digest) and
//! rejects a file whose stored value disagrees: a hand-edited file fails loudly on read rather
//! than quietly at verification. Amounts are decimal strings of raw 1e-18 units, exactly the
//! integers the contract sees; hashes and addresses are 0x-prefixed hex.
//!
//! The functions work on strings; the CLI owns the files.

use std::str::FromStr;

use alloy_primitives::{Address, B256, Bytes};
use basics::{Currency, Money};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::epoch::{AccountProof, AccountResult, EpochTree, Leaf};
use crate::limits::{JSON_BYTES_MAX, LEAVES_MAX, PROOF_DEPTH_MAX, SIGNERS_MAX};
use crate::report::{DOMAIN_NAME, DOMAIN_VERSION, Domain, Report, SignedReport, SignerSet};
use crate::tree::MerkleTree;
use crate::venue::VenueLeaf;

mod venue;
pub use venue::{VENUE_PROOF_FORMAT, VenueProofFile, read_venue_proof, write_venue_proof};

/// Format tag of a signed report file.
pub const REPORT_FORMAT: &str = "ballast.margin-root.v1";
/// Format tag of a leaves file.
pub const LEAVES_FORMAT: &str = "ballast.leaves.v1";
/// Format tag of an account-proof file.
pub const PROOF_FORMAT: &str = "ballast.account-proof.v1";

/// An epoch's leaves read back from a file, with the tree rebuilt from them.
#[derive(Debug, Clone)]
pub struct LeavesFile {
    /// The reporting currency of every amount.
    pub currency: Currency,
    /// The leaves, sorted by account id.
    pub leaves: Vec<Leaf>,
    /// The venue leaves of accounts netted across venues, sorted by account id then venue key
    /// (none for an epoch without venues).
    pub venue_leaves: Vec<VenueLeaf>,
    /// The tree rebuilt from every leaf; its root matched the file's.
    pub tree: MerkleTree,
}

/// One account's proof read back from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProofFile {
    /// The reporting currency of the amounts.
    pub currency: Currency,
    /// The root the proof claims to lead to.
    pub root: B256,
    /// The leaf and its proof.
    pub proof: AccountProof,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainJson {
    name: String,
    version: String,
    chain_id: u64,
    verifying_contract: Address,
    separator: B256,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerSetJson {
    signers: Vec<Address>,
    threshold: u8,
    config_version: u64,
    digest: B256,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedReportJson {
    format: String,
    domain: DomainJson,
    signer_set: SignerSetJson,
    report: Report,
    digest: B256,
    signatures: Vec<Bytes>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafJson {
    account: B256,
    initial_margin: String,
    maintenance_margin: String,
    mark_to_market: String,
    worst_scenario: u16,
    portfolio_hash: B256,
    leaf_hash: B256,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeavesJson {
    format: String,
    epoch: u64,
    currency: String,
    root: B256,
    leaves: Vec<LeafJson>,
    /// Absent in an epoch without venues, so such files read as they always did.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    venue_leaves: Vec<venue::VenueLeafJson>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountProofJson {
    format: String,
    epoch: u64,
    currency: String,
    root: B256,
    leaf: LeafJson,
    proof: Vec<B256>,
}

/// Writes a signed report as pretty JSON, with the derived digests spelled out for readers.
#[must_use]
pub fn write_signed_report(signed: &SignedReport) -> String {
    let domain = &signed.domain;
    let set = &signed.signer_set;
    let report = &signed.report;
    let json = SignedReportJson {
        format: REPORT_FORMAT.to_owned(),
        domain: DomainJson {
            name: DOMAIN_NAME.to_owned(),
            version: DOMAIN_VERSION.to_owned(),
            chain_id: domain.chain_id,
            verifying_contract: domain.verifying_contract,
            separator: domain.separator(),
        },
        signer_set: SignerSetJson {
            signers: set.signers().to_vec(),
            threshold: set.threshold(),
            config_version: set.config_version(),
            digest: set.digest(),
        },
        report: *report,
        digest: report.signing_hash(domain),
        signatures: signed.signatures.clone(),
    };
    to_pretty(&json)
}

/// Reads a signed report back, re-deriving every digest the file states.
///
/// # Errors
/// `OutOfRange` for oversized input or too many signatures, `Syntax` for malformed JSON or a
/// wrong format tag, the [`SignerSet::new`] errors, and `Mismatch` when a stated digest,
/// domain name or version disagrees with its recomputation.
pub fn read_signed_report(text: &str) -> Result<SignedReport, Error> {
    let json: SignedReportJson = parse(text, "signed report")?;
    check_format(&json.format, REPORT_FORMAT)?;
    if json.domain.name != DOMAIN_NAME || json.domain.version != DOMAIN_VERSION {
        let what = format!("domain must be {DOMAIN_NAME:?} version {DOMAIN_VERSION:?}");
        return Err(Error::mismatch("domain", what));
    }
    let domain = Domain {
        chain_id: json.domain.chain_id,
        verifying_contract: json.domain.verifying_contract,
    };
    if domain.separator() != json.domain.separator {
        return Err(Error::mismatch("domain.separator", "the EIP-712 domain separator"));
    }
    let s = json.signer_set;
    let signer_set = SignerSet::new(s.signers, s.threshold, s.config_version)?;
    if signer_set.digest() != s.digest {
        return Err(Error::mismatch("signer_set.digest", "keccak256(abi.encode(set))"));
    }
    let report = json.report;
    if report.signing_hash(&domain) != json.digest {
        return Err(Error::mismatch("digest", "the EIP-712 signing hash of the report"));
    }
    if json.signatures.len() > SIGNERS_MAX {
        let rule = format!("at most {SIGNERS_MAX} signatures, got {}", json.signatures.len());
        return Err(Error::range("signatures", rule));
    }
    Ok(SignedReport { domain, signer_set, report, signatures: json.signatures })
}

/// Writes every leaf of an epoch, sorted by account id (then venue key for venue leaves), with
/// its hash and the root.
#[must_use]
pub fn write_leaves(epoch: &EpochTree) -> String {
    let currency = epoch.header().currency;
    let json = LeavesJson {
        format: LEAVES_FORMAT.to_owned(),
        epoch: epoch.header().epoch,
        currency: currency.to_string(),
        root: epoch.root(),
        leaves: epoch.leaves().iter().map(|leaf| leaf_json(leaf, currency)).collect(),
        venue_leaves: epoch.venue_leaves().iter().map(venue::venue_leaf_json).collect(),
    };
    to_pretty(&json)
}

/// Reads a leaves file back and rebuilds the tree from it.
///
/// # Errors
/// `Syntax` for malformed JSON, amounts or currency; the [`Leaf::new`] errors; `Mismatch` when a
/// leaf hash or the root disagrees with its recomputation; the tree's errors.
pub fn read_leaves(text: &str) -> Result<LeavesFile, Error> {
    let json: LeavesJson = parse(text, "leaves file")?;
    check_format(&json.format, LEAVES_FORMAT)?;
    let count = json.leaves.len() + json.venue_leaves.len();
    if count > LEAVES_MAX {
        let rule = format!("at most {LEAVES_MAX} leaves, got {count}");
        return Err(Error::range("leaves", rule));
    }
    let currency = parse_currency(&json.currency)?;
    let leaves = json
        .leaves
        .iter()
        .map(|leaf| leaf_from_json(leaf, json.epoch, currency))
        .collect::<Result<Vec<_>, _>>()?;
    if leaves.windows(2).any(|pair| pair[0].account() >= pair[1].account()) {
        return Err(Error::new("leaves", crate::ErrorKind::NotAscending("account id".into())));
    }
    let venue_leaves = venue::venue_leaves_from_json(&json.venue_leaves, json.epoch, currency)?;
    let hashes = leaves.iter().map(Leaf::hash).chain(venue_leaves.iter().map(VenueLeaf::hash));
    let tree = MerkleTree::from_leaf_hashes(hashes.collect())?;
    if tree.root() != json.root {
        return Err(Error::mismatch("root", "the root of the tree rebuilt from the leaves"));
    }
    Ok(LeavesFile { currency, leaves, venue_leaves, tree })
}

/// Writes one account's leaf and proof.
///
/// # Errors
/// `NotFound` when the account is not in the epoch.
pub fn write_account_proof(epoch: &EpochTree, account: &B256) -> Result<String, Error> {
    let currency = epoch.header().currency;
    let found = epoch.account_proof(account)?;
    let json = AccountProofJson {
        format: PROOF_FORMAT.to_owned(),
        epoch: epoch.header().epoch,
        currency: currency.to_string(),
        root: epoch.root(),
        leaf: leaf_json(&found.leaf, currency),
        proof: found.proof,
    };
    Ok(to_pretty(&json))
}

/// Reads one account's leaf and proof back. The proof is not checked against the root here:
/// that is [`crate::verify_account`]'s job, against a root the reader trusts.
///
/// # Errors
/// As for [`read_leaves`], and `OutOfRange` for a proof longer than [`PROOF_DEPTH_MAX`].
pub fn read_account_proof(text: &str) -> Result<AccountProofFile, Error> {
    let json: AccountProofJson = parse(text, "account proof")?;
    check_format(&json.format, PROOF_FORMAT)?;
    check_depth(&json.proof)?;
    let currency = parse_currency(&json.currency)?;
    let leaf = leaf_from_json(&json.leaf, json.epoch, currency)?;
    let proof = AccountProof { leaf, proof: json.proof };
    Ok(AccountProofFile { currency, root: json.root, proof })
}

fn leaf_json(leaf: &Leaf, currency: Currency) -> LeafJson {
    let result = leaf.result(currency);
    LeafJson {
        account: result.account,
        initial_margin: result.initial_margin.raw().to_string(),
        maintenance_margin: result.maintenance_margin.raw().to_string(),
        mark_to_market: result.mark_to_market.raw().to_string(),
        worst_scenario: result.worst_scenario,
        portfolio_hash: result.portfolio_hash,
        leaf_hash: leaf.hash(),
    }
}

fn leaf_from_json(json: &LeafJson, epoch: u64, currency: Currency) -> Result<Leaf, Error> {
    let result = AccountResult {
        account: json.account,
        initial_margin: parse_raw("initial_margin", &json.initial_margin, currency)?,
        maintenance_margin: parse_raw("maintenance_margin", &json.maintenance_margin, currency)?,
        mark_to_market: parse_raw("mark_to_market", &json.mark_to_market, currency)?,
        worst_scenario: json.worst_scenario,
        portfolio_hash: json.portfolio_hash,
    };
    let leaf = Leaf::new(epoch, currency, &result)?;
    if leaf.hash() != json.leaf_hash {
        let what = format!("the leaf hash of account {}", json.account);
        return Err(Error::mismatch("leaf_hash", what));
    }
    Ok(leaf)
}

/// Parses a decimal integer of raw 1e-18 units: digits with an optional leading minus, nothing
/// else, so that every amount has one spelling.
fn parse_raw(field: &'static str, text: &str, currency: Currency) -> Result<Money, Error> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && text != "-0";
    let expected =
        || Error::syntax(field, format!("a decimal integer of 1e-18 units, got {text:?}"));
    if !canonical {
        return Err(expected());
    }
    let raw = i128::from_str(text).map_err(|_| expected())?;
    Ok(Money::from_raw(raw, currency))
}

fn parse_currency(text: &str) -> Result<Currency, Error> {
    Currency::from_str(text).map_err(|error| Error::syntax("currency", error.to_string()))
}

fn parse<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> Result<T, Error> {
    if text.len() > JSON_BYTES_MAX {
        let rule = format!("at most {JSON_BYTES_MAX} bytes, got {}", text.len());
        return Err(Error::range("json", rule));
    }
    serde_json::from_str(text).map_err(|error| Error::syntax("json", format!("a {what}: {error}")))
}

/// Refuses a proof longer than any tree this crate builds: no verifier folds one.
fn check_depth(proof: &[B256]) -> Result<(), Error> {
    if proof.len() > PROOF_DEPTH_MAX {
        let rule = format!("at most {PROOF_DEPTH_MAX} siblings, got {}", proof.len());
        return Err(Error::range("proof", rule));
    }
    Ok(())
}

fn check_format(found: &str, expected: &str) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::syntax("format", format!("{expected:?}, got {found:?}")))
    }
}

fn to_pretty<T: Serialize>(value: &T) -> String {
    // The JSON types here hold only strings, integers, hex and vectors of them, which always
    // serialise; an error would be a bug in serde_json, not an operating condition.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    assert!(!text.is_empty(), "Invariant: the oracle's JSON types always serialise");
    text.push('\n');
    text
}
