//! The Rust twin of `BallastVerifier.sol`: the same checks, in the same order, with the same
//! rejection codes.
//!
//! Order matters because a bad report often breaks several rules at once and both sides must
//! name the same one. The order is: signer-set digest, epoch (not stale, not beyond the
//! deployment's jump bound), validity window (begun, not over, not longer than the deployment's
//! bound), signature count, then each signature in turn (recoverable, known signer, not a
//! repeat, ascending).
//!
//! The two bounds are what keeps even a captured quorum from locking a deployment: without
//! them, one report for epoch 2^64 − 1 valid until 2^64 − 1 would make every honest epoch
//! stale for ever.

use std::fmt;

use alloy_primitives::{Address, B256};

use crate::epoch::Leaf;
use crate::limits::{MULTIPROOF_LEAVES_MAX, PROOF_DEPTH_MAX};
use crate::report::{Domain, Report, SignerSet};
use crate::signer::recover_signer;
use crate::tree::{MultiProof, process_multiproof, process_proof};
use crate::venue::{Credit, VenueLeaf};

/// Why a report or an account proof was rejected.
///
/// The numbers are stable: they are part of the contract's ABI (`error Rejected(uint8 code)`)
/// and of the oracle's JSON answers, so a value is never reused or renumbered. 0 is kept free
/// for "accepted".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum RejectionCode {
    /// The report names another signer set (rotated, or a different deployment).
    SignerSetMismatch = 1,
    /// The epoch is not above the last accepted one: a replay or an old report.
    StaleEpoch = 2,
    /// The current time is before the report's `asOf`.
    NotYetValid = 3,
    /// The current time is after the report's `validUntil`.
    Expired = 4,
    /// Fewer signatures than the threshold.
    TooFewSignatures = 5,
    /// More signatures than there are signers.
    TooManySignatures = 6,
    /// A signature of the wrong length, with `v` outside {27, 28}, or that recovers nothing.
    MalformedSignature = 7,
    /// A signature whose `s` is above half the group order (the malleable twin).
    HighS = 8,
    /// A signature that recovers to an address outside the signer set: a wrong key, or a
    /// report that differs from what was signed.
    UnknownSigner = 9,
    /// The same signer twice in a row.
    DuplicateSigner = 10,
    /// Signers not in strictly ascending address order.
    SignersNotAscending = 11,
    /// No root has been accepted for the epoch asked about.
    UnknownEpoch = 12,
    /// The leaf and proof do not lead to the accepted root: a tampered leaf or a bad proof.
    ProofInvalid = 13,
    /// The epoch is further above the last accepted one than the deployment allows.
    EpochJump = 14,
    /// The validity window (`validUntil − asOf`) is longer than the deployment allows.
    ValidityTooLong = 15,
    /// A venue leaf for another chain than the one checking it: a cross-chain replay
    /// (`BallastVenue`).
    WrongChain = 16,
    /// A venue leaf for another venue than the one checking it (`BallastVenue`).
    WrongVenue = 17,
}

impl RejectionCode {
    /// Every code, in numeric order.
    pub const ALL: [RejectionCode; 17] = [
        RejectionCode::SignerSetMismatch,
        RejectionCode::StaleEpoch,
        RejectionCode::NotYetValid,
        RejectionCode::Expired,
        RejectionCode::TooFewSignatures,
        RejectionCode::TooManySignatures,
        RejectionCode::MalformedSignature,
        RejectionCode::HighS,
        RejectionCode::UnknownSigner,
        RejectionCode::DuplicateSigner,
        RejectionCode::SignersNotAscending,
        RejectionCode::UnknownEpoch,
        RejectionCode::ProofInvalid,
        RejectionCode::EpochJump,
        RejectionCode::ValidityTooLong,
        RejectionCode::WrongChain,
        RejectionCode::WrongVenue,
    ];

    /// The stable number.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The code with number `code`, if there is one.
    #[must_use]
    pub fn from_code(code: u8) -> Option<RejectionCode> {
        RejectionCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The name of the matching constant in `BallastVerifier.sol` (`STALE_EPOCH`), or in
    /// `BallastVenue.sol` for the venue codes.
    #[must_use]
    pub fn solidity_name(self) -> &'static str {
        match self {
            RejectionCode::SignerSetMismatch => "SIGNER_SET_MISMATCH",
            RejectionCode::StaleEpoch => "STALE_EPOCH",
            RejectionCode::NotYetValid => "NOT_YET_VALID",
            RejectionCode::Expired => "EXPIRED",
            RejectionCode::TooFewSignatures => "TOO_FEW_SIGNATURES",
            RejectionCode::TooManySignatures => "TOO_MANY_SIGNATURES",
            RejectionCode::MalformedSignature => "MALFORMED_SIGNATURE",
            RejectionCode::HighS => "HIGH_S",
            RejectionCode::UnknownSigner => "UNKNOWN_SIGNER",
            RejectionCode::DuplicateSigner => "DUPLICATE_SIGNER",
            RejectionCode::SignersNotAscending => "SIGNERS_NOT_ASCENDING",
            RejectionCode::UnknownEpoch => "UNKNOWN_EPOCH",
            RejectionCode::ProofInvalid => "PROOF_INVALID",
            RejectionCode::EpochJump => "EPOCH_JUMP",
            RejectionCode::ValidityTooLong => "VALIDITY_TOO_LONG",
            RejectionCode::WrongChain => "WRONG_CHAIN",
            RejectionCode::WrongVenue => "WRONG_VENUE",
        }
    }
}

impl fmt::Display for RejectionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.solidity_name(), self.code())
    }
}

impl std::error::Error for RejectionCode {}

impl From<RejectionCode> for u8 {
    fn from(code: RejectionCode) -> u8 {
        code.code()
    }
}

impl TryFrom<u8> for RejectionCode {
    type Error = String;

    fn try_from(code: u8) -> Result<RejectionCode, String> {
        RejectionCode::from_code(code).ok_or_else(|| format!("unknown rejection code {code}"))
    }
}

/// What a verifier trusts: the deployment (domain) and its signer set. The contract holds the
/// same two things in its storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    /// Chain and contract the reports must be signed for.
    pub domain: Domain,
    /// Signers, threshold and config version.
    pub signer_set: SignerSet,
    /// How far a report may move the deployment: epoch jump and window length.
    pub bounds: Bounds,
}

/// What a deployment lets one report do, fixed at deployment like the signer set
/// (`BallastVerifier`'s `maxEpochJump` and `maxValidity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Largest step from the last accepted epoch to a new one (1: no epoch may be skipped).
    pub epoch_jump_max: u64,
    /// Longest validity window, `validUntil − asOf`, in seconds.
    pub validity_secs_max: u64,
}

impl Bounds {
    /// Bounds of a deployment.
    ///
    /// # Errors
    /// `OutOfRange` for a zero bound (no report could ever be accepted), as the contract's
    /// constructor refuses it.
    pub fn new(epoch_jump_max: u64, validity_secs_max: u64) -> Result<Bounds, crate::Error> {
        if epoch_jump_max == 0 {
            return Err(crate::Error::range("epoch_jump_max", "must be at least 1, got 0"));
        }
        if validity_secs_max == 0 {
            return Err(crate::Error::range("validity_secs_max", "must be at least 1, got 0"));
        }
        Ok(Bounds { epoch_jump_max, validity_secs_max })
    }
}

/// A report that passed [`Verifier::verify_report`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The EIP-712 digest the signatures cover.
    pub digest: B256,
    /// The recovered signers, ascending.
    pub signers: Vec<Address>,
}

impl Verifier {
    /// Decides whether `report` with `signatures` would be accepted by `submitRoot`, given the
    /// last accepted epoch (0 when none) and the current time.
    ///
    /// # Errors
    /// The first [`RejectionCode`] that applies, in the order of the module documentation.
    pub fn verify_report<S: AsRef<[u8]>>(
        &self,
        report: &Report,
        signatures: &[S],
        last_accepted_epoch: u64,
        now_secs: u64,
    ) -> Result<Accepted, RejectionCode> {
        let set = &self.signer_set;
        if report.signer_set_digest != set.digest() {
            return Err(RejectionCode::SignerSetMismatch);
        }
        if report.epoch <= last_accepted_epoch {
            return Err(RejectionCode::StaleEpoch);
        }
        if report.epoch - last_accepted_epoch > self.bounds.epoch_jump_max {
            return Err(RejectionCode::EpochJump);
        }
        if now_secs < report.as_of_secs {
            return Err(RejectionCode::NotYetValid);
        }
        if now_secs > report.valid_until_secs {
            return Err(RejectionCode::Expired);
        }
        // as_of ≤ now ≤ valid_until here, so the window is not negative.
        if report.valid_until_secs - report.as_of_secs > self.bounds.validity_secs_max {
            return Err(RejectionCode::ValidityTooLong);
        }
        if signatures.len() < usize::from(set.threshold()) {
            return Err(RejectionCode::TooFewSignatures);
        }
        if signatures.len() > set.signers().len() {
            return Err(RejectionCode::TooManySignatures);
        }
        let digest = report.signing_hash(&self.domain);
        let mut signers: Vec<Address> = Vec::with_capacity(signatures.len());
        for signature in signatures {
            let signer = recover_signer(&digest, signature.as_ref())?;
            if !set.contains(&signer) {
                return Err(RejectionCode::UnknownSigner);
            }
            match signers.last() {
                Some(previous) if *previous == signer => {
                    return Err(RejectionCode::DuplicateSigner);
                }
                Some(previous) if *previous > signer => {
                    return Err(RejectionCode::SignersNotAscending);
                }
                _ => signers.push(signer),
            }
        }
        assert!(signers.len() >= usize::from(set.threshold()), "Invariant: a quorum signed");
        Ok(Accepted { digest, signers })
    }
}

/// Decides what the `BallastVenue` contract of venue `venue` on chain `chain_id` answers for
/// `leaf` with `proof` at `now_secs`: `root` is the root its verifier accepted for the leaf's
/// epoch, `None` when none. The chain and venue are checked before the root, so a leaf replayed
/// on another chain is named as such even where that chain has no root for its epoch.
///
/// # Errors
/// `WrongChain`, `WrongVenue`, `UnknownEpoch`, then `ProofInvalid`, in that order.
pub fn verify_venue(
    root: Option<&B256>,
    chain_id: u64,
    venue: &B256,
    leaf: &VenueLeaf,
    proof: &[B256],
    now_secs: u64,
) -> Result<Credit, RejectionCode> {
    if leaf.result().chain_id != chain_id {
        return Err(RejectionCode::WrongChain);
    }
    if leaf.result().venue != *venue {
        return Err(RejectionCode::WrongVenue);
    }
    let root = root.ok_or(RejectionCode::UnknownEpoch)?;
    if proof.len() > PROOF_DEPTH_MAX {
        return Err(RejectionCode::ProofInvalid);
    }
    match process_proof(&leaf.hash(), proof) {
        Some(computed) if computed == *root => Ok(leaf.credit(now_secs)),
        _ => Err(RejectionCode::ProofInvalid),
    }
}

/// Decides whether `leaf` with `proof` belongs to `root`, as `verifyAccount` does on chain.
/// `root` is `None` when no root was accepted for the leaf's epoch.
///
/// # Errors
/// `UnknownEpoch` without a root; `ProofInvalid` when the proof is too long or does not lead to
/// the root.
pub fn verify_account(
    root: Option<&B256>,
    leaf: &Leaf,
    proof: &[B256],
) -> Result<(), RejectionCode> {
    let root = root.ok_or(RejectionCode::UnknownEpoch)?;
    if proof.len() > PROOF_DEPTH_MAX {
        return Err(RejectionCode::ProofInvalid);
    }
    match process_proof(&leaf.hash(), proof) {
        Some(computed) if computed == *root => Ok(()),
        _ => Err(RejectionCode::ProofInvalid),
    }
}

/// Decides whether `leaves` belong to `root` through one multiproof, as `verifyAccounts` does
/// on chain. `leaves` must be in the multiproof's order; `multi.leaves` is ignored and replaced by
/// their hashes, so the caller cannot smuggle in hashes that match no values.
///
/// # Errors
/// `UnknownEpoch` without a root; `ProofInvalid` for an empty or oversized leaf list, counts
/// that do not fit together, or a proof that does not lead to the root.
pub fn verify_accounts(
    root: Option<&B256>,
    leaves: &[Leaf],
    multi: &MultiProof,
) -> Result<(), RejectionCode> {
    let root = root.ok_or(RejectionCode::UnknownEpoch)?;
    if leaves.is_empty() || leaves.len() > MULTIPROOF_LEAVES_MAX {
        return Err(RejectionCode::ProofInvalid);
    }
    let siblings = multi.proof_flags.iter().filter(|flag| !**flag).count();
    if leaves.len() + multi.proof.len() != multi.proof_flags.len() + 1
        || siblings != multi.proof.len()
    {
        return Err(RejectionCode::ProofInvalid);
    }
    let hashed = MultiProof {
        leaves: leaves.iter().map(Leaf::hash).collect(),
        proof: multi.proof.clone(),
        proof_flags: multi.proof_flags.clone(),
    };
    match process_multiproof(&hashed) {
        Ok(computed) if computed == *root => Ok(()),
        _ => Err(RejectionCode::ProofInvalid),
    }
}
