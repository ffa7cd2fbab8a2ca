//! Ballast's risk oracle: margin results that anyone can check on chain.
//!
//! Each epoch the margin engine produces one [`AccountResult`] per account. The oracle turns
//! them into a Merkle tree whose root a quorum of independent nodes signs; a consumer contract
//! then checks any single account with a short proof and no trust in whoever delivered it.
//!
//! - [`epoch`]: the header, the validated [`Leaf`] (the exact ABI encoding the contract hashes)
//!   and [`EpochTree`], which builds the tree for up to [`limits::LEAVES_MAX`] accounts in
//!   parallel with a result independent of the thread count.
//! - [`tree`]: OpenZeppelin's `StandardMerkleTree` layout, byte for byte: sorted leaves,
//!   double-hashed values, sorted-pair nodes, single proofs and multiproofs.
//! - [`report`]: the EIP-712 `MarginRoot` report, its [`Domain`] and the [`SignerSet`] whose
//!   digest it carries, so rotating signers voids old reports.
//! - [`signer`]: secp256k1 keys (RFC 6979, low-s, `v` in {27, 28}) and recovery under the
//!   contract's exact rules.
//! - [`venue`]: the leaves of accounts netted across venues ([`VenueLeaf`]: a venue's credited
//!   requirement, equity, liens, status and risk-vector commitment), which share the epoch's tree
//!   and are checked by `contracts/src/BallastVenue.sol` on the venue's own chain.
//! - [`verify`]: the Rust twin of `contracts/src/BallastVerifier.sol`, answering with the same
//!   stable [`RejectionCode`]s in the same order.
//! - [`json`]: the files `ballast attest` writes and `ballast verify` reads.
//!
//! The crate is pure: no clock (the caller passes `now_secs`), no environment, no network and
//! no randomness (signing nonces are derived from key and digest). The same inputs give
//! byte-identical leaves, root, report and signatures.

mod attest;
pub mod epoch;
mod error;
pub mod json;
pub mod limits;
pub mod report;
pub mod signer;
pub mod tree;
pub mod venue;
pub mod verify;

pub use alloy_primitives::{Address, B256, Bytes, keccak256};
pub use attest::attest;
pub use epoch::{
    AccountMultiProof, AccountProof, AccountResult, EpochHeader, EpochTree, Leaf, account_salt,
    salted_account_id,
};
pub use error::{Error, ErrorKind};
pub use report::{Domain, Report, SignedReport, SignerSet};
pub use signer::{Signature, Signer};
pub use tree::{MerkleTree, MultiProof};
pub use venue::{Credit, VenueLeaf, VenueProof, VenueResult, VenueStatus, venue_key};
pub use verify::{
    Accepted, Bounds, RejectionCode, Verifier, verify_account, verify_accounts, verify_venue,
};
