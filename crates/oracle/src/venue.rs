//! Cross-venue leaves: what one venue's contract reads about one account netted across venues.
//!
//! An account netted across venues has one [`VenueResult`] per venue it holds a leg at: the
//! requirement credited to that venue (its part of the netted requirement), the leg's equity
//! there, the collateral pledged to and from it by liens, whether the netting holds, and the
//! commitment to the leg's P&L vector on the standard scenario set. They go into the same tree
//! as the account leaves, so one signed root covers both.
//!
//! A venue leaf names its venue and its chain, and `BallastVenue.sol` refuses a leaf for another
//! venue or another chain before it looks at the proof: the same root posted to two chains
//! proves each venue's leaves on its own chain only.

use alloy_primitives::{B256, keccak256};
use basics::{Currency, Money};

use crate::Error;
use crate::epoch::check_amounts;
use crate::tree::standard_leaf_hash;

/// Words of one ABI-encoded venue leaf: the tag, the epoch and twelve fields.
const VENUE_LEAF_WORDS: usize = 14;
/// Bytes of one ABI-encoded venue leaf.
pub const VENUE_LEAF_ENCODED_BYTES: usize = VENUE_LEAF_WORDS * 32;

/// The first word of every venue leaf: keccak-256 of `"ballast.venue-leaf.v1"`. An account leaf
/// has seven words and a venue leaf fourteen, so their preimages already differ; the tag makes
/// the kind explicit and versions the layout.
#[must_use]
pub fn venue_leaf_tag() -> B256 {
    keccak256(b"ballast.venue-leaf.v1")
}

/// The leaf's venue field of venue `id`: keccak-256 of the id's text (UTF-8). A venue's
/// contract is deployed with it.
#[must_use]
pub fn venue_key(id: &str) -> B256 {
    keccak256(id.as_bytes())
}

/// Whether the account's requirement at this venue is netted, as the leaf encodes it
/// (`uint8` 0, 1 or 2, and the grace end as `uint64`, 0 unless in grace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueStatus {
    /// Netted across the account's venues: the credited requirement is a part of the netted one.
    Netted,
    /// Margined standalone (one venue, no controller, or a failed venue past its grace): the
    /// credited requirement is the venue's own.
    Standalone,
    /// Standalone after a venue failed, within the grace period: the venue is not to liquidate
    /// for the fallback alone before `until_secs`.
    Grace {
        /// Unix seconds at which the grace period ends; at least 1.
        until_secs: u64,
    },
}

impl VenueStatus {
    /// The leaf's `status` word.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            VenueStatus::Netted => 0,
            VenueStatus::Standalone => 1,
            VenueStatus::Grace { .. } => 2,
        }
    }

    /// The leaf's `graceUntil` word: the end of the grace period, or 0.
    #[must_use]
    pub fn grace_until_secs(self) -> u64 {
        match self {
            VenueStatus::Grace { until_secs } => until_secs,
            VenueStatus::Netted | VenueStatus::Standalone => 0,
        }
    }
}

/// One account's figures at one venue, already quantised: requirements rounded up, equity and
/// pledged-in collateral rounded down, pledged-out collateral rounded up, all in 1e-18 units of
/// the epoch's currency. Plain data; [`VenueLeaf::new`] checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueResult {
    /// The account id, as in its account leaf.
    pub account: B256,
    /// The venue's [`venue_key`].
    pub venue: B256,
    /// EIP-155 id of the chain the venue's contract runs on; 0 for an exchange (off chain).
    pub chain_id: u64,
    /// The requirement credited to the venue, initial.
    pub initial_margin: Money,
    /// The requirement credited to the venue, maintenance.
    pub maintenance_margin: Money,
    /// The leg's mark-to-market equity at the venue; may be negative.
    pub equity: Money,
    /// Collateral held elsewhere and pledged to this venue.
    pub lien_in: Money,
    /// Collateral held here and pledged to other venues.
    pub lien_out: Money,
    /// Netted, standalone or in grace.
    pub status: VenueStatus,
    /// Whether this venue is the account's controller (may liquidate collateral elsewhere).
    pub controller: bool,
    /// keccak-256 commitment to the leg's P&L vector on the standard scenario set.
    pub vector_hash: B256,
}

/// One venue leaf, validated: the values `BallastVenue.creditOf` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueLeaf {
    epoch: u64,
    result: VenueResult,
}

impl VenueLeaf {
    /// Validates `result` for epoch `epoch` in `currency`.
    ///
    /// # Errors
    /// `CurrencyMismatch` for an amount in another currency; `OutOfRange` for a negative
    /// requirement or lien, or a grace period ending at 0.
    pub fn new(epoch: u64, currency: Currency, result: &VenueResult) -> Result<VenueLeaf, Error> {
        let amounts = [
            ("venue.initial_margin", result.initial_margin),
            ("venue.maintenance_margin", result.maintenance_margin),
            ("venue.lien_in", result.lien_in),
            ("venue.lien_out", result.lien_out),
            ("venue.equity", result.equity),
        ];
        check_amounts(currency, &amounts, 4)?;
        if result.status == (VenueStatus::Grace { until_secs: 0 }) {
            return Err(Error::range("venue.status", "a grace period ends after 0"));
        }
        Ok(VenueLeaf { epoch, result: *result })
    }

    /// The epoch the leaf belongs to.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The figures.
    #[must_use]
    pub fn result(&self) -> &VenueResult {
        &self.result
    }

    /// `abi.encode(bytes32 tag, uint64 epoch, bytes32 account, bytes32 venue, uint64 chainId,
    /// uint256 im, uint256 mm, int256 equity, uint256 lienIn, uint256 lienOut, uint8 status,
    /// uint64 graceUntil, bool controller, bytes32 vectorHash)`: fourteen static words.
    #[must_use]
    pub fn abi_encode(&self) -> [u8; VENUE_LEAF_ENCODED_BYTES] {
        let r = &self.result;
        let mut words = [[0u8; 32]; VENUE_LEAF_WORDS];
        words[0] = venue_leaf_tag().0;
        words[1] = uint_word(u128::from(self.epoch));
        words[2] = r.account.0;
        words[3] = r.venue.0;
        words[4] = uint_word(u128::from(r.chain_id));
        words[5] = uint_word(unsigned(r.initial_margin, "initial margin"));
        words[6] = uint_word(unsigned(r.maintenance_margin, "maintenance margin"));
        words[7] = int_word(r.equity.raw());
        words[8] = uint_word(unsigned(r.lien_in, "lien in"));
        words[9] = uint_word(unsigned(r.lien_out, "lien out"));
        words[10] = uint_word(u128::from(r.status.code()));
        words[11] = uint_word(u128::from(r.status.grace_until_secs()));
        words[12] = uint_word(u128::from(r.controller));
        words[13] = r.vector_hash.0;
        let mut out = [0u8; VENUE_LEAF_ENCODED_BYTES];
        for (chunk, word) in out.chunks_exact_mut(32).zip(words) {
            chunk.copy_from_slice(&word);
        }
        out
    }

    /// The OpenZeppelin standard leaf hash of [`VenueLeaf::abi_encode`].
    #[must_use]
    pub fn hash(&self) -> B256 {
        standard_leaf_hash(&self.abi_encode())
    }

    /// What the venue's contract concludes from the leaf at `now_secs`, as `creditOf` returns it.
    #[must_use]
    pub fn credit(&self, now_secs: u64) -> Credit {
        let r = &self.result;
        let collateral = r.equity - r.lien_out + r.lien_in;
        let in_grace =
            matches!(r.status, VenueStatus::Grace { until_secs } if now_secs < until_secs);
        Credit {
            initial_margin: r.initial_margin,
            maintenance_margin: r.maintenance_margin,
            collateral,
            liquidatable: collateral < r.maintenance_margin && !in_grace,
            controller: r.controller,
        }
    }
}

/// What a venue reads off a proved leaf: its credited requirement, the collateral it counts, and
/// whether it may liquidate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit {
    /// Credited initial margin.
    pub initial_margin: Money,
    /// Credited maintenance margin.
    pub maintenance_margin: Money,
    /// Equity, less collateral pledged away, plus collateral pledged in.
    pub collateral: Money,
    /// Collateral below the credited maintenance margin, and no grace period running.
    pub liquidatable: bool,
    /// Whether the venue is the account's controller.
    pub controller: bool,
}

/// A venue leaf with its proof against the epoch root: what a keeper hands to `creditOf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueProof {
    /// The leaf.
    pub leaf: VenueLeaf,
    /// Sibling hashes from the leaf up to the root.
    pub proof: Vec<B256>,
}

fn unsigned(amount: Money, what: &str) -> u128 {
    let raw = amount.raw();
    assert!(raw >= 0, "Invariant: a venue leaf's {what} is a uint256 (checked in new)");
    raw.unsigned_abs()
}

fn uint_word(value: u128) -> [u8; 32] {
    let mut word = [0u8; 32];
    word[16..].copy_from_slice(&value.to_be_bytes());
    word
}

fn int_word(value: i128) -> [u8; 32] {
    let mut word = if value < 0 { [0xff; 32] } else { [0u8; 32] };
    word[16..].copy_from_slice(&value.to_be_bytes());
    word
}
