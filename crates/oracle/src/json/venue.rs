//! Venue leaves in files: in the leaves file beside the account leaves, and one proof file per
//! (account, venue) — what a keeper hands to `BallastVenue.creditOf` and `ballast verify
//! --venue-proof` checks offline.

use alloy_primitives::B256;
use basics::Currency;
use serde::{Deserialize, Serialize};

use super::{check_depth, check_format, parse, parse_currency, parse_raw, to_pretty};
use crate::epoch::EpochTree;
use crate::venue::{VenueLeaf, VenueProof, VenueResult, VenueStatus};
use crate::{Error, ErrorKind};

/// Format tag of a venue-proof file.
pub const VENUE_PROOF_FORMAT: &str = "ballast.venue-proof.v1";

/// One venue leaf as JSON: amounts in raw 1e-18 units of the epoch's currency, the status by
/// name with its grace end (0 unless `grace`), and the leaf hash for readers to check.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VenueLeafJson {
    account: B256,
    venue: B256,
    chain_id: u64,
    initial_margin: String,
    maintenance_margin: String,
    equity: String,
    lien_in: String,
    lien_out: String,
    status: String,
    grace_until: u64,
    controller: bool,
    vector_hash: B256,
    leaf_hash: B256,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct VenueProofJson {
    format: String,
    epoch: u64,
    currency: String,
    root: B256,
    leaf: VenueLeafJson,
    proof: Vec<B256>,
}

/// One venue leaf's proof read back from a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueProofFile {
    /// The reporting currency of the amounts.
    pub currency: Currency,
    /// The root the proof claims to lead to.
    pub root: B256,
    /// The leaf and its proof.
    pub proof: VenueProof,
}

pub(super) fn venue_leaf_json(leaf: &VenueLeaf) -> VenueLeafJson {
    let r = leaf.result();
    let status = match r.status {
        VenueStatus::Netted => "netted",
        VenueStatus::Standalone => "standalone",
        VenueStatus::Grace { .. } => "grace",
    };
    VenueLeafJson {
        account: r.account,
        venue: r.venue,
        chain_id: r.chain_id,
        initial_margin: r.initial_margin.raw().to_string(),
        maintenance_margin: r.maintenance_margin.raw().to_string(),
        equity: r.equity.raw().to_string(),
        lien_in: r.lien_in.raw().to_string(),
        lien_out: r.lien_out.raw().to_string(),
        status: status.to_owned(),
        grace_until: r.status.grace_until_secs(),
        controller: r.controller,
        vector_hash: r.vector_hash,
        leaf_hash: leaf.hash(),
    }
}

pub(super) fn venue_leaf_from_json(
    json: &VenueLeafJson,
    epoch: u64,
    currency: Currency,
) -> Result<VenueLeaf, Error> {
    let status = match (json.status.as_str(), json.grace_until) {
        ("netted", 0) => VenueStatus::Netted,
        ("standalone", 0) => VenueStatus::Standalone,
        ("grace", until_secs) => VenueStatus::Grace { until_secs },
        (name, until) => {
            let why = format!(
                "netted or standalone with grace_until 0, or grace with its end; got {name:?} \
                 and {until}"
            );
            return Err(Error::syntax("status", why));
        }
    };
    let result = VenueResult {
        account: json.account,
        venue: json.venue,
        chain_id: json.chain_id,
        initial_margin: parse_raw("initial_margin", &json.initial_margin, currency)?,
        maintenance_margin: parse_raw("maintenance_margin", &json.maintenance_margin, currency)?,
        equity: parse_raw("equity", &json.equity, currency)?,
        lien_in: parse_raw("lien_in", &json.lien_in, currency)?,
        lien_out: parse_raw("lien_out", &json.lien_out, currency)?,
        status,
        controller: json.controller,
        vector_hash: json.vector_hash,
    };
    let leaf = VenueLeaf::new(epoch, currency, &result)?;
    if leaf.hash() != json.leaf_hash {
        let what = format!("the leaf hash of venue {} of account {}", json.venue, json.account);
        return Err(Error::mismatch("leaf_hash", what));
    }
    Ok(leaf)
}

/// Venue leaves read back in the leaves file's order, which must be ascending by (account,
/// venue), as the epoch keeps them.
pub(super) fn venue_leaves_from_json(
    json: &[VenueLeafJson],
    epoch: u64,
    currency: Currency,
) -> Result<Vec<VenueLeaf>, Error> {
    let leaves = (json.iter())
        .map(|leaf| venue_leaf_from_json(leaf, epoch, currency))
        .collect::<Result<Vec<_>, _>>()?;
    let key = |leaf: &VenueLeaf| (leaf.result().account, leaf.result().venue);
    if leaves.windows(2).any(|pair| key(&pair[0]) >= key(&pair[1])) {
        let what = "account id, then venue key".to_owned();
        return Err(Error::new("venue_leaves", ErrorKind::NotAscending(what)));
    }
    Ok(leaves)
}

/// Writes one venue leaf of `account` at `venue` and its proof.
///
/// # Errors
/// `NotFound` when the epoch has no such venue leaf.
pub fn write_venue_proof(epoch: &EpochTree, account: &B256, venue: &B256) -> Result<String, Error> {
    let found = epoch.venue_proof(account, venue)?;
    let json = VenueProofJson {
        format: VENUE_PROOF_FORMAT.to_owned(),
        epoch: epoch.header().epoch,
        currency: epoch.header().currency.to_string(),
        root: epoch.root(),
        leaf: venue_leaf_json(&found.leaf),
        proof: found.proof,
    };
    Ok(to_pretty(&json))
}

/// Reads one venue leaf and its proof back. The proof is not checked against the root here:
/// that is [`crate::verify_venue`]'s job, against a root the reader trusts.
///
/// # Errors
/// `Syntax` for malformed JSON, amounts, status or currency; [`VenueLeaf::new`]'s errors;
/// `Mismatch` for a leaf hash that is not the leaf's; `OutOfRange` for a proof longer than
/// [`crate::limits::PROOF_DEPTH_MAX`].
pub fn read_venue_proof(text: &str) -> Result<VenueProofFile, Error> {
    let json: VenueProofJson = parse(text, "venue proof")?;
    check_format(&json.format, VENUE_PROOF_FORMAT)?;
    check_depth(&json.proof)?;
    let currency = parse_currency(&json.currency)?;
    let leaf = venue_leaf_from_json(&json.leaf, json.epoch, currency)?;
    Ok(VenueProofFile { currency, root: json.root, proof: VenueProof { leaf, proof: json.proof } })
}
