//! One epoch's account results, their leaves and the tree over them.

use std::collections::BTreeMap;

use alloy_primitives::{B256, keccak256};
use basics::{Currency, Money};
use rayon::prelude::*;

use crate::limits::LEAVES_MAX;

/// Leaves hashed together by one task, in leaves: four at a time, their encodings (a few
/// hundred bytes each) in the core's cache.
const LEAF_HASH_CHUNK: usize = 1_024;
use crate::report::{Report, SignerSet};
use crate::tree::{MerkleTree, MultiProof, standard_leaf_hash, standard_leaf_hashes};
use crate::venue::{VenueLeaf, VenueProof, VenueResult};
use crate::{Error, ErrorKind};

/// Bytes of one ABI-encoded leaf: seven static 32-byte words.
pub const LEAF_ENCODED_BYTES: usize = 7 * 32;

/// What the margin engine computed for one account at one epoch, already quantised.
///
/// Requirements are rounded up and equity down by the caller, in 1e-18 units of the epoch's
/// reporting currency; the oracle never rounds. No field has an invariant of its own, so they are
/// public; [`EpochTree::build`] checks them against the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountResult {
    /// The 32-byte account id (for example a hash of owner and sub-account).
    pub account: B256,
    /// Initial margin requirement; must be at least zero.
    pub initial_margin: Money,
    /// Maintenance margin requirement; must be at least zero.
    pub maintenance_margin: Money,
    /// Mark-to-market equity of the portfolio; may be negative.
    pub mark_to_market: Money,
    /// Index of the scenario that produced the worst loss.
    pub worst_scenario: u16,
    /// Hash of the canonical position list the engine used.
    pub portfolio_hash: B256,
}

/// What every leaf and the signed report of one epoch share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochHeader {
    /// Epoch number; epochs start at 1 and only grow (the contract's "none yet" is 0).
    pub epoch: u64,
    /// Valuation time of the market data, in Unix seconds.
    pub as_of_secs: u64,
    /// Last second at which the report may be accepted, in Unix seconds.
    pub valid_until_secs: u64,
    /// Hash of the exact market snapshot every node computed from.
    pub market_data_hash: B256,
    /// Hash of the methodology: parameters, scenario set and reporting currency.
    pub methodology_hash: B256,
    /// Currency of every amount in the epoch. It is not in the leaf; the methodology hash
    /// commits to it.
    pub currency: Currency,
}

impl EpochHeader {
    /// Checks the header's own rules.
    ///
    /// # Errors
    /// `OutOfRange` for epoch 0 or a validity window that ends before it starts.
    pub fn validate(&self) -> Result<(), Error> {
        if self.epoch == 0 {
            return Err(Error::range("epoch", "epochs start at 1; 0 means none accepted yet"));
        }
        if self.valid_until_secs < self.as_of_secs {
            let rule = format!(
                "valid_until_secs {} must not be before as_of_secs {}",
                self.valid_until_secs, self.as_of_secs
            );
            return Err(Error::range("valid_until_secs", rule));
        }
        Ok(())
    }
}

/// One account's leaf: the values the contract's `verifyAccount` takes, validated.
///
/// Amounts are raw 1e-18 units; the requirements are known to be non-negative, which is what
/// lets them travel as `uint256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leaf {
    account: B256,
    epoch: u64,
    initial_margin_raw: i128,
    maintenance_margin_raw: i128,
    mark_to_market_raw: i128,
    worst_scenario: u16,
    portfolio_hash: B256,
}

impl Leaf {
    /// Validates one result of epoch `epoch`, whose amounts must be in `currency`.
    ///
    /// # Errors
    /// `CurrencyMismatch` for an amount in another currency; `OutOfRange` for a negative
    /// requirement.
    pub fn new(epoch: u64, currency: Currency, result: &AccountResult) -> Result<Leaf, Error> {
        let amounts = [
            ("initial_margin", result.initial_margin),
            ("maintenance_margin", result.maintenance_margin),
            ("mark_to_market", result.mark_to_market),
        ];
        check_amounts(currency, &amounts, 2)?;
        Ok(Leaf {
            account: result.account,
            epoch,
            initial_margin_raw: result.initial_margin.raw(),
            maintenance_margin_raw: result.maintenance_margin.raw(),
            mark_to_market_raw: result.mark_to_market.raw(),
            worst_scenario: result.worst_scenario,
            portfolio_hash: result.portfolio_hash,
        })
    }

    /// The account id.
    #[must_use]
    pub fn account(&self) -> B256 {
        self.account
    }

    /// The epoch the leaf belongs to.
    #[must_use]
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The account result again, in `currency`.
    #[must_use]
    pub fn result(&self, currency: Currency) -> AccountResult {
        AccountResult {
            account: self.account,
            initial_margin: Money::from_raw(self.initial_margin_raw, currency),
            maintenance_margin: Money::from_raw(self.maintenance_margin_raw, currency),
            mark_to_market: Money::from_raw(self.mark_to_market_raw, currency),
            worst_scenario: self.worst_scenario,
            portfolio_hash: self.portfolio_hash,
        }
    }

    /// `abi.encode(bytes32 account, uint64 epoch, uint256 im, uint256 mm, int256 mtm,
    /// uint16 worstScenario, bytes32 portfolioHash)`: all static, so seven words back to back,
    /// integers big-endian, `int256` sign-extended.
    #[must_use]
    pub fn abi_encode(&self) -> [u8; LEAF_ENCODED_BYTES] {
        assert!(self.initial_margin_raw >= 0, "Invariant: a leaf's initial margin is a uint256");
        assert!(self.maintenance_margin_raw >= 0, "Invariant: a leaf's maintenance is a uint256");
        let mut out = [0u8; LEAF_ENCODED_BYTES];
        out[..32].copy_from_slice(self.account.as_slice());
        out[56..64].copy_from_slice(&self.epoch.to_be_bytes());
        out[80..96].copy_from_slice(&self.initial_margin_raw.to_be_bytes());
        out[112..128].copy_from_slice(&self.maintenance_margin_raw.to_be_bytes());
        let sign_fill = if self.mark_to_market_raw < 0 { 0xff } else { 0x00 };
        out[128..144].fill(sign_fill);
        out[144..160].copy_from_slice(&self.mark_to_market_raw.to_be_bytes());
        out[190..192].copy_from_slice(&self.worst_scenario.to_be_bytes());
        out[192..].copy_from_slice(self.portfolio_hash.as_slice());
        out
    }

    /// The OpenZeppelin standard leaf hash of [`Leaf::abi_encode`].
    #[must_use]
    pub fn hash(&self) -> B256 {
        standard_leaf_hash(&self.abi_encode())
    }
}

/// Checks that every amount is in `currency` and that the first `unsigned` of them (those the
/// leaf carries as `uint256`) are at least zero, naming the first field at fault.
pub(crate) fn check_amounts(
    currency: Currency,
    amounts: &[(&'static str, Money)],
    unsigned: usize,
) -> Result<(), Error> {
    for &(field, amount) in amounts {
        if amount.currency() != currency {
            let expected = currency.to_string();
            let found = amount.currency().to_string();
            return Err(Error::new(field, ErrorKind::CurrencyMismatch { expected, found }));
        }
    }
    for &(field, amount) in &amounts[..unsigned] {
        if amount.is_negative() {
            let rule = format!("a requirement or lien is at least 0, got raw {}", amount.raw());
            return Err(Error::range(field, rule));
        }
    }
    Ok(())
}

/// A leaf with its proof against the epoch root: what a consumer hands to `verifyAccount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountProof {
    /// The account's leaf.
    pub leaf: Leaf,
    /// Sibling hashes from the leaf up to the root.
    pub proof: Vec<B256>,
}

/// Several accounts' leaves with one multiproof, leaves in proof order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMultiProof {
    /// The leaves, in the order `multi.leaves` lists their hashes.
    pub leaves: Vec<Leaf>,
    /// The multiproof.
    pub multi: MultiProof,
}

/// One epoch, built: the header, every account leaf (sorted by account id), every venue leaf
/// (sorted by account then venue) and the one Merkle tree over both kinds.
///
/// Immutable once built. The same header and results, in any order and on any number of threads,
/// give byte-identical leaves and root.
#[derive(Debug, Clone)]
pub struct EpochTree {
    header: EpochHeader,
    leaves: Vec<Leaf>,
    leaf_hashes: Vec<B256>,
    venue_leaves: Vec<VenueLeaf>,
    venue_hashes: Vec<B256>,
    tree: MerkleTree,
}

impl EpochTree {
    /// Validates `results` against `header` and builds the tree of account leaves alone.
    ///
    /// # Errors
    /// As [`EpochTree::build_with_venues`] without venue results.
    pub fn build(header: &EpochHeader, results: &[AccountResult]) -> Result<EpochTree, Error> {
        EpochTree::build_with_venues(header, results, &[])
    }

    /// Validates account and venue results against `header` and builds one tree over both.
    ///
    /// Validation runs first and in input order, accounts before venues, so the error for bad
    /// input is always the one for its first bad result; hashing then runs in parallel.
    ///
    /// # Errors
    /// The header's own errors; `OutOfRange` for no leaf at all or more than
    /// [`LEAVES_MAX`] together; the first result's [`Leaf::new`] or [`VenueLeaf::new`] error;
    /// `Duplicate` for an account, or an (account, venue) pair, listed twice.
    pub fn build_with_venues(
        header: &EpochHeader,
        results: &[AccountResult],
        venues: &[VenueResult],
    ) -> Result<EpochTree, Error> {
        header.validate()?;
        let count = results.len() + venues.len();
        if count == 0 || count > LEAVES_MAX {
            let rule = format!("1..={LEAVES_MAX} leaves, got {count}");
            return Err(Error::range("results", rule));
        }
        let mut leaves = results
            .iter()
            .map(|result| Leaf::new(header.epoch, header.currency, result))
            .collect::<Result<Vec<_>, _>>()?;
        let mut venue_leaves = venues
            .iter()
            .map(|result| VenueLeaf::new(header.epoch, header.currency, result))
            .collect::<Result<Vec<_>, _>>()?;
        // Keys are unique after the checks below, so the unstable sorts have one answer.
        leaves.par_sort_unstable_by_key(|leaf| leaf.account);
        if let Some([first, _]) = leaves.windows(2).find(|pair| pair[0].account == pair[1].account)
        {
            let what = format!("account {}", first.account);
            return Err(Error::new("results", ErrorKind::Duplicate(what)));
        }
        venue_leaves.par_sort_unstable_by_key(venue_order);
        if let Some([first, _]) =
            venue_leaves.windows(2).find(|pair| venue_order(&pair[0]) == venue_order(&pair[1]))
        {
            let (account, venue) = venue_order(first);
            let what = format!("venue {venue} of account {account}");
            return Err(Error::new("venues", ErrorKind::Duplicate(what)));
        }
        let venue_hashes = standard_hashes(&venue_leaves, VenueLeaf::abi_encode);
        let leaf_hashes = standard_hashes(&leaves, Leaf::abi_encode);
        let all = [leaf_hashes.as_slice(), venue_hashes.as_slice()].concat();
        let tree = MerkleTree::from_leaf_hashes(all)?;
        assert!(tree.leaf_count() == count, "Invariant: one tree leaf per result");
        Ok(EpochTree { header: *header, leaves, leaf_hashes, venue_leaves, venue_hashes, tree })
    }

    /// The header the epoch was built from.
    #[must_use]
    pub fn header(&self) -> &EpochHeader {
        &self.header
    }

    /// The leaves, sorted by account id.
    #[must_use]
    pub fn leaves(&self) -> &[Leaf] {
        &self.leaves
    }

    /// The venue leaves, sorted by account id then venue key.
    #[must_use]
    pub fn venue_leaves(&self) -> &[VenueLeaf] {
        &self.venue_leaves
    }

    /// The tree over the leaf hashes.
    #[must_use]
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The root hash.
    #[must_use]
    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The report to sign for this epoch under `signer_set`.
    #[must_use]
    pub fn report(&self, signer_set: &SignerSet) -> Report {
        Report {
            root: self.root(),
            epoch: self.header.epoch,
            as_of_secs: self.header.as_of_secs,
            valid_until_secs: self.header.valid_until_secs,
            // build() bounds the count by LEAVES_MAX, which fits a u32 (checked in limits).
            leaf_count: self.tree.leaf_count() as u32,
            market_data_hash: self.header.market_data_hash,
            methodology_hash: self.header.methodology_hash,
            signer_set_digest: signer_set.digest(),
        }
    }

    /// The leaf and proof of `account`.
    ///
    /// # Errors
    /// `NotFound` when the account is not in this epoch.
    pub fn account_proof(&self, account: &B256) -> Result<AccountProof, Error> {
        let position = self.position(account)?;
        let proof = self.tree.proof(&self.leaf_hashes[position])?;
        Ok(AccountProof { leaf: self.leaves[position], proof })
    }

    /// One multiproof for several accounts, for keepers that check a batch at once. The leaves
    /// come back in the order the proof consumes them, which is the order `verifyAccounts`
    /// takes them in.
    ///
    /// # Errors
    /// `NotFound` for an account not in the epoch; the tree's multiproof errors.
    pub fn multiproof(&self, accounts: &[B256]) -> Result<AccountMultiProof, Error> {
        let positions: BTreeMap<B256, usize> = accounts
            .iter()
            .map(|account| self.position(account).map(|p| (self.leaf_hashes[p], p)))
            .collect::<Result<_, _>>()?;
        let hashes: Vec<B256> = accounts
            .iter()
            .map(|account| self.position(account).map(|p| self.leaf_hashes[p]))
            .collect::<Result<_, _>>()?;
        let multi = self.tree.multiproof(&hashes)?;
        let leaves = multi.leaves.iter().map(|hash| self.leaves[positions[hash]]).collect();
        Ok(AccountMultiProof { leaves, multi })
    }

    /// The venue leaf and proof of `account` at the venue with key `venue`.
    ///
    /// # Errors
    /// `NotFound` when the epoch holds no such venue leaf.
    pub fn venue_proof(&self, account: &B256, venue: &B256) -> Result<VenueProof, Error> {
        let position = self
            .venue_leaves
            .binary_search_by_key(&(*account, *venue), venue_order)
            .map_err(|_| {
                let what = format!("venue {venue} of account {account}");
                Error::new("venue", ErrorKind::NotFound(what))
            })?;
        let proof = self.tree.proof(&self.venue_hashes[position])?;
        Ok(VenueProof { leaf: self.venue_leaves[position], proof })
    }

    fn position(&self, account: &B256) -> Result<usize, Error> {
        self.leaves
            .binary_search_by_key(account, |leaf| leaf.account)
            .map_err(|_| Error::new("account", ErrorKind::NotFound(format!("account {account}"))))
    }
}

fn venue_order(leaf: &VenueLeaf) -> (B256, B256) {
    (leaf.result().account, leaf.result().venue)
}

/// Domain prefix of an account's salt, so that no other keccak-256 in the protocol can collide
/// with one.
const SALT_DOMAIN: &[u8] = b"ballast.account-salt.v1";

/// The salt of account `id` under a federation's salting secret: keccak-256 of the domain,
/// the secret's length (8 bytes, big-endian), the secret and the id. Nodes that share the secret
/// derive the same salts, so their leaves agree; the account holder is given its own salt.
#[must_use]
pub fn account_salt(secret: &[u8], id: &str) -> B256 {
    let length = (secret.len() as u64).to_be_bytes();
    keccak256([SALT_DOMAIN, &length, secret, id.as_bytes()].concat())
}

/// The leaf's account field of `id` salted with `salt`: keccak-256 of the salt then the id.
/// Unlike the plain keccak-256 of the id, it cannot be found by hashing candidate ids: the
/// published leaves say nothing of whose margin they hold, and the holder, who has the salt,
/// recomputes its own. The contract checks proofs of either kind alike.
#[must_use]
pub fn salted_account_id(salt: &B256, id: &str) -> B256 {
    keccak256([salt.as_slice(), id.as_bytes()].concat())
}

/// The standard leaf hash of each of `items` as `encode` writes it, in order: parallel chunks,
/// each hashed four messages at a time.
fn standard_hashes<T: Sync, const N: usize>(items: &[T], encode: fn(&T) -> [u8; N]) -> Vec<B256> {
    (items.par_chunks(LEAF_HASH_CHUNK))
        .flat_map_iter(|chunk| {
            let encoded: Vec<[u8; N]> = chunk.iter().map(encode).collect();
            let messages: Vec<&[u8]> = encoded.iter().map(<[u8; N]>::as_slice).collect();
            standard_leaf_hashes(&messages)
        })
        .collect()
}
